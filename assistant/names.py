"""Names a question may use for the subject of a claim (``data/names.toml``): which forms a passage
may use instead ("Danish", "Danida" for Denmark) and which capitalised words name nothing."""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from functools import lru_cache


@lru_cache(maxsize=1)
def _names_data() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    data = tomllib.loads(importlib.resources.files("assistant.data").joinpath("names.toml").read_text(encoding="utf-8"))
    aliases = {k: tuple(v) for k, v in data.get("aliases", {}).items()}
    return aliases, frozenset(data.get("generic", {}).get("words", []))


NAMES_A_DOCUMENT = re.compile(
    r"^(?:['’]s?)?\s+(?:(?:\d{4}(?:\s?[–-]\s?\d{2,4})?|new|first|latest|intermediate|own|organi[sz]ation)\s+)*"
    r"(?:iom\s+|iom-)?(?:strateg|report|rapport|organisationsstrateg)", re.I)
"""What follows a name that names a document, not a subject: "Sweden's strategy", "the Danish 2018
strategy", "Danish organisation strategy"."""


NAME = re.compile(r"\b[A-ZÅÄÖ][\wåäöÅÄÖ'’:-]+|\b[A-Z]{2}\d{3,}\b")


def _names(question: str):
    generic = _names_data()[1]
    for m in NAME.finditer(question):
        w = re.sub(r"['’]s?$", "", m.group(0)).lower()
        if m.start() == 0 or w in generic or (len(w) < 3 and w not in _names_data()[0]):  # "UK" is listed
            continue
        yield w, m


def named_terms(question: str) -> list[str]:
    """Names in the question (capitalised words but the first, codes like RT0782, listed
    abbreviations like UK), lower-cased."""
    return [w for w, _ in _names(question)]


def document_owners(question: str) -> set[str]:
    """The names that say whose document is meant ("Sweden's strategy", "the Danish 2018 strategy"):
    when the question names a document the catalog has, they are not what the evidence is about."""
    return {w for w, m in _names(question) if NAMES_A_DOCUMENT.match(question[m.end():])}


def name_forms(name: str) -> tuple[str, ...]:
    """What a passage may say for ``name`` (``names.toml``), else the name minus an ending."""
    return _names_data()[0].get(name, (name[:-1] if len(name) > 5 else name,))


def name_words(name: str) -> list[str]:
    """The words a passage may use for a listed name: its one-word forms, and the last word of the
    others ("uk": uk, britain, british, kingdom). Nothing for a name the data file does not list."""
    return list(dict.fromkeys(form.split()[-1] for form in _names_data()[0].get(name, ())))


def mentions(name: str, text: str) -> bool:
    return any(form in text for form in name_forms(name))


def known_names() -> frozenset[str]:
    """The names (and their forms) the data file lists."""
    aliases = _names_data()[0]
    return frozenset(aliases) | frozenset(f for forms in aliases.values() for f in forms)


ENUMERATION = re.compile(r"[A-ZÅÄÖ][^,;()]{1,40}(?:,\s*[A-ZÅÄÖ][^,;()]{1,40}){2,}(?:,?\s*(?:and|och)\s+[A-ZÅÄÖ][^,;()]{1,40})?")
"""A list of three or more names ("Austria, Belgium, Denmark, ..."): a figure beside it is the group's."""


def only_listed(name: str, text: str) -> bool:
    """Is ``name`` mentioned in ``text`` only as one of a list of names (so a figure there is not its own)?"""
    low = text.lower()
    spans = [m.span() for m in ENUMERATION.finditer(text)]
    at = [m.start() for form in name_forms(name) for m in re.finditer(re.escape(form), low)]
    return bool(at) and all(any(a <= i < b for a, b in spans) for i in at)
