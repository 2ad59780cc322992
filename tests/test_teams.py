"""The Teams outgoing webhook: HMAC verification, mention stripping, the Markdown reply."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.api import create_app
from assistant.api.teams import question_from_text, sign

# A signed sample (the signature is fixed: it checks the HMAC recipe). Its 2025 timestamp is stale
# now, so the server refuses it; the README's curl recipe writes the same activity with a fresh id
# and timestamp, and signs it.
SAMPLE_SECRET = "aW9tLWFzc2lzdGFudC1leGFtcGxlLXNlY3JldC0wMDA="
SAMPLE_BODY = (
    '{"type":"message","id":"1485983408511","timestamp":"2025-01-15T10:00:00.000Z",'
    '"serviceUrl":"https://smba.trafficmanager.net/emea/","channelId":"msteams",'
    '"from":{"id":"29:1abc","name":"Desk Officer"},'
    '"conversation":{"id":"19:channel@thread.skype;messageid=1485983408511"},'
    '"text":"<at>IOM Assistant</at> Where did Denmark rank among the donors of unearmarked funding to IOM?",'
    '"textFormat":"plain","entities":[{"type":"mention","text":"<at>IOM Assistant</at>",'
    '"mentioned":{"id":"28:bot","name":"IOM Assistant"}}]}'
)
SAMPLE_SIGNATURE = "QTOVWFHru8vhi9T3KFJOVjZIUsDCxyXmjCL7Oh3Xwvg="
DOCS = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def teams_settings(fast_settings):
    return fast_settings.model_copy(
        update={"api_keys": "some-api-key", "teams_secret": SecretStr(SAMPLE_SECRET), "rate_limit_per_minute": 10_000}
    )


@pytest.fixture(scope="module")
def client(fast_service, teams_settings):
    with TestClient(create_app(fast_service, teams_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def catalog_ids(fast_service):
    return {d.id for d in fast_service.documents()}


def fresh(body: str = SAMPLE_BODY, **fields) -> bytes:
    """``body`` with a new id and the current time (a real Teams activity is never sent twice)."""
    activity = json.loads(body)
    activity.update({"id": uuid.uuid4().hex, "timestamp": _now_iso(), **fields})
    return json.dumps(activity).encode()


def _now_iso(offset_s: float = 0.0) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def post(client, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Authorization"] = signature
    return client.post("/teams/webhook", content=body, headers=headers)


def test_signature_is_hmac_sha256_of_the_raw_body_with_the_decoded_secret():
    expected = base64.b64encode(
        hmac.new(base64.b64decode(SAMPLE_SECRET), SAMPLE_BODY.encode(), hashlib.sha256).digest()
    ).decode()
    assert sign(SAMPLE_BODY.encode(), SAMPLE_SECRET) == expected == SAMPLE_SIGNATURE


def test_the_readme_curl_recipe_is_accepted_once(client):
    """The README's shell lines (printf with a fresh id and time, openssl's HMAC) make a body this
    server accepts; the same body again is a replay (409)."""
    text = DOCS.read_text(encoding="utf-8")
    assert f"SECRET='{SAMPLE_SECRET}'" in text
    template = re.search(r"printf '(\{\"type\":\"message\".*?\})' \"\$ID\" \"\$NOW\"", text).group(1)
    raw = (template % (uuid.uuid4().hex, _now_iso())).encode()
    assert json.loads(raw)["text"] == json.loads(SAMPLE_BODY)["text"]
    openssl = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary", "-mac", "HMAC", "-macopt",
         "hexkey:" + base64.b64decode(SAMPLE_SECRET).hex()], input=raw, capture_output=True)
    if openssl.returncode == 0:
        assert base64.b64encode(openssl.stdout).decode() == sign(raw, SAMPLE_SECRET)
    first = post(client, raw, f"HMAC {sign(raw, SAMPLE_SECRET)}")
    assert first.status_code == 200 and "**Sources**" in first.json()["text"], first.text
    again = post(client, raw, f"HMAC {sign(raw, SAMPLE_SECRET)}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "replayed"


def test_the_fixed_sample_is_stale_now(client):
    r = post(client, SAMPLE_BODY.encode(), f"HMAC {SAMPLE_SIGNATURE}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "stale_activity", r.text


def test_correctly_signed_request_gets_an_answer_with_sources(client, catalog_ids):
    body = fresh()
    r = post(client, body, f"HMAC {sign(body, SAMPLE_SECRET)}")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert set(reply) == {"type", "text"} and reply["type"] == "message"
    text = reply["text"]
    assert "<at>" not in text
    assert "**Sources**" in text
    sources = text.split("**Sources**", 1)[1]
    assert "- [1] " in sources
    assert any(f"[{doc}]" in sources for doc in catalog_ids)


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "HMAC",
        "HMAC ",
        f"Bearer {SAMPLE_SIGNATURE}",
        "HMAC " + base64.b64encode(b"x" * 32).decode(),
        "HMAC not base64 at all!",
    ],
)
def test_wrongly_signed_requests_are_401(client, auth):
    r = post(client, SAMPLE_BODY.encode(), auth)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "bad_signature"


def test_signature_over_a_different_body_is_401(client):
    tampered = SAMPLE_BODY.replace("Denmark", "Sweden").encode()
    r = post(client, tampered, f"HMAC {SAMPLE_SIGNATURE}")
    assert r.status_code == 401
    other_secret = base64.b64encode(b"another-secret-another-secret-00").decode()
    r = post(client, SAMPLE_BODY.encode(), f"HMAC {sign(SAMPLE_BODY.encode(), other_secret)}")
    assert r.status_code == 401


def test_api_key_is_not_a_teams_credential(client):
    r = client.post(
        "/teams/webhook", content=SAMPLE_BODY.encode(), headers={"Authorization": "Bearer some-api-key"}
    )
    assert r.status_code == 401


def test_signed_garbage_is_400(client):
    body = b"this is not json"
    r = post(client, body, f"HMAC {sign(body, SAMPLE_SECRET)}")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"


def test_mention_only_gets_help(client):
    body = json.dumps({"type": "message", "text": "<at>IOM Assistant</at>&nbsp;"}).encode()
    r = post(client, body, f"HMAC {sign(body, SAMPLE_SECRET)}")
    assert r.status_code == 200
    assert r.json()["type"] == "message" and "Ask me" in r.json()["text"]


def test_no_secret_configured_is_503(fast_service, fast_settings):
    settings = fast_settings.model_copy(update={"teams_secret": None})
    with TestClient(create_app(fast_service, settings)) as c:
        r = post(c, SAMPLE_BODY.encode(), f"HMAC {SAMPLE_SIGNATURE}")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "teams_disabled"


@pytest.mark.parametrize(
    "raw,question",
    [
        ("<at>IOM Assistant</at> What is MIRAC?", "What is MIRAC?"),
        ("<at id=\"0\">Bot</at>&nbsp;How much?<br/>In 2022", "How much? In 2022"),
        ("<p><at>Bot</at> <b>Which</b> embassy &amp; when?</p>", "Which embassy & when?"),
        ("plain question", "plain question"),
        (None, ""),
    ],
)
def test_question_from_text(raw, question):
    assert question_from_text(raw) == question
