"""Answerers by name: ``settings.answerer`` picks one (``extractive`` by default).

An answerer turns a question, its ``QueryPlan`` and the retrieved passages into the answer
record. A new one is a module with a class that has ``answer`` (the ``Answerer`` protocol) and
one ``register_answerer`` line below; its factory gets the loaded build's parts (``AnswererParts``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llama_index.core.schema import NodeWithScore

from assistant.query import QueryPlan
from assistant.records import Answer, DocumentInfo
from assistant.settings import Settings
from assistant.store import StoreStats

if TYPE_CHECKING:
    import numpy as np

    from assistant.answering import ExtractiveAnswerer
    from assistant.ranker import Ranker


@runtime_checkable
class Answerer(Protocol):
    def answer(self, question: str, plan: QueryPlan, retrieved: list[NodeWithScore]) -> Answer:
        """The answer record: ``answered`` false (a refusal, no citations) when the evidence does not
        answer; otherwise every citation quotes an exact span of one of ``retrieved``."""


SpanSimilarity = Callable[[QueryPlan], Callable[[str, int], "np.ndarray | None"]]
"""``span_similarity(plan)(passage id, span count)``: the question's cosine similarity to each span."""


@dataclass(frozen=True)
class AnswererParts:
    """What an answerer factory may use: the settings and the loaded build's statistics and documents."""

    settings: Settings
    stats: StoreStats
    documents: list[DocumentInfo]
    ranker: Ranker
    span_similarity: SpanSimilarity | None = None
    next_passage: Callable[[str], "TextNode | None"] | None = None
    """The passage after this one in its document (``PassageStore.neighbours``): a list runs on there."""


AnswererFactory = Callable[[AnswererParts], Answerer]

_ANSWERERS: dict[str, AnswererFactory] = {}


def register_answerer(name: str, factory: AnswererFactory) -> None:
    """Make ``factory(parts) -> Answerer`` available as ``settings.answerer == name``."""
    _ANSWERERS[name.strip().lower()] = factory


def answerer_names() -> tuple[str, ...]:
    return tuple(_ANSWERERS)


def make_answerer(settings: Settings, parts: AnswererParts) -> Answerer:
    """The answerer ``settings.answerer`` names; ValueError for a name no one registered."""
    key = (settings.answerer or "").strip().lower()
    if key not in _ANSWERERS:
        raise ValueError(f"unknown answerer {settings.answerer!r}: use one of {', '.join(map(repr, _ANSWERERS))}")
    return _ANSWERERS[key](parts)


def extractive(parts: AnswererParts) -> ExtractiveAnswerer:
    from assistant.answering import AnswerPolicy, ExtractiveAnswerer
    from assistant.evidence import IdfTable

    return ExtractiveAnswerer(IdfTable.from_stats(parts.stats), parts.documents, parts.ranker,
                              AnswerPolicy(threshold=parts.settings.answer_threshold), parts.span_similarity,
                              parts.next_passage)


def _openai(parts: AnswererParts) -> Answerer:
    from assistant.generative import GenerativeAnswerer, openai_llm

    return GenerativeAnswerer(parts.settings, extractive(parts), openai_llm(parts.settings), documents=parts.documents)


def _llamacpp(parts: AnswererParts) -> Answerer:
    from assistant.generative import GenerativeAnswerer, llamacpp_llm

    # An in-process llama.cpp context is not thread-safe: calls are serialised.
    return GenerativeAnswerer(parts.settings, extractive(parts), llamacpp_llm(parts.settings), serialise=True,
                              documents=parts.documents)


register_answerer("extractive", extractive)
register_answerer("openai", _openai)
register_answerer("llamacpp", _llamacpp)
