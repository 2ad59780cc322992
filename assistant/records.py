"""Typed records passed between stages and returned by the API.

The answer record (``Answer``) is a public contract: scripts and Teams bots parse it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.text import YEAR_IN_NAME


class DocumentInfo(BaseModel):
    """One catalog entry: where a document came from and what it covers."""

    id: str
    file: str
    title: str
    publisher: str = "unknown"
    language: str = "en"
    year: int | None = None
    period: str | None = None
    doc_type: str = "document"
    aliases: list[str] = Field(default_factory=list)
    seed: str | None = None
    family: str | None = None
    """The series the document belongs to: a ``[families.<name>]`` table of the catalog."""
    running_headers: list[str] = Field(default_factory=list)
    """Regexes of whole lines its pages repeat (its family's, then its own): the chunker drops them.
    Filled by the catalog; the API does not show them (``api.models.DocumentRecord``)."""

    @property
    def years(self) -> tuple[int, int] | None:
        """First and last year the document covers, from ``period`` or ``year``."""
        found = [int(y) for y in YEAR_IN_NAME.findall(self.period or "")]
        if found:
            return min(found), max(found)
        return (self.year, self.year) if self.year else None

    def covers(self, year: int) -> bool:
        """Does the document's period include ``year``?"""
        span = self.years
        return bool(span) and span[0] <= year <= span[1]


class Filters(BaseModel):
    """Restrict retrieval. Unknown keys are rejected (the API answers 400)."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[str] | None = None
    publisher: str | None = None
    language: str | None = None
    year: int | None = None

    def admits(self, doc: DocumentInfo) -> bool:
        """Does a passage of ``doc`` pass? Ids listed, publisher a substring (any case), the language,
        the year within the document's period."""
        if self.document_ids and doc.id not in self.document_ids:
            return False
        if self.language and doc.language != self.language:
            return False
        if self.publisher and self.publisher.lower() not in doc.publisher.lower():
            return False
        if self.year:
            first, last = doc.years or (0, -1)
            if not first <= self.year <= last:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not (self.document_ids or self.publisher or self.language or self.year)


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class Citation(BaseModel):
    n: int
    passage_id: str
    document_id: str
    title: str
    page: int | None = None
    section: str | None = None
    quote: str
    """The exact span of the passage text (a sentence or a table row) that supports the claim."""


class PassageOut(BaseModel):
    id: str
    document_id: str
    title: str
    page: int | None = None
    section: str | None = None
    text: str
    score: float


class Answer(BaseModel):
    answer: str
    answered: bool
    citations: list[Citation] = Field(default_factory=list)
    passages: list[PassageOut] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class Feedback(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(max_length=20000)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=4000)
