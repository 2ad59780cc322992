"""The shared text concepts: years, figures, sentences (abbreviations and list marks do not end a sentence) and footnotes."""

from __future__ import annotations

import pytest

from assistant.text import (YEAR, closes_sentence, footnotes, format_number, has_number, note_marks, number_key, numbers_in,
                            on_footnote_line, sentences)


@pytest.mark.parametrize("text, expected", [
    ("IOM received approx. USD 5 million. It was spent.", ["IOM received approx. USD 5 million.", "It was spent."]),
    ("Sverige bidrog med ca. 80 miljoner kronor. Det var kärnstöd.",
     ["Sverige bidrog med ca. 80 miljoner kronor.", "Det var kärnstöd."]),
    ("Several countries, e.g. Sudan and Libya, were covered. Next.", ["Several countries, e.g. Sudan and Libya, were covered.", "Next."]),
    ("See resolution No. 1309 of the Council. Then more.", ["See resolution No. 1309 of the Council.", "Then more."]),
    ("Stödet avser bl.a. Libyen. Slut.", ["Stödet avser bl.a. Libyen.", "Slut."]),
    ("First point; Second point. Third.", ["First point;", "Second point.", "Third."]),
    ("A list:\n- one item\n- another item", ["A list:", "- one item", "- another item"]),
    ("Criteria:\n- a. Applying an approach;\n- b. Using tools.", ["Criteria:", "- a. Applying an approach;", "- b. Using tools."]),
    ("The region is covered.\n\n342. IOM added a post.", ["The region is covered.", "342.", "IOM added a post."]),
    ("¹ Prop. 2002/03:112\n\n⁴ Skr. 2016/17:60", ["¹ Prop. 2002/03:112", "⁴ Skr. 2016/17:60"]),
])
def test_sentences_do_not_break_at_abbreviations(text, expected):
    assert sentences(text) == expected


def test_the_chunker_cuts_where_the_one_splitter_ends_a_sentence():
    assert closes_sentence("IOM received USD 5 million.")
    assert closes_sentence("It was spent. The next sentence starts here and")
    assert not closes_sentence("IOM received approx.")  # an abbreviation does not end it
    assert not closes_sentence("Sverige bidrog med ca.")
    assert not closes_sentence("a clause, and then")


def test_sentences_are_exact_spans():
    text = "  IOM grew by 25 per cent.   Approx. USD 2 billion was spent.  "
    for s in sentences(text):
        assert s in text and s == s.strip()


def test_years_and_figures():
    assert YEAR.findall("in 1951, 2019 and 2022, not 20221 or 3 508 772") == ["1951", "2019", "2022"]
    assert format_number("3 508 772") == "3,508,772"
    assert format_number("(128 410)") == "(128,410)"
    assert format_number("1,000,000.00") == "1,000,000"
    assert format_number("2022") == "2022"
    assert format_number("n/a") == "n/a"


def test_a_number_has_one_form_however_it_is_written():
    """One definition serves the BM25 tokens, an answer's grounding and table cells."""
    from assistant.evidence import cell_value
    from assistant.generative import source_numbers
    from assistant.lexical import words

    for written in ("3 508 772", "3,508,772", "3508772", "3\u00a0508\u00a0772", "3\u2009508\u2009772", "3,508,772.00"):
        assert number_key(written) == "3508772", written
        assert words(f"USD {written} in total") == ["usd", "3508772", "in", "total"], written
        assert "3508772" in source_numbers(f"gave USD {written}."), written
        assert cell_value(written) == 3508772.0, written
    assert [number_key(n) for n in ("20.30", "3,5", "0782")] == ["20.3", "3.5", "782"]
    assert numbers_in("In 2019, 11 donors gave USD 20.3 million [1][2].") == ["2019", "11", "20.3"]
    assert cell_value("(128 410)") == -128410.0 and cell_value("2022") is None and cell_value("-") is None
    assert has_number("Phase II: 25 per cent") and not has_number("Phase II: a quarter")


def test_relative_years():
    from assistant.text import relative_years

    assert relative_years("by the end of 2020, versus a year earlier?", [2020]) == [2019]
    assert relative_years("users at the end of 2019, and a year later?", [2019]) == [2020]
    assert relative_years("hur många 2020 jämfört med året innan?", [2020]) == [2019]
    assert relative_years("a year earlier", []) == []
    assert relative_years("in 2019 and 2020", [2019, 2020]) == []


def test_question_parts_and_scopes():
    from assistant.catalog import load_catalog
    from assistant.query import question_parts
    from assistant.scopes import question_scopes
    from assistant.settings import ROOT

    assert question_parts("How many sessions did IOM deliver in 2019, and how many personnel were trained?") == [
        "How many sessions did IOM deliver in 2019", "how many personnel were trained"]
    assert question_parts("Has quality improved? What did the 2020 meta-evaluation find?") == [
        "Has quality improved", "What did the 2020 meta-evaluation find"]
    assert question_parts("What did Denmark and Sweden give?") == []
    # another year is another side of the same question, not a second question
    assert question_parts("How many refugees did IOM help repatriate in 2019, and what about 2020?") == []
    docs = load_catalog(ROOT / "corpus")
    two_reports = question_scopes([2019, 2020], [], docs)
    assert [s.year for s in two_reports] == [2019, 2020]
    assert "iom-ar-2019" in two_reports[0].documents and "iom-ar-2020" not in two_reports[0].documents
    assert question_scopes([2024, 2025], [], docs) == []  # one document covers both: one side
    assert [s.documents for s in question_scopes([], ["dk-2018-2020", "dk-2023-2026"], docs)] == [
        ("dk-2018-2020",), ("dk-2023-2026",)]


def test_a_swedish_question_searches_the_english_of_its_compounds():
    """"hälsobedömningar" is in no lexicon; its parts are (hälsa + bedömning): the question also
    searches English passages for health and assessment."""
    from assistant.lexical import stem
    from assistant.query import Vocabulary, search_tokens

    passages = Vocabulary.of({"health", "assessment", "assessments", "migration", "iom"})
    tokens = search_tokens("Hur många hälsobedömningar gjorde IOM 2019?", True, passages)
    assert stem("health") in tokens and stem("assessment") in tokens
    assert stem("health") not in search_tokens("How many were made in 2019?", False, passages)


def test_a_label_is_not_a_figure_stated():
    from assistant.text import states_figure

    assert not states_figure("The office moved to Copenhagen in 2022. See the structure in Annex 1.")
    assert states_figure("Some 15 people work in the office (Annex 1).")



def test_the_figures_a_text_states_leave_out_years_labels_and_citation_markers():
    from assistant.text import figures_in

    assert figures_in("**Unearmarked: USD 3,508,772**, per Annex 2: Overview of funding in 2022. [1]") == {"3508772"}
    assert figures_in("2\tUnited States of America\t(6,000,000.00)") == {"2", "6000000"}


def test_footnote_marks_and_footnotes():
    """A mark stands on the word it annotates; a footnote is a line that opens with its mark. "¹²" is
    one mark, not "¹" and "²"."""
    text = ("Strategin utgår från politiken för global utveckling¹, målen² och MOPAN⁵-utvärderingen. "
            "Part I covers the budget.¹²\n\n¹ Prop. 2002/03:112\n\n¹² Adopted in 1954")
    assert note_marks(text) == ["¹", "²", "⁵", "¹²"]
    assert footnotes(text) == {"¹": "¹ Prop. 2002/03:112", "¹²": "¹² Adopted in 1954"}
    assert on_footnote_line(text, text.index("2002/03")) and not on_footnote_line(text, text.index("MOPAN"))
