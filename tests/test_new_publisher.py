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
