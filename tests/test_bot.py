"""The Teams bot (POST /api/messages, Agents SDK) against real parts on loopback.

- a local OpenID/JWKS server publishing a key this test generates (as login.botframework.com does),
- a local Bot Connector that records the activities the bot posts (as smba.trafficmanager.net does),
- the assistant on a real uvicorn, with the fixture corpus.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI, Request

from _loopback import serve
from assistant.api import create_app

jwt = pytest.importorskip("jwt")
pytest.importorskip("microsoft_agents.hosting.fastapi", reason="the Agents SDK (microsoft-agents-*) is not installed")

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

APP_ID = "00000000-1111-2222-3333-444444444444"
ISSUER = "https://api.botframework.com"
KID = "test-key-1"
OUTBOUND_TOKEN = "connector-token-" + uuid.uuid4().hex
QUESTION = "How much unearmarked funding did Denmark give IOM in 2022?"


def _jwk(private_key, kid: str, endorsements=("msteams",)) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256", "endorsements": list(endorsements)}


class Connector:
    """Records what the bot posts to /v3/conversations/... ."""

    def __init__(self) -> None:
        self.posted: list[dict] = []
        self.lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/v3/conversations/{path:path}")
        async def post(path: str, request: Request):
            body = await request.json()
            with self.lock:
                self.posted.append({"path": path, "auth": request.headers.get("authorization"), "activity": body})
            return {"id": f"reply-{len(self.posted)}"}

    def wait(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posted) >= count:
                    return list(self.posted)
            time.sleep(0.05)
        raise AssertionError(f"the connector received {len(self.posted)} activities, expected {count}")

    def clear(self) -> None:
        with self.lock:
            self.posted.clear()


@pytest.fixture(scope="module")
def keys():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def openid_url(keys):
    app = FastAPI()
    state = {}

    @app.get("/v1/.well-known/openidconfiguration")
    async def metadata():
        return {"issuer": ISSUER, "jwks_uri": state["base"] + "/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"]}

    @app.get("/v1/.well-known/keys")
    async def jwks():
        return {"keys": [_jwk(keys, KID)]}

    with serve(app) as base:
        state["base"] = base
        yield base + "/v1/.well-known/openidconfiguration"


@pytest.fixture(scope="module")
def connector():
    c = Connector()
    with serve(c.app) as base:
        c.url = base + "/"
        yield c


def _bot_app(fixture_service, fixture_settings, openid_url, **overrides):
    from microsoft_agents.hosting.core import AgentAuthConfiguration, ConnectionManager

    from assistant.api.bot import AssistantBot, StaticTokenProvider

    settings = fixture_settings.model_copy(update={
        "api_keys": "some-api-key", "bot_app_id": APP_ID, "bot_openid_metadata_url": openid_url,
        "rate_limit_per_minute": 100_000, **overrides})
    app = create_app(fixture_service, settings)
    connections = ConnectionManager(
        provider_factory=lambda cfg: StaticTokenProvider(cfg, OUTBOUND_TOKEN),
        connections_configurations={"SERVICE_CONNECTION": AgentAuthConfiguration(client_id=APP_ID)},
    )
    app.state.bot = AssistantBot(app.state, settings, connections=connections)
    return app


@pytest.fixture(scope="module")
def bot_url(fixture_service, fixture_settings, openid_url):
    with serve(_bot_app(fixture_service, fixture_settings, openid_url)) as base:
        yield base


def token(keys, service_url: str, *, aud=APP_ID, iss=ISSUER, exp_in=3600, kid=KID, **extra) -> str:
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "exp": now + exp_in, "nbf": now - 60, "serviceurl": service_url, **extra}
    return jwt.encode(claims, keys, algorithm="RS256", headers={"kid": kid})


def activity(service_url: str, text: str | None, *, conversation="a:1personal-chat", kind="personal",
             activity_id=None, value=None, entities=None) -> dict:
    return {
        "type": "message",
        "id": activity_id or str(int(time.time() * 1000)),
        "timestamp": "2026-01-15T10:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": "29:desk-officer", "name": "Desk Officer", "aadObjectId": "aad-user-1"},
        "conversation": {"id": conversation, "conversationType": kind, "tenantId": "tenant-1"},
        "recipient": {"id": f"28:{APP_ID}", "name": "IOM Assistant"},
        "text": text,
        "textFormat": "plain",
        "locale": "en-GB",
        "entities": entities or [],
        "channelData": {"tenant": {"id": "tenant-1"}},
        **({"value": value} if value is not None else {}),
    }


def post(bot_url: str, body: dict, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.post(bot_url + "/api/messages", json=body, headers=headers, timeout=60)


def card_of(posted: dict) -> dict:
    (attachment,) = posted["activity"]["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def card_text(card: dict) -> str:
    out = []

    def walk(items):
        for item in items:
            if item.get("type") == "TextBlock":
                out.append(item["text"])
            walk(item.get("items", []))

    walk(card["body"])
    return "\n".join(out)


def test_one_to_one_question_gets_a_card_with_the_figure_and_source(bot_url, connector, keys, capsys):
    connector.clear()
    body = activity(connector.url, QUESTION, activity_id="1001")
    t0 = time.perf_counter()
    r = post(bot_url, body, token(keys, connector.url))
    elapsed = time.perf_counter() - t0
    assert r.status_code in (200, 202), r.text
    typing, reply = connector.wait(2)[:2]
    assert typing["activity"]["type"] == "typing"
    assert typing["auth"] == reply["auth"] == f"Bearer {OUTBOUND_TOKEN}"
    assert reply["path"] == "a:1personal-chat/activities/1001", "a reply to the question"
    assert reply["activity"]["replyToId"] == "1001"
    card = card_of(reply)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    text = card_text(card)
    assert "3,508,772" in text.split("Sources")[0]
    assert "[1] Danish Organisation Strategy for IOM 2023-2026" in text
    assert "Annex 2" in text and "dk-2023-2026" in text
    assert "3 508 772" in text.split("Sources")[1], "the quote of the table row"
    ratings = [a["data"]["rating"] for a in card["actions"]]
    assert ratings == ["up", "down"] and all(a["type"] == "Action.Submit" for a in card["actions"])
    with capsys.disabled():
        print(f"\nbot round trip (activity in -> card posted to the connector): {elapsed * 1000:.0f} ms")


def test_follow_up_in_the_same_conversation_uses_the_history(bot_url, connector, keys):
    connector.clear()
    conv = "a:1follow-up-" + uuid.uuid4().hex[:6]
    assert post(bot_url, activity(connector.url, QUESTION, conversation=conv), token(keys, connector.url)).status_code in (200, 202)
    assert post(bot_url, activity(connector.url, "What about Sweden in 2019?", conversation=conv),
                token(keys, connector.url)).status_code in (200, 202)
    posted = [p for p in connector.wait(4) if p["activity"]["type"] == "message"]
    follow = card_text(card_of(posted[1]))
    assert "100 miljoner SEK" in follow.split("[1]")[0], follow
    assert "se-2020-2022" in follow
    # the same words in a fresh conversation are answered without the first question: another answer
    connector.clear()
    assert post(bot_url, activity(connector.url, "What about Sweden in 2019?", conversation="a:1fresh-" + uuid.uuid4().hex[:6]),
                token(keys, connector.url)).status_code in (200, 202)
    fresh = card_text(card_of([p for p in connector.wait(2) if p["activity"]["type"] == "message"][0]))
    assert fresh != follow


def test_channel_mention_is_stripped_and_the_reply_goes_to_the_thread(bot_url, connector, keys):
    connector.clear()
    conv = "19:general@thread.tacv2;messageid=1700000000555"
    mention = {"type": "mention", "text": "<at>IOM Assistant</at>",
               "mentioned": {"id": f"28:{APP_ID}", "name": "IOM Assistant"}}
    body = activity(connector.url, f"<at>IOM Assistant</at> {QUESTION}", conversation=conv, kind="channel",
                    activity_id="1700000000555", entities=[mention])
    assert post(bot_url, body, token(keys, connector.url)).status_code in (200, 202)
    reply = [p for p in connector.wait(2) if p["activity"]["type"] == "message"][0]
    assert reply["path"] == f"{conv}/activities/1700000000555"
    assert "3,508,772" in card_text(card_of(reply))


def test_feedback_button_reaches_the_log(bot_url, connector, keys, fixture_settings):
    connector.clear()
    log = fixture_settings.feedback_path
    before = log.read_text().count("\n") if log.exists() else 0
    value = {"action": "feedback", "rating": "down", "question": QUESTION, "answer": "**Unearmarked: USD 3,508,772** ..."}
    r = post(bot_url, activity(connector.url, None, value=value), token(keys, connector.url))
    assert r.status_code in (200, 202), r.text
    (ack,) = connector.wait(1)
    assert "feedback was recorded" in ack["activity"]["text"]
    lines = [line for line in log.read_text().split("\n") if line]  # not splitlines(): JSON may hold U+2028
    assert len(lines) == before + 1
    record = json.loads(lines[-1])
    assert record["rating"] == "down" and record["question"] == QUESTION and "3,508,772" in record["answer"]


@pytest.mark.parametrize("case", ["expired", "wrong_audience", "wrong_issuer", "wrong_service_url",
                                  "wrong_key", "unendorsed_channel", "no_token", "not_bearer"])
def test_bad_tokens_are_401_and_nothing_is_sent(bot_url, connector, keys, case):
    connector.clear()
    body = activity(connector.url, QUESTION)
    bearer = {
        "expired": lambda: token(keys, connector.url, exp_in=-301 - 60),
        "wrong_audience": lambda: token(keys, connector.url, aud="11111111-2222-3333-4444-555555555555"),
        "wrong_issuer": lambda: token(keys, connector.url, iss="https://evil.example.com"),
        "wrong_service_url": lambda: token(keys, "https://smba.evil.example.com/emea/"),
        "wrong_key": lambda: token(rsa.generate_private_key(public_exponent=65537, key_size=2048), connector.url),
        "unendorsed_channel": lambda: token(keys, connector.url),
        "no_token": lambda: None,
        "not_bearer": lambda: None,
    }[case]()
    if case == "unendorsed_channel":
        body["channelId"] = "webchat"
    headers = {"Authorization": "Basic dXNlcjpwYXNz"} if case == "not_bearer" else (
        {"Authorization": f"Bearer {bearer}"} if bearer else {})
    r = httpx.post(bot_url + "/api/messages", json=body, headers=headers, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    time.sleep(0.2)
    assert connector.posted == []


def test_expiry_has_five_minutes_of_clock_skew(bot_url, connector, keys):
    connector.clear()
    r = post(bot_url, activity(connector.url, QUESTION), token(keys, connector.url, exp_in=-120))
    assert r.status_code in (200, 202), r.text
    connector.wait(2)


def test_slow_answer_arrives_as_a_proactive_reply(fixture_service, fixture_settings, openid_url, connector, keys):
    app = _bot_app(fixture_service, fixture_settings, openid_url, bot_reply_within_seconds=0.0)
    connector.clear()
    with serve(app) as base:
        r = post(base, activity(connector.url, QUESTION, activity_id="2002", conversation="a:1slow"), token(keys, connector.url))
        assert r.status_code in (200, 202)
        posted = connector.wait(2)
    assert posted[0]["activity"]["type"] == "typing"
    reply = posted[1]
    assert reply["path"] == "a:1slow/activities/2002", "in the thread of the question"
    assert reply["activity"].get("replyToId") == "2002"
    assert "3,508,772" in card_text(card_of(reply))


def test_bot_disabled_without_app_id(fixture_service, fixture_settings):
    from fastapi.testclient import TestClient

    with TestClient(create_app(fixture_service, fixture_settings)) as c:
        r = c.post("/api/messages", json={"type": "message"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "bot_disabled"


def test_history_is_bounded_in_turns_and_age():
    from assistant.api.bot import ConversationHistory

    h = ConversationHistory(max_turns=2, max_age_s=0.2, max_conversations=2)
    for i in range(3):
        h.add("c1", f"q{i}", f"a{i}")
    assert [t.content for t in h.get("c1")] == ["q1", "a1", "q2", "a2"]
    h.add("c2", "x", "y")
    h.add("c3", "x", "y")
    assert len(h) == 2 and h.get("c1") == []
    time.sleep(0.25)
    assert h.get("c3") == []


def test_teams_app_package(tmp_path):
    import importlib.util
    import zipfile

    from PIL import Image

    from assistant.settings import ROOT

    spec = importlib.util.spec_from_file_location("make_package", ROOT / "deploy" / "teams" / "make_package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.build(APP_ID, "https://assistant.example.org/", "IOM", None, tmp_path / "app.zip")
    with zipfile.ZipFile(out) as z:
        assert set(z.namelist()) == {"manifest.json", "color.png", "outline.png"}
        manifest = json.loads(z.read("manifest.json"))
        assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
        assert set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}
        assert manifest["validDomains"] == ["assistant.example.org"]
        import io

        assert Image.open(io.BytesIO(z.read("color.png"))).size == (192, 192)
        outline = Image.open(io.BytesIO(z.read("outline.png")))
        assert outline.size == (32, 32) and outline.mode == "RGBA"
