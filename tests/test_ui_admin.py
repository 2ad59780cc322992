"""The UI's admin-only "Manage documents" tab (#13), against the app users get: ``build_app`` (API +
UI mounted, behind the gate) on real uvicorn on loopback, with its own copy of the fixture corpus.

An administrator (a UI account named in ASSISTANT_UI_ADMINS, with ASSISTANT_ADMIN_KEY set) lists,
uploads and removes documents through ``/ui-admin/...``, which runs the API's own endpoint functions:
the same limits, checks, errors and background job as ``POST``/``DELETE /v1/documents``. Everyone else
gets 401/403 there, before the body is read, and Gradio's upload route stays closed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from _pdf import zembla_pdf
from assistant.server import build_app
from conftest import _built, _loaded, fixture_corpus
from test_gate_live import LiveServer, assert_json_error

KEY, ADMIN_KEY = "adm-key", "adm-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN, ADMIN_PW = "amina", "long-passphrase-1"
USER, USER_PW = "lars", "long-passphrase-2"
QUESTION = "How much did Zembla give IOM for the Coastal Displacement Tracking Facility in 2031?"


def admin_settings(base, **update):
    values = {"api_keys": KEY, "admin_key": SecretStr(ADMIN_KEY), "ui_auth": f"{ADMIN}:{ADMIN_PW},{USER}:{USER_PW}",
              "ui_admins": ADMIN, "rate_limit_per_minute": 100_000, "max_upload_bytes": 2 * 1024 * 1024}
    values.update(update)
    return base.model_copy(update=values)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pytest.importorskip("reportlab", reason="the dev extra (reportlab) is not installed")
    tmp = tmp_path_factory.mktemp("ui-admin")
    settings = admin_settings(_built(tmp, fixture_corpus(tmp / "corpus")))
    service = _loaded(settings)
    with LiveServer(build_app(settings, service=service)) as server:
        yield {"server": server, "settings": settings, "service": service}


@contextlib.contextmanager
def signed_in(server: LiveServer, user: str, password: str) -> Iterator[httpx.Client]:
    with server.client() as http:
        r = http.post("/login", data={"username": user, "password": password}, follow_redirects=False)
        assert r.status_code == 303, r.text
        yield http


def csrf(http: httpx.Client) -> dict[str, str]:
    r = http.get("/ui-admin/session")
    assert r.status_code == 200, r.text
    return {"X-Assistant-CSRF": r.json()["csrf"]}


def wait_for(http: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = next(j for j in http.get("/ui-admin/index/status").json()["jobs"] if j["id"] == job_id)
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_admin_routes_refuse_everyone_but_an_admin(env):
    server = env["server"]
    routes = [("GET", "/ui-admin/session"), ("GET", "/ui-admin/documents"), ("POST", "/ui-admin/documents"),
              ("DELETE", "/ui-admin/documents/dk-2023-2026"), ("GET", "/ui-admin/index/status")]
    with server.client() as anon:
        for method, path in routes:
            assert_json_error(anon.request(method, path), 401, "unauthorized")
        # the API's admin key is not a UI session either
        assert_json_error(anon.get("/ui-admin/documents", headers={"Authorization": f"Bearer {ADMIN_KEY}"}), 401)
    with signed_in(server, USER, USER_PW) as user:
        assert user.get("/config").status_code == 200  # signed in, but not an admin
        for method, path in routes:
            assert_json_error(user.request(method, path), 403, "admin_required")
        t0 = time.perf_counter()  # refused before the body is read
        r = user.post("/ui-admin/documents", files={"file": ("big.pdf", b"%PDF-" + b"0" * (1024 * 1024))})
        assert_json_error(r, 403, "admin_required")
        assert time.perf_counter() - t0 < 5
    assert "zembla" not in (env["settings"].corpus_dir / "catalog.toml").read_text()


def test_admin_writes_need_the_csrf_token_and_the_same_origin(env):
    server = env["server"]
    with signed_in(server, ADMIN, ADMIN_PW) as http:
        txt = {"file": ("note.txt", b"A note.\n", "text/plain")}
        assert_json_error(http.post("/ui-admin/documents", files=txt), 403, "bad_csrf_token")
        assert_json_error(http.post("/ui-admin/documents", files=txt, headers={"X-Assistant-CSRF": "forged"}),
                          403, "bad_csrf_token")
        assert_json_error(http.delete("/ui-admin/documents/dk-2023-2026"), 403, "bad_csrf_token")
        token = csrf(http)
        r = http.post("/ui-admin/documents", files=txt, headers={**token, "Origin": "http://localhost:3000"})
        assert_json_error(r, 403, "forbidden_origin")
        # a token belongs to its session: another admin session's token does not fit this cookie
        with signed_in(server, ADMIN, ADMIN_PW) as other:
            time.sleep(1.1)  # a new expiry second: another cookie value
            other.post("/login", data={"username": ADMIN, "password": ADMIN_PW}, follow_redirects=False)
            assert csrf(other) != token
            assert_json_error(other.post("/ui-admin/documents", files=txt, headers=token), 403, "bad_csrf_token")
    assert not (env["settings"].corpus_dir / "note.txt").exists()


def test_gradio_uploads_stay_closed_even_for_an_admin(env):
    with signed_in(env["server"], ADMIN, ADMIN_PW) as http:
        r = http.post("/gradio_api/upload", files={"files": ("f.pdf", zembla_pdf())})
        assert_json_error(r, 404, "not_found")


def test_admin_uploads_have_the_api_checks_limits_and_messages(env):
    """Each refusal is the one POST /v1/documents gives for the same file, status, code and message."""
    server, settings = env["server"], env["settings"]
    big = b"%PDF-1.4\n" + b"0" * (settings.max_upload_bytes + 1)
    cases = [("report.pdf", b"just some text pretending to be a PDF", {}),
             ("report.exe", b"MZ\x90\x00", {}),
             ("a.txt", b"", {}),
             ("x.txt", b"text", {"id": "../../etc"}),
             ("x.txt", b"text", {"id": "dk-2023-2026"}),
             ("x.txt", b"text", {"year": "twenty"}),
             ("big.pdf", big, {})]
    with signed_in(server, ADMIN, ADMIN_PW) as ui, server.client() as api:
        token = csrf(ui)
        for name, data, fields in cases:
            files = {"file": (name, data, "application/octet-stream")}
            via_ui = ui.post("/ui-admin/documents", files=files, data=fields, headers=token)
            via_api = api.post("/v1/documents", files=files, data=fields, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert via_ui.status_code == via_api.status_code and via_ui.status_code in (409, 413, 415, 422), name
            assert via_ui.json() == via_api.json(), (name, via_ui.json(), via_api.json())


def test_a_failed_ingest_leaves_the_previous_index_serving(env):
    server, corpus = env["server"], env["settings"].corpus_dir
    catalog = (corpus / "catalog.toml").read_text()
    with signed_in(server, ADMIN, ADMIN_PW) as ui:
        before = ui.get("/ui-admin/index/status").json()["index"]
        r = ui.post("/ui-admin/documents", files={"file": ("broken.pdf", b"%PDF-1.7\n not really a PDF \n%%EOF")},
                    headers=csrf(ui))
        assert r.status_code == 202, r.text
        job = wait_for(ui, r.json()["job"]["id"])
        assert job["state"] == "failed" and job["errors"][0]["file"] == "broken.pdf", job
        status = ui.get("/ui-admin/index/status").json()
        assert status["index"]["build"] == before["build"] and status["jobs"][0]["id"] == job["id"]
    assert (corpus / "catalog.toml").read_text() == catalog
    with server.client(headers=AUTH) as api:
        assert api.post("/v1/ask", json={"question": "How much unearmarked funding did Denmark give IOM in 2022?"}).json()["answered"]


def test_admin_uploads_lists_answers_and_removes_through_the_ui_routes(env):
    server = env["server"]
    with signed_in(server, ADMIN, ADMIN_PW) as ui, server.client(headers=AUTH) as api:
        assert not api.post("/v1/ask", json={"question": QUESTION}).json()["answered"]
        r = ui.post("/ui-admin/documents", files={"file": ("Zembla review 2031.pdf", zembla_pdf())},
                    data={"id": "zembla-ui", "title": "Zemblan Partnership Review with IOM 2031",
                          "publisher": "Principality of Zembla", "year": "2031", "period": "2029-2031"},
                    headers=csrf(ui))
        assert r.status_code == 202, r.text
        job = wait_for(ui, r.json()["job"]["id"])
        assert job["state"] == "succeeded" and job["document_passages"], job
        docs = {d["id"]: d for d in ui.get("/ui-admin/documents").json()["documents"]}
        assert docs["zembla-ui"]["passage_count"] == job["document_passages"]
        assert docs["zembla-ui"]["period"] == "2029-2031" and docs["zembla-ui"]["publisher"] == "Principality of Zembla"
        answer = api.post("/v1/ask", json={"question": QUESTION}).json()
        assert answer["answered"] and "4,321,987" in answer["answer"], answer["answer"]
        assert answer["citations"][0]["document_id"] == "zembla-ui" and answer["citations"][0]["page"] == 3
        r = ui.delete("/ui-admin/documents/zembla-ui", headers=csrf(ui))
        assert r.status_code == 202, r.text
        assert wait_for(ui, r.json()["job"]["id"])["state"] == "succeeded"
        assert "zembla-ui" not in {d["id"] for d in ui.get("/ui-admin/documents").json()["documents"]}
        assert not api.post("/v1/ask", json={"question": QUESTION}).json()["answered"]


def test_admin_view_is_off_without_the_admin_key_and_needs_known_accounts(env, fixture_settings):
    from fastapi.testclient import TestClient

    from assistant.api.security import check_bind

    settings = admin_settings(env["settings"], admin_key=None)
    with TestClient(build_app(settings, service=env["service"])) as c:
        c.post("/login", data={"username": ADMIN, "password": ADMIN_PW}, follow_redirects=False)
        assert_json_error(c.get("/ui-admin/documents"), 403, "admin_disabled")
    with pytest.raises(ValueError, match="ASSISTANT_UI_ADMINS"):
        check_bind("127.0.0.1", admin_settings(fixture_settings, ui_admins="amnia"))
    with pytest.raises(ValueError, match="ASSISTANT_UI_ADMINS"):
        build_app(admin_settings(fixture_settings, ui_admins="nobody"), service=env["service"])


def test_without_the_ui_the_admin_path_keeps_the_small_body_limit(env):
    """The upload cap applies to /ui-admin/documents only where the UI (and its gate) is mounted."""
    from fastapi.testclient import TestClient

    from assistant.api import create_app

    with TestClient(create_app(env["service"], env["settings"])) as c:
        r = c.post("/ui-admin/documents", files={"file": ("big.pdf", b"%PDF-" + b"0" * (512 * 1024))})
        assert_json_error(r, 413, "payload_too_large")
