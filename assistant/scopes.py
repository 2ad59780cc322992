"""Questions with several sides: one retrieval scope per asked year or named document.

"How many staff did IOM have in 2019 and in 2020?" needs evidence from two annual reports, and
"What did Denmark's 2018 strategy and its 2023-2026 strategy say?" from two strategies. Fused
retrieval over the whole question returns the passages of whichever side matches best, and the
other side is never seen. So a question that names two or more documents, or whose asked years
fall in different documents' periods, gets one ``Scope`` per side: the retriever searches each
scope (a document filter) behind the main results, and the answerer states each side from
evidence of its own scope, with its own citation.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.records import DocumentInfo


@dataclass(frozen=True)
class Scope:
    documents: tuple[str, ...]
    """The documents evidence for this side comes from."""
    year: int | None = None
    """The asked year this side is about, when the sides are years."""


def question_scopes(years: list[int], named: list[str], documents: list[DocumentInfo]) -> list[Scope]:
    """The sides of a question: one per named document (two or more named), else one per asked year
    whose covering documents differ from the other years' (a year no document covers is no side).
    A single side is no split: the whole question is its scope."""
    named = list(dict.fromkeys(named))
    if len(named) >= 2:
        return [Scope((d,)) for d in named]
    pool = [d for d in documents if not named or d.id in named]
    scopes: list[Scope] = []
    for year in dict.fromkeys(years):
        docs = tuple(d.id for d in pool if d.covers(year))
        if docs and all(s.documents != docs for s in scopes):
            scopes.append(Scope(docs, year))
    return scopes if len(scopes) >= 2 else []
