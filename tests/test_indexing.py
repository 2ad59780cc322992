"""The index store: real embeddings on a tiny corpus the tests write; atomic, incremental, checked."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.indexing import IndexUnavailable, build_index, build_index_cli, is_stale
from assistant.stores.local import LocalStore
from conftest import make_settings


def current_path(index_dir):
    return LocalStore(index_dir).current_path()


def load_index(settings) -> LocalStore:
    """The published build, read (and checked) by a fresh local store, as a reloading service reads it."""
    from assistant.indexing import check_compatible

    store = LocalStore(settings.index_dir)
    check_compatible(store.manifest(), settings)
    return store


def all_passages(store: LocalStore):
    ids = [i for i, _ in store.dense(np.zeros(store.manifest()["dims"], dtype=np.float32), 10**6)]
    return store.get(ids)

GOOD = """Annual note 2021

1. Denmark gave IOM unearmarked funding of USD 3 508 772 in 2022.

2. Sweden was the largest donor of unearmarked funding.
"""
OTHER = "Second document\n\nIOM opened an office in Copenhagen in 2009.\n"


@pytest.fixture()
def tiny(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(GOOD, encoding="utf-8")
    (corpus / "other.txt").write_text(OTHER, encoding="utf-8")
    return make_settings(tmp_path, corpus, embedding_cache_dir=tmp_path / "cache")


def test_build_load_and_search(tiny):
    report = build_index(tiny)
    assert report.documents == 2 and report.passages >= 2 and not report.errors
    store = load_index(tiny)
    assert {d.id for d in store.documents()} == {"note", "other"}
    assert store.stats().passages == len(all_passages(store)) == report.passages
    assert store.manifest()["chunker_version"] and store.manifest()["dims"] == 384
    assert store.manifest()["build_id"] == report.build_id == store.build_id()
    hits = store.lexical(["3508772"], 5)
    assert hits and "3 508 772" in store.get([hits[0][0]])[0].text
    per_doc = store.stats().passages_per_document
    assert set(per_doc) == {"note", "other"} and sum(per_doc.values()) == report.passages


def test_statistics_are_saved_with_the_build(tiny):
    """idf and vocabulary are build artifacts: what the answerer reads equals what the texts give."""
    from assistant.evidence import IdfTable
    from assistant.indexing import lexical_tokens
    from assistant.lexical import words

    build_index(tiny)
    store = load_index(tiny)
    nodes = all_passages(store)
    fresh = IdfTable([lexical_tokens(n) for n in nodes])
    saved = IdfTable.from_stats(store.stats())
    assert saved.idf == fresh.idf and saved.default == fresh.default
    assert store.stats().vocabulary == {w for n in nodes for w in words(n.text) if not w[0].isdigit()}


def test_filters_apply_in_the_store(tiny):
    from assistant.records import Filters

    build_index(tiny)
    store = load_index(tiny)
    vector = np.ones(store.manifest()["dims"], dtype=np.float32)
    only = store.dense(vector, 100, Filters(document_ids=["other"]))
    assert only and {store.get([i])[0].metadata["document_id"] for i, _ in only} == {"other"}
    assert store.lexical(["denmark"], 100, Filters(document_ids=["other"])) == []
    assert store.dense(vector, 1) and len(store.dense(vector, 1)) == 1


def test_every_sentence_and_row_has_its_own_vector(tiny):
    from assistant.evidence import split_spans

    from assistant.compose import make_embedder
    from assistant.evidence import span_embed_text

    build_index(tiny)
    store = load_index(tiny)
    nodes = all_passages(store)
    assert store.manifest()["span_count"] == sum(len(split_spans(n)) for n in nodes)
    for node in nodes:
        assert len(store.span_similarity(node.node_id, np.ones(384, dtype=np.float32))) == len(split_spans(node))
    node = nodes[0]
    quote, is_row = split_spans(node)[0]
    query = make_embedder(tiny).embed_passages([span_embed_text(node, quote, is_row)])[0]
    similarity = store.span_similarity(node.node_id, query)
    assert abs(similarity[0] - 1.0) < 1e-3, "a span is most similar to itself"


def test_bad_documents_are_reported_and_the_rest_indexed(tiny, capsys):
    corpus = tiny.corpus_dir
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (corpus / "latin1.txt").write_bytes("Bistånd".encode("latin-1"))
    (corpus / "empty.md").write_text("", encoding="utf-8")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    code = build_index_cli(tiny)
    out = capsys.readouterr()
    assert code == 1, "a failed document makes the exit status say so"
    for name in ("binary.txt", "latin1.txt", "empty.md", "broken.pdf"):
        assert name in out.err
    assert "Traceback" not in out.err
    assert {d.id for d in load_index(tiny).documents()} == {"note", "other"}


def test_a_failed_build_leaves_the_previous_index_serving(tiny):
    build_index(tiny)
    before = current_path(tiny.index_dir)
    for path in tiny.corpus_dir.iterdir():
        path.write_bytes(b"\x00garbage")
    with pytest.raises(IndexUnavailable):
        build_index(tiny)
    assert current_path(tiny.index_dir) == before
    assert len(all_passages(load_index(tiny))) >= 2
    assert not [p for p in (tiny.index_dir / "builds").iterdir() if p.name.startswith(".tmp")]


def test_incremental_build_embeds_only_what_changed(tiny):
    first = build_index(tiny)
    assert not is_stale(tiny)
    again = build_index(tiny)
    assert again.embedded == 0
    (tiny.corpus_dir / "other.txt").write_text(OTHER + "\nA new paragraph about Geneva.\n", encoding="utf-8")
    assert is_stale(tiny)
    third = build_index(tiny)
    assert 0 < third.embedded < third.passages
    assert third.build_id != first.build_id


def test_a_changed_glossary_makes_the_index_stale(tiny, monkeypatch):
    """Swedish passages are indexed with the glossary's English glosses: a build made with another
    glossary has other tokens, so ``make run`` (``index --if-stale``) rebuilds it."""
    from assistant.indexing import staleness

    build_index(tiny)
    assert not is_stale(tiny)
    monkeypatch.setattr(staleness, "analysis_version", lambda: "another glossary")
    assert is_stale(tiny)


def test_index_from_another_model_is_refused(tiny):
    build_index(tiny)
    other = tiny.model_copy(update={"embedding_model": "minilm"})
    with pytest.raises(IndexUnavailable, match="re-index"):
        load_index(other)


def test_missing_index_says_what_to_do(tmp_path):
    settings = make_settings(tmp_path, tmp_path)
    with pytest.raises(IndexUnavailable, match="assistant index"):
        load_index(settings)


@pytest.mark.parametrize("failing", ["faiss", "bm25", "manifest", "publish"])
def test_a_build_that_fails_while_writing_leaves_the_previous_index_serving(tiny, monkeypatch, failing):
    """The build gets as far as writing files (or swapping the link) and then fails: the swap
    never half-happens, the old build stays current and loadable, and no temporary directory is left."""
    import bm25s
    import faiss

    import assistant.stores.local as local

    build_index(tiny)
    before = current_path(tiny.index_dir)
    (tiny.corpus_dir / "other.txt").write_text(OTHER + "\nA new paragraph about Geneva.\n", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError(f"disk full while writing ({failing})")

    if failing == "faiss":
        monkeypatch.setattr(faiss, "write_index", boom)
    elif failing == "bm25":
        monkeypatch.setattr(bm25s.BM25, "save", boom)
    elif failing == "manifest":
        real = local.Path.write_text
        monkeypatch.setattr(local.Path, "write_text",
                            lambda self, *a, **k: boom() if self.name == "manifest.json" else real(self, *a, **k))
    else:
        monkeypatch.setattr(local, "_publish", boom)
    with pytest.raises(OSError, match="disk full"):
        build_index(tiny)
    monkeypatch.undo()
    assert current_path(tiny.index_dir) == before
    loaded = load_index(tiny)
    assert loaded.path == before and not any("Geneva" in n.text for n in all_passages(loaded))
    assert not [p for p in (tiny.index_dir / "builds").iterdir() if p.name.startswith(".tmp")]
    assert not [p for p in tiny.index_dir.iterdir() if ".tmp" in p.name]


def test_a_build_is_on_disk_before_it_is_published(tiny, monkeypatch):
    """Every file of the build is fsynced before the build directory is renamed, and the index
    directory is fsynced around the swap of the ``current`` link."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", f"{src} -> {dst}"))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    report = build_index(tiny)
    monkeypatch.undo()
    renames = [i for i, (kind, what) in enumerate(events) if kind == "replace" and "/.tmp-" in what]
    swaps = [i for i, (kind, what) in enumerate(events) if kind == "replace" and what.endswith("/current")]
    assert len(renames) == 1 and len(swaps) == 1 and renames[0] < swaps[0]
    synced_before = {what for kind, what in events[: renames[0]] if kind == "fsync"}
    tmp_name = events[renames[0]][1].split(" -> ")[0]
    build_path = tiny.index_dir / "builds" / report.build_id
    for path in build_path.rglob("*"):
        assert str(path).replace(str(build_path), tmp_name) in synced_before, path
    index_dir = str(tiny.index_dir.resolve())
    assert ("fsync", index_dir) in events[renames[0]: swaps[0]]  # the new link is on disk before the swap
    assert ("fsync", index_dir) in events[swaps[0]:]  # and the swap itself after it


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/hostname", "sub/../../outside.txt", "."])
def test_catalog_files_outside_the_corpus_are_refused(tiny, bad, capsys):
    from assistant.catalog import CatalogError

    (tiny.corpus_dir.parent / "outside.txt").write_text("Secret text outside the corpus.\n", encoding="utf-8")
    (tiny.corpus_dir / "catalog.toml").write_text(
        f'[[documents]]\nid = "evil"\nfile = "{bad}"\ntitle = "Evil"\n', encoding="utf-8"
    )
    with pytest.raises(CatalogError, match="not a file inside"):
        build_index(tiny)
    assert build_index_cli(tiny) == 2  # a clear error, no traceback
    err = capsys.readouterr().err
    assert "not a file inside" in " ".join(err.split()) and "Traceback" not in err
