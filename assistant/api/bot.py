"""POST /api/messages: a Microsoft Teams bot on Microsoft's Python Agents SDK (microsoft-agents-*).

Unlike the outgoing webhook (``/teams/webhook``), a registered bot works in one-to-one chats,
group chats and channels, has no 5-second limit and can answer proactively.

- **Incoming**: every request's JWT is checked by :mod:`assistant.api.bot_auth` (issuer, audience =
  app id, RS256 signature against the OpenID metadata keys, expiry with 5 minutes of skew, the
  ``serviceurl`` claim equal to the activity's ``serviceUrl``); anything else is 401. The verified
  claims are handed to the SDK's ``CloudAdapter``, which runs the ``AgentApplication`` turn.
- **Outgoing**: the SDK posts replies to the activity's ``serviceUrl`` (the Bot Connector) with a
  token from MSAL (``ASSISTANT_BOT_APP_ID``, ``ASSISTANT_BOT_APP_SECRET``, ``ASSISTANT_BOT_TENANT_ID``).
- **A turn**: a typing indicator goes out at once; the answer is posted as a reply in the thread
  with an Adaptive Card (the answer, numbered sources with title, page, section and quote, and
  thumbs up/down buttons). If the answer takes longer than ``ASSISTANT_BOT_REPLY_WITHIN_SECONDS``
  the request is acknowledged and the card follows as a proactive message in the same thread.
- **Feedback**: a thumb press comes back as a message whose ``value`` holds the rating, question and
  answer; it is appended to the feedback log (``var/feedback.jsonl``), like ``POST /v1/feedback``.
- **Conversation**: the last ``ASSISTANT_BOT_HISTORY_TURNS`` questions and answers of each Teams
  conversation, up to ``ASSISTANT_BOT_HISTORY_MINUTES`` old, are the history of the next question.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assistant.api import deps
from assistant.api.bot_auth import BOT_FRAMEWORK_ISSUER, BotAuthError, BotConnectorAuth
from assistant.api.errors import ApiError
from assistant.render import location, one_line
from assistant.api.models import error_responses
from assistant.api.teams import HELP_TEXT, question_from_text
from assistant.records import Answer, Feedback, Turn
from assistant.service import AssistantService
from assistant.settings import Settings

log = logging.getLogger("assistant.api")

router = APIRouter(tags=["teams"])

MAX_ACTIVITY_BYTES = 256 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_QUOTE = 600
REPLAY_MIN_TTL_S = 600
REPLAY_MAX_TTL_S = 26 * 3600
"""An activity is remembered until its token expires (plus the clock skew), within these bounds."""


# --- conversation history ------------------------------------------------------------------


class ConversationHistory:
    """Recent turns per conversation: at most ``max_turns`` question/answer pairs, none older than
    ``max_age_s``, for at most ``max_conversations`` conversations (least recently used dropped)."""

    def __init__(self, max_turns: int = 5, max_age_s: float = 1800, max_conversations: int = 2000):
        self.max_turns = max_turns
        self.max_age_s = max_age_s
        self.max_conversations = max_conversations
        self._data: OrderedDict[str, deque[tuple[float, str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conversation_id: str) -> list[Turn]:
        now = time.monotonic()
        with self._lock:
            pairs = self._data.get(conversation_id)
            if not pairs:
                return []
            while pairs and now - pairs[0][0] > self.max_age_s:
                pairs.popleft()
            turns: list[Turn] = []
            for _, question, answer in pairs:
                turns += [Turn(role="user", content=question), Turn(role="assistant", content=answer)]
            return turns

    def add(self, conversation_id: str, question: str, answer: str) -> None:
        if self.max_turns <= 0:
            return
        with self._lock:
            pairs = self._data.pop(conversation_id, None) or deque(maxlen=self.max_turns)
            pairs.append((time.monotonic(), question, answer))
            self._data[conversation_id] = pairs
            while len(self._data) > self.max_conversations:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


# --- the Adaptive Card ---------------------------------------------------------------------



def _cells(quote: str) -> str:
    """A table row's tab-separated cells shown as ``a | b | c`` (empty cells left out)."""
    if "\t" not in quote:
        return quote
    return " | ".join(cell.strip() for cell in quote.split("\t") if cell.strip())


def where(c: Any) -> str:
    return " · ".join([*location(c, 120), c.document_id])


def answer_card(question: str, answer: Answer) -> dict[str, Any]:
    """An Adaptive Card (schema 1.5): the answer, its numbered sources with quotes, and feedback buttons."""
    body: list[dict[str, Any]] = []
    if not answer.answered:
        body.append({"type": "TextBlock", "text": "Not found in the documents", "weight": "Bolder",
                     "color": "Warning", "wrap": True})
    body.append({"type": "TextBlock", "text": answer.answer.strip(), "wrap": True})
    if answer.citations:
        body.append({"type": "TextBlock", "text": "Sources", "weight": "Bolder", "spacing": "Medium",
                     "separator": True})
        for c in sorted(answer.citations, key=lambda c: c.n):
            body.append({
                "type": "Container",
                "spacing": "Small",
                "items": [
                    {"type": "TextBlock", "text": f"[{c.n}] {c.title}", "weight": "Bolder", "wrap": True},
                    {"type": "TextBlock", "text": where(c), "isSubtle": True, "spacing": "None", "wrap": True,
                     "size": "Small"},
                    {"type": "TextBlock", "text": f"“{one_line(_cells(c.quote), MAX_CARD_QUOTE)}”", "wrap": True,
                     "spacing": "Small"},
                ],
            })
    feedback = {"action": "feedback", "question": one_line(question, 3900), "answer": one_line(answer.answer, 3900)}
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
        "actions": [
            {"type": "Action.Submit", "title": "👍 Helpful", "data": {**feedback, "rating": "up"}},
            {"type": "Action.Submit", "title": "👎 Not helpful", "data": {**feedback, "rating": "down"}},
        ],
    }


# --- the bot -------------------------------------------------------------------------------


class StaticTokenProvider:
    """An ``AccessTokenProviderBase`` that hands out one fixed token: for tests and local connectors only."""

    def __init__(self, configuration: Any, token: str):
        self._configuration = configuration
        self._token = token

    @property
    def configuration(self) -> Any:
        return self._configuration

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return self._token

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError

    async def get_agentic_application_token(self, *args: Any, **kwargs: Any) -> str | None:
        return None

    async def get_agentic_instance_token(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        raise NotImplementedError

    async def get_agentic_user_token(self, *args: Any, **kwargs: Any) -> str | None:
        return None


def msal_connections(settings: Settings) -> Any:
    """The SDK's MSAL connection manager for the bot's app registration (client secret)."""
    from microsoft_agents.authentication.msal import MsalConnectionManager
    from microsoft_agents.hosting.core import AgentAuthConfiguration, AuthTypes

    secret = settings.bot_app_secret.get_secret_value() if settings.bot_app_secret else ""
    config = AgentAuthConfiguration(
        auth_type=AuthTypes.client_secret,
        client_id=settings.bot_app_id,
        tenant_id=settings.bot_tenant_id or None,
        client_secret=secret or None,
    )
    return MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": config})


class AssistantBot:
    """The Agents SDK application around the assistant's service."""

    def __init__(self, state: Any, settings: Settings, connections: Any | None = None,
                 auth: BotConnectorAuth | None = None):
        from microsoft_agents.hosting.core import AgentApplication, MemoryStorage, TurnState
        from microsoft_agents.hosting.fastapi import CloudAdapter

        self._state = state  # the app's state: service and metrics
        self.settings = settings
        self.connections = connections or msal_connections(settings)
        issuers = [i.strip() for i in settings.bot_issuers.split(",") if i.strip()] or [BOT_FRAMEWORK_ISSUER]
        self.auth = auth or BotConnectorAuth(settings.bot_app_id, settings.bot_openid_metadata_url, issuers)
        self.adapter = CloudAdapter(connection_manager=self.connections)
        self.adapter.on_turn_error = self._on_turn_error
        self.app = AgentApplication[TurnState](
            storage=MemoryStorage(), connection_manager=self.connections, start_typing_timer=False,
            remove_recipient_mention=False, bot_app_id=settings.bot_app_id,
        )
        self.app.activity("message")(self._on_message)
        self.app.conversation_update("membersAdded")(self._on_members_added)
        self.history = ConversationHistory(settings.bot_history_turns, settings.bot_history_minutes * 60)
        self._background: set[asyncio.Task] = set()

    @property
    def service(self) -> AssistantService:
        return self._state.service

    # -- turns --------------------------------------------------------------------------------
    async def _on_turn_error(self, context: Any, error: Exception) -> None:
        log.error("bot turn failed: %s", error, exc_info=error)
        try:
            await context.send_activity("Sorry, something went wrong while answering. Please try again.")
        except Exception:  # the connector itself may be what failed
            pass

    async def _on_members_added(self, context: Any, _state: Any) -> None:
        bot_id = context.activity.recipient.id if context.activity.recipient else None
        for member in context.activity.members_added or []:
            if member.id != bot_id and (context.activity.conversation.conversation_type or "personal") == "personal":
                await context.send_activity(HELP_TEXT)
                return

    async def _on_message(self, context: Any, _state: Any) -> None:
        from microsoft_agents.activity import Activity, ActivityTypes

        activity = context.activity
        value = activity.value if isinstance(activity.value, dict) else None
        if value and value.get("action") == "feedback":
            await self._on_feedback(context, value)
            return
        question = question_from_text(activity.text)
        if not question:
            await context.send_activity(HELP_TEXT)
            return
        if len(question) > self.settings.max_question_chars:
            await context.send_activity(f"That question is too long ({len(question)} characters; the limit is "
                                        f"{self.settings.max_question_chars}). Please shorten it.")
            return
        await context.send_activity(Activity(type=ActivityTypes.typing))
        conversation_id = activity.conversation.id
        history = self.history.get(conversation_id)
        task = asyncio.ensure_future(self._answer(conversation_id, question, history))
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), self.settings.bot_reply_within_seconds)
        except asyncio.TimeoutError:
            log.info("bot answer takes longer than %.1f s: it follows as a proactive reply",
                     self.settings.bot_reply_within_seconds)
            self._follow_up_proactively(context, task)
            return
        await context.send_activity(reply)

    async def _answer(self, conversation_id: str, question: str, history: list[Turn]) -> Any:
        from microsoft_agents.activity import Activity, ActivityTypes, Attachment

        try:
            service = self.service
            if not service.ready:
                return Activity(type=ActivityTypes.message, text="The index is still loading; please ask again shortly.")
            answer = await deps.ask(service, question, self.settings.top_k, None, history)
        except ApiError as exc:
            return Activity(type=ActivityTypes.message, text=f"Sorry, I could not answer that: {exc.message}")
        metrics = getattr(self._state, "metrics", None)
        if metrics is not None:
            metrics.count_answer(answer.answered, "bot")
        if answer.answered:
            self.history.add(conversation_id, question, answer.answer)
        card = answer_card(question, answer)
        return Activity(
            type=ActivityTypes.message,
            summary=one_line(answer.answer, 200),
            attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)],
        )

    def _follow_up_proactively(self, context: Any, task: asyncio.Future) -> None:
        reference = context.activity.get_conversation_reference()
        identity = context.identity

        async def deliver() -> None:
            reply = await task

            async def send(proactive: Any) -> None:
                await proactive.send_activity(reply)

            continuation = reference.get_continuation_activity()
            if reference.activity_id:  # so the reply goes to the question's thread, as an inline one does
                continuation.id = reference.activity_id
            try:
                await self.adapter.continue_conversation_with_claims(identity, continuation, send)
            except Exception as exc:
                log.error("bot: proactive reply failed: %s", exc, exc_info=exc)

        background = asyncio.ensure_future(deliver())
        self._background.add(background)
        background.add_done_callback(self._background.discard)

    async def _on_feedback(self, context: Any, value: dict[str, Any]) -> None:
        rating = value.get("rating")
        if rating not in ("up", "down"):
            await context.send_activity("Sorry, I did not understand that button.")
            return
        comment = value.get("comment")
        user = context.activity.from_property
        try:
            item = Feedback(question=str(value.get("question") or "(unknown)")[:4000],
                            answer=str(value.get("answer") or "")[:20000], rating=rating,
                            comment=(str(comment)[:4000] if comment else None))
            await deps.call_service_async(self.service.feedback, item)
        except Exception as exc:
            log.error("bot: could not record feedback: %s", exc)
            await context.send_activity("Sorry, your feedback could not be recorded.")
            return
        log.info("bot feedback %s from %s", rating, getattr(user, "id", "?"))
        await context.send_activity("Thanks, your feedback was recorded." if rating == "up"
                                    else "Thanks, your feedback was recorded; it helps us fix the answers.")

    # -- the HTTP request ---------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        from microsoft_agents.hosting.core import ClaimsIdentity

        body = await _read_limited(request, MAX_ACTIVITY_BYTES)
        try:
            activity = json.loads(body)
            if not isinstance(activity, dict):
                raise ValueError
        except ValueError:
            raise ApiError(400, "bad_request", "The body is not a Bot Framework activity (a JSON object).") from None
        try:
            claims, token = await self.auth.validate(request.headers.get("authorization"), activity)
        except BotAuthError as exc:
            log.warning("bot: request refused: %s", exc)
            raise ApiError(401, "unauthorized", "Missing or invalid Bot Connector token.",
                           headers={"WWW-Authenticate": 'Bearer realm="bot"'}) from None
        self._refuse_replay(request, body, activity, claims)
        request.state.claims_identity = ClaimsIdentity(claims, authentication_type="Bearer", security_token=token)
        return await self.adapter.process(request, self.app)

    @staticmethod
    def _refuse_replay(request: Request, body: bytes, activity: dict[str, Any], claims: dict[str, Any]) -> None:
        """409 ``replayed`` for an activity (same id in the same conversation, or the same body) that came
        before while its token could still be used: a token is valid for many requests until it expires."""
        import hashlib

        from assistant.api.bot_auth import CLOCK_SKEW_S
        from assistant.api.replay import body_key, refuse_replay

        keys = [body_key("bot", body)]
        conversation = activity.get("conversation")
        conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
        activity_id = activity.get("id")
        if isinstance(activity_id, str) and activity_id:
            ident = f"{activity.get('channelId')}\0{conversation_id}\0{activity_id}"
            keys.append("bot:id:" + hashlib.sha256(ident.encode()).hexdigest())
        exp = claims.get("exp")
        token_left = float(exp) - time.time() if isinstance(exp, (int, float)) else 0.0
        ttl = max(REPLAY_MIN_TTL_S, min(token_left + CLOCK_SKEW_S, REPLAY_MAX_TTL_S))
        refuse_replay(getattr(request.app.state, "replay_cache", None), keys, ttl, "bot activity")

    async def drain(self, timeout: float = 30) -> None:
        """Wait for proactive replies still being delivered (tests and shutdown)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"Request body is larger than the limit of {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"Request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # noqa: SLF001  (starlette reads it back for request.json() in the SDK)
    return body


def get_bot(request: Request) -> AssistantBot:
    bot = getattr(request.app.state, "bot", None)
    if bot is None:
        settings: Settings = request.app.state.settings
        if not settings.bot_app_id:
            raise ApiError(503, "bot_disabled", "The Teams bot is not configured: set ASSISTANT_BOT_APP_ID "
                           "(and ASSISTANT_BOT_APP_SECRET, ASSISTANT_BOT_TENANT_ID).")
        try:
            bot = request.app.state.bot = AssistantBot(request.app.state, settings)
        except Exception as exc:
            log.error("the Teams bot could not start: %s", exc)
            raise ApiError(503, "bot_misconfigured", "The Teams bot is misconfigured; see the server log.") from None
    return bot


@router.post(
    "/api/messages",
    status_code=202,
    # Microsoft's protocol, not part of the assistant's API contract: described in the README, not in /docs.
    include_in_schema=False,
    summary="Microsoft Teams bot (Bot Framework / Agents SDK messaging endpoint)",
    description="Authenticated by the Bot Connector's JWT (`Authorization: Bearer <jwt>`), not by an API key. "
    "Configure ASSISTANT_BOT_APP_ID, ASSISTANT_BOT_APP_SECRET and ASSISTANT_BOT_TENANT_ID. "
    "Replies go to the activity's `serviceUrl`.",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
    responses={200: {"description": "Invoke response"}, **error_responses(400, 401, 409, 413, 503)},
)
async def messages(request: Request) -> Any:
    response = await get_bot(request).handle(request)
    return response if response is not None else JSONResponse(None, status_code=202)
