"""One definition of the text concepts every stage shares: years, figures, currencies and sentences.

- ``YEAR``: a calendar year 1900-2099 standing alone ("2022", not "20221"); ``YEAR_IN_NAME`` in names.
- ``NUMBER``, ``number_key``: a figure as written, and the one form it is compared in (BM25 tokens,
  an answer's grounding, table cells): ``3 508 772``, ``3,508,772`` and ``3508772`` are one number.
- ``format_number``: a figure as a reader expects it (``3 508 772`` -> ``3,508,772``).
- ``sentence_spans``: sentences (and bullet items) of a text as exact character spans, not cut at
  abbreviations ("approx. USD 5 million", "ca. 80 miljoner", "e.g. Sudan", "No. 12"); the one
  splitter (the chunker's ``closes_sentence``, the evidence's spans).
- ``FOOTNOTE``, ``note_marks``, ``footnotes``: a footnote line ("⁵ Multilateral ..."), the marks a
  sentence carries ("MOPAN⁵-utvärderingen"), and a text's footnotes by mark.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from decimal import Decimal, InvalidOperation

YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
_RANGE = re.compile(
    r"\b((?:19|20)\d\d)\s*(?:-|–|—|to|till|until|through)\s*((?:19|20)\d\d)\b|"
    r"\b(?:between|from|mellan|från)\s+((?:19|20)\d\d)\s+(?:and|to|och|till)\s+((?:19|20)\d\d)\b", re.I)


def year_range(text: str) -> tuple[int, int] | None:
    """The period a text asks about as a whole: "over 2013-2017", "between 2013 and 2017"."""
    m = _RANGE.search(text)
    if not m:
        return None
    a, b = (int(y) for y in m.groups() if y)
    return (a, b) if a < b else None


ORDINALS = {w: str(n) for n, ws in enumerate((
    (), ("first", "1st", "första"), ("second", "2nd", "andra"), ("third", "3rd", "tredje"), ("fourth", "4th", "fjärde"),
    ("fifth", "5th", "femte"), ("sixth", "6th", "sjätte"), ("seventh", "7th", "sjunde"), ("eighth", "8th", "åttonde"),
    ("ninth", "9th", "nionde"), ("tenth", "10th", "tionde"), ("eleventh", "11th", "elfte"), ("twelfth", "12th", "tolfte"),
    ("thirteenth", "13th", "trettonde"), ("fourteenth", "14th", "fjortonde"), ("fifteenth", "15th", "femtonde"),
    ("sixteenth", "16th", "sextonde"), ("seventeenth", "17th", "sjuttonde"), ("eighteenth", "18th", "artonde"),
    ("nineteenth", "19th", "nittonde"), ("twentieth", "20th", "tjugonde"),
)) for w in ws}
"""Ordinal words (English and Swedish) -> the number: "fifth" is rank 5 of a ranking table."""
CARDINALS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|dozen|"
    r"två|tre|fyra|fem|sex|sju|åtta|nio|tio|elva|tolv|tjugo|trettio|fyrtio|femtio|hundra|tusen)(?:-\w+)?\b", re.I)
"""A count written in words ("seventy-seven", "fem år"): a figure, as digits are."""


TIME = re.compile(
    rf"{YEAR.pattern}|\b(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|januari|februari|mars|maj|juni|juli|augusti|oktober|quarter|kvartal|spring|summer|autumn|"
    r"winter|våren|sommaren|hösten|vintern)\b", re.I)
"""A point in time as the documents state one: a year, a month, a quarter or a season."""


_EARLIER = re.compile(
    r"\b(?:(?:a|one) year (?:earlier|before|prior)|the (?:previous|prior|preceding) year|the year before|"
    r"året (?:innan|före)|föregående år|året dessförinnan)\b", re.I)
_LATER = re.compile(
    r"\b(?:(?:a|one) year (?:later|after)|the (?:following|next) year|the year after|året (?:efter|därpå)|"
    r"följande år)\b", re.I)


def says_relative_year(text: str) -> bool:
    """Does the text name a year relative to another one ("a year earlier", "året därpå")?"""
    return bool(_EARLIER.search(text) or _LATER.search(text))


def relative_years(text: str, years: list[int]) -> list[int]:
    """The years a text means relative to the ones it names: "in 2020, versus a year earlier" -> [2019]."""
    if not years:
        return []
    out = [min(years) - 1] if _EARLIER.search(text) else []
    return out + ([max(years) + 1] if _LATER.search(text) else [])


YEAR_IN_NAME = re.compile(r"(?:19|20)\d\d")
"""A year inside a file name or a catalog period ("dk_strategy_2023", "2023-2026"), where ``_`` may
join it to a word."""
_GROUPED = r"\d{1,3}(?:[ \u00a0\u202f\u2009,]\d{3})+(?:\.\d+)?"
NUMBER = re.compile(rf"{_GROUPED}|\d+(?:[.,]\d+)?")
"""A figure: digits with thousands groups of exactly three (``3 508 772``, ``3,508,772``, also with
no-break and thin spaces), or plain digits with decimals (``20.3``, ``3,5``). "2019, 11 donors" is
two figures, not one."""


def number_key(raw: str) -> str:
    """The one form a figure is compared in, however it is written: ``3 508 772``, ``3,508,772``,
    ``3508772`` and ``3,508,772.00`` -> ``3508772``; ``20.30`` -> ``20.3``; ``3,5`` -> ``3.5``;
    ``0782`` -> ``782``. ``raw`` is a ``NUMBER`` match; anything else is returned as it is."""
    number = re.sub(r"[ \u00a0\u202f\u2009,]", "", raw) if re.fullmatch(_GROUPED, raw) else raw.replace(",", ".")
    try:
        value = Decimal(number)
    except InvalidOperation:
        return raw
    return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Every figure in ``text``, by ``number_key``; citation markers ``[n]`` are not figures."""
    return [number_key(m.group(0)) for m in NUMBER.finditer(CITATION_MARKER.sub(" ", text))]


def has_number(text: str) -> bool:
    """Does ``text`` state a figure?"""
    return NUMBER.search(text) is not None


def figures_in(text: str) -> frozenset[str]:
    """The figures ``text`` states (``number_key``), without years and labels ("Annex 2", "P-5")."""
    text = CITATION_MARKER.sub(" ", text)
    return frozenset(number_key(m.group(0)) for m in NUMBER.finditer(text)
                     if not YEAR.fullmatch(m.group(0)) and not is_reference(text, m.start()))


def states_figure(text: str) -> bool:
    """Does the text state a figure as an answer: digits other than a year alone or a label ("Annex 1"),
    or a count in words?"""
    return any(not YEAR.fullmatch(m.group(0)) and not is_reference(text, m.start())
               for m in NUMBER.finditer(text)) or bool(CARDINALS.search(text))


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
    t.ex bl.a m.m s.k dvs jfr resp kap milj mdkr mnkr tkr osv o.s.v f.d inkl exkl ang enl prop skr bet""".split()
)
_LAST_WORD = re.compile(r"([A-Za-zÅÄÖåäö](?:[A-Za-zÅÄÖåäö.]*[A-Za-zÅÄÖåäö])?)\.$")


def _is_abbreviation(before: str) -> bool:
    m = _LAST_WORD.search(before)
    if not m:
        return False
    word = m.group(1)
    return word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isupper())  # an initial: "H. Smith"


_LIST_MARK = re.compile(r"[-•▪●–]\s*(?:[a-z]|\d{1,3}|[ivx]{1,4})\.|(?:[a-z]|[ivx]{1,4})\.", re.I)
"""A list item's mark, which ends in a stop without ending a sentence: "- a.", "- 3.", "iv."
(a bare "300." numbers a paragraph: it stays a span of its own, not a figure of the sentence)."""


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped of surrounding whitespace. A list item's
    mark ("- a. Applying ...") stays with its item."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in list(_BREAK.finditer(text)) + [None]:
        if m is not None and text[m.start() - 1: m.start()] == "." and (
                _LIST_MARK.fullmatch(text[pos: m.start()].strip()) or _is_abbreviation(text[pos: m.start()])):
            continue
        end = m.start() if m else len(text)
        piece = text[pos:end]
        lead = len(piece) - len(piece.lstrip())
        if piece.strip():
            spans.append((pos + lead, pos + len(piece.rstrip())))
        pos = m.end() if m else len(text)
    return spans


def closes_sentence(text: str) -> bool:
    """Does a sentence end in ``text``, or at its end (as if another sentence followed it)?
    A long paragraph is cut after such a line. ("It was spent." yes; "approx." and "a clause," no.)"""
    return len(sentence_spans(text.rstrip() + " X")) > 1


REFERENCE = re.compile(
    r"(?:\b(?:annex|appendix|table|figure|fig\.|chart|box|line|page|p\.|pp\.|no\.|nr\.?|chapter|section|para\.?|"
    r"paragraph|article|art\.|priority area|objective|outcome|output|step|phase|level|bilaga|tabell|figur|sidan?|kapitel|"
    r"avsnitt|utgiftsområde|punkt)\s*|[A-Z]-|[A-Z]/|\d/)$",
    re.I,
)
"""What stands before a number that names a thing rather than counts it: "Annex 3", "Line 2", "P-5", "C/109/3"."""


def is_reference(text: str, start: int) -> bool:
    """Is the figure at ``text[start:]`` a label ("Annex 3", "P-5"), not a quantity?"""
    return bool(REFERENCE.search(text[max(0, start - 20): start]))


SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
FOOTNOTE = re.compile(rf"^\s*([{SUPERSCRIPTS}]+)\s*\S")
"""A footnote: a line that opens with its mark ("⁵ *Multilateral Organisation ...*")."""
_NOTE_MARK = re.compile(rf"(?<=[^\s{SUPERSCRIPTS}])[{SUPERSCRIPTS}]+")


def note_marks(text: str) -> list[str]:
    """The footnote marks a text carries after a word ("utveckling¹", "1951⁵", "parts.¹²"); not a
    footnote's own opening mark."""
    return _NOTE_MARK.findall(text)


def on_footnote_line(text: str, at: int) -> bool:
    """Is ``text[at]`` on a line that opens with a footnote mark (a footnote, or a sentence of one)?"""
    return bool(FOOTNOTE.match(text[text.rfind("\n", 0, at) + 1: at + 8]))


def footnotes(text: str) -> dict[str, str]:
    """The footnotes standing in a text, by mark: mark -> the footnote's line, an exact substring."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        m = FOOTNOTE.match(line)
        if m:
            found.setdefault(m.group(1), line.strip())
    return found


CITATION_MARKER = re.compile(r"\[(\d+)\]")


def lead_text(answer: str) -> str:
    """An answer's lead: its text up to the first citation marker ``[n]`` (all of it without one)."""
    m = CITATION_MARKER.search(answer)
    return answer[: m.start()] if m else answer


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


_SCALE = {"million": 1e6, "miljoner": 1e6, "billion": 1e9, "miljarder": 1e9}


def figure_value(figure: str) -> tuple[float, str] | None:
    """A stated figure as (value, unit): "USD 2.1 billion" -> (2.1e9, "USD"), "74 per cent" -> (74, "%")."""
    m = NUMBER.search(figure)
    if not m:
        return None
    value = float(number_key(m.group(0)))
    low = figure.lower()
    value *= next((k for w, k in _SCALE.items() if w in low), 1.0)
    if re.search(r"%|per\s?cent|procent", low):
        return value, "%"
    currency = re.search(r"USD|SEK|DKK|CHF|EUR|US\$", figure)
    return value, currency.group(0) if currency else ""


def figure_phrase(sentence: str, figure: str, stop: Collection[str], most: int = 4) -> str:
    """The figure with the words after it that say what it counts, up to a function word or a
    punctuation mark: "2,839 personnel" of "A total of 2,839 personnel were trained". The figure
    alone when more than ``most`` words would follow (a phrase cut short says something else)."""
    at = sentence.find(figure)
    if at < 0:
        return figure
    kept = []
    for w in re.match(r"(?:\s+[^\W\d_][\w-]*)*", sentence[at + len(figure):]).group(0).split():
        if w.lower() in stop:
            break
        kept.append(w)
    return " ".join([figure, *kept]) if len(kept) <= most else figure


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
