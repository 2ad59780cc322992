"""Authentication (Bearer API keys, admin key), per-key rate limiting, and the bind check.

Keys are compared in constant time and never logged; rate-limit buckets are keyed by a
hash of the key, not the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.api.errors import ApiError
from assistant.settings import Settings

log = logging.getLogger("assistant.api")

bearer = HTTPBearer(
    auto_error=False,
    description="API key from ASSISTANT_API_KEYS, sent as `Authorization: Bearer <key>`.",
)

_LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to serve anything without a credential on anything but loopback.

    Off loopback, the API needs ``ASSISTANT_API_KEYS`` and the browser UI needs its login
    (``ASSISTANT_UI_AUTH``) unless it is switched off (``ASSISTANT_UI_ENABLED=false``):
    raises ``ValueError`` otherwise, and for a malformed ``ASSISTANT_UI_AUTH``. Logs a warning
    for what is open on loopback.
    """
    from ui.formatting import parse_admins, parse_auth  # raise ValueError naming ASSISTANT_UI_AUTH / _ADMINS

    ui_on = settings.ui_enabled
    ui_accounts = parse_auth(settings.ui_auth) if ui_on else []
    ui_admins = parse_admins(settings.ui_admins, ui_accounts) if ui_on else set()
    if ui_admins and not (settings.admin_key is not None and settings.admin_key.get_secret_value()):
        log.warning("ASSISTANT_UI_ADMINS is set but ASSISTANT_ADMIN_KEY is not: managing documents is off "
                    "in the UI as in the API.")
    if not is_loopback(host):
        if not settings.api_key_set:
            raise ValueError(
                f"Refusing to bind to {host!r} without API keys: set ASSISTANT_API_KEYS "
                "(comma-separated bearer keys) or bind to 127.0.0.1."
            )
        if ui_on and not ui_accounts:
            raise ValueError(
                f"Refusing to bind to {host!r} with the browser UI open: set ASSISTANT_UI_AUTH "
                "(comma-separated user:password pairs, the UI's login), or ASSISTANT_UI_ENABLED=false "
                "to serve the API only, or bind to 127.0.0.1."
            )
        return
    if not settings.api_key_set:
        log.warning(
            "No API keys configured (ASSISTANT_API_KEYS): the HTTP API is open, bound to loopback %s only.", host
        )
    if ui_on and not ui_accounts:
        log.warning("No UI login configured (ASSISTANT_UI_AUTH): the browser UI is open, bound to loopback %s only.",
                    host)


def _matches(candidate: str, keys: set[str]) -> bool:
    # Compare against every key so the time does not depend on which key matched.
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(candidate.encode(), key.encode())
    return ok


def _key_id(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="assistant"'})


class TokenBucket:
    """Per-client token buckets: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, max_clients: int = 10_000):
        self.per_minute = per_minute
        self.capacity = float(max(per_minute, 1))
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Take a token; return 0 when allowed, else the seconds until one is available."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens = self._refilled(client, now)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def peek(self, client: str) -> float:
        """Like ``take`` but without taking: 0 when a token is there, else the seconds until one is."""
        if self.per_minute <= 0:
            return 0.0
        with self._lock:
            tokens = self._refilled(client, time.monotonic())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _refilled(self, client: str, now: float) -> float:
        """The client's tokens now: what it had, plus what the time since has added (capped)."""
        tokens, last = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        for k, (_, last) in list(self._buckets.items()):
            if now - last > full_after:
                del self._buckets[k]


def make_bucket(settings: Settings, limiter: str, per_minute: int):
    """The token bucket of one limiter: in this process, or, with the PostgreSQL store, in the
    database so every worker shares it (``assistant.stores.shared``)."""
    if settings.store == "postgres" and per_minute > 0:
        from assistant.stores.shared import PgTokenBucket, shared_store

        return PgTokenBucket(shared_store(settings), limiter, per_minute)
    return TokenBucket(per_minute)


def _limit(request: Request, client: str) -> None:
    limiter: TokenBucket = request.app.state.rate_limiter
    wait = limiter.take(client)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"Rate limit of {limiter.per_minute} requests per minute exceeded; retry later.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _failed_auth_limit(request: Request) -> None:
    """Refuse an address that sent too many wrong keys lately (429), before comparing anything."""
    bucket: TokenBucket | None = getattr(request.app.state, "failed_auth", None)
    if bucket is None:
        return
    wait = bucket.peek("authfail:" + _client_address(request))
    if wait > 0:
        raise ApiError(429, "rate_limited", "Too many requests with a wrong or missing key; retry later.",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _failed_auth(request: Request, message: str) -> ApiError:
    bucket: TokenBucket | None = getattr(request.app.state, "failed_auth", None)
    if bucket is not None:
        bucket.take("authfail:" + _client_address(request))
    return _unauthorized(message)


async def require_api_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> str:
    """Bearer key check (open when no keys are configured) and per-key rate limit.

    Returns an opaque client id (a hash of the key, or the client address when open).
    """
    settings: Settings = request.app.state.settings
    keys = settings.api_key_set
    if settings.admin_key is not None and settings.admin_key.get_secret_value():
        keys = (keys | {settings.admin_key.get_secret_value()}) if keys else keys
    if keys:
        _failed_auth_limit(request)
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise _failed_auth(request, "Missing API key: send 'Authorization: Bearer <key>'.")
        if not _matches(credentials.credentials, keys):
            raise _failed_auth(request, "Invalid API key.")
        client = _key_id(credentials.credentials)
    else:
        client = "ip:" + (request.client.host if request.client else "unknown")
    _limit(request, client)
    return client


async def require_admin_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> str:
    """The admin key (ASSISTANT_ADMIN_KEY) guards write endpoints; without one they are disabled."""
    settings: Settings = request.app.state.settings
    admin = settings.admin_key.get_secret_value() if settings.admin_key is not None else ""
    if not admin:
        raise ApiError(403, "admin_disabled", "Admin endpoints are disabled: set ASSISTANT_ADMIN_KEY.")
    _failed_auth_limit(request)
    if credentials is None or not credentials.credentials:
        raise _failed_auth(request, "Missing admin key: send 'Authorization: Bearer <admin key>'.")
    if not hmac.compare_digest(credentials.credentials.encode(), admin.encode()):
        raise _failed_auth(request, "Invalid admin key.")
    client = _key_id(credentials.credentials)
    _limit(request, client)
    return client
