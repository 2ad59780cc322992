"""Request and response models of the HTTP API (documented in /docs and /openapi.json).

The answer record itself is ``assistant.records.Answer``: the API returns it unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from assistant.records import Citation, DocumentInfo, Feedback, Filters, PassageOut, Turn

QUESTION_EXAMPLE = "How much unearmarked funding did Denmark give IOM?"


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. `unauthorized`, `unknown_filter`.")
    message: str = Field(description="Human-readable explanation.")


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": {"code": "unauthorized", "message": "Missing or invalid API key."}}]}
    )

    error: ErrorBody


DocumentId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]


class ApiFilters(Filters):
    """``Filters`` as the API accepts them: strict types, and no filter that silently filters nothing
    (``document_ids: []`` and ``year: 0`` are 422, not "all documents")."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[DocumentId] | None = Field(
        default=None, min_length=1, max_length=50, description="Only these documents (at least one id)."
    )
    publisher: str | None = Field(default=None, strict=True, min_length=1, max_length=200)
    language: str | None = Field(default=None, strict=True, min_length=1, max_length=20)
    year: int | None = Field(default=None, strict=True, ge=1900, le=2100,
                             description="Only documents that cover this year.")


class ApiTurn(Turn):
    """One earlier turn. Longer than ASSISTANT_MAX_TURN_CHARS gives 413 ``history_too_long``."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(strict=True)


class AskRequest(BaseModel):
    """A question, optionally restricted by filters and continuing a conversation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": QUESTION_EXAMPLE, "top_k": 5},
                {
                    "question": "And in 2022?",
                    "top_k": 5,
                    "filters": {"document_ids": ["dk-2023-2026"]},
                    "history": [
                        {"role": "user", "content": QUESTION_EXAMPLE},
                        {"role": "assistant", "content": "Denmark gave ... [1]"},
                    ],
                    "stream": False,
                },
            ]
        },
    )

    question: str = Field(
        min_length=1,
        strict=True,
        description="The question, in English or Swedish. Longer than the server's limit "
        "(ASSISTANT_MAX_QUESTION_CHARS, default 2000) gives 413.",
    )
    top_k: int = Field(default=5, ge=1, le=50, strict=True, description="How many passages to retrieve.")
    filters: ApiFilters | None = Field(default=None, description="Restrict retrieval. Unknown keys give 400.")
    history: list[ApiTurn] | None = Field(
        default=None,
        description="Earlier turns, oldest first. More than ASSISTANT_MAX_HISTORY_TURNS (40) turns, a turn over "
        "ASSISTANT_MAX_TURN_CHARS (4000) or all turns over ASSISTANT_MAX_HISTORY_CHARS (16000) give 413.",
    )
    stream: bool = Field(
        default=False,
        strict=True,
        description="Answer as Server-Sent Events: `answer` events (text deltas), one `citations` event, "
        "then `done` with the full answer record.",
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "unearmarked funding Denmark", "top_k": 5}]},
    )

    query: str = Field(min_length=1, strict=True, description="Search text. Same length limit as a question (413).")
    top_k: int = Field(default=5, ge=1, le=50, strict=True)
    filters: ApiFilters | None = None


class SearchResponse(BaseModel):
    query: str
    passages: list[PassageOut]


class DocumentRecord(DocumentInfo):
    """A catalog entry as the API shows it: without the chunker's running-header patterns."""

    running_headers: list[str] = Field(default_factory=list, exclude=True)


class DocumentOut(DocumentRecord):
    """A catalog entry with the number of passages indexed from it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "dk-2023-2026",
                    "file": "dk-iom-strategy-2023-2026.txt",
                    "title": "Danish Organisation Strategy for IOM 2023-2026",
                    "publisher": "Ministry of Foreign Affairs of Denmark",
                    "language": "en",
                    "year": 2023,
                    "period": "2023-2026",
                    "doc_type": "strategy",
                    "aliases": ["danish strategy"],
                    "seed": "000_610ab245dca1e253.txt",
                    "passage_count": 120,
                }
            ]
        }
    )

    passage_count: int = 0


class DocumentList(BaseModel):
    documents: list[DocumentOut]


NonBlank = r"\S"


class FeedbackRequest(Feedback):
    """Feedback as the API accepts it: no extra fields, no blank question, bounded entries
    (one log line is at most a few tens of KB)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, strict=True, pattern=NonBlank)
    answer: str = Field(min_length=1, max_length=8000, strict=True, pattern=NonBlank)
    comment: str | None = Field(default=None, max_length=2000, strict=True)


class FeedbackAck(BaseModel):
    status: Literal["recorded"] = "recorded"


class ReloadResponse(BaseModel):
    status: Literal["reloaded"] = "reloaded"
    took_ms: float


class HealthResponse(BaseModel):
    status: str


# --- OpenAI-compatible chat completions -------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat completion request. Sampling parameters are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "assistant",
                    "messages": [
                        {"role": "system", "content": "You answer questions about IOM partnerships."},
                        {"role": "user", "content": QUESTION_EXAMPLE},
                    ],
                    "stream": False,
                }
            ]
        },
    )

    model: str = Field(default="assistant", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = Field(default=False, strict=True)
    top_k: int = Field(default=5, ge=1, le=50, strict=True, description="Extension: passages to retrieve.")
    filters: ApiFilters | None = Field(default=None, description="Extension: restrict retrieval.")
    n: int | None = Field(default=None, description="Only 1 is supported; more gives 400 `unsupported_parameter`.")
    stream_options: StreamOptions | None = Field(
        default=None, description="`include_usage: true` adds a last chunk with `usage` (and no choices)."
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Tool calls are not supported: a non-empty list gives 400 `unsupported_parameter`."
    )


class ChatResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatResponseMessage
    finish_reason: Literal["stop"] = "stop"


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    citations: list[Citation] = Field(default_factory=list, description="Extension: the numbered sources.")
    answered: bool = Field(description="Extension: false when the assistant refused for lack of evidence.")


# --- Teams -------------------------------------------------------------------------------


class TeamsActivity(BaseModel):
    """The part of a Teams outgoing-webhook activity the bot reads (other fields are ignored)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "message", "text": "<at>Assistant</at> " + QUESTION_EXAMPLE, "from": {"name": "A. User"}}
            ]
        },
    )

    type: str = "message"
    text: str | None = None


class TeamsReply(BaseModel):
    type: Literal["message"] = "message"
    text: str


ASK_EVENT_SCHEMA = {
    "type": "object",
    "title": "AskEvent",
    "description": "One Server-Sent Event. `data` is JSON: `{\"delta\": str}` for `answer`, "
    "a list of Citation for `citations`, the full Answer for `done`.",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["answer", "citations", "done"]},
        "data": {"type": "string"},
    },
}

CHAT_CHUNK_EVENT_SCHEMA = {
    "type": "object",
    "title": "ChatCompletionChunkEvent",
    "description": "One Server-Sent Event whose `data` is a `chat.completion.chunk` object as JSON, "
    "or the literal `[DONE]` at the end.",
    "required": ["data"],
    "properties": {"data": {"type": "string"}},
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error status codes."""
    descriptions = {
        400: "Bad request (e.g. unknown filter key)",
        401: "Missing or invalid credentials",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict (e.g. an index reload failed; the previous index keeps serving)",
        413: "Question or body too large",
        422: "Invalid request body or parameters",
        429: "Rate limit exceeded (see Retry-After)",
        503: "Index not loaded yet, or feature not configured",
    }
    return {c: {"model": ErrorResponse, "description": descriptions.get(c, "Error")} for c in codes}
