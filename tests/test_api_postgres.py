"""The HTTP API contract tests (tests/test_api.py), every one of them, against the PostgreSQL store.

The tests are imported as they are; only the fixtures they stand on are replaced: the same fixture
corpus and hashing embedder, indexed into a real PostgreSQL (``ASSISTANT_STORE=postgres``). Where
the contract is the same but the place differs (feedback goes to the database), the test is
redefined below under its own name.
"""

from __future__ import annotations

import json

import pytest

from conftest import HASHED, _built, _loaded, fixture_corpus
from test_api import *  # noqa: F401,F403  (the contract tests and their module fixtures)
from test_api import AUTH, assert_error


@pytest.fixture(scope="module")
def fast_settings(tmp_path_factory, pg_server):
    tmp = tmp_path_factory.mktemp("fast-pg")
    return _built(tmp, fixture_corpus(tmp / "corpus"), **HASHED, store="postgres",
                  database_url=pg_server.url, database_schema="api_contract")


@pytest.fixture(scope="module")
def fast_service(fast_settings):
    return _loaded(fast_settings)


def test_the_service_reads_the_postgres_store(fast_service, client):
    assert fast_service.parts().store.name == "postgres"
    assert client.app.state.service is fast_service  # the imported tests' client is this one


def test_feedback_is_appended(client, fast_service):
    from assistant.stores.shared import PgFeedbackLog, shared_store

    settings = fast_service.settings
    log = PgFeedbackLog(shared_store(settings))
    out = settings.data_dir / "feedback-export.jsonl"
    before = log.export(out)
    body = {"question": "api-test question", "answer": "an answer", "rating": "down", "comment": "wrong year"}
    r = client.post("/v1/feedback", json=body, headers=AUTH)
    assert r.status_code == 201 and r.json() == {"status": "recorded"}
    assert log.export(out) == before + 1
    record = json.loads(out.read_text().splitlines()[-1])
    assert record["question"] == "api-test question" and record["rating"] == "down"
    assert not settings.feedback_path.exists()  # in the database, shared by every worker
    assert_error(client.post("/v1/feedback", json={**body, "rating": "meh"}, headers=AUTH), 422)
