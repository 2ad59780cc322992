"""English renderings of Swedish evidence, for an English question answered from a Swedish span.

No Swedish-English translation model ships offline, so the rendering is word by word: function
words from ``data/render_sv_en.tsv``, then the domain glossary (``data/glossary_sv_en.tsv``, whose
sense always wins), then Folkets lexikon (through ``svlang``). Of a lexicon word's senses, the one
most common in the corpus's own English text is taken ("stärka" -> "strengthen", not "starch"),
and base forms and compound parts are looked up when the inflected word is not listed. Figures,
names, acronyms and emphasised titles (``*Standing Committee on Programmes and Finance*``) stand
as they are. Rough, but it states the fact in the reader's language beside the exact quote.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable
from functools import lru_cache

from assistant.lexical import lexicon_rows
from assistant.text import SUPERSCRIPTS

Commonness = Callable[[str], float]
"""How common an English word or phrase is in the corpus (higher: more common)."""

SWEDISH_ENDINGS = ("ernas", "arnas", "ornas", "erna", "arna", "orna", "ens", "ets", "ade", "ande", "en", "et", "na",
                   "ns", "er", "ar", "or", "at", "a", "e", "s", "t", "n")
"""Inflection endings (definite, plural, genitive, past), longest first: the lexicon lists base forms."""
TOKEN = re.compile(rf"\*[^*\n]+\*|\d(?:[\d ,.]|[/:](?=\d))*\d|\d|[{SUPERSCRIPTS}]+|"
                   rf"[^\W\d_{SUPERSCRIPTS}]+(?:[-:][^\W\d_{SUPERSCRIPTS}]+)*|[^\w\s]")
"""A word, a figure as written ("2 000", "2018/19:1"), a footnote mark, an emphasised title, a sign."""
ANNOTATED = re.compile(r"[\[\]()]")


@lru_cache(maxsize=1)
def _render_table() -> dict[str, str]:
    text = importlib.resources.files("assistant.data").joinpath("render_sv_en.tsv").read_text(encoding="utf-8")
    return {sv: en for sv, en in (line.split("\t", 1) for line in text.splitlines() if "\t" in line and not line.startswith("#"))}


def _senses(source: str):
    for sv, en in lexicon_rows(source):
        yield sv, [e.strip().lower() for e in re.split(r"[,;]", en) if e.strip()]


@lru_cache(maxsize=1)
def senses() -> dict[str, list[str]]:
    """Swedish word -> its English senses: the domain glossary's first sense alone, else every
    plain sense Folkets lexikon lists for it (annotated ones, "(wild) duck", "[us]", left out)."""
    table: dict[str, list[str]] = {}
    for sv, en in _senses("domain"):
        if " " not in sv and en:
            table.setdefault(sv, en[:1])
    domain = set(table)
    for sv, en in _senses("folkets"):
        if " " in sv or sv in domain:
            continue
        listed = table.setdefault(sv, [])
        listed += [e for e in en if not ANNOTATED.search(e) and e not in listed]
    return {sv: en for sv, en in table.items() if en}


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The single English words the lexicons give as senses: a word list of English."""
    return frozenset(e for options in senses().values() for e in options if e.isalpha())


def _pick(options: list[str], commonness: Commonness | None) -> str:
    return max(options, key=commonness) if commonness and len(options) > 1 else options[0]


def _base_sense(word: str, table: dict[str, list[str]], commonness: Commonness | None) -> str | None:
    """Of the senses of the word as listed and of its base form ("systemet": also "system"), the
    most common; without a ``commonness``, the word's own first sense."""
    options = list(table.get(word, []))
    if options and commonness is None:
        return options[0]
    for ending in SWEDISH_ENDINGS:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= 2:
            base = next((b for b in (stem, stem + "a", stem + "e") if len(b) >= 3 and b in table), None)
            if base:
                options += table[base]
                break
    return _pick(options, commonness) if options else None


def swedish_sense(word: str, commonness: Commonness | None = None) -> str | None:
    """The English sense of a Swedish word: as listed, from its base form, or of the parts of a
    compound ("fältverksamhet" = "fält" + "verksamhet"; "hälsobedömning" = "hälsa" + "bedömning")."""
    table = senses()
    sense = _base_sense(word, table, commonness)
    if sense or len(word) < 7:
        return sense
    for cut in range(len(word) - 3, 2, -1):
        head, tail = word[:cut], word[cut:]
        linked = head[:-1] + ("a" if head[-1] in "ou" else "") if head[-1] in "sou" else ""  # hälso-, gatu-, arbets-
        first = next((_pick(table[h], commonness) for h in (head, head + "a", linked) if h in table), None)
        rest = _base_sense(tail, table, commonness)
        if first and rest:
            return f"{first} {rest}"
    return None


@lru_cache(maxsize=1)
def _tokens() -> re.Pattern:
    """``TOKEN``, with the abbreviations the render table lists ("t.ex.", "ca.") as single tokens."""
    abbreviations = sorted((sv for sv in _render_table() if "." in sv), key=len, reverse=True)
    listed = "|".join(rf"(?<!\w){re.escape(a)}(?!\w)" for a in abbreviations)
    return re.compile(rf"{listed}|{TOKEN.pattern}" if listed else TOKEN.pattern, re.I)


def english_gloss(quote: str, commonness: Commonness | None = None) -> str:
    """A word-by-word English rendering of a Swedish span."""
    render = _render_table()
    out = []
    for token in _tokens().findall(quote):
        low = token.lower()
        if token.startswith("*") or token[0].isdigit() or not token[0].isalpha() or (len(token) > 1 and token.isupper()):
            out.append(token)  # titles, figures, punctuation, codes and acronyms (SEK, IOM) as they stand
            continue
        word = render.get(low) or swedish_sense(low, commonness) or token
        out.append(word[0].upper() + word[1:] if token[0].isupper() else word)
    text = " ".join(out)
    text = re.sub(rf"(?<=[\w)*])\s+([{SUPERSCRIPTS}])", r"\1", text)  # a mark stands on its word: "development¹"
    return re.sub(r"\s+([,.;:!?)])", r"\1", re.sub(r"([(])\s+", r"\1", text))
