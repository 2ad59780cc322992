"""The one text rendering of an answer and its sources, shared by every front end.

The CLI (``assistant ask``) and the UI's copy button use the plain form; the chat-completions
endpoint, the Teams webhook and the bot use the Markdown form and its pieces (``location``,
``one_line``). Same sources, same order, same wording everywhere.
"""

from __future__ import annotations

import re

from assistant.records import Answer, Citation

_EMPHASIS = re.compile(r"\*\*(.+?)\*\*", re.S)


def one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain_text(text: str) -> str:
    """The answer text without Markdown emphasis (``**USD 20.3 million**`` -> ``USD 20.3 million``)."""
    return _EMPHASIS.sub(r"\1", text)


def location(c: Citation, section_chars: int = 80) -> list[str]:
    """Where a citation stands: its page and its section (shortened), as far as known."""
    where = [f"p. {c.page}"] if c.page is not None else []
    if c.section:
        where.append(one_line(c.section, section_chars))
    return where


def source_line(c: Citation) -> str:
    where = location(c)
    loc = f" ({', '.join(where)})" if where else ""
    return f"[{c.n}] {c.title}{loc} [{c.document_id}]: \"{one_line(c.quote)}\""


def answer_with_sources(answer: Answer, markdown: bool = True) -> str:
    """The answer text followed by its numbered sources; ``markdown=False``: plain text (CLI, e-mail)."""
    text = answer.answer.strip()
    if not markdown:
        text = plain_text(text)
    if not answer.citations:
        return text
    heading = "**Sources**" if markdown else "Sources:"
    lines = [source_line(c) for c in sorted(answer.citations, key=lambda c: c.n)]
    if markdown:  # Teams renders single newlines as spaces; list items render reliably
        lines = [f"- {line}" for line in lines]
    return text + "\n\n" + heading + "\n" + "\n".join(lines)
