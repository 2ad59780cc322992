"""POST /teams/webhook: a Microsoft Teams Outgoing Webhook.

Teams signs each request: ``Authorization: HMAC <base64>`` where the value is
Base64(HMAC-SHA256(key=Base64Decode(shared secret), message=raw body)). The bot must reply
within 5 seconds with ``{"type": "message", "text": ...}`` (Markdown).

A signature does not expire, so a signed request is also checked for freshness: an activity whose
``timestamp`` is more than ``MAX_CLOCK_SKEW_S`` (5 minutes) from the server's clock is refused (400
``stale_activity``), and one whose ``id`` or exact body came before within ``REPLAY_TTL_S`` is refused
(409 ``replayed``, see :mod:`assistant.api.replay`). Rate limits are per conversation (or sender), so a
flood in one conversation does not silence Teams for everyone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from assistant.api import deps
from assistant.api.errors import ApiError
from assistant.api.models import TeamsActivity, TeamsReply, error_responses
from assistant.render import answer_with_sources
from assistant.api.security import _limit

log = logging.getLogger("assistant.api")

router = APIRouter(tags=["teams"])

# Teams gives up after 5 s; answer (or apologise) before that.
TEAMS_TIMEOUT_S = 4.5
MAX_CLOCK_SKEW_S = 300
"""An activity's ``timestamp`` may be this far from the server's clock, either way."""
REPLAY_TTL_S = 2 * MAX_CLOCK_SKEW_S + 60
"""How long an activity id or body is remembered: past it, its timestamp is out of the window anyway."""

HELP_TEXT = (
    "Ask me a question about the IOM partnership documents, for example: "
    "*How much unearmarked funding did Denmark give IOM?* I answer with numbered sources."
)


def sign(body: bytes, secret_b64: str) -> str:
    """The value Teams puts after ``HMAC `` for ``body`` (also handy for replaying requests)."""
    key = base64.b64decode(secret_b64, validate=True)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def verify(body: bytes, authorization: str | None, secret_b64: str) -> bool:
    if not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.upper() != "HMAC" or not value.strip():
        return False
    expected = sign(body, secret_b64)
    return hmac.compare_digest(expected.encode(), value.strip().encode())


# Linear patterns only: a mention's name holds no "<", a tag no "<" or ">". (The old
# ``<at\b[^>]*>.*?</at>`` rescanned to the end of the text for every unclosed ``<at>``:
# 60,000 of them took 47 s on the event loop.)
_AT = re.compile(r"<at\b[^<>]*>[^<]*</at>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")

MAX_TEXT_FACTOR = 4
"""An activity text longer than this many times ASSISTANT_MAX_QUESTION_CHARS is refused before any parsing."""


def question_from_text(text: str | None) -> str:
    """Strip the ``<at>bot</at>`` mention and any HTML, unescape entities, collapse spaces."""
    text = _AT.sub(" ", text or "")
    text = re.sub(r"<br\s*/?>|</p>|</div>", " ", text, flags=re.IGNORECASE)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text).strip()


def _refuse_stale_or_replayed(request: Request, body: bytes, activity: dict[str, Any]) -> None:
    from assistant.api.replay import body_key, refuse_replay, timestamp_age_s

    if "timestamp" in activity:  # Teams always sends one; a body without it is only deduplicated
        try:
            age = timestamp_age_s(activity["timestamp"])
        except (ValueError, TypeError, OverflowError):
            raise ApiError(400, "bad_request", "The activity's timestamp is not an ISO 8601 time with a zone.") from None
        if abs(age) > MAX_CLOCK_SKEW_S:
            raise ApiError(400, "stale_activity",
                           f"The activity's timestamp is {abs(age):.0f} s {'old' if age > 0 else 'ahead'}; "
                           f"at most {MAX_CLOCK_SKEW_S} s either way is accepted.")
    keys = [body_key("teams", body)]
    activity_id = activity.get("id")
    if isinstance(activity_id, (str, int)) and str(activity_id):
        keys.append("teams:id:" + hashlib.sha256(str(activity_id).encode()).hexdigest())
    refuse_replay(getattr(request.app.state, "replay_cache", None), keys, REPLAY_TTL_S, "Teams activity")


def _sender_key(activity: dict[str, Any]) -> str:
    """The rate-limit bucket of a Teams request: its conversation, else its sender, else one shared bucket."""
    for field, name in (("conversation", "conv"), ("from", "from")):
        value = activity.get(field)
        ident = value.get("id") if isinstance(value, dict) else None
        if isinstance(ident, str) and ident:
            return f"{name}:{hashlib.sha256(ident.encode()).hexdigest()[:24]}"
    return "unknown"


@router.post(
    "/teams/webhook",
    response_model=TeamsReply,
    summary="Microsoft Teams outgoing webhook",
    description="Authenticated by the HMAC signature Teams sends (`Authorization: HMAC <base64>`), "
    "not by an API key. Configure the shared secret as ASSISTANT_TEAMS_SECRET.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TeamsActivity.model_json_schema()}},
        }
    },
    responses=error_responses(400, 401, 409, 413, 429, 503),
)
async def teams_webhook(request: Request) -> Any:
    settings = request.app.state.settings
    secret = settings.teams_secret.get_secret_value().strip() if settings.teams_secret is not None else ""
    if not secret:
        raise ApiError(503, "teams_disabled", "The Teams webhook is not configured: set ASSISTANT_TEAMS_SECRET.")
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        log.error("ASSISTANT_TEAMS_SECRET is not valid base64; the Teams webhook is disabled")
        raise ApiError(503, "teams_misconfigured", "The Teams webhook secret is misconfigured.") from None

    body = await request.body()
    if not verify(body, request.headers.get("authorization"), secret):
        raise ApiError(401, "bad_signature", "Missing or invalid HMAC signature.")

    try:
        activity = TeamsActivity.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):  # deeply nested JSON is bad input too
        raise ApiError(400, "bad_request", "The body is not a Teams activity (JSON object with 'text').") from None
    extra = activity.model_extra or {}
    _refuse_stale_or_replayed(request, body, extra)
    _limit(request, "teams:" + _sender_key(extra))

    service = deps.get_service(request)
    raw_text = activity.text if isinstance(activity.text, str) else ""
    if len(raw_text) > MAX_TEXT_FACTOR * settings.max_question_chars:
        return {
            "type": "message",
            "text": f"That message is too long ({len(raw_text)} characters; questions may have up to "
            f"{settings.max_question_chars}). Please shorten it.",
        }
    question = question_from_text(raw_text)
    if not question:
        return {"type": "message", "text": HELP_TEXT}
    if len(question) > settings.max_question_chars:
        return {
            "type": "message",
            "text": f"That question is too long ({len(question)} characters; the limit is "
            f"{settings.max_question_chars}). Please shorten it.",
        }
    # The deadline is enforced inside the service (work is dropped, not abandoned on a thread).
    pool = deps.get_pool(request)
    deadline = time.monotonic() + min(TEAMS_TIMEOUT_S, settings.ask_deadline_s)
    try:
        answer = await deps.ask(service, question, settings.top_k, None, None, pool=pool, deadline=deadline)
    except ApiError as exc:
        if exc.code == "deadline_exceeded":
            log.warning("Teams question took longer than %.1f s; replied with an apology", TEAMS_TIMEOUT_S)
            return {"type": "message", "text": "Sorry, that took too long to answer. Please try again in a moment."}
        if exc.code == "overloaded":
            return {"type": "message", "text": "Sorry, I am answering many questions right now. Please try again in a moment."}
        return {"type": "message", "text": f"Sorry, I could not answer that: {exc.message}"}
    request.app.state.metrics.count_answer(answer.answered, "teams")
    return {"type": "message", "text": answer_with_sources(answer, markdown=True)}
