"""Text formatting shared by the chat-completions and Teams endpoints, and SSE framing."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from assistant.records import Answer, Citation


def one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
    """The answer text followed by its numbered sources."""
    text = answer.answer.strip()
    if not answer.citations:
        return text
    heading = "**Sources**" if markdown else "Sources:"
    lines = [source_line(c) for c in sorted(answer.citations, key=lambda c: c.n)]
    if markdown:  # Teams renders single newlines as spaces; list items render reliably
        lines = [f"- {line}" for line in lines]
    return text + "\n\n" + heading + "\n" + "\n".join(lines)


def deltas(text: str, size: int = 40) -> Iterator[str]:
    """Split text on word boundaries into pieces of about ``size`` characters (lossless)."""
    piece = ""
    for token in re.findall(r"\s*\S+\s*|\s+", text):
        piece += token
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece


def sse(event: str | None, data: Any) -> str:
    """One Server-Sent Event; ``data`` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
