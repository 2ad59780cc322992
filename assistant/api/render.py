"""Server-Sent Events framing for the streaming endpoints (the answer text itself: ``assistant.render``)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator


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
