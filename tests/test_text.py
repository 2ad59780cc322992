"""The shared text concepts: years, figures and sentences (abbreviations do not end a sentence)."""

from __future__ import annotations

import pytest

from assistant.text import YEAR, format_number, sentences


@pytest.mark.parametrize("text, expected", [
    ("IOM received approx. USD 5 million. It was spent.", ["IOM received approx. USD 5 million.", "It was spent."]),
    ("Sverige bidrog med ca. 80 miljoner kronor. Det var kärnstöd.",
     ["Sverige bidrog med ca. 80 miljoner kronor.", "Det var kärnstöd."]),
    ("Several countries, e.g. Sudan and Libya, were covered. Next.", ["Several countries, e.g. Sudan and Libya, were covered.", "Next."]),
    ("See resolution No. 1309 of the Council. Then more.", ["See resolution No. 1309 of the Council.", "Then more."]),
    ("Stödet avser bl.a. Libyen. Slut.", ["Stödet avser bl.a. Libyen.", "Slut."]),
    ("First point; Second point. Third.", ["First point;", "Second point.", "Third."]),
    ("A list:\n- one item\n- another item", ["A list:", "- one item", "- another item"]),
])
def test_sentences_do_not_break_at_abbreviations(text, expected):
    assert sentences(text) == expected


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
