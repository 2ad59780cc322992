"""Fill in the Teams app manifest and zip it with the icons, ready to sideload.

    python deploy/teams/make_package.py --bot-app-id <Microsoft App ID> --host assistant.example.org \
        [--organisation "IOM"] [--teams-app-id <GUID>] [--out deploy/teams/iom-assistant.zip]

The Teams app id defaults to the bot's app id (allowed, and it keeps the two easy to match).
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(bot_app_id: str, host: str, organisation: str, teams_app_id: str | None, out: Path) -> Path:
    uuid.UUID(bot_app_id)  # a Microsoft App ID is a GUID
    teams_app_id = teams_app_id or bot_app_id
    uuid.UUID(teams_app_id)
    host = re.sub(r"^https?://", "", host).strip("/")
    text = (HERE / "manifest.template.json").read_text(encoding="utf-8")
    for key, value in {"BOT_APP_ID": bot_app_id, "TEAMS_APP_ID": teams_app_id, "HOST": host,
                       "ORGANISATION": organisation}.items():
        text = text.replace("{{" + key + "}}", value)
    manifest = json.loads(text)
    assert "{{" not in text, "unfilled placeholder"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        z.write(HERE / "color.png", "color.png")
        z.write(HERE / "outline.png", "outline.png")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bot-app-id", required=True)
    p.add_argument("--host", required=True, help="the public host name of the server, e.g. assistant.example.org")
    p.add_argument("--organisation", default="IOM")
    p.add_argument("--teams-app-id", default=None)
    p.add_argument("--out", type=Path, default=HERE / "iom-assistant.zip")
    a = p.parse_args()
    print(build(a.bot_app_id, a.host, a.organisation, a.teams_app_id, a.out))


if __name__ == "__main__":
    main()
