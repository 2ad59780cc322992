"""The index store: real embeddings on a tiny corpus the tests write; atomic, incremental, checked."""

from __future__ import annotations

import pytest

from assistant.indexing import IndexUnavailable, build_index, build_index_cli, current_path, is_stale, load_index
from conftest import make_settings

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
    index = load_index(tiny)
    assert {d.id for d in index.documents} == {"note", "other"}
    assert index.faiss_index.ntotal == len(index.nodes) == report.passages
    assert index.manifest["chunker_version"] and index.manifest["dims"] == 384


def test_every_sentence_and_row_has_its_own_vector(tiny):
    from assistant.evidence import split_spans

    build_index(tiny)
    index = load_index(tiny)
    assert index.span_vectors.shape == (sum(len(split_spans(n)) for n in index.nodes), 384)
    for node in index.nodes:
        start, count = index.span_rows[node.node_id]
        assert count == len(split_spans(node))
    query = index.span_vectors[0]
    similarity = index.span_similarity(query)(index.nodes[0].node_id, index.span_rows[index.nodes[0].node_id][1])
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
    assert {d.id for d in load_index(tiny).documents} == {"note", "other"}


def test_a_failed_build_leaves_the_previous_index_serving(tiny):
    build_index(tiny)
    before = current_path(tiny.index_dir)
    for path in tiny.corpus_dir.iterdir():
        path.write_bytes(b"\x00garbage")
    with pytest.raises(IndexUnavailable):
        build_index(tiny)
    assert current_path(tiny.index_dir) == before
    assert len(load_index(tiny).nodes) >= 2
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
    assert third.path != first.path


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

    import assistant.indexing as indexing

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
        real = indexing.Path.write_text
        monkeypatch.setattr(indexing.Path, "write_text",
                            lambda self, *a, **k: boom() if self.name == "manifest.json" else real(self, *a, **k))
    else:
        monkeypatch.setattr(indexing, "_publish", boom)
    with pytest.raises(OSError, match="disk full"):
        build_index(tiny)
    monkeypatch.undo()
    assert current_path(tiny.index_dir) == before
    loaded = load_index(tiny)
    assert loaded.path == before and not any("Geneva" in n.text for n in loaded.nodes)
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
    for path in report.path.rglob("*"):
        assert str(path).replace(str(report.path), tmp_name) in synced_before, path
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
