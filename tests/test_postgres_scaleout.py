"""Many workers on one PostgreSQL: a re-index while two uvicorn processes serve, the database
killed mid-query, and the eval gate on the PostgreSQL store. Real server, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import CORPUS, _loaded, fixture_corpus, make_settings
from assistant.settings import ROOT


def _wait(predicate, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def _worker(port: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from assistant.cli import app; app()", "serve", "--host", "127.0.0.1",
           "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _build_of(base: str) -> str | None:
    return httpx.get(base + "/v1/index/status", timeout=5).json()["index"]["build"]


@pytest.mark.slow
def test_two_workers_switch_to_a_new_build_without_a_failed_request(tmp_path, pg_server, pg_schema):
    from _loopback import free_port
    from assistant.indexing import build_index

    corpus = fixture_corpus(tmp_path / "corpus")
    settings = make_settings(tmp_path, corpus, embedding_model="hash", store="postgres",
                             database_url=pg_server.url, database_schema=pg_schema)
    build_index(settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "ASSISTANT_STORE": "postgres", "ASSISTANT_DATABASE_URL": pg_server.url,
           "ASSISTANT_DATABASE_SCHEMA": pg_schema, "ASSISTANT_EMBEDDING_MODEL": "hash",
           "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(tmp_path / "index"),
           "ASSISTANT_DATA_DIR": str(tmp_path / "var"), "ASSISTANT_BUILD_POLL_SECONDS": "0.5",
           "ASSISTANT_RATE_LIMIT_PER_MINUTE": "0", "ASSISTANT_UI_ENABLED": "false", "ASSISTANT_LOG_LEVEL": "WARNING",
           "ASSISTANT_API_KEYS": "", "ASSISTANT_ADMIN_KEY": ""}
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    workers = [_worker(p, env) for p in ports]
    try:
        for base, proc in zip(bases, workers):
            _wait(lambda: proc.poll() is None and httpx.get(base + "/readyz", timeout=2).status_code == 200
                  or (proc.poll() is not None and pytest.fail(f"worker exited: {proc.stderr.read()[-2000:]}")),
                  120, f"{base} ready")
        from assistant.stores.postgres import PostgresStore

        store = PostgresStore.from_settings(settings)
        old = store.build_id()
        assert [_build_of(b) for b in bases] == [old, old]

        results: list[tuple[int, int]] = []  # (worker, status)
        failures: list[str] = []
        stop = threading.Event()
        questions = ["What did Denmark give IOM unearmarked in 2022?", "Vilka är Sveriges prioriteringar?",
                     "Where did Denmark rank among the donors of unearmarked funding to IOM?"]

        def client(n: int) -> None:
            with httpx.Client(timeout=30) as http:
                i = 0
                while not stop.is_set():
                    w = (n + i) % 2
                    try:
                        r = http.post(bases[w] + "/v1/ask", json={"question": questions[i % len(questions)]})
                        results.append((w, r.status_code))
                        if r.status_code != 200 or "answered" not in r.json():
                            failures.append(f"worker {w}: {r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        failures.append(f"worker {w}: {type(exc).__name__} {exc}")
                    i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = len(results)
        build_index(settings)  # the re-index, from another process's point of view: a new build published
        new = store.build_id()
        assert new != old
        _wait(lambda: [_build_of(b) for b in bases] == [new, new], 30, "both workers on the new build")
        switched_at = len(results)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not failures, failures[:5]
        assert before > 0 and len(results) - switched_at > 0
        assert {w for w, _ in results[switched_at:]} == {0, 1}  # both served on the new build
        print(f"two workers: {len(results)} requests, 0 failed; switched to {new} after {switched_at} requests")
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_database_killed_mid_query_is_a_503_then_recovers(tmp_path):
    from _loopback import serve
    from assistant.compose import build_app
    from assistant.indexing import build_index
    from assistant.stores.pglocal import LocalPostgres

    server = LocalPostgres(tmp_path / "pgdata").start()  # durable: its own server, killed below
    try:
        corpus = fixture_corpus(tmp_path / "corpus")
        settings = make_settings(tmp_path, corpus, embedding_model="hash", store="postgres",
                                 database_url=server.url, database_schema="kill", rate_limit_per_minute=100_000,
                                 ui_enabled=False, build_poll_seconds=0.5)
        build_index(settings)
        service = _loaded(settings)
        statuses: list[tuple[float, int, dict]] = []
        stop = threading.Event()
        with serve(build_app(settings, service=service, with_ui=False)) as base:
            def client() -> None:
                with httpx.Client(timeout=30) as http:
                    while not stop.is_set():
                        r = http.post(base + "/v1/ask", json={"question": "What did Denmark give IOM in 2022?"})
                        assert "Traceback" not in r.text
                        statuses.append((time.monotonic(), r.status_code, r.json()))

            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()
            _wait(lambda: len(statuses) >= 5, 30, "answers before the kill")
            server.kill()
            killed = time.monotonic()
            _wait(lambda: any(s == 503 and t > killed for t, s, _ in statuses), 30, "a 503 while the database is down")
            server.start()
            restarted = time.monotonic()
            _wait(lambda: any(s == 200 and t > restarted + 0.5 for t, s, _ in statuses), 30, "answers again")
            stop.set()
            for t in threads:
                t.join(timeout=30)
        down = [body for t, s, body in statuses if s != 200]
        assert down and all(s in (200, 503) for _, s, _ in statuses)
        assert all(b["error"]["code"] == "store_unavailable" for b in down), down[:3]
        assert "database is unavailable" in down[0]["error"]["message"]
    finally:
        from assistant.stores.postgres import close_pools

        close_pools()
        server.stop("immediate")


@pytest.mark.slow
def test_golden_gate_on_the_postgres_store(tmp_path, pg_server, corpus_build):
    """GATE: the golden set (and the held-out split) through the full-corpus service on PostgreSQL must not
    regress against the same baselines as the local store. The store serves the session's build of the
    full corpus (``corpus_build``, what ``assistant index`` makes of it), written and published."""
    import io

    from rich.console import Console

    from assistant import compose
    from assistant.evals.cli import run_eval
    from assistant.evals.runner import ServiceAsker

    root = ROOT / "evals"
    settings = make_settings(tmp_path, CORPUS, store="postgres", database_url=pg_server.url, database_schema="gate")
    store = compose.make_store(settings)
    store.publish(store.write(corpus_build))
    service = _loaded(settings)
    assert service.parts().store.name == "postgres"
    for cases, baseline in ((root / "golden.jsonl", root / "baseline.json"),
                            (root / "heldout.jsonl", root / "baseline-heldout.json")):
        buf = io.StringIO()
        console = Console(file=buf, width=200, force_terminal=False, color_system=None)
        outcome = run_eval(ServiceAsker(service), [cases], catalog_path=CORPUS / "catalog.toml", baseline_path=baseline,
                           reports_dir=tmp_path / "reports", console=console, progress=False)
        assert outcome.exit_code == 0, buf.getvalue()
