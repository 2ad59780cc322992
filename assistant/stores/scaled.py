"""``make run-scaled``: one PostgreSQL, the index in it, two API workers on two ports.

    python -m assistant.stores.scaled [--data var/pg] [--pg-port 54329] [--ports 8001,8002]

1. starts the bundled PostgreSQL (``assistant.stores.pglocal``; data in ``var/pg``, a generated
   password in ``var/pg.password``) unless ``ASSISTANT_DATABASE_URL`` is already set, in which case
   that database is used;
2. ``assistant index --if-stale`` into it (``ASSISTANT_STORE=postgres``);
3. ``assistant serve`` on each port, every worker its own process reading the same database.

Re-index while they serve (``ASSISTANT_STORE=postgres ASSISTANT_DATABASE_URL=... assistant index``,
the URL is printed) and both switch to the new build within ``ASSISTANT_BUILD_POLL_SECONDS``.
Ctrl-C stops the workers and the database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from assistant.settings import ROOT


def _assistant() -> str:
    return shutil.which("assistant", path=str(Path(sys.executable).parent)) or shutil.which("assistant") or "assistant"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "var" / "pg")
    ap.add_argument("--pg-port", type=int, default=54329)
    ap.add_argument("--ports", default="8001,8002")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)

    env = {**os.environ, "ASSISTANT_STORE": "postgres"}
    server = None
    if not env.get("ASSISTANT_DATABASE_URL"):
        from assistant.stores import pglocal

        data = args.data.resolve()
        secret = data.parent / (data.name + ".password")
        if not secret.exists():
            import secrets

            data.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text(secrets.token_urlsafe(24))
            secret.chmod(0o600)
        server = pglocal.LocalPostgres(data, args.pg_port, password=secret.read_text().strip()).start()
        env["ASSISTANT_DATABASE_URL"] = server.url
        print(f"PostgreSQL on 127.0.0.1:{server.port} (data {data}; password in {secret})", file=sys.stderr)
    workers: list[subprocess.Popen] = []
    try:
        code = subprocess.call([_assistant(), "index", "--if-stale"], env=env, cwd=ROOT)
        if code not in (0, 1):  # 1: a document failed but the index was built
            return code
        for port in [int(p) for p in args.ports.split(",") if p.strip()]:
            workers.append(subprocess.Popen([_assistant(), "serve", "--host", args.host, "--port", str(port)],
                                            env=env, cwd=ROOT))
            print(f"worker on http://{args.host}:{port}", file=sys.stderr)
        print(f"re-index into the same database: ASSISTANT_STORE=postgres ASSISTANT_DATABASE_URL=$("
              f"{sys.executable} -m assistant.stores.pglocal url {args.data}) assistant index", file=sys.stderr)
        while all(w.poll() is None for w in workers):
            time.sleep(0.5)
        return next((w.returncode for w in workers if w.returncode), 0)
    except KeyboardInterrupt:
        return 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
        for w in workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
