"""One definition of the text concepts every stage shares: years, figures, currencies and sentences.

- ``YEAR``: a calendar year 1900-2099 standing alone ("2022", not "20221"); ``YEAR_IN_NAME`` in names.
- ``format_number``: a figure as a reader expects it (``3 508 772`` -> ``3,508,772``).
- ``sentence_spans``: sentences (and bullet items) of a text as exact character spans, not cut at
  abbreviations ("approx. USD 5 million", "ca. 80 miljoner", "e.g. Sudan", "No. 12").
"""

from __future__ import annotations

import re

YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
YEAR_IN_NAME = re.compile(r"(?:19|20)\d\d")
"""A year inside a file name or a catalog period ("dk_strategy_2023", "2023-2026"), where ``_`` may
join it to a word."""
NUMBER = re.compile(r"\d{1,3}(?:[ \u00a0\u202f,]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?")
"""A figure: digits with thousands groups of exactly three (``3 508 772``, ``3,508,772``), or plain
digits with decimals (``20.3``). "2019, 11 donors" is two figures, not one."""
CURRENCY_CODES = "USD|SEK|DKK|CHF|EUR"
"""The currencies the documents state amounts in (a regex alternation): one list for the chunker's
table currency, the figures an answer states and the money a question asks for."""
AMOUNT_WORDS = "million|billion|miljoner|miljarder|kronor"
"""Words after a figure that make it an amount."""
FIGURE = re.compile(
    rf"(?:(?:{CURRENCY_CODES}|US\$)\s?)?(?:{NUMBER.pattern})"
    rf"(?:\s?(?:%|per\s?cent|procent|{AMOUNT_WORDS}))?"
)
"""A figure with its currency before it and its unit after it, as an answer states it."""

# A break candidate: sentence punctuation then space before what can start a sentence, a blank
# line, or a new line that opens a bullet or a numbered item.
_BREAK = re.compile(r"(?<=[.!?;])\s+(?=[A-ZÅÄÖ0-9(•\-–])|\n\s*\n|\n(?=\s*(?:[-•▪●]|\d{1,3}\.)\s)")
# Words that end in a full stop without ending the sentence (English and Swedish), lower-case,
# without their final stop.
ABBREVIATIONS = frozenset(
    """approx ca cf e.g i.e etc incl excl no nos nr vs viz mr mrs ms dr prof st para paras fig figs art vol p pp
    sect ch annex app est jan feb mar apr jun jul aug sep sept oct nov dec int dept govt
    t.ex bl.a m.m s.k dvs jfr resp kap milj mdkr mnkr tkr osv o.s.v f.d inkl exkl ang enl""".split()
)
_LAST_WORD = re.compile(r"([A-Za-zÅÄÖåäö](?:[A-Za-zÅÄÖåäö.]*[A-Za-zÅÄÖåäö])?)\.$")


def _is_abbreviation(before: str) -> bool:
    m = _LAST_WORD.search(before)
    if not m:
        return False
    word = m.group(1)
    return word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isupper())  # an initial: "H. Smith"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in list(_BREAK.finditer(text)) + [None]:
        if m is not None and text[m.start() - 1: m.start()] == "." and _is_abbreviation(text[pos: m.start()]):
            continue
        end = m.start() if m else len(text)
        piece = text[pos:end]
        lead = len(piece) - len(piece.lstrip())
        if piece.strip():
            spans.append((pos + lead, pos + len(piece.rstrip())))
        pos = m.end() if m else len(text)
    return spans


CITATION_MARKER = re.compile(r"\[\d+\]")


def lead_text(answer: str) -> str:
    """An answer's lead: its text up to the first citation marker ``[n]`` (all of it without one)."""
    m = CITATION_MARKER.search(answer)
    return answer[: m.start()] if m else answer


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def format_number(raw: str) -> str:
    """``3 508 772`` -> ``3,508,772``; ``(128 410)`` -> ``(128,410)``: brackets stay, as the source has them
    (a refund in one table, a plain credit in another). A year or a non-figure is returned as it is."""
    s = raw.strip()
    digits = re.sub(r"[()\s\u00a0,-]", "", s)
    if re.fullmatch(r"\d+(\.\d+)?", digits) and not YEAR.fullmatch(digits):
        whole, _, frac = digits.partition(".")
        text = f"{int(whole):,}" + (f".{frac}" if frac and set(frac) != {"0"} else "")
        return f"({text})" if s.startswith("(") else (f"-{text}" if s.startswith("-") else text)
    return s
