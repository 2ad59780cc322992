"""Documents without a shell: upload, background re-index, status, delete; over a real uvicorn on loopback.

The tests work on their own copy of the fixture corpus and index, since they change both.
"""

from __future__ import annotations

import io
import time
import zipfile

import httpx
import pytest
from pydantic import SecretStr

from _loopback import serve
from _pdf import zembla_pdf
from assistant.api import create_app
from conftest import HASHED, _built, _loaded, fixture_corpus

KEY, ADMIN = "up-key", "up-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
QUESTION = "How much did Zembla give IOM for the Coastal Displacement Tracking Facility in 2031?"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pytest.importorskip("reportlab", reason="the dev extra (reportlab) is not installed")
    tmp = tmp_path_factory.mktemp("uploads")
    settings = _built(tmp, fixture_corpus(tmp / "corpus"), **HASHED)
    settings = settings.model_copy(update={"api_keys": KEY, "admin_key": SecretStr(ADMIN),
                                           "rate_limit_per_minute": 100_000, "max_upload_bytes": 2 * 1024 * 1024})
    service = _loaded(settings)
    app = create_app(service, settings)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield {"http": http, "settings": settings, "service": service, "app": app, "tmp": tmp}


def wait_for(http: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get("/v1/index/status", headers=AUTH).json()
        job = next(j for j in status["jobs"] if j["id"] == job_id)
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def ask(http: httpx.Client, question: str = QUESTION) -> dict:
    r = http.post("/v1/ask", json={"question": question}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def upload(http, name: str, data: bytes, headers=ADMIN_AUTH, **fields) -> httpx.Response:
    return http.post("/v1/documents", files={"file": (name, data, "application/octet-stream")},
                     data=fields, headers=headers)


def test_upload_a_pdf_answer_from_its_table_then_delete(env, capsys):
    http, corpus = env["http"], env["settings"].corpus_dir
    assert not ask(http)["answered"], "only the uploaded document answers this"

    t0 = time.perf_counter()
    r = upload(http, "Zembla review 2031.pdf", zembla_pdf(), id="zembla-2031",
               title="Zemblan Partnership Review with IOM 2031", publisher="Principality of Zembla", year="2031",
               aliases="zembla review, zemblan review")
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["document"]["file"] == "zembla-2031.pdf" and accepted["job"]["state"] in ("queued", "running")
    job = wait_for(http, accepted["job"]["id"])
    took = time.perf_counter() - t0
    assert job["state"] == "succeeded", job
    assert job["errors"] == [] and job["documents_done"] == job["documents_total"] == 3
    assert job["document_passages"] and job["passages_done"] >= job["document_passages"]
    assert job["passages_total"] == job["passages_embedded"] == job["passages_done"]
    assert (corpus / "zembla-2031.pdf").read_bytes()[:5] == b"%PDF-"
    assert 'id = "zembla-2031"' in (corpus / "catalog.toml").read_text()

    docs = {d["id"]: d for d in http.get("/v1/documents", headers=AUTH).json()["documents"]}
    assert docs["zembla-2031"]["passage_count"] == job["document_passages"]
    assert docs["zembla-2031"]["aliases"] == ["zembla review", "zemblan review"]

    answer = ask(http)
    assert answer["answered"], answer["answer"]
    assert "4,321,987" in answer["answer"]
    first = answer["citations"][0]
    assert first["document_id"] == "zembla-2031" and first["page"] == 3, first
    assert "4,321,987" in first["quote"]

    t1 = time.perf_counter()
    r = http.delete("/v1/documents/zembla-2031", headers=ADMIN_AUTH)
    assert r.status_code == 202, r.text
    gone = wait_for(http, r.json()["job"]["id"])
    assert gone["state"] == "succeeded", gone
    took_delete = time.perf_counter() - t1
    assert not (corpus / "zembla-2031.pdf").exists()
    assert list((corpus / ".trash").glob("*-zembla-2031.pdf"))
    assert "zembla-2031" not in (corpus / "catalog.toml").read_text()
    assert http.get("/v1/documents/zembla-2031", headers=AUTH).status_code == 404
    refused = ask(http)
    assert not refused["answered"] and not refused["citations"]
    with capsys.disabled():
        print(f"\nupload -> answerable: {took:.1f} s; delete -> refused again: {took_delete:.1f} s")


def test_a_bad_file_reports_the_loader_error_and_leaves_the_index(env):
    http, corpus = env["http"], env["settings"].corpus_dir
    before = http.get("/v1/index/status", headers=AUTH).json()["index"]
    catalog = (corpus / "catalog.toml").read_text()
    r = upload(http, "broken.pdf", b"%PDF-1.7\n this is not really a PDF \n%%EOF")
    assert r.status_code == 202, r.text
    job = wait_for(http, r.json()["job"]["id"])
    assert job["state"] == "failed"
    assert job["errors"] and job["errors"][0]["file"] == "broken.pdf"
    assert "\n" not in job["errors"][0]["error"] and job["errors"][0]["error"]
    assert (corpus / "catalog.toml").read_text() == catalog
    assert not (corpus / "broken.pdf").exists() and not list((corpus / ".uploads").iterdir())
    assert http.get("/v1/index/status", headers=AUTH).json()["index"]["build"] == before["build"]
    assert ask(http, "How much unearmarked funding did Denmark give IOM in 2022?")["answered"]


def _zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, "x")
    return buf.getvalue()


@pytest.mark.parametrize("name, data", [
    ("report.pdf", b"just some text pretending to be a PDF"),
    ("report.docx", _zip(["hello.txt"])),
    ("report.txt", b"\x89PNG\r\n\x1a\n\x00\x00binary"),
    ("report.txt", b"%PDF-1.4 a PDF renamed to .txt"),
    ("report.exe", b"MZ\x90\x00"),
    ("report", b"no suffix"),
])
def test_type_is_checked_by_content(env, name, data):
    r = upload(env["http"], name, data)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"


def test_the_client_file_name_never_becomes_a_path(env):
    http, corpus, tmp = env["http"], env["settings"].corpus_dir, env["tmp"]
    r = upload(http, "../../escape.txt", "Escape hatch notes.\n".encode())
    assert r.status_code == 202, r.text
    assert r.json()["document"]["file"] == "escape.txt"
    job = wait_for(http, r.json()["job"]["id"])
    assert job["state"] == "succeeded", job
    assert (corpus / "escape.txt").is_file()
    assert not list(tmp.parent.glob("escape.txt")) and not list(tmp.glob("escape.txt"))
    assert upload(http, "x.txt", b"text", id="../../etc").status_code == 422
    assert upload(http, "x.txt", b"text", id="dk-2023-2026").status_code == 409
    assert wait_for(http, http.delete("/v1/documents/escape", headers=ADMIN_AUTH).json()["job"]["id"])["state"] == "succeeded"


def test_uploads_need_the_admin_key_and_are_size_capped(env):
    http = env["http"]
    assert upload(http, "a.txt", b"text", headers={}).status_code == 401
    assert upload(http, "a.txt", b"text", headers=AUTH).status_code == 401
    assert http.delete("/v1/documents/dk-2023-2026", headers=AUTH).status_code == 401
    assert http.get("/v1/index/status").status_code == 401
    assert http.delete("/v1/documents/no-such-doc", headers=ADMIN_AUTH).status_code == 404
    big = b"%PDF-1.4\n" + b"0" * (env["settings"].max_upload_bytes + 1)
    r = upload(http, "big.pdf", big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    # other endpoints keep the small body limit
    r = http.post("/v1/ask", content=b'{"question": "' + b"x" * 300_000 + b'"}', headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_admin_disabled_without_admin_key(env):
    settings = env["settings"].model_copy(update={"admin_key": None})
    from fastapi.testclient import TestClient

    with TestClient(create_app(env["service"], settings)) as c:
        r = c.post("/v1/documents", files={"file": ("a.txt", b"text")}, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"
