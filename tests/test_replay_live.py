"""Issue 10, Teams: replayed requests, against the app users get (``build_app``: API + UI mounted,
UI login on) on real uvicorn on loopback, with real signed requests.

- the outgoing webhook (HMAC-signed): the same signed body again, the same activity id with another
  body, a timestamp from 2020 or from the future; rate buckets per conversation, not one for Teams;
- the bot (``/api/messages``, a JWT from a local OpenID/JWKS server): the same activity again with the
  same valid token, the same id in the same conversation;
- the replay cache itself: bounded, entries expire.

Before: the same signed body with a 2020 timestamp was accepted three times.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from microsoft_agents.hosting.core import AgentAuthConfiguration, ConnectionManager

from assistant.api.bot import AssistantBot, StaticTokenProvider
from assistant.api.replay import MemoryReplayCache
from assistant.api.teams import sign
from assistant.server import build_app
from test_bot import APP_ID, OUTBOUND_TOKEN, activity, connector, keys, openid_url, token  # noqa: F401 (fixtures)
from test_gate_live import TEAMS_SECRET, LiveServer, assert_json_error, live_settings


def now_iso(offset_s: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def teams_body(text: str = "<at>IOM Assistant</at>", *, conversation: str = "19:general@thread.skype",
               activity_id: str | None = None, timestamp: str | None = None) -> bytes:
    return json.dumps({
        "type": "message", "id": activity_id or uuid.uuid4().hex, "timestamp": timestamp or now_iso(),
        "channelId": "msteams", "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "from": {"id": "29:desk-officer", "name": "Desk Officer"}, "conversation": {"id": conversation},
        "text": text,
    }).encode()


def send(http: httpx.Client, raw: bytes) -> httpx.Response:
    return http.post("/teams/webhook", content=raw,
                     headers={"Content-Type": "application/json", "Authorization": f"HMAC {sign(raw, TEAMS_SECRET)}"})


@pytest.fixture(scope="module")
def live(fixture_service, fixture_settings, openid_url):  # noqa: F811
    settings = live_settings(fixture_settings, bot_app_id=APP_ID, bot_openid_metadata_url=openid_url)
    app = build_app(settings, service=fixture_service)
    connections = ConnectionManager(
        provider_factory=lambda cfg: StaticTokenProvider(cfg, OUTBOUND_TOKEN),
        connections_configurations={"SERVICE_CONNECTION": AgentAuthConfiguration(client_id=APP_ID)},
    )
    app.state.bot = AssistantBot(app.state, settings, connections=connections)
    with LiveServer(app) as server:
        yield server


# --- the outgoing webhook --------------------------------------------------------------------------


def test_the_same_signed_body_is_accepted_once(live):
    raw = teams_body("<at>IOM Assistant</at> What did Denmark give IOM unearmarked in 2022?")
    with live.client() as http:
        first = send(http, raw)
        assert first.status_code == 200 and "**Sources**" in first.json()["text"], first.text
        for _ in range(2):
            assert_json_error(send(http, raw), 409, "replayed")


def test_the_same_activity_id_with_another_body_is_a_replay(live):
    activity_id = uuid.uuid4().hex
    with live.client() as http:
        assert send(http, teams_body(activity_id=activity_id)).status_code == 200
        # same id, new timestamp and text: the body is new, the activity is not
        raw = teams_body("<at>IOM Assistant</at> something else", activity_id=activity_id, timestamp=now_iso(1))
        assert_json_error(send(http, raw), 409, "replayed")


@pytest.mark.parametrize("offset_s", [-6 * 365 * 86400, -301, 301, 3600])
def test_activities_outside_five_minutes_are_stale(live, offset_s):
    raw = teams_body(timestamp=now_iso(offset_s))
    with live.client() as http:
        error = assert_json_error(send(http, raw), 400, "stale_activity")
        assert "300 s" in error["message"]


def test_activities_within_the_clock_skew_are_accepted(live):
    with live.client() as http:
        for offset_s in (-290, 290):
            r = send(http, teams_body(timestamp=now_iso(offset_s)))
            assert r.status_code == 200, r.text


def test_an_unreadable_timestamp_is_400(live):
    with live.client() as http:
        for stamp in ("yesterday", "2026-01-15T10:00:00", 12345):  # no zone; not a string
            raw = json.dumps({"type": "message", "id": uuid.uuid4().hex, "timestamp": stamp, "text": "hi"}).encode()
            assert_json_error(send(http, raw), 400, "bad_request")


def test_a_stale_or_replayed_request_costs_no_rate_token(fixture_service, fixture_settings):
    """Buckets are per conversation: one conversation's flood (or a replayed request) does not
    exhaust Teams for the whole organisation. Before: one bucket, "teams", for all Teams traffic."""
    app = build_app(live_settings(fixture_settings, rate_limit_per_minute=3), service=fixture_service)
    with LiveServer(app) as server, server.client() as http:
        raw = teams_body(conversation="19:busy@thread.skype")
        assert send(http, raw).status_code == 200
        for _ in range(5):  # replays are refused before the rate limit: they take no token
            assert_json_error(send(http, raw), 409, "replayed")
        codes = [send(http, teams_body(conversation="19:busy@thread.skype")).status_code for _ in range(3)]
        assert codes == [200, 200, 429], codes
        assert send(http, teams_body(conversation="19:quiet@thread.skype")).status_code == 200


# --- the bot ---------------------------------------------------------------------------------------


def post_bot(live, body: dict, bearer: str) -> httpx.Response:
    with live.client() as http:
        return http.post("/api/messages", json=body, headers={"Authorization": f"Bearer {bearer}"})


def test_the_bot_is_reachable_with_the_ui_login_on(live, keys, connector):  # noqa: F811
    """/api/messages belongs to the API: the UI's login gate does not ask the Bot Connector for a cookie."""
    connector.clear()
    body = activity(connector.url, "<at>IOM Assistant</at>", activity_id=uuid.uuid4().hex)
    r = post_bot(live, body, token(keys, connector.url))
    assert r.status_code in (200, 202), r.text
    assert "Ask me" in connector.wait(1)[-1]["activity"]["text"]


def test_the_bot_refuses_a_replayed_activity(live, keys, connector):  # noqa: F811
    connector.clear()
    bearer = token(keys, connector.url)
    body = activity(connector.url, "<at>IOM Assistant</at>", activity_id=uuid.uuid4().hex)
    assert post_bot(live, body, bearer).status_code in (200, 202)
    connector.wait(1)
    assert_json_error(post_bot(live, body, bearer), 409, "replayed")  # same body, same (valid) token
    again = dict(body, text="<at>IOM Assistant</at> ", locale="sv-SE")  # same id, same conversation
    assert_json_error(post_bot(live, again, token(keys, connector.url)), 409, "replayed")
    other = dict(body, conversation={**body["conversation"], "id": "a:another-chat"})  # same id elsewhere
    assert post_bot(live, other, bearer).status_code in (200, 202)
    connector.wait(2)
    assert len(connector.posted) == 2


def test_an_unauthenticated_request_does_not_fill_the_replay_cache(live, keys, connector):  # noqa: F811
    body = activity(connector.url, "<at>IOM Assistant</at>", activity_id=uuid.uuid4().hex)
    assert_json_error(post_bot(live, body, token(keys, connector.url, aud="someone-else")), 401, "unauthorized")
    connector.clear()
    assert post_bot(live, body, token(keys, connector.url)).status_code in (200, 202)
    connector.wait(1)


# --- the cache -------------------------------------------------------------------------------------


def test_the_replay_cache_is_bounded_and_entries_expire():
    now = [1000.0]
    cache = MemoryReplayCache(max_entries=3, clock=lambda: now[0])
    assert not cache.seen_before(["a"], ttl_s=10)
    assert cache.seen_before(["a"], ttl_s=10)
    assert cache.seen_before(["x", "a"], ttl_s=10) and not cache.seen_before(["x"], ttl_s=10)  # nothing recorded on a hit
    for key in ("b", "c", "d"):
        assert not cache.seen_before([key], ttl_s=100)
    assert len(cache) == 3
    assert not cache.seen_before(["a"], ttl_s=10)  # the one closest to expiring went first
    now[0] += 11
    assert not cache.seen_before(["a"], ttl_s=10)  # expired
    now[0] += 1000
    for i in range(10_000):
        cache.seen_before([f"k{i}"], ttl_s=5)
    assert len(cache) == 3 and len(cache._heap) <= 2 * 3 + 16
