"""Query understanding without an LLM: years, named documents, typos, follow-ups.

Turns what a desk officer types ("and in 2019?", "the Swedish strategy", "staf costs") into
a ``QueryPlan`` the retriever can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.lexical import STOPWORDS, gloss_english, gloss_swedish, looks_swedish, query_tokens, stem, words
from assistant.records import DocumentInfo, Turn

YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")
NOT_YEAR = re.compile(r"\b(?:not|excluding|except|other than|inte)\s+(?:in\s+)?(19[89]\d|20[0-4]\d)\b", re.I)
FOLLOW_UP = re.compile(
    r"^\s*(?:and|what about|how about|och|vad gäller|same for|and for|and in|what of)\b|^\s*(?:in|for)\s+(?:19|20)\d\d\s*\??\s*$",
    re.I,
)

# Phrases that point at a document kind or publisher, beyond each document's own aliases.
DOC_HINTS = {
    "swedish": ("language", "sv"),
    "sweden's strategy": ("language", "sv"),
    "svenska": ("language", "sv"),
    "annual report": ("doc_type", "annual_report"),
    "årsrapport": ("doc_type", "annual_report"),
    "danish strategy": ("publisher", "Denmark"),
    "denmark's strategy": ("publisher", "Denmark"),
}


@dataclass
class QueryPlan:
    question: str
    """The question as asked, or rewritten from the conversation for a follow-up."""
    tokens: list[str]
    years: list[int] = field(default_factory=list)
    excluded_years: list[int] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    """Documents the question names; retrieval prefers them."""
    swedish: bool = False
    corrections: dict[str, str] = field(default_factory=dict)
    terms: list[frozenset[str]] = field(default_factory=list)
    """One set of equivalent index tokens per content word of the question (stems in both languages
    and glosses): evidence "has" the word when it has any token of its set."""


def term_groups(text: str) -> list[frozenset[str]]:
    groups: dict[str, frozenset[str]] = {}
    for w in words(text):
        if w in STOPWORDS or len(w) < 2:
            continue
        group = {stem(w), stem(w, "sv")}
        group |= {stem(g) for g in gloss_swedish([w])} | {stem(g, "sv") for g in gloss_english([w])}
        groups.setdefault(stem(w), frozenset(group))
    return list(groups.values())


def rewrite_follow_up(question: str, history: list[Turn] | None) -> str:
    """Make "and in 2019?" or "what about Sweden?" a standalone question using the last user turn."""
    if not history:
        return question
    previous = next((t.content for t in reversed(history) if t.role == "user"), None)
    if not previous:
        return question
    content = [w for w in words(question) if w not in STOPWORDS and w not in {"about", "och", "same"}]
    if not FOLLOW_UP.search(question) and len(content) > 3:
        return question
    rewritten = previous
    new_years = YEAR.findall(question)
    if new_years:
        old_years = YEAR.findall(previous)
        if old_years:
            rewritten = re.sub(old_years[-1], new_years[-1], rewritten)
        else:
            rewritten = f"{rewritten.rstrip(' ?')} in {new_years[-1]}?"
    rest = [w for w in re.findall(r"[A-ZÅÄÖ][\wåäö'-]+", question) if w.lower() not in STOPWORDS | {"and", "what", "how", "och"}]
    if rest:
        names_before = re.findall(r"\b(Denmark|Sweden|Norway|Danish|Swedish|Korea|IOM)\b", rewritten)
        if names_before:
            rewritten = rewritten.replace(names_before[0], rest[0], 1)
        else:
            rewritten = f"{rewritten.rstrip(' ?')} ({' '.join(rest)})?"
    return rewritten


def correct_typos(ws: list[str], vocabulary: set[str], choices: list[str]) -> dict[str, str]:
    """Map unknown words (5+ letters) to a vocabulary word one or two edits away."""
    fixes: dict[str, str] = {}
    for w in ws:
        if len(w) < 4 or w[0].isdigit() or w in vocabulary or w in STOPWORDS:
            continue
        limit = 1 if len(w) < 7 else 2
        best = process.extractOne(w, choices, scorer=Levenshtein.distance, score_cutoff=limit)
        if best:
            fixes[w] = best[0]
    return fixes


def route_documents(question: str, documents: list[DocumentInfo]) -> list[str]:
    """Document ids that the question names by alias, title, language or publisher."""
    q = question.lower()
    named = [d.id for d in documents if any(a.lower() in q for a in d.aliases)]
    for hint, (attr, value) in DOC_HINTS.items():
        if hint in q:
            named += [d.id for d in documents if value.lower() in str(getattr(d, attr)).lower()]
    if named and ("strategy" in q or "strategi" in q):
        named = [i for i in named if next(d for d in documents if d.id == i).doc_type == "strategy"] or named
    if named and ("report" in q or "rapport" in q):
        named = [i for i in named if next(d for d in documents if d.id == i).doc_type == "annual_report"] or named
    years = [int(y) for y in YEAR.findall(q)]
    if len(set(named)) > 1 and years:
        by_year = [i for i in named if _covers(next(d for d in documents if d.id == i), years)]
        named = by_year or named
    return list(dict.fromkeys(named))


def _covers(doc: DocumentInfo, years: list[int]) -> bool:
    span = doc.years
    return bool(span) and any(span[0] <= y <= span[1] for y in years)


def plan_query(question: str, documents: list[DocumentInfo], vocabulary: set[str], choices: list[str],
               history: list[Turn] | None = None) -> QueryPlan:
    text = rewrite_follow_up(question, history)
    excluded = [int(y) for y in NOT_YEAR.findall(text)]
    years = [int(y) for y in YEAR.findall(text) if int(y) not in excluded]
    fixes = correct_typos(words(text), vocabulary, choices)
    fixed = text
    for wrong, right in fixes.items():
        fixed = re.sub(rf"\b{re.escape(wrong)}\b", right, fixed, flags=re.I)
    return QueryPlan(
        question=text,
        tokens=query_tokens(fixed),
        years=years,
        excluded_years=excluded,
        documents=route_documents(text, documents),
        swedish=looks_swedish(text),
        corrections=fixes,
        terms=term_groups(fixed),
    )
