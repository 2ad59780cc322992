"""A sixth document from a publisher the code has never seen, added with a catalog entry only.

``tests/fixtures/no-iom-strategy-2024-2027.txt`` is a short Norwegian strategy for IOM (in English,
written for this test). It joins the fixture corpus with nothing but its ``[[documents]]`` entry
(title, publisher, period, aliases): no code, names or rules change. The answerer must then route
a question that names it to it, answer from it with a citation, and refuse a year it does not cover
while naming it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import _built, _loaded, fixture_corpus

FIXTURES = Path(__file__).parent / "fixtures"
NORWAY = {
    "id": "no-2024-2027",
    "file": "no-iom-strategy-2024-2027.txt",
    "title": "Norwegian Strategy for Cooperation with IOM 2024-2027",
    "publisher": "Royal Norwegian Ministry of Foreign Affairs",
    "language": "en",
    "year": 2024,
    "period": "2024-2027",
    "doc_type": "strategy",
    "aliases": ["norwegian strategy", "norway's strategy", "strategy for norway"],
}


@pytest.fixture(scope="module")
def norway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("norway")
    corpus = fixture_corpus(tmp / "corpus")
    shutil.copy(FIXTURES / NORWAY["file"], corpus / NORWAY["file"])
    entry = ["", "[[documents]]"] + [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in NORWAY.items()]
    with open(corpus / "catalog.toml", "a", encoding="utf-8") as f:
        f.write("\n".join(entry) + "\n")
    return _loaded(_built(tmp, corpus))


def test_the_new_document_is_catalogued_and_indexed(norway):
    doc = norway.document(NORWAY["id"])
    assert doc.publisher == NORWAY["publisher"] and doc.years == (2024, 2027)
    assert doc.passage_count >= 4


def test_a_question_that_names_it_is_routed_to_it(norway):
    retriever = norway.parts().retriever
    for question in ("What are the priorities of the Norwegian strategy?",
                     "Which priorities does Norway's strategy for IOM set?"):
        plan = retriever.plan(question)
        assert plan.documents == [NORWAY["id"]], (question, plan.documents)
        hits = retriever.search(plan, 5)
        assert hits[0].node.metadata["document_id"] == NORWAY["id"]


def test_the_answer_names_its_figure_and_cites_it(norway):
    answer = norway.ask("How much unearmarked core funding did Norway give IOM in 2023?")
    assert answer.answered, answer.answer
    lead = answer.citations[0]
    assert lead.document_id == NORWAY["id"] and lead.title == NORWAY["title"]
    assert "95" in answer.answer.split("[1]")[0]
    assert lead.quote in next(p.text for p in answer.passages if p.id == lead.passage_id)


def test_a_year_it_does_not_cover_is_refused_and_the_refusal_names_it(norway):
    """Norway's funding is given for 2021-2023 only: asked for another year, the answerer refuses
    and says what the new document does give, naming it."""
    for question in ("How much did Norway give IOM unearmarked in 2019?",
                     "What did Norway contribute to IOM in 2017?"):
        answer = norway.ask(question)
        assert not answer.answered, (question, answer.answer)
        assert not answer.citations
        assert NORWAY["title"] in answer.answer and "only for 2023" in answer.answer, answer.answer


# --- a new document family: its running headers come from the catalog, not from code ----------

REVIEW = {
    "id": "no-review-2024",
    "file": "no-iom-annual-review-2024.txt",
    "title": "Annual Review of Norway's Cooperation with IOM 2024",
    "publisher": "Royal Norwegian Ministry of Foreign Affairs",
    "year": 2024,
    "period": "2024",
}
HEADER = "NMFA/IOM/REV/2024"  # the review's document code, repeated at the top of every page


def _review_corpus(corpus: Path, family: dict | None) -> Path:
    """The fixture review alone, its catalog giving it a family with ``family`` (a table) or none."""
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / REVIEW["file"], corpus / REVIEW["file"])
    lines = []
    if family is not None:
        lines += ["[families.nmfa-review]"] + [f"{k} = {json.dumps(v)}" for k, v in family.items()] + [""]
    entry = {**REVIEW, **({"family": "nmfa-review"} if family is not None else {})}
    lines += ["[[documents]]"] + [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()]
    (corpus / "catalog.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus


def _indexed_passages(settings) -> list:
    service = _loaded(settings)
    return service.search("Norway funding Afghanistan Sudan returns review", top_k=20)


def test_a_running_header_given_by_the_catalog_is_stripped_from_the_chunks(tmp_path):
    """Page breaks of the review cut a paragraph, and its code heads every page. Given as its family's
    running header in the catalog (no code), the code is in no passage, no section and no quote;
    without it, the same chunker keeps it (the catalog is what strips it). Editing the pattern makes
    the index stale."""
    from assistant.indexing import is_stale

    from conftest import make_settings

    pattern = {"running_headers": [r"NMFA/IOM/REV/\d{4}"]}
    kept = _indexed_passages(_built(tmp_path / "none", _review_corpus(tmp_path / "none" / "corpus", None),
                                    embedding_model="hash"))
    assert any(HEADER in p.text for p in kept)

    settings = _built(tmp_path / "family", _review_corpus(tmp_path / "family" / "corpus", pattern),
                      embedding_model="hash")
    passages = _indexed_passages(settings)
    assert len(passages) == len(kept) >= 3
    assert not any(HEADER in p.text or HEADER in (p.section or "") for p in passages)
    assert any(p.text.startswith("Afghanistan, where needs were greatest.") for p in passages)
    assert {p.page for p in passages} == {2, 3}

    assert not is_stale(settings)
    _review_corpus(settings.corpus_dir, {"running_headers": [r"NMFA/IOM/\w+/\d{4}"]})
    assert is_stale(make_settings(tmp_path / "family", settings.corpus_dir, embedding_model="hash"))


def test_a_catalog_family_must_exist_and_its_patterns_compile(tmp_path):
    from assistant.catalog import CatalogError, load_catalog

    corpus = _review_corpus(tmp_path / "a", {"running_headers": [r"NMFA/IOM/REV/\d{4}"]})
    (doc,) = load_catalog(corpus)
    assert doc.family == "nmfa-review" and doc.running_headers == [r"NMFA/IOM/REV/\d{4}"]
    from assistant.api.models import DocumentOut

    assert "running_headers" not in DocumentOut(**doc.model_dump()).model_dump()  # the chunker's, not the API's
    text = (corpus / "catalog.toml").read_text(encoding="utf-8")
    (corpus / "catalog.toml").write_text(text.replace("[families.nmfa-review]", "[families.other]"), encoding="utf-8")
    with pytest.raises(CatalogError, match="families.nmfa-review"):
        load_catalog(corpus)
    _review_corpus(corpus, {"running_headers": ["NMFA/(IOM"]})
    with pytest.raises(CatalogError, match="running header"):
        load_catalog(corpus)
