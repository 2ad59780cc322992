"""Shared fixtures: real indexes built from real documents (a small fixture corpus and the full one).

Embeddings are cached by passage content in the repository's ``var/embedding-cache``, so only
the first run on a machine pays for embedding the corpus.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from assistant.settings import ROOT, Settings

CORPUS = ROOT / "corpus"
FIXTURE_DOCS = ("dk-2023-2026", "se-2020-2022")


def skip_or_fail(reason: str) -> None:
    """Skip, unless CI demands every test run (ASSISTANT_REQUIRE_ALL_TESTS=1): then fail with the reason."""
    if os.environ.get("ASSISTANT_REQUIRE_ALL_TESTS") == "1":
        pytest.fail(f"required test could not run: {reason}")
    pytest.skip(reason)


def make_settings(tmp: Path, corpus_dir: Path, **overrides) -> Settings:
    return Settings(
        corpus_dir=corpus_dir,
        index_dir=tmp / "index",
        data_dir=tmp / "var",
        _env_file=None,
        **overrides,
    )


def fixture_corpus(dest: Path) -> Path:
    """The Danish 2023-2026 strategy and the Swedish strategy, with a catalog of just those two."""
    import tomllib

    dest.mkdir(parents=True, exist_ok=True)
    catalog = tomllib.loads((CORPUS / "catalog.toml").read_text(encoding="utf-8"))
    keep = [d for d in catalog["documents"] if d["id"] in FIXTURE_DOCS]
    lines = []
    for d in keep:
        shutil.copy(CORPUS / d["file"], dest / d["file"])
        lines.append("[[documents]]")
        lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in d.items()]
        lines.append("")
    (dest / "catalog.toml").write_text("\n".join(lines), encoding="utf-8")
    return dest


def _built(tmp: Path, corpus: Path) -> Settings:
    from assistant.indexing import build_index

    settings = make_settings(tmp, corpus)
    build_index(settings)
    return settings


def _loaded(settings: Settings):
    from assistant.service import AssistantService

    service = AssistantService(settings)
    service.load()
    return service


@pytest.fixture(scope="session")
def fixture_settings(tmp_path_factory) -> Settings:
    tmp = tmp_path_factory.mktemp("fixture")
    return _built(tmp, fixture_corpus(tmp / "corpus"))


@pytest.fixture(scope="session")
def fixture_service(fixture_settings):
    return _loaded(fixture_settings)


@pytest.fixture(scope="session")
def full_settings(tmp_path_factory) -> Settings:
    return _built(tmp_path_factory.mktemp("full"), CORPUS)


@pytest.fixture(scope="session")
def full_service(full_settings):
    return _loaded(full_settings)
