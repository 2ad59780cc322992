"""Evidence spans: sentences, table rows and two-sentence windows, each an exact substring of its
passage; spans that state the same thing count once."""

from __future__ import annotations

from llama_index.core.schema import NodeWithScore, TextNode

from assistant.evidence import (CONTEXT_WEIGHT, WINDOW_CHARS, IdfTable, apart_from_best, extreme_rows, holds_place,
                                same_evidence, score_candidates, sentence_windows, split_spans)
from assistant.names import named_terms
from assistant.query import QueryPlan, asked_place, figure_pattern, term_groups

TEXT = ("The Office of the Inspector General reviewed risk management in 2021. "
        "This concluded that IOM's current level of maturity is \"developing\". " + "A long sentence. " * 3)


def test_windows_join_two_sentences_as_an_exact_substring():
    node = TextNode(text=TEXT, metadata={"kind": "text"})
    spans = split_spans(node)
    windows = sentence_windows(node, spans)
    assert windows and all(w in TEXT and len(w) <= WINDOW_CHARS for w, _ in windows)
    first, at = windows[0]
    assert at == 0 and first.startswith(spans[0][0]) and first.endswith(spans[1][0])


def test_a_table_has_no_windows():
    node = TextNode(text="Donor\tAmount\nDenmark\t1,000\nSweden\t2,000", metadata={"kind": "table", "table_header": "Donor\tAmount"})
    assert sentence_windows(node, split_spans(node)) == []


def test_a_sentence_its_window_and_its_numbered_copy_are_the_same_evidence():
    sentence = "By the end of the year, approximately 13,500 IOM staff had completed the course."
    window = sentence + " The course, launched in 2017, covers fraud."
    assert same_evidence(sentence, window) and same_evidence("247. " + sentence, window)
    assert not same_evidence(sentence, "By the end of 2020, approximately 19,400 staff had completed the course.")
    assert apart_from_best([window, sentence, "Something else entirely, said at some length."]) == [0, 2]


def test_a_listed_abbreviation_is_a_name_with_the_words_passages_use():
    assert named_terms("How much did the UK give IOM in 2022?") == ["uk"]
    [uk] = [g for g in term_groups("How much did the UK give IOM in 2022?") if "uk" in g]
    assert "kingdom" in uk


def test_the_size_of_a_change_is_a_percentage_or_an_amount():
    change = figure_pattern("By how much has the operational part of IOM's budget grown?")
    assert change.search("ökat med omkring 25 procent") and change.search("from USD 1 billion to USD 2 billion")
    assert not change.search("in 2019 and 2020")


RANKING = [("1\tSweden\t(7,915,306.00)", True), ("5\tNorway\t(3,355,705.00)", True), ("16\tPhilippines\t(10,000.00)", True)]


def test_the_row_at_the_asked_place_of_a_ranking():
    assert asked_place("Which donor came fifth in IOM's 2022 ranking?") == "5"
    assert asked_place("Vilken givare kom på åttonde plats?") == "8"
    assert asked_place("When did IOM first open an office in Denmark?") is None
    assert holds_place("5\tNorway\t(3,355,705.00)", "Ranking\tDonor\t2022", "Annex 3: Donor ranking", "5")
    assert not holds_place("5\tNorway\t(3,355,705.00)", "Ranking\tDonor\t2022", "Annex 3: Donor ranking", "4")
    # "where did Norway rank?" names no place: any row with a place in its rank cell holds one
    assert holds_place("5\tNorway\t(3,355,705.00)", "Ranking\tDonor\t2022", "Annex 3: Donor ranking", None, any_place=True)
    assert not holds_place("Total\t\t33,248,178", "Ranking\tDonor\t2022", "Annex 3: Donor ranking", None, any_place=True)
    assert holds_place("5\tNorway\t(3,355,705.00)", None, "Annex 3: Donor ranking", "5"), "a ranking table's first cell"
    assert not holds_place("5\tNorway\t(3,355,705.00)", None, "Annex 2: Funding overview", "5")


def test_figures_all_in_brackets_are_the_table_s_notation_not_negatives():
    assert extreme_rows(RANKING, "max") == {"1\tSweden\t(7,915,306.00)"}
    assert extreme_rows(RANKING, "min") == {"16\tPhilippines\t(10,000.00)"}
    refunds = [("Project A\t500", True), ("Project B - for refund\t(128 410)", True)]
    assert extreme_rows(refunds, "min") == {"Project B - for refund\t(128 410)"}, "one bracketed figure is a negative"


def test_a_row_states_its_figures_with_its_table_s_currency_and_scale():
    from assistant.evidence import row_as_stated

    assert row_as_stated("a. Core funding\t06.32.10.14\t48\t48", {"currency": "DKK", "scale": "million"}) == \
        "a. Core funding\t06.32.10.14\tDKK 48 million\tDKK 48 million"
    assert row_as_stated("Percentage of women\t28%", {"currency": "USD"}) == "Percentage of women\t28%"


def test_a_row_s_own_cells_tell_it_from_the_other_rows_of_its_table():
    from assistant.evidence import IdfTable, score_candidates
    from assistant.query import QueryPlan, term_groups
    from llama_index.core.schema import NodeWithScore

    header = "Donor and Project Title\tUnearmarked\tEarmarked"
    table = TextNode(text="Annex 2: Danish funding in 2022\n" + header + "\nFund received in (2022)\t\t89\n"
                     "Total Denmark - Unearmarked and Earmarked\t3 508 772\t16 835 919",
                     metadata={"kind": "table", "table_header": header, "document_id": "dk", "section": "Annex 2: Danish funding in 2022",
                               "title": "Danish strategy", "language": "en", "currency": "USD"})
    q = "What did Denmark give IOM unearmarked in 2022?"
    plan = QueryPlan(question=q, tokens=[], years=[2022], terms=term_groups(q), names=["denmark"])
    cands = {c.quote.split("\t")[0]: c.features for c in score_candidates(plan, [NodeWithScore(node=table, score=1.0)],
                                                                          IdfTable([["x"]]), {})}
    total, fund = cands["Total Denmark - Unearmarked and Earmarked"], cands["Fund received in (2022)"]
    assert total["own_cov"] == fund["own_cov"], "with the header's words, every row covers the question alike"
    assert total["label_cov"] > fund["label_cov"]


def test_a_table_of_contents_is_not_evidence():
    from assistant.evidence import CONTENTS

    assert CONTENTS.match("Content") and CONTENTS.match("Table of contents") and CONTENTS.match("Innehållsförteckning")
    assert not CONTENTS.match("Content of the partnership")


def test_the_owner_of_a_named_document_is_not_a_subject():
    from assistant.names import document_owners

    assert document_owners("According to Sweden's strategy, what does IOM's mandate cover?") == {"sweden"}
    assert document_owners("What does the Swedish strategy say about Denmark?") == {"swedish"}
    assert document_owners("How much did Denmark give?") == set()


def test_a_weight_learned_against_its_meaning_is_left_out():
    import numpy as np
    from assistant.evals.train_ranker import signed_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] - 0.8 * x[:, 1] + rng.normal(scale=0.3, size=400) > 0).astype(int)
    free, _ = signed_logistic(x, y, 1.0, ["something", "other"])
    assert free[1] < 0
    signed, _ = signed_logistic(x, y, 1.0, ["something", "column"])  # "column" may only help
    assert signed[1] == 0.0 and signed[0] > 0


def test_what_someone_gave_asks_for_an_amount_of_money():
    from assistant.query import MONEY

    for q in ("What did Denmark give IOM unearmarked in 2022?", "And what did Norway contribute?", "Vad gav Sverige IOM 2019?"):
        assert figure_pattern(q) is MONEY, q
    for q in ("What does Denmark give priority to?", "What did the review find?"):
        assert figure_pattern(q) is None, q


def test_a_follow_ups_context_counts_in_the_coverage_of_its_evidence():
    """"And among ungraded staff?" after a question about women's shares: the row that also has the
    previous question's words covers more of what is asked than one with the new word alone."""
    text = "Ungraded staff numbers rose.\n\nThe share of women among ungraded staff was 55%."
    node = TextNode(text=text, metadata={"kind": "text", "document_id": "d", "language": "en"})
    idf = IdfTable([["ungrad", "staff", "women", "share"], ["staff"], ["other"]])
    plan = QueryPlan(question="And among ungraded staff?", tokens=["ungrad", "staff"],
                     terms=[frozenset({"ungrad"}), frozenset({"staff"})])
    followed = QueryPlan(question=plan.question, tokens=plan.tokens, terms=plan.terms,
                         context_terms=[frozenset({"women"}), frozenset({"share"})])
    cov = {c.quote: c.features["cov"] for c in score_candidates(followed, [NodeWithScore(node=node, score=1.0)], idf, {},
                                                                 windows=False)}
    alone = {c.quote: c.features["cov"] for c in score_candidates(plan, [NodeWithScore(node=node, score=1.0)], idf, {},
                                                                  windows=False)}
    share, rose = "The share of women among ungraded staff was 55%.", "Ungraded staff numbers rose."
    assert CONTEXT_WEIGHT > 0 and alone[share] == alone[rose] == 1.0
    assert cov[share] == 1.0 and cov[rose] < 1.0
