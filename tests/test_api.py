"""The HTTP API driven end to end: the real app around the real service on the fixture corpus."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.api import create_app
from assistant.api.security import check_bind
from assistant.records import Answer, Citation

KEY = "test-key-1"
OTHER_KEY = "test-key-2"
ADMIN = "test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "Where did Denmark rank among the donors of unearmarked funding to IOM?"


def _settings(base, **update):
    values = {
        "api_keys": f"{KEY},{OTHER_KEY}",
        "admin_key": SecretStr(ADMIN),
        "teams_secret": None,
        "rate_limit_per_minute": 100_000,
        "cors_origins": "",
    }
    values.update(update)
    return base.model_copy(update=values)


@pytest.fixture(scope="module")
def api_settings(fast_settings):
    return _settings(fast_settings)


@pytest.fixture(scope="module")
def client(fast_service, api_settings):
    with TestClient(create_app(fast_service, api_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def catalog_ids(client):
    return {d["id"] for d in client.get("/v1/documents", headers=AUTH).json()["documents"]}


@pytest.fixture(scope="module")
def asked(client):
    """One answered question, shared by the tests that only read it."""
    r = client.post("/v1/ask", json={"question": QUESTION}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    assert "Traceback" not in r.text
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def sse_events(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip(" "))
        events.append((event, "\n".join(data)))
    return events


# --- health, readiness, metrics ---------------------------------------------------------


def test_health_is_open(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_not_ready_until_loaded(fast_settings):
    from assistant.compose import build_service

    unloaded = build_service(fast_settings)  # real service, load() not called
    assert not unloaded.ready
    with TestClient(create_app(unloaded, _settings(fast_settings))) as c:
        assert c.get("/healthz").status_code == 200
        err = assert_error(c.get("/readyz"), 503, "not_ready")
        assert "loading" in err["message"]
        r = c.post("/v1/ask", json={"question": QUESTION}, headers=AUTH)
        assert_error(r, 503, "not_ready")
        assert r.headers["retry-after"]


def test_metrics_count_requests_and_answers(client, asked):
    assert_error(client.get("/metrics"), 401, "unauthorized")
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'assistant_http_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert "assistant_http_request_duration_seconds_bucket" in text
    outcome = "answered" if asked["answered"] else "refused"
    assert f'assistant_answers_total{{endpoint="ask",outcome="{outcome}"}}' in text
    assert KEY not in text


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("post", "/v1/ask"),
        ("post", "/v1/search"),
        ("get", "/v1/documents"),
        ("get", "/v1/documents/x"),
        ("get", "/v1/passages/x"),
        ("post", "/v1/feedback"),
        ("post", "/v1/chat/completions"),
    ],
)
def test_every_endpoint_needs_a_key(client, method, path):
    err = assert_error(getattr(client, method)(path), 401, "unauthorized")
    assert "Bearer" in err["message"]
    r = getattr(client, method)(path, headers={"Authorization": "Bearer not-a-key"})
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "not-a-key" not in r.text


def test_second_key_and_basic_scheme(client):
    assert client.get("/v1/documents", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
    assert_error(client.get("/v1/documents", headers={"Authorization": f"Basic {KEY}"}), 401)


def test_open_without_keys(fast_service, fast_settings):
    app = create_app(fast_service, _settings(fast_settings, api_keys="", admin_key=None))
    with TestClient(app) as c:
        r = c.get("/v1/documents")
        assert r.status_code == 200, r.text
        # write endpoint stays closed without an admin key
        assert_error(c.post("/v1/index/reload"), 403, "admin_disabled")


def test_keys_never_logged(fast_service, api_settings, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(fast_service, api_settings)) as c:
        c.get("/v1/documents", headers=AUTH)
        c.get("/v1/documents", headers={"Authorization": "Bearer wrong-secret-key"})
    assert KEY not in caplog.text
    assert "wrong-secret-key" not in caplog.text


def test_check_bind(fast_settings, caplog):
    open_settings = _settings(fast_settings, api_keys="", ui_auth="")
    with pytest.raises(ValueError, match="ASSISTANT_API_KEYS"):
        check_bind("0.0.0.0", open_settings)
    with pytest.raises(ValueError):
        check_bind("192.168.1.10", open_settings)
    caplog.set_level(logging.WARNING)
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(host, open_settings)
    assert "open" in caplog.text and "loopback" in caplog.text
    # API keys alone no longer open a public bind: the browser UI would answer without a credential.
    with pytest.raises(ValueError, match="ASSISTANT_UI_AUTH"):
        check_bind("0.0.0.0", _settings(fast_settings, ui_auth=""))
    check_bind("0.0.0.0", _settings(fast_settings, ui_auth="amina:long-passphrase"))  # keys + UI login
    check_bind("0.0.0.0", _settings(fast_settings, ui_auth="", ui_enabled=False))  # API only
    with pytest.raises(ValueError, match="ASSISTANT_UI_AUTH"):
        check_bind("0.0.0.0", _settings(fast_settings, ui_auth="no-colon"))
    with pytest.raises(ValueError, match="ASSISTANT_API_KEYS"):  # a UI login does not open the API
        check_bind("0.0.0.0", _settings(fast_settings, api_keys="", ui_auth="amina:pw"))


# --- ask ------------------------------------------------------------------------------------


def test_ask_returns_the_answer_record(asked, catalog_ids):
    assert set(asked) == set(Answer.model_fields)
    answer = Answer.model_validate(asked)
    assert answer.answered, answer.answer
    assert answer.answer.strip()
    assert answer.citations
    for c in answer.citations:
        assert c.document_id in catalog_ids
        assert c.quote.strip()
    numbers = [c.n for c in answer.citations]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert answer.passages and all(p.document_id in catalog_ids for p in answer.passages)


def test_ask_with_filters_and_history(client, catalog_ids):
    doc = sorted(catalog_ids)[0]
    body = {
        "question": "What does this document say about funding?",
        "top_k": 3,
        "filters": {"document_ids": [doc]},
        "history": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Fourth."}],
    }
    r = client.post("/v1/ask", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    answer = Answer.model_validate(r.json())
    assert all(p.document_id == doc for p in answer.passages)
    assert all(c.document_id == doc for c in answer.citations)


def test_ask_unknown_filter_is_400(client):
    r = client.post("/v1/ask", json={"question": QUESTION, "filters": {"country": "Denmark"}}, headers=AUTH)
    err = assert_error(r, 400, "unknown_filter")
    assert "country" in err["message"]


def test_ask_too_long_question_is_413(client, api_settings):
    r = client.post("/v1/ask", json={"question": "x" * (api_settings.max_question_chars + 1)}, headers=AUTH)
    err = assert_error(r, 413, "question_too_long")
    assert str(api_settings.max_question_chars) in err["message"]


def test_oversized_body_is_413(client):
    big = json.dumps({"question": "q", "history": [{"role": "user", "content": "y" * 400_000}]})
    r = client.post("/v1/ask", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"question": ""},
        {"question": "   "},
        {"question": 42},
        {"question": "q", "top_k": 0},
        {"question": "q", "top_k": "many"},
        {"question": "q", "history": [{"role": "system", "content": "x"}]},
        {"question": "q", "stream": "sometimes"},
        {"question": "q", "unexpected": 1},
        ["not", "an", "object"],
    ],
)
def test_ask_invalid_body_is_422(client, body):
    assert_error(client.post("/v1/ask", json=body, headers=AUTH), 422, "validation_error")


def test_ask_invalid_json_is_422(client):
    r = client.post("/v1/ask", content=b'{"question": ', headers={**AUTH, "Content-Type": "application/json"})
    err = assert_error(r, 422, "validation_error")
    assert "JSON" in err["message"]


def test_ask_streams_server_sent_events(client):
    r = client.post("/v1/ask", json={"question": QUESTION, "stream": True}, headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert names[-2:] == ["citations", "done"]
    assert set(names[:-2]) == {"answer"}
    done = Answer.model_validate_json(events[-1][1])
    assert "".join(json.loads(d)["delta"] for e, d in events if e == "answer") == done.answer
    citations = [Citation.model_validate(c) for c in json.loads(events[-2][1])]
    assert citations == done.citations
    assert done.answered and done.citations


# --- search, documents, passages, feedback ------------------------------------------------


def test_search(client, catalog_ids):
    r = client.post("/v1/search", json={"query": "unearmarked funding Denmark", "top_k": 3}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "unearmarked funding Denmark"
    assert 1 <= len(body["passages"]) <= 3
    for p in body["passages"]:
        assert p["document_id"] in catalog_ids and p["text"] and isinstance(p["score"], float)
    assert_error(client.post("/v1/search", json={"query": "x", "filters": {"bad": 1}}, headers=AUTH), 400)
    assert_error(client.post("/v1/search", json={"query": ""}, headers=AUTH), 422)


def test_documents_and_document(client, fast_service):
    r = client.get("/v1/documents", headers=AUTH)
    assert r.status_code == 200
    docs = r.json()["documents"]
    assert docs
    assert {d["id"] for d in docs} == {d.id for d in fast_service.documents()}
    for d in docs:
        assert d["passage_count"] > 0 and d["title"]
        assert "running_headers" not in d  # the chunker's patterns, not part of the record
    one = client.get(f"/v1/documents/{docs[0]['id']}", headers=AUTH)
    assert one.status_code == 200 and one.json() == docs[0]
    err = assert_error(client.get("/v1/documents/no-such-doc", headers=AUTH), 404, "not_found")
    assert "no-such-doc" in err["message"]


def test_passage_with_neighbours(client, asked):
    pid = asked["passages"][0]["id"]
    r = client.get(f"/v1/passages/{pid}", headers=AUTH)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["id"] == pid and p["text"]
    assert p["previous"] is not None or p["next"] is not None
    for n in (p["previous"], p["next"]):
        if n is not None:
            assert n["document_id"] == p["document_id"] and n["id"] != pid
    if p["next"] is not None:  # the neighbour links back
        back = client.get(f"/v1/passages/{p['next']['id']}", headers=AUTH).json()
        assert back["previous"]["id"] == pid
    assert_error(client.get("/v1/passages/no-such-passage", headers=AUTH), 404, "not_found")


def test_feedback_is_appended(client, fast_service):
    path = fast_service.settings.feedback_path
    before = path.read_text().splitlines() if path.exists() else []
    body = {"question": "api-test question", "answer": "an answer", "rating": "down", "comment": "wrong year"}
    r = client.post("/v1/feedback", json=body, headers=AUTH)
    assert r.status_code == 201 and r.json() == {"status": "recorded"}
    lines = path.read_text().splitlines()
    assert len(lines) == len(before) + 1
    record = json.loads(lines[-1])
    assert record["question"] == "api-test question" and record["rating"] == "down"
    assert_error(client.post("/v1/feedback", json={**body, "rating": "meh"}, headers=AUTH), 422)


def test_index_reload_needs_admin_key(client):
    assert_error(client.post("/v1/index/reload"), 401, "unauthorized")
    assert_error(client.post("/v1/index/reload", headers=AUTH), 401, "unauthorized")
    r = client.post("/v1/index/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "reloaded"
    # still serving after the swap
    assert client.post("/v1/ask", json={"question": QUESTION}, headers=AUTH).json()["answered"]


# --- OpenAI-compatible ----------------------------------------------------------------------


def test_chat_completions(client, catalog_ids):
    body = {
        "model": "anything",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi, ask me about IOM."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        "temperature": 0.2,
    }
    r = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion" and out["model"] == "anything"
    assert out["id"].startswith("chatcmpl-")
    (choice,) = out["choices"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    content = choice["message"]["content"]
    assert out["citations"] and out["answered"]
    for c in out["citations"]:
        assert c["document_id"] in catalog_ids
        assert f"[{c['n']}]" in content.split("Sources", 1)[1]
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]


def test_chat_completions_errors(client, api_settings):
    no_user = {"messages": [{"role": "system", "content": "x"}]}
    assert_error(client.post("/v1/chat/completions", json=no_user, headers=AUTH), 400, "no_user_message")
    assert_error(client.post("/v1/chat/completions", json={"messages": []}, headers=AUTH), 422)
    too_long = {"messages": [{"role": "user", "content": "x" * (api_settings.max_question_chars + 1)}]}
    assert_error(client.post("/v1/chat/completions", json=too_long, headers=AUTH), 413)
    bad_filter = {"messages": [{"role": "user", "content": "q"}], "filters": {"nope": 1}}
    assert_error(client.post("/v1/chat/completions", json=bad_filter, headers=AUTH), 400, "unknown_filter")


def test_chat_completions_stream(client):
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    r = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Sources" in content
    assert all(f"[{c['n']}]" in content for c in chunks[-1]["citations"])


# --- rate limit, CORS, errors -------------------------------------------------------------


def test_rate_limit_per_key(fast_service, fast_settings):
    app = create_app(fast_service, _settings(fast_settings, rate_limit_per_minute=2))
    with TestClient(app) as c:
        assert c.get("/v1/documents", headers=AUTH).status_code == 200
        assert c.get("/v1/documents", headers=AUTH).status_code == 200
        r = c.get("/v1/documents", headers=AUTH)
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        # another key has its own bucket; health is not limited
        assert c.get("/v1/documents", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_cors_closed_by_default(client):
    r = client.options(
        "/v1/ask",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/v1/documents", headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_configured_origin(fast_service, fast_settings):
    app = create_app(fast_service, _settings(fast_settings, cors_origins="https://intranet.example"))
    with TestClient(app) as c:
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        ok = c.options("/v1/ask", headers={"Origin": "https://intranet.example", **pre})
        assert ok.headers["access-control-allow-origin"] == "https://intranet.example"
        bad = c.options("/v1/ask", headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in bad.headers


def test_unknown_route_and_method(client):
    assert_error(client.get("/v1/nothing-here", headers=AUTH), 404, "not_found")
    assert_error(client.get("/v1/ask", headers=AUTH), 405, "method_not_allowed")


def test_unexpected_error_is_a_bare_500(fast_service, api_settings):
    app = create_app(fast_service, api_settings)

    @app.get("/v1/explode")
    def explode() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/explode")
    err = assert_error(r, 500, "internal_error")
    assert "secret internal detail" not in r.text


def test_openapi_is_a_usable_reference(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/ask",
        "/v1/search",
        "/v1/documents",
        "/v1/documents/{document_id}",
        "/v1/passages/{passage_id}",
        "/v1/feedback",
        "/v1/chat/completions",
        "/v1/index/reload",
        "/teams/webhook",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    ask = paths["/v1/ask"]["post"]
    assert {"400", "401", "413", "422", "429"} <= set(ask["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["AskRequest"]["examples"]
    assert set(schemas["Answer"]["properties"]) == {"answer", "answered", "citations", "passages", "timings_ms"}
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


# --- real server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_on_loopback(fast_service, api_settings, catalog_ids):
    import uvicorn

    port = _free_port()
    check_bind("127.0.0.1", api_settings)
    config = uvicorn.Config(
        create_app(fast_service, api_settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.get("/readyz").json() == {"status": "ready"}
            assert_error(http.post("/v1/ask", json={"question": QUESTION}), 401)
            r = http.post("/v1/ask", json={"question": QUESTION}, headers=AUTH)
            assert r.status_code == 200, r.text
            answer = Answer.model_validate(r.json())
            assert answer.answered and {c.document_id for c in answer.citations} <= catalog_ids
            # streaming over a real socket
            with http.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}, headers=AUTH) as s:
                assert s.headers["content-type"].startswith("text/event-stream")
                text = "".join(s.iter_text())
            assert sse_events(text)[-1][0] == "done"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
