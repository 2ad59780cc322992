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
from assistant.api.workers import QuestionPool
from assistant.service import AssistantService, DocumentSummary, NotReady
from assistant.settings import Settings
from ui import formatting as fmt

log = logging.getLogger(__name__)

STREAM_DELAY_S = 0.03
"""Pause between streamed pieces of the answer, so it visibly streams in."""

ANY = ""


class ChatHandlers:
    def __init__(self, service: AssistantService, settings: Settings, stream_delay_s: float = STREAM_DELAY_S,
                 pool: QuestionPool | None = None):
        self.service = service
        self.settings = settings
        self.stream_delay_s = stream_delay_s
        self.pool = pool
        """The API's bounded question executor (``assistant.api.workers.QuestionPool``): the UI's
        questions share its workers, queue and deadline. ``None``: call the service directly."""

    # --- filters --------------------------------------------------------------------------

    def documents(self) -> list[DocumentSummary]:
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

    def history_turns(self, conv: list[dict]) -> list[Turn]:
        """The conversation so far as service turns (plain answer text, no HTML).

        Only the most recent turns that fit the history limits (``max_history_turns``,
        ``max_turn_chars`` per turn, ``max_history_chars`` in all) are passed on: the UI
        never sends the service a history the API would refuse with 413.
        """
        max_turns = self.settings.max_history_turns
        per_turn = self.settings.max_turn_chars
        budget = self.settings.max_history_chars
        pairs: list[tuple[Turn, Turn]] = []
        for ex in conv:
            ans = ex.get("answer")
            if ans is None:
                continue
            reply = ans["answer"] if ans.get("answered") else fmt.NOT_FOUND_TITLE + "."
            pairs.append((Turn(role="user", content=ex["question"][:per_turn]),
                          Turn(role="assistant", content=(reply or fmt.NOT_FOUND_TITLE + ".")[:per_turn])))
        kept: list[tuple[Turn, Turn]] = []
        used = 0
        for user, assistant in reversed(pairs):
            size = len(user.content) + len(assistant.content)
            if len(kept) * 2 + 2 > max_turns or used + size > budget:
                break
            kept.append((user, assistant))
            used += size
        return [t for pair in reversed(kept) for t in pair]

    def _sections(self, conv: list[dict]) -> list[str]:
        return [ex.get("section", "") for ex in conv if ex.get("answer") is not None]

    def _answer_no(self, conv: list[dict], index: int) -> int:
        """Position of exchange ``index`` among the exchanges that have an answer (= its source section)."""
        return sum(1 for ex in conv[:index] if ex.get("answer") is not None)

    @staticmethod
    def chat_messages(conv: list[dict]) -> list[dict]:
        """The chat widget's messages, rebuilt from the server-side conversation (never from the client)."""
        chat: list[dict] = []
        answer_no = 0
        for ex in conv:
            chat.append({"role": "user", "content": fmt.question_html(ex["question"])})
            if ex.get("answer") is not None:
                chat.append({"role": "assistant", "content": fmt.answer_html(ex["answer"], answer_no)})
                answer_no += 1
            elif ex.get("pending"):
                continue
            else:
                chat.append({"role": "assistant", "content": fmt.error_html(ex.get("message") or "no answer.")})
        return chat

    def _trimmed(self, conv: list[dict]) -> list[dict]:
        """Keep the last ``ui_max_exchanges`` exchanges (the state lives on the server: it must stay bounded)."""
        keep = self.settings.ui_max_exchanges or 30
        return conv[-keep:] if len(conv) > keep else conv

    def respond(
        self,
        message: str,
        conv: list[dict] | None,
        document_ids: list[str] | None = None,
        language: str | None = None,
        year: str | int | None = None,
        top_k: int | float | None = None,
    ) -> Iterator[tuple[list[dict], list[dict], str, str]]:
        """Ask the service and stream the answer into the chat.

        Yields ``(chat messages, conversation state, sources panel HTML, question box value)``.
        The chat is rebuilt from ``conv`` (server-side ``gr.State``), not taken from the client.
        """
        conv = self._trimmed([dict(ex) for ex in (conv or []) if isinstance(ex, dict) and "question" in ex])
        question = (message or "").strip()

        def out(box: str, chat: list[dict] | None = None, panel: str | None = None):
            return (chat if chat is not None else self.chat_messages(conv), list(conv),
                    panel if panel is not None else fmt.sources_panel(self._sections(conv)), box)

        if not question:
            yield out("")
            return
        max_chars = self.settings.max_question_chars
        if len(question) > max_chars:
            shown = question[:max_chars] + "…"
            conv.append({"question": shown, "answer": None, "error": "too long",
                         "message": f"the question has {len(question)} characters; the limit is {max_chars}."})
            yield out(message)
            return
        # Show the question at once, while the service works.
        pending = {"question": question, "answer": None, "pending": True}
        yield out("", chat=self.chat_messages([*conv, pending]))
        try:
            filters = self.build_filters(document_ids, language, year)
            k = int(top_k) if top_k else self.settings.top_k
            k = max(1, min(k, 50))
            history = self.history_turns(conv)
            if self.pool is not None:
                answer: Answer = self.pool.run_sync(self.service.ask, question, top_k=k, filters=filters,
                                                    history=history)
            else:
                answer = self.service.ask(question, top_k=k, filters=filters, history=history)
        except (ValueError, ValidationError) as exc:  # bad input: say so, no stack trace
            conv.append({"question": question, "answer": None, "error": str(exc)[:300], "message": _short_error(exc)})
            yield out("")
            return
        except NotReady:
            conv.append({"question": question, "answer": None, "error": "not ready",
                         "message": "the document index is still loading; ask again in a few seconds."})
            yield out(question)
            return
        except Exception as exc:
            busy = _busy_message(exc)
            if busy is None:
                log.exception("ask failed")
            conv.append({"question": question, "answer": None, "error": type(exc).__name__,
                         "message": busy or "the assistant hit an internal error; the details are in the server log."})
            yield out(question if busy else "")
            return

        answer_no = len(self._sections(conv))
        section = fmt.sources_section(answer, answer_no, self._missing_passage_texts(answer))
        before = self.chat_messages(conv)
        conv.append({"question": question, "answer": answer.model_dump(), "error": None, "section": section})
        panel = fmt.sources_panel(self._sections(conv))
        if answer.answered:
            head = [*before, {"role": "user", "content": fmt.question_html(question)}]
            for piece in fmt.stream_pieces(answer.answer):
                partial = {"role": "assistant", "content": fmt.answer_html(answer, answer_no, partial_text=piece)}
                yield out("", chat=[*head, partial], panel=panel)
                if self.stream_delay_s:
                    time.sleep(self.stream_delay_s)
        yield out("", panel=panel)

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


def _busy_message(exc: BaseException) -> str | None:
    """What to tell the user when the server is too busy or the question ran out of time; None otherwise."""
    name = type(exc).__name__
    if name in ("Overloaded", "DeadlineExceeded"):
        return "the server is busy right now; ask again in a few seconds."
    return None


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e.get("msg", "invalid input") for e in exc.errors())[:300]
    return str(exc)[:300] or type(exc).__name__
