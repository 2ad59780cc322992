"""Event handlers of the chat page. They call the service object directly (no HTTP to itself).

Each handler is a plain function or generator over plain values, so tests call them with a
real service and no browser.

The conversation lives in a per-session ``gr.State``: a list of exchanges
``{"question": str, "answer": Answer-as-dict | None, "error": str | None}``.
The chat widget shows two messages per exchange (user, assistant), so the assistant message
of exchange ``i`` has index ``2 * i + 1``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from assistant.records import Answer, Feedback, Filters, Turn
from assistant.service import NotReady
from ui import formatting as fmt

log = logging.getLogger(__name__)

STREAM_DELAY_S = 0.03
"""Pause between streamed pieces of the answer, so it visibly streams in."""

EXAMPLE_QUESTIONS = [
    "What did Denmark give IOM unearmarked in 2022?",
    "How does the Swedish strategy want Sweden to get Swedes into IOM positions?",
    "How many times was the Migration Emergency Funding Mechanism activated in 2019, and how much did it pay out?",
    "När inrättades FN:s migrationsnätverk enligt strategin, och vilken roll har IOM i nätverket?",
]

ANY = ""


class ChatHandlers:
    def __init__(self, service: Any, settings: Any, stream_delay_s: float = STREAM_DELAY_S):
        self.service = service
        self.settings = settings
        self.stream_delay_s = stream_delay_s

    # --- filters --------------------------------------------------------------------------

    def documents(self) -> list[Any]:
        try:
            return list(self.service.documents())
        except Exception:  # the page must render even if the index is missing
            log.exception("could not list documents")
            return []

    def document_choices(self) -> list[tuple[str, str]]:
        return [(d.title, d.id) for d in self.documents()]

    def language_choices(self) -> list[tuple[str, str]]:
        langs = sorted({d.language for d in self.documents() if getattr(d, "language", None)})
        return [("Any language", ANY)] + [(fmt.language_name(code), code) for code in langs]

    def year_choices(self) -> list[tuple[str, str]]:
        years: set[int] = set()
        for d in self.documents():
            span = d.years if hasattr(d, "years") else None
            if span:
                years.update(range(span[0], span[1] + 1))
        return [("Any year", ANY)] + [(str(y), str(y)) for y in sorted(years)]

    @staticmethod
    def build_filters(document_ids: list[str] | None, language: str | None, year: str | int | None) -> Filters | None:
        ids = [d for d in (document_ids or []) if d]
        lang = language or None
        y = int(year) if year not in (None, "", ANY) else None
        if not ids and lang is None and y is None:
            return None
        return Filters(document_ids=ids or None, language=lang, year=y)

    # --- chat -------------------------------------------------------------------------------

    @staticmethod
    def history_turns(conv: list[dict]) -> list[Turn]:
        """The conversation so far as service turns (plain answer text, no HTML)."""
        turns: list[Turn] = []
        for ex in conv:
            ans = ex.get("answer")
            if ans is None:
                continue
            turns.append(Turn(role="user", content=ex["question"]))
            reply = ans["answer"] if ans.get("answered") else fmt.NOT_FOUND_TITLE + "."
            turns.append(Turn(role="assistant", content=reply or fmt.NOT_FOUND_TITLE + "."))
        return turns

    def _sections(self, conv: list[dict]) -> list[str]:
        return [ex.get("section", "") for ex in conv if ex.get("answer") is not None]

    def _answer_no(self, conv: list[dict], index: int) -> int:
        """Position of exchange ``index`` among the exchanges that have an answer (= its source section)."""
        return sum(1 for ex in conv[:index] if ex.get("answer") is not None)

    def respond(
        self,
        message: str,
        chat: list[dict] | None,
        conv: list[dict] | None,
        document_ids: list[str] | None = None,
        language: str | None = None,
        year: str | int | None = None,
        top_k: int | float | None = None,
    ) -> Iterator[tuple[list[dict], list[dict], str, str]]:
        """Ask the service and stream the answer into the chat.

        Yields ``(chat messages, conversation state, sources panel HTML, question box value)``.
        """
        chat = list(chat or [])
        conv = list(conv or [])
        question = (message or "").strip()
        if not question:
            yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), ""
            return
        max_chars = getattr(self.settings, "max_question_chars", 2000)
        chat.append({"role": "user", "content": question})
        if len(question) > max_chars:
            conv.append({"question": question, "answer": None, "error": "too long"})
            chat.append({"role": "assistant", "content": fmt.error_html(
                f"the question has {len(question)} characters; the limit is {max_chars}.")})
            yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), message
            return
        # Show the question at once, while the service works.
        yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), ""
        try:
            filters = self.build_filters(document_ids, language, year)
            k = int(top_k) if top_k else getattr(self.settings, "top_k", 5)
            answer: Answer = self.service.ask(question, top_k=k, filters=filters, history=self.history_turns(conv))
        except (ValueError, ValidationError) as exc:  # bad input: say so, no stack trace
            conv.append({"question": question, "answer": None, "error": str(exc)})
            chat.append({"role": "assistant", "content": fmt.error_html(_short_error(exc))})
            yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), ""
            return
        except NotReady:
            conv.append({"question": question, "answer": None, "error": "not ready"})
            chat.append({"role": "assistant", "content": fmt.error_html(
                "the document index is still loading; ask again in a few seconds.")})
            yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), question
            return
        except Exception as exc:
            log.exception("ask failed")
            conv.append({"question": question, "answer": None, "error": type(exc).__name__})
            chat.append({"role": "assistant", "content": fmt.error_html(
                "the assistant hit an internal error; the details are in the server log.")})
            yield list(chat), list(conv), fmt.sources_panel(self._sections(conv)), ""
            return

        answer_no = len(self._sections(conv))
        section = fmt.sources_section(answer, answer_no, self._missing_passage_texts(answer))
        conv.append({"question": question, "answer": answer.model_dump(), "error": None, "section": section})
        panel = fmt.sources_panel(self._sections(conv))
        final = {"role": "assistant", "content": fmt.answer_html(answer, answer_no)}
        if answer.answered:
            chat.append({"role": "assistant", "content": ""})
            for piece in fmt.stream_pieces(answer.answer):
                chat[-1] = {"role": "assistant", "content": fmt.answer_html(answer, answer_no, partial_text=piece)}
                yield list(chat), list(conv), panel, ""
                if self.stream_delay_s:
                    time.sleep(self.stream_delay_s)
            chat[-1] = final
        else:
            chat.append(final)
        yield list(chat), list(conv), panel, ""

    def _missing_passage_texts(self, answer: Answer) -> dict[str, str]:
        """Texts of cited passages the answer record does not carry, fetched from the service."""
        have = {p.id for p in answer.passages}
        out: dict[str, str] = {}
        for c in answer.citations:
            if c.passage_id in have or c.passage_id in out:
                continue
            try:
                out[c.passage_id] = self.service.passage(c.passage_id).text
            except Exception:
                log.warning("cited passage %s not found", c.passage_id)
        return out

    # --- feedback & copy ------------------------------------------------------------------------

    def exchange_for_message(self, conv: list[dict], index: int | tuple | list) -> dict | None:
        i = index[0] if isinstance(index, (tuple, list)) else index
        if not isinstance(i, int) or i % 2 != 1:
            return None
        ex_i = i // 2
        return conv[ex_i] if 0 <= ex_i < len(conv) else None

    def feedback(self, conv: list[dict] | None, index: Any, liked: Any, comment: str | None) -> tuple[str, str]:
        """Store a thumbs up/down (with the optional comment) for the answer at chat message ``index``.

        Returns ``(status message, new comment box value)``.
        """
        ex = self.exchange_for_message(conv or [], index)
        if ex is None or ex.get("answer") is None:
            return "Feedback can only be given on an answer.", comment or ""
        if liked is True or liked == "Like":
            rating = "up"
        elif liked is False or liked == "Dislike":
            rating = "down"
        else:  # un-liking: nothing to store
            return "", comment or ""
        ans = ex["answer"]
        text = ans["answer"] if ans.get("answered") else fmt.NOT_FOUND_TITLE
        try:
            self.service.feedback(Feedback(
                question=ex["question"][:4000],
                answer=text[:20000],
                rating=rating,
                comment=(comment or "").strip()[:4000] or None,
            ))
        except Exception as exc:
            log.exception("feedback failed")
            return f"Feedback could not be saved: {_short_error(exc)}", comment or ""
        thumbs = "thumbs up" if rating == "up" else "thumbs down"
        return f"Thank you: your {thumbs} on this answer was saved.", ""

    def copy_latest(self, conv: list[dict] | None) -> str:
        for ex in reversed(conv or []):
            if ex.get("answer") is not None:
                return fmt.copy_text(ex["answer"])
        return ""

    def documents_html(self) -> str:
        return fmt.documents_table_html(self.documents())


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e.get("msg", "invalid input") for e in exc.errors())[:300]
    return str(exc)[:300] or type(exc).__name__
