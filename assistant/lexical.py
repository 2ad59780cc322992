"""Lexical analysis for BM25: tokens that survive number formats, stems, typos and the en/sv divide.

- Numbers: ``3 508 772``, ``3,508,772`` and ``3508772`` are one token (``text.number_key``).
- English and Swedish are stemmed with Snowball (PyStemmer).
- Swedish words are glossed with English (a domain glossary, then Folkets lexikon from ``svlang``),
  and English query words are glossed with Swedish, so either language finds the other's passages.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from functools import lru_cache

import Stemmer

from assistant.text import NUMBER, number_key

WORD = re.compile(rf"{NUMBER.pattern}|[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)

EN_STOP = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how i if in into is it
    its many much of on or our so such than that the their them then there these they this those to was we were
    what when where which while who whom why will with would about above after again all also any because before
    between both each few further here more most no nor not only other over own same should some still through
    under until up very you your tell me please give gave get got""".split()
)
SV_STOP = frozenset(
    """och i att det som en på är av för med till den har de inte om ett men var jag sig från vi så kan man när år
    hans under också efter eller nu sin där vid mot ska skulle kommer ut får finns vad hur vilka vilken vilket
    mycket bara hade dem dessa detta denna än mer sedan samt även genom inom enligt ska många stort stor
    långa lång hur vem vilket vilka varför gav ge ger""".split()
)
STOPWORDS = EN_STOP | SV_STOP
SWEDISH_CHARS = re.compile(r"[åäöÅÄÖ]")


# A document says "Danish" where a question says "Denmark": both become the country.
DEMONYMS = {
    "danish": "denmark", "swedish": "sweden", "norwegian": "norway", "finnish": "finland", "british": "united",
    "dutch": "netherlands", "korean": "korea", "danska": "danmark", "danske": "danmark", "svenska": "sverige",
    "svensk": "sverige", "svenskt": "sverige", "svenskar": "sverige",
}


@lru_cache(maxsize=2)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer("swedish" if lang == "sv" else "english")


def words(text: str) -> list[str]:
    """Lower-cased surface words and normalised numbers, in order."""
    out = []
    for m in WORD.finditer(text.lower()):
        tok = m.group(0)
        out.append(number_key(tok) if tok[0].isdigit() else tok)
    return out


@lru_cache(maxsize=100_000)
def stem(word: str, lang: str = "en") -> str:
    if word[0].isdigit():
        return word
    return _stemmer(lang).stemWord(DEMONYMS.get(word, word))


@lru_cache(maxsize=2)
def lexicon_rows(source: str) -> tuple[tuple[str, str], ...]:
    """(Swedish headword, its English senses as listed) of ``source``: ``"domain"`` (the project's
    glossary) or ``"folkets"`` (Folkets lexikon, through svlang; empty if it is missing)."""
    try:
        if source == "domain":
            text = importlib.resources.files("assistant.data").joinpath("glossary_sv_en.tsv").read_text(encoding="utf-8")
        else:
            text = importlib.resources.files("svlang.data").joinpath("folkets_sv_en.tsv").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - svlang is a dependency
        return ()
    rows = (line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#") and "\t" in line)
    return tuple((sv.replace("|", "").strip().lower(), en) for sv, en in rows)


def _glossary_lines() -> list[tuple[str, list[str]]]:
    return [(sv, [e.strip().lower() for e in en.split(",") if e.strip()])
            for source in ("domain", "folkets") for sv, en in lexicon_rows(source)]


@lru_cache(maxsize=1)
def sv_to_en() -> dict[str, list[str]]:
    """Swedish word -> English words (domain glossary first, so it wins)."""
    table: dict[str, list[str]] = {}
    for sv, en in _glossary_lines():
        if " " in sv:
            continue
        table.setdefault(sv, en[:3])
    return table


@lru_cache(maxsize=1)
def en_to_sv() -> dict[str, list[str]]:
    """English stem -> Swedish words, only from the domain glossary (Folkets is too broad that way)."""
    table: dict[str, list[str]] = {}
    domain = importlib.resources.files("assistant.data").joinpath("glossary_sv_en.tsv").read_text(encoding="utf-8")
    for line in domain.splitlines():
        if not line or line.startswith("#") or "\t" not in line:
            continue
        sv, en = line.split("\t", 1)
        for phrase in en.split(","):
            key = " ".join(stem(w) for w in words(phrase))
            if key:
                table.setdefault(key, []).append(sv.strip().lower())
    return table


def gloss_swedish(ws: list[str]) -> list[str]:
    """English words for Swedish words (stemmed lookups fall back to the stem)."""
    table = sv_to_en()
    out: list[str] = []
    for w in ws:
        if w in STOPWORDS or w[0].isdigit():
            continue
        en = table.get(w) or table.get(stem(w, "sv"))
        if en:
            for phrase in en:
                out.extend(words(phrase))
    return out


def gloss_english(ws: list[str]) -> list[str]:
    """Swedish words for English words and bigrams in the domain glossary."""
    table = en_to_sv()
    stems = [stem(w) for w in ws]
    out: list[str] = []
    for i, s in enumerate(stems):
        for key in (s, f"{s} {stems[i + 1]}" if i + 1 < len(stems) else None):
            if key and key in table:
                for sv in table[key]:
                    out.extend(words(sv))
    return out


def looks_swedish(text: str) -> bool:
    ws = words(text)
    if not ws:
        return False
    sv_hits = sum(w in SV_STOP for w in ws) + 2 * len(SWEDISH_CHARS.findall(text))
    en_hits = sum(w in EN_STOP for w in ws)
    return sv_hits > en_hits


@lru_cache(maxsize=1)
def analysis_version() -> str:
    """What passages' tokens depend on besides their text: the domain glossary and the Folkets
    lexikon's package. A build made with others is stale (``indexing.staleness``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        folkets = version("svlang")
    except PackageNotFoundError:  # pragma: no cover - the lexicon is optional
        folkets = "none"
    glossary = importlib.resources.files("assistant.data").joinpath("glossary_sv_en.tsv").read_bytes()
    return hashlib.sha256(glossary + folkets.encode()).hexdigest()[:16]


def index_tokens(text: str, lang: str) -> list[str]:
    """Tokens of a passage: stems in its own language, plus English glosses of Swedish text."""
    ws = words(text)
    toks = [stem(w, lang) for w in ws if w not in STOPWORDS]
    if lang == "sv":
        toks += [stem(w) for w in gloss_swedish(ws) if w not in STOPWORDS]
    return toks


def query_tokens(text: str) -> list[str]:
    """Tokens of a query: English and Swedish stems of its words, plus glosses into the other language."""
    ws = [w for w in words(text) if w not in STOPWORDS]
    toks = [stem(w) for w in ws]
    if looks_swedish(text):
        toks += [stem(w, "sv") for w in ws] + [stem(w) for w in gloss_swedish(ws) if w not in STOPWORDS]
    else:
        toks += [stem(w, "sv") for w in gloss_english(ws)]
    seen: dict[str, None] = {}
    for t in toks:
        seen.setdefault(t, None)
    return list(seen)


@lru_cache(maxsize=50_000)
def token_set(text: str, lang: str) -> frozenset[str]:
    """``index_tokens`` as a set, remembered: answering re-reads the same passages for many questions."""
    return frozenset(index_tokens(text, lang))
