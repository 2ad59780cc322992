"""Issue 10, reproduced against the app users get: ``build_app`` (API + UI mounted) on real
uvicorn on loopback, with API keys, an admin key, a Teams secret and a UI login set.

Each test is one finding of the issue, written as the attacker's request; before the fix
each of them got through (or stalled the server), now each is refused as documented.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from assistant.api.metrics import is_api_path
from assistant.server import build_app

KEY = "live-key-1"
ADMIN = "live-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
UI_USER, UI_PASSWORD = "amina", "long-passphrase-1"
TEAMS_SECRET = "aW9tLWFzc2lzdGFudC1leGFtcGxlLXNlY3JldC0wMDA="
DENMARK_Q = "What did Denmark give IOM unearmarked in 2022?"


def live_settings(base, **update):
    values = {
        "api_keys": KEY,
        "admin_key": SecretStr(ADMIN),
        "teams_secret": SecretStr(TEAMS_SECRET),
        "ui_auth": f"{UI_USER}:{UI_PASSWORD}",
        "rate_limit_per_minute": 100_000,
        "cors_origins": "",
    }
    values.update(update)
    return base.model_copy(update=values)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        import uvicorn

        self.app = app
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60, **kw)


def login(http: httpx.Client) -> None:
    r = http.post("/login", data={"username": UI_USER, "password": UI_PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "assistant_ui_session" in http.cookies


@pytest.fixture(scope="module")
def settings(fast_settings):
    return live_settings(fast_settings)


@pytest.fixture(scope="module")
def live(fast_service, settings):
    with LiveServer(build_app(settings, service=fast_service)) as server:
        yield server


def assert_json_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    body = r.json()
    assert set(body) == {"error"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def ui_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the mounted Gradio app (FastAPI's included routers flattened)."""
    from starlette.routing import Mount

    (mount,) = [r for r in app.routes if isinstance(r, Mount) and hasattr(r.app, "get_blocks")]
    return flat_routes(mount.app.routes)


def flat_routes(routes, skip_mounts: bool = False) -> list[tuple[str, str]]:
    """(method, path) of ``routes``, included routers flattened (optionally not descending into mounts)."""
    from starlette.routing import Mount

    out: list[tuple[str, str]] = []

    def walk(routes) -> None:
        for r in routes:
            if skip_mounts and isinstance(r, Mount):
                continue
            if hasattr(r, "path") and hasattr(r, "methods"):
                out.extend((m, r.path) for m in sorted(r.methods or {"GET"}))
            elif hasattr(r, "effective_candidates"):
                cands = r.effective_candidates
                walk(cands() if callable(cands) else cands)
            elif hasattr(r, "routes"):
                walk(r.routes)

    walk(routes)
    return sorted(set(out))


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


# --- around the gate: the UI --------------------------------------------------------------


def test_every_gradio_route_needs_the_ui_login(live):
    routes = ui_routes(live.app)
    assert len(routes) > 40 and ("POST", "/gradio_api/queue/join") in routes
    opened = []
    with live.client() as http:
        for method, path in routes:
            if path.rstrip("/") in ("/login", "/logout") or is_api_path(path):
                continue  # the login itself; paths the API owns never reach Gradio (e.g. its /openapi.json)
            r = http.request(method, _concrete(path), json={} if method == "POST" else None, follow_redirects=False)
            if r.status_code not in (401, 303):
                opened.append((method, path, r.status_code))
            elif r.status_code == 303:
                assert r.headers["location"] == "/login"
    assert not opened, f"answered without a login: {opened}"


def test_the_issue_requests_without_a_login_are_401(live, fast_service):
    path = fast_service.settings.feedback_path
    before = path.read_text().count("\n") if path.exists() else 0
    with live.client() as http:
        r = http.post("/gradio_api/call/respond", json={"data": [DENMARK_Q, [], "", "", 5]})
        assert_json_error(r, 401, "unauthorized")
        r = http.post("/gradio_api/queue/join", json={"data": [[], ""], "fn_index": 3, "session_hash": "s1"})
        assert_json_error(r, 401, "unauthorized")
        page = http.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
    assert (path.read_text().count("\n") if path.exists() else 0) == before


def _call_respond(http: httpx.Client, data: list) -> tuple[int, str]:
    r = http.post("/gradio_api/call/respond", json={"data": data})
    if r.status_code != 200:
        return r.status_code, r.text
    event_id = r.json()["event_id"]
    with http.stream("GET", f"/gradio_api/call/respond/{event_id}") as s:
        return s.status_code, "".join(s.iter_text())


def test_signed_in_user_gets_answers_through_the_ui(live):
    with live.client() as http:
        login(http)
        status, text = _call_respond(http, [DENMARK_Q, [], "", "", 5])
    assert status == 200 and "event: complete" in text, text[-500:]
    assert "answer-ok" in text and "cite-marker" in text


def test_a_wrong_password_is_refused_and_failed_logins_are_throttled(fast_service, fast_settings):
    app = build_app(live_settings(fast_settings), service=fast_service)
    with LiveServer(app) as server, server.client() as http:
        statuses = [http.post("/login", data={"username": UI_USER, "password": "guess"}).status_code for _ in range(12)]
        assert statuses[0] == 401 and statuses[-1] == 429, statuses
        # even the right password waits now
        r = http.post("/login", data={"username": UI_USER, "password": UI_PASSWORD}, follow_redirects=False)
        assert_json_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


def test_a_session_minted_by_one_worker_is_valid_in_another(fast_service, settings):
    """--workers 2: two processes, one login. The cookie is signed, not kept in one process's memory."""
    from fastapi.testclient import TestClient

    with TestClient(build_app(settings, service=fast_service)) as one:
        login(one)
        cookie = one.cookies["assistant_ui_session"]
    with TestClient(build_app(settings, service=fast_service)) as two:
        assert two.get("/config").status_code == 401
        assert two.get("/config", cookies={"assistant_ui_session": cookie}).status_code == 200
        forged = cookie.rsplit(".", 1)[0] + ".AAAA"
        assert two.get("/config", cookies={"assistant_ui_session": forged}).status_code == 401


def test_cross_origin_writes_to_the_ui_are_refused(live):
    with live.client() as http:
        login(http)
        for origin in ("http://localhost:3000", "http://127.0.0.1:9999", "null", "https://evil.example"):
            r = http.post("/gradio_api/call/respond", json={"data": [DENMARK_Q, [], "", "", 5]},
                          headers={"Origin": origin})
            assert_json_error(r, 403, "forbidden_origin")
        same = http.post("/gradio_api/call/respond", json={"data": [DENMARK_Q, [], "", "", 5]},
                         headers={"Origin": live.base})
        assert same.status_code == 200


# --- bodies, uploads, the chat echo, the queue ------------------------------------------------


def test_gradio_routes_have_the_body_limit_and_no_uploads(live):
    with live.client() as http:
        login(http)
        t0 = time.perf_counter()
        for size in (5 * 1024 * 1024, 5):  # refused before the body is read: the page has no upload
            r = http.post("/gradio_api/upload", files={"files": ("f.bin", b"\0" * size)})
            assert_json_error(r, 404, "not_found")
        big = json.dumps({"data": ["q" * (20 * 1024 * 1024), [], "", "", 5]})
        r = http.post("/gradio_api/call/respond", content=big, headers={"Content-Type": "application/json"})
        assert_json_error(r, 413, "payload_too_large")
        assert time.perf_counter() - t0 < 30


def test_ui_admin_routes_need_an_admin_session(live):
    """The "Manage documents" tab's routes (ui.admin) sit outside Gradio's mount: each one needs the
    login, and here (no ASSISTANT_UI_ADMINS) is off for a signed-in user, before the body is read."""
    admin_routes = [(m, p) for m, p in flat_routes(live.app.routes, skip_mounts=True) if p.startswith("/ui-admin")]
    assert ("POST", "/ui-admin/documents") in admin_routes and len(admin_routes) >= 5, admin_routes
    with live.client() as http:
        for method, path in admin_routes:
            assert_json_error(http.request(method, _concrete(path)), 401, "unauthorized")
        login(http)
        for method, path in admin_routes:
            assert_json_error(http.request(method, _concrete(path)), 403, "admin_disabled")
        t0 = time.perf_counter()
        r = http.post("/ui-admin/documents", files={"file": ("f.pdf", b"%PDF-" + b"\0" * (5 * 1024 * 1024))})
        assert_json_error(r, 403, "admin_disabled")
        assert time.perf_counter() - t0 < 10


def test_the_chat_is_rebuilt_on_the_server_not_echoed_from_the_client(live):
    """Before: each streaming step re-sent the client's chat (518 KB in, 15 MiB out)."""
    with live.client() as http:
        login(http)
        info = http.get("/gradio_api/info").json()
        params = [p["parameter_name"] for p in info["named_endpoints"]["/respond"]["parameters"]]
        assert "chat" not in params and len(params) == 5, params
        fake_chat = [{"role": "assistant", "content": "z" * 200_000}]
        status, text = _call_respond(http, [DENMARK_Q, fake_chat, [], "", "", 5])  # the old 7-input shape
        assert "z" * 1000 not in text
        status, text = _call_respond(http, [DENMARK_Q, [], "", "", 5])
        assert status == 200 and len(text.encode()) < 600_000, len(text)


def test_the_question_is_escaped_in_the_chat(live):
    attack = '<img src=x onerror="alert(1)"> and <script>alert(2)</script>'
    with live.client() as http:
        login(http)
        status, text = _call_respond(http, [attack, [], "", "", 5])
    assert status == 200, text
    assert "<img src=x" not in text and "<script>" not in text
    assert "&lt;img src=x" in text


def test_the_ui_queue_is_capped(fast_service, fast_settings):
    from ui.layout import build_blocks  # noqa: F401  (the queue is configured in mount_ui)

    app = build_app(live_settings(fast_settings, ui_queue_size=3), service=fast_service)
    from starlette.routing import Mount

    (mount,) = [r for r in app.routes if isinstance(r, Mount) and hasattr(r.app, "get_blocks")]
    assert mount.app.get_blocks()._queue.max_size == 3


def test_ui_requests_are_rate_limited(fast_service, fast_settings):
    app = build_app(live_settings(fast_settings, rate_limit_per_minute=5), service=fast_service)
    with LiveServer(app) as server, server.client() as http:
        login(http)
        codes = [http.get("/config").status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[-1] == 429, codes
        assert http.get("/theme.css").status_code == 200  # the page's static files do not count
        r = http.get("/config")
        assert_json_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


# --- the API keeps its contract with the UI mounted ----------------------------------------


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/v1/ask", 405),
        ("PUT", "/v1/ask", 405),
        ("DELETE", "/v1/documents", 405),
        ("GET", "/v1/nothing-here", 404),
        ("GET", "/v1", 404),
        ("GET", "/teams/webhook", 405),
        ("GET", "/teams/nothing", 404),
        ("POST", "/metrics", 405),
        ("POST", "/healthz", 405),
    ],
)
def test_api_paths_keep_the_json_error_contract(live, method, path, status):
    with live.client() as http:
        assert_json_error(http.request(method, path, headers=AUTH), status)


def test_gradio_cors_does_not_reflect_localhost_origins(live):
    with live.client() as http:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        for path in ("/v1/ask", "/metrics", "/teams/webhook", "/gradio_api/queue/join", "/config"):
            r = http.options(path, headers={"Origin": "http://localhost:3000", **pre})
            assert "access-control-allow-origin" not in r.headers, (path, dict(r.headers))
            assert "access-control-allow-credentials" not in r.headers, path
        login(http)
        r = http.get("/config", headers={"Origin": "http://localhost:3000"})
        assert "access-control-allow-origin" not in r.headers


def test_invented_methods_create_no_metric_series(live):
    with live.client() as http:
        for method in ("FOO", "BAR123", "XYZZY"):
            http.request(method, "/v1/ask")
        text = http.get("/metrics", headers=AUTH).text
    assert "FOO" not in text and "BAR123" not in text and "XYZZY" not in text
    assert 'method="other"' in text


# --- /docs without a CDN ------------------------------------------------------------------------


def test_docs_fetch_nothing_from_outside(live):
    with live.client() as http:
        for page in ("/docs", "/redoc"):
            html = http.get(page).text
            urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
            assert urls, page
            assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], (page, urls)
            assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
            for u in urls:
                r = http.get(u)
                assert r.status_code == 200 and len(r.content) > 1000, (u, r.status_code)
        assert http.get("/openapi.json").json()["paths"]["/v1/ask"]


# --- inside the limits: history, strict types ------------------------------------------------


def _history(n_turns: int, chars: int) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": ("Denmark funding " * chars)[:chars]}
            for i in range(n_turns)]


def test_history_is_capped_per_turn_and_in_all(live, settings):
    """Before: a 48 KB previous turn was accepted (57 s of CPU); only the question was capped."""
    with live.client(headers=AUTH) as http:
        one_big = _history(2, settings.max_turn_chars + 1)
        t0 = time.perf_counter()
        r = http.post("/v1/ask", json={"question": "and in 2019?", "history": one_big})
        err = assert_json_error(r, 413, "history_too_long")
        assert str(settings.max_turn_chars) in err["message"] and time.perf_counter() - t0 < 5
        per = settings.max_turn_chars
        many = _history(settings.max_history_chars // per + 1, per)
        assert_json_error(http.post("/v1/ask", json={"question": "and in 2019?", "history": many}),
                          413, "history_too_long")
        too_many = _history(settings.max_history_turns + 1, 10)
        assert_json_error(http.post("/v1/ask", json={"question": "and in 2019?", "history": too_many}),
                          413, "history_too_long")
        ok = http.post("/v1/ask", json={"question": "and in 2019?", "history": _history(2, 500)})
        assert ok.status_code == 200, ok.text
        messages = [*_history(2, settings.max_turn_chars + 1), {"role": "user", "content": "and in 2019?"}]
        assert_json_error(http.post("/v1/chat/completions", json={"messages": messages}), 413, "history_too_long")


@pytest.mark.parametrize(
    "body",
    [
        {"question": "q", "top_k": True},
        {"question": "q", "top_k": "5"},
        {"question": "q", "top_k": 5.5},
        {"question": "q", "stream": 1},
        {"question": "q", "filters": {"year": 0}},
        {"question": "q", "filters": {"year": "2022"}},
        {"question": "q", "filters": {"document_ids": []}},
        {"question": "q", "filters": {"document_ids": [""]}},
        {"question": "q", "filters": {"language": ""}},
        {"question": "q", "history": [{"role": "user", "content": 5}]},
        {"question": "q", "history": [{"role": "user", "content": "x", "extra": 1}]},
    ],
)
def test_strict_types_on_ask(live, body):
    """Before: top_k true was read as 1, year 0 and document_ids [] silently meant "everything"."""
    with live.client(headers=AUTH) as http:
        assert_json_error(http.post("/v1/ask", json=body), 422, "validation_error")


def test_strict_types_on_search_and_chat(live):
    with live.client(headers=AUTH) as http:
        assert_json_error(http.post("/v1/search", json={"query": "q", "top_k": True}), 422)
        assert_json_error(http.post("/v1/search", json={"query": "q", "filters": {"year": 0}}), 422)
        chat = {"messages": [{"role": "user", "content": "q"}], "top_k": True}
        assert_json_error(http.post("/v1/chat/completions", json=chat), 422)
        r = http.post("/v1/search", json={"query": "unearmarked funding", "filters": {"year": 2022}, "top_k": 3})
        assert r.status_code == 200 and r.json()["passages"]


# --- deadlines and the bounded executor ---------------------------------------------------------


class SlowService:
    """The real service behind a stage that takes ``delay`` seconds (as a pathological question would)."""

    def __init__(self, real, delay: float):
        self.real, self.delay = real, delay
        self.calls = self.completed = self.dropped = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def ask(self, question, top_k=5, filters=None, history=None, deadline=None):
        from assistant.service import DeadlineExceeded

        self.calls += 1
        time.sleep(self.delay)
        try:
            answer = self.real.ask(question, top_k=top_k, filters=filters, history=history, deadline=deadline)
        except DeadlineExceeded:
            self.dropped += 1
            raise
        self.completed += 1
        return answer


def _parallel(server: LiveServer, n: int, body: dict) -> list[tuple[httpx.Response, float]]:
    out: list = [None] * n

    def one(i: int) -> None:
        with server.client(headers=AUTH) as http:
            t0 = time.perf_counter()
            r = http.post("/v1/ask", json=body)
            out[i] = (r, time.perf_counter() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    return out


def test_a_full_queue_answers_503_with_retry_after(fast_service, fast_settings):
    """Before: every request was taken (40 threadpool threads) and they piled up behind one another."""
    slow = SlowService(fast_service, delay=1.5)
    settings = live_settings(fast_settings, ask_workers=1, ask_queue_size=1, ask_deadline_s=30)
    with LiveServer(build_app(settings, service=slow)) as server:
        results = []
        t = threading.Thread(target=lambda: results.extend(_parallel(server, 4, {"question": DENMARK_Q})))
        t.start()
        time.sleep(0.5)
        with server.client() as http:  # the event loop is free while the workers are busy
            t0 = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            assert time.perf_counter() - t0 < 0.5
        t.join(60)
    statuses = sorted(r.status_code for r, _ in results)
    assert statuses == [200, 200, 503, 503], statuses
    for r, elapsed in results:
        if r.status_code == 503:
            assert_json_error(r, 503, "overloaded")
            assert int(r.headers["retry-after"]) >= 1 and elapsed < 1.0  # refused at once, not queued


def test_the_deadline_is_enforced_in_the_service_and_drops_the_work(fast_service, fast_settings):
    """Before: nothing stopped a question whose client had gone; the answer came when it came."""
    slow = SlowService(fast_service, delay=1.2)
    settings = live_settings(fast_settings, ask_deadline_s=0.5)
    with LiveServer(build_app(settings, service=slow)) as server, server.client(headers=AUTH) as http:
        t0 = time.perf_counter()
        r = http.post("/v1/ask", json={"question": DENMARK_Q})
        elapsed = time.perf_counter() - t0
        assert_json_error(r, 503, "deadline_exceeded")
        assert r.headers["retry-after"] and elapsed < 1.1, elapsed
        time.sleep(1.2)
    assert slow.calls == 1 and slow.dropped == 1 and slow.completed == 0  # the rest of the work was not done


def test_queued_questions_past_their_deadline_never_start(fast_service, fast_settings):
    slow = SlowService(fast_service, delay=1.5)
    settings = live_settings(fast_settings, ask_workers=1, ask_queue_size=4, ask_deadline_s=0.8)
    with LiveServer(build_app(settings, service=slow)) as server:
        results = _parallel(server, 3, {"question": DENMARK_Q})
        time.sleep(2.0)
    assert [r.status_code for r, _ in results] == [503, 503, 503]
    assert all(r.json()["error"]["code"] == "deadline_exceeded" for r, _ in results)
    assert slow.calls == 1  # the two queued questions were dropped before they started


def test_ui_questions_share_the_executor_and_its_limits(fast_service):
    from assistant.api.workers import QuestionPool
    from ui.handlers import ChatHandlers

    slow = SlowService(fast_service, delay=0.6)
    handlers = ChatHandlers(slow, fast_service.settings, stream_delay_s=0,
                            pool=QuestionPool(workers=1, queue_size=0, deadline_s=0.3))
    chat, conv, _, box = list(handlers.respond(DENMARK_Q, []))[-1]
    assert conv[-1]["answer"] is None and "busy" in chat[-1]["content"]
    assert box == DENMARK_Q  # kept in the box to ask again


# --- index reload ------------------------------------------------------------------------------


def test_a_failed_reload_is_409_and_the_old_index_keeps_serving(fast_settings, tmp_path):
    """Before: a broken index on disk made POST /v1/index/reload a 500."""
    import shutil

    from assistant.compose import build_service

    index_dir = tmp_path / "index"
    shutil.copytree(fast_settings.index_dir, index_dir, symlinks=True)
    settings = live_settings(fast_settings, index_dir=index_dir)
    service = build_service(settings)
    service.load()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with LiveServer(build_app(settings, service=service)) as server, server.client() as http:
        (index_dir / "current" / "manifest.json").write_text("{ not json")
        err = assert_json_error(http.post("/v1/index/reload", headers=admin), 409, "reload_failed")
        assert "previous index is still serving" in err["message"]
        (index_dir / "current").unlink()
        err = assert_json_error(http.post("/v1/index/reload", headers=admin), 409, "reload_failed")
        assert "assistant index" in err["message"]
        r = http.post("/v1/ask", json={"question": DENMARK_Q}, headers=AUTH)
        assert r.status_code == 200 and r.json()["answered"]


# --- Teams -------------------------------------------------------------------------------------


def _teams(http: httpx.Client, raw: bytes) -> httpx.Response:
    from assistant.api.teams import sign

    return http.post("/teams/webhook", content=raw,
                     headers={"Content-Type": "application/json", "Authorization": f"HMAC {sign(raw, TEAMS_SECRET)}"})


def test_a_signed_flood_of_mentions_does_not_stall_the_server(live):
    """Before: 60,000 ``<at>`` took 47 s on the event loop (/healthz took 7.8 s meanwhile)."""
    raw = json.dumps({"type": "message", "text": "<at>" * 60_000}).encode()
    with live.client() as http:
        t0 = time.perf_counter()
        r = _teams(http, raw)
        assert r.status_code == 200 and "too long" in r.json()["text"]
        assert time.perf_counter() - t0 < 2.0
        just_under = json.dumps({"type": "message", "text": "<at>Bot</at> " + "<at " * 1500 + "?"}).encode()
        t0 = time.perf_counter()
        assert _teams(http, just_under).status_code == 200
        assert time.perf_counter() - t0 < 5.0


def test_signed_deeply_nested_json_is_400(live):
    """Before: json.loads hit the recursion limit and the answer was a 500."""
    raw = b'{"type": "message", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with live.client() as http:
        assert_json_error(_teams(http, raw), 400, "bad_request")


# --- rate limits: failed authentication, forwarded addresses --------------------------------------


def test_wrong_keys_are_throttled_per_address(fast_service, fast_settings):
    """Before: failed authentications were never throttled (a key could be guessed at full speed)."""
    settings = live_settings(fast_settings, rate_limit_per_minute=120, failed_auth_per_minute=30)
    app = build_app(settings, service=fast_service)
    with LiveServer(app) as server, server.client() as http:
        codes = [http.get("/v1/documents", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                 for i in range(settings.failed_auth_per_minute + 2)]
        assert codes[0] == 401 and codes[-1] == 429, codes
        r = http.get("/v1/documents", headers=AUTH)  # this address must wait, even with the right key
        assert_json_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        other = httpx.Client(base_url=server.base, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with other:
            assert other.get("/v1/documents", headers=AUTH).status_code == 200  # another address is not


def test_serve_trusts_forwarded_headers_only_from_configured_peers(fast_settings, monkeypatch):
    import uvicorn

    from assistant import server

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(server, "build_app", lambda settings: None)
    server.run(live_settings(fast_settings), host="127.0.0.1")
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "127.0.0.1,::1"
    server.run(live_settings(fast_settings, forwarded_allow_ips=""), host="127.0.0.1")
    assert seen["proxy_headers"] is False
    with pytest.raises(ValueError, match="ASSISTANT_UI_AUTH"):
        server.run(live_settings(fast_settings, ui_auth=""), host="0.0.0.0")


@pytest.mark.parametrize(
    "body",
    [
        {"question": "   ", "answer": "a", "rating": "up"},
        {"question": "q", "answer": "a", "rating": "up", "extra": "field"},
        {"question": "q" * 2001, "answer": "a", "rating": "up"},
        {"question": "q", "answer": "a" * 8001, "rating": "down"},
        {"question": "q", "answer": "a", "rating": "down", "comment": "c" * 2001},
    ],
)
def test_feedback_entries_are_bounded_and_not_blank(live, fast_service, body):
    """Before: a blank question was accepted, extra fields were ignored, one entry could be 109 KB."""
    path = fast_service.settings.feedback_path
    before = path.read_text().count("\n") if path.exists() else 0
    with live.client(headers=AUTH) as http:
        assert_json_error(http.post("/v1/feedback", json=body), 422, "validation_error")
    assert (path.read_text().count("\n") if path.exists() else 0) == before
