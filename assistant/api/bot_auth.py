"""Validation of the JWT that the Bot Connector service sends with every activity.

Follows "Authenticate requests from the Bot Connector service to your bot" (Bot Framework REST
API authentication):

1. The token is in the ``Authorization`` header with the ``Bearer`` scheme.
2. It is a JWT signed with RS256 by a key listed in the OpenID metadata's ``jwks_uri``
   (``ASSISTANT_BOT_OPENID_METADATA_URL``, by default Bot Framework's
   ``https://login.botframework.com/v1/.well-known/openidconfiguration``).
   A key that carries ``endorsements`` must endorse the activity's ``channelId``.
3. ``iss`` is one of the accepted issuers (``ASSISTANT_BOT_ISSUERS``, by default
   ``https://api.botframework.com``).
4. ``aud`` is the bot's Microsoft App ID (``ASSISTANT_BOT_APP_ID``).
5. It has not expired (``exp``) and is already valid (``nbf``), with 5 minutes of clock skew.
6. Its ``serviceurl`` claim equals the activity's ``serviceUrl``.

The metadata and keys are cached for a day (Bot Framework rotates its keys with notice) and
fetched again at once, at most every five minutes, when a token names a key id not in the cache.
The Agents SDK's own validator pins Microsoft's JWKS addresses and does not compare
``serviceurl`` with the activity, so this module does the checking and hands the SDK the
verified claims.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

log = logging.getLogger("assistant.api")

BOT_FRAMEWORK_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
CLOCK_SKEW_S = 300
KEYS_TTL_S = 24 * 3600
REFRESH_MIN_INTERVAL_S = 300


class BotAuthError(Exception):
    """The request is not authenticated; ``str()`` says why (logged, not sent to the caller)."""


def same_service_url(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


@dataclass
class _KeySet:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float = 0.0


class BotConnectorAuth:
    def __init__(self, app_id: str, metadata_url: str = BOT_FRAMEWORK_METADATA_URL,
                 issuers: list[str] | None = None, timeout_s: float = 10.0):
        if not app_id:
            raise ValueError("the bot's Microsoft App ID is required")
        self.app_id = app_id
        self.metadata_url = metadata_url
        self.issuers = issuers or [BOT_FRAMEWORK_ISSUER]
        self.timeout_s = timeout_s
        self._keyset = _KeySet()
        self._last_refresh = 0.0
        self._lock = asyncio.Lock()

    async def _fetch_keys(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as http:
            meta = (await http.get(self.metadata_url)).raise_for_status().json()
            jwks_uri = meta.get("jwks_uri")
            if not jwks_uri:
                raise BotAuthError("OpenID metadata has no jwks_uri")
            jwks = (await http.get(jwks_uri)).raise_for_status().json()
        keys = {k["kid"]: k for k in jwks.get("keys", []) if k.get("kid")}
        self._keyset = _KeySet(keys, time.monotonic())
        self._last_refresh = time.monotonic()
        log.info("bot auth: %d signing keys from %s", len(keys), jwks_uri)

    async def _key(self, kid: str) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            stale = not self._keyset.keys or now - self._keyset.fetched_at > KEYS_TTL_S
            unknown = kid not in self._keyset.keys and now - self._last_refresh > REFRESH_MIN_INTERVAL_S
            if stale or unknown:
                try:
                    await self._fetch_keys()
                except (httpx.HTTPError, ValueError) as exc:
                    if not self._keyset.keys:
                        raise BotAuthError(f"cannot read the OpenID signing keys: {type(exc).__name__}") from None
                    log.warning("bot auth: key refresh failed (%s); using the cached keys", type(exc).__name__)
            key = self._keyset.keys.get(kid)
        if key is None:
            raise BotAuthError("the token is signed with an unknown key")
        return key

    async def validate(self, authorization: str | None, activity: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The verified claims and the raw token, or BotAuthError."""
        if not authorization:
            raise BotAuthError("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BotAuthError("the Authorization header is not a Bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise BotAuthError("the token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise BotAuthError(f"unexpected signing algorithm {header.get('alg')!r}")
        jwk = await self._key(str(header.get("kid", "")))
        endorsements = jwk.get("endorsements")
        channel = str(activity.get("channelId") or "")
        if endorsements is not None and channel not in endorsements:
            raise BotAuthError(f"the signing key does not endorse channel {channel!r}")
        try:
            claims = jwt.decode(
                token,
                key=jwt.PyJWK(jwk, algorithm="RS256").key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=self.issuers,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise BotAuthError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise BotAuthError("the token's audience is not this bot's app id") from None
        except jwt.InvalidIssuerError:
            raise BotAuthError("the token's issuer is not accepted") from None
        except jwt.PyJWTError as exc:
            raise BotAuthError(f"invalid token ({type(exc).__name__})") from None
        claim_url = claims.get("serviceurl") or claims.get("serviceUrl")
        if not same_service_url(claim_url, activity.get("serviceUrl")):
            raise BotAuthError("the token's serviceurl claim does not match the activity's serviceUrl")
        return claims, token
