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
