"""The one gate in front of the browser UI: login, same-origin writes, rate limit, no uploads.

Gradio's own ``auth`` checks some routes and not others (``/gradio_api/heartbeat``,
``/gradio_api/reset``, ``/gradio_api/cancel``, ``/gradio_api/stream/...`` answer without a
login) and keeps its sessions in one process's memory (with ``--workers 2`` a login on one
worker is unknown to the other). So the UI does not use it: this ASGI middleware sits in
front of the whole mount and decides for every path that the API does not own.

- With ``ASSISTANT_UI_AUTH`` set, every UI path (the page, its assets, every
  ``/gradio_api/...`` route) needs a session cookie, except ``/login`` and ``/logout``.
  The cookie is ``user.expiry.HMAC``, signed with a key derived from the configured
  accounts: every worker process checks it alike, and changing a password ends every session.
- Writes (any method but GET/HEAD) whose ``Origin`` is another site are refused (403): a page
  on another origin, ``localhost`` ones included, cannot drive the UI with the user's cookie.
- Every UI request but the login page and the page's static files counts against the per-user
  (or per-address) rate limit; failed logins have a stricter bucket of their own.
- Upload and other routes the page never uses are answered 404 (Gradio's upload route included:
  the admin view's uploads do not go through Gradio, see below).
- ``/ui-admin/...`` (the "Manage documents" tab's calls, :mod:`ui.admin`) needs a session of an
  account named in ``ASSISTANT_UI_ADMINS`` (and ``ASSISTANT_ADMIN_KEY`` set, as for the API's admin
  endpoints): others get 403 before any body is read. Its writes also need the session's CSRF token
  in ``X-Assistant-CSRF``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assistant.api.metrics import is_api_path
from assistant.api.security import TokenBucket

log = logging.getLogger("ui.gate")

COOKIE = "assistant_ui_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
MAX_LOGIN_BODY = 4096
FAILED_LOGINS_PER_MINUTE = 10

# Routes of Gradio's app that this page never calls (it has no upload, audio, video or
# editing component): answered 404 before they reach Gradio.
BLOCKED_PREFIXES = (
    "/upload",
    "/gradio_api/upload",
    "/gradio_api/upload_progress",
    "/gradio_api/process_recording",
    "/gradio_api/stream/",
    "/gradio_api/vibe-",
    "/gradio_api/undo-vibe-edit",
    "/gradio_api/run-history",
    "/gradio_api/runs",
    "/gradio_api/dev/",
    "/gradio_api/mcp",
    "/gradio_api/proxy=",
    "/monitoring",
)

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Static files of the page (scripts, styles, icons): they still need the login, but a page load
# fetches dozens of them and they reach no service, so they do not count against the rate limit.
STATIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/favicon.ico", "/theme.css", "/manifest.json",
                   "/robots.txt", "/pwa_icon", "/gradio_api/file=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_key(accounts: list[tuple[str, str]]) -> bytes:
    """The cookie-signing key: the same in every worker, new whenever an account changes."""
    material = "\n".join(f"{u}\0{p}" for u, p in sorted(accounts)).encode()
    return hashlib.sha256(b"assistant-ui-session\0" + material).digest()


def make_session(user: str, key: bytes, hours: float, now: float | None = None) -> str:
    expiry = int((now if now is not None else time.time()) + hours * 3600)
    payload = f"{_b64(user.encode())}.{expiry}"
    sig = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def check_session(value: str | None, key: bytes, users: set[str], now: float | None = None) -> str | None:
    """The user a cookie value names, if its signature is ours and it has not expired."""
    if not value or len(value) > 512:
        return None
    try:
        user_b64, expiry, sig = value.split(".")
        expected = _b64(hmac.new(key, f"{user_b64}.{expiry}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig.encode(), expected.encode()):
            return None
        if int(expiry) < (now if now is not None else time.time()):
            return None
        user = _unb64(user_b64).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return user if user in users else None


CSRF_HEADER = "x-assistant-csrf"
ADMIN_PREFIX = "/ui-admin"


class UISessions:
    """The UI's accounts and roles: who a session cookie names, whether that user is an admin, and the
    session's CSRF token. Shared by the gate, the admin routes (``ui.admin``) and the page's handlers."""

    def __init__(self, accounts: list[tuple[str, str]], admins: set[str] | None = None,
                 admin_enabled: bool = False):
        self.accounts = list(accounts)
        self.users = {u for u, _ in self.accounts}
        self.key = session_key(self.accounts) if self.accounts else b""
        self.admins = set(admins or ()) & self.users
        self.admin_enabled = bool(admin_enabled)
        """``ASSISTANT_ADMIN_KEY`` is set: without it admin actions are off on every way in."""

    @property
    def auth_required(self) -> bool:
        return bool(self.accounts)

    def user(self, cookie_value: str | None) -> str | None:
        return check_session(cookie_value, self.key, self.users) if self.accounts else None

    def user_of(self, headers: dict[str, str]) -> str | None:
        return self.user(_cookie(headers, COOKIE))

    def is_admin(self, user: str | None) -> bool:
        return bool(user) and self.admin_enabled and user in self.admins

    def csrf_token(self, cookie_value: str) -> str:
        return _b64(hmac.new(self.key, b"csrf\0" + cookie_value.encode(), hashlib.sha256).digest())

    def csrf_ok(self, cookie_value: str | None, token: str | None) -> bool:
        if not cookie_value or not token:
            return False
        return hmac.compare_digest(self.csrf_token(cookie_value).encode(), token.strip().encode())

    def admin_refusal(self, headers: dict[str, str], method: str) -> tuple[int, str, str] | None:
        """Why a request to an admin route is refused (status, code, message), or None to let it through."""
        user = self.user_of(headers)
        if self.auth_required and user is None:
            return 401, "unauthorized", "Sign in to the UI first (at /login)."
        if not self.admin_enabled or not self.admins:
            return 403, "admin_disabled", ("Managing documents in the UI is off: set ASSISTANT_ADMIN_KEY, "
                                           "ASSISTANT_UI_AUTH and ASSISTANT_UI_ADMINS.")
        if not self.is_admin(user):
            return 403, "admin_required", "Only UI administrators (ASSISTANT_UI_ADMINS) may manage documents."
        if method not in _SAFE_METHODS and not self.csrf_ok(_cookie(headers, COOKIE), headers.get(CSRF_HEADER)):
            return 403, "bad_csrf_token", "Missing or wrong X-Assistant-CSRF token; reload the page."
        return None


def _check_password(user: str, password: str, accounts: list[tuple[str, str]]) -> bool:
    # Compare against every account so the time does not tell which user exists.
    ok = False
    for u, p in accounts:
        ok |= hmac.compare_digest(u.encode(), user.encode()) & hmac.compare_digest(p.encode(), password.encode())
    return ok


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def _same_origin(headers: dict[str, str], scope: dict) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser cross-origin request (those always carry Origin on writes)
    if origin == "null":
        return False
    parts = urlsplit(origin)
    host = headers.get("host") or ""
    forwarded = headers.get("x-forwarded-host")
    return parts.netloc.lower() in {host.lower(), (forwarded or "").lower()}


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: IOM documents assistant</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; background: #f1f5f9; margin: 0; }}
main {{ max-width: 360px; margin: 12vh auto; background: #fff; border-radius: 10px; padding: 28px;
  box-shadow: 0 2px 12px rgba(15, 23, 42, .12); }}
h1 {{ font-size: 1.25rem; margin: 0 0 4px 0; }} p {{ color: #475569; margin: 0 0 18px 0; font-size: .92rem; }}
label {{ display: block; font-size: .9rem; margin: 12px 0 4px 0; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px 10px; border: 1px solid #cbd5e1; border-radius: 6px; font-size: 1rem; }}
button {{ margin-top: 18px; width: 100%; padding: 9px; border: 0; border-radius: 6px; background: #2563eb; color: #fff;
  font-size: 1rem; cursor: pointer; }}
.error {{ color: #b91c1c; background: #fef2f2; border-radius: 6px; padding: 6px 8px; }}
</style></head>
<body><main>
<h1>IOM documents assistant</h1>
<p>Sign in with the account you were given (accounts are set in ASSISTANT_UI_AUTH).</p>
{error}
<form method="post" action="/login">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>
"""


class UIGate:
    """ASGI middleware for every path the API does not own (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        accounts: list[tuple[str, str]] | None = None,
        rate_limit_per_minute: int = 120,
        session_hours: float = 12.0,
        sessions: UISessions | None = None,
    ):
        self.app = app
        self.sessions = sessions or UISessions(list(accounts or []))
        self.accounts = self.sessions.accounts
        self.users = self.sessions.users
        self.key = self.sessions.key
        self.session_hours = session_hours
        self.limiter = TokenBucket(rate_limit_per_minute)
        self.failed_logins = TokenBucket(FAILED_LOGINS_PER_MINUTE)

    @property
    def auth_required(self) -> bool:
        return bool(self.accounts)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or is_api_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "") or "/"
        headers = _headers(scope)
        if scope["type"] == "websocket":
            if self.auth_required and self._user(headers) is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return

        method = scope.get("method", "GET").upper()
        client = (scope.get("client") or ("unknown", 0))[0]
        if method not in _SAFE_METHODS and not _same_origin(headers, scope):
            await self._json(send, 403, "forbidden_origin", "Cross-origin requests to the UI are refused.")
            return
        if self.auth_required and path in (LOGIN_PATH, LOGIN_PATH + "/"):
            await self._login(scope, receive, send, method, headers, client)
            return
        if self.auth_required and path in (LOGOUT_PATH, LOGOUT_PATH + "/"):
            await self._redirect(send, LOGIN_PATH, cookie=f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
            return

        user = self._user(headers) if self.auth_required else None
        if self.auth_required and user is None:
            if method in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
                await self._redirect(send, LOGIN_PATH)
            else:
                await self._json(send, 401, "unauthorized", "Sign in to the UI first (at /login).")
            return
        if path.startswith(BLOCKED_PREFIXES):
            await self._json(send, 404, "not_found", "Not found.")
            return
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            refusal = self.sessions.admin_refusal(headers, method)
            if refusal is not None:  # before the body is read: a non-admin cannot send an upload-sized body
                await self._json(send, *refusal)
                return
        static = method in ("GET", "HEAD") and path.startswith(STATIC_PREFIXES)
        wait = 0.0 if static else self.limiter.take("ui-user:" + user if user else "ui-ip:" + client)
        if wait > 0:
            await self._json(send, 429, "rate_limited", "Too many requests; retry later.",
                             [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        await self.app(scope, receive, send)

    def _user(self, headers: dict[str, str]) -> str | None:
        return check_session(_cookie(headers, COOKIE), self.key, self.users)

    # --- login ---------------------------------------------------------------------------

    async def _login(self, scope: dict, receive: Any, send: Any, method: str, headers: dict[str, str], client: str) -> None:
        if method in ("GET", "HEAD"):
            await self._html(send, 200, LOGIN_PAGE.format(error=""))
            return
        if method != "POST":
            await self._json(send, 405, "method_not_allowed", "Use GET or POST.")
            return
        wait = self.failed_logins.peek("login:" + client)
        if wait > 0:
            await self._json(send, 429, "rate_limited", "Too many failed sign-ins; retry later.",
                             [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_LOGIN_BODY:
                await self._json(send, 413, "payload_too_large", "The sign-in form is too large.")
                return
            if not message.get("more_body", False):
                break
        form: dict[str, list[str]] = {}
        if headers.get("content-type", "").startswith("application/json"):
            try:
                data = json.loads(body or b"{}")
                form = {k: [str(v)] for k, v in data.items()} if isinstance(data, dict) else {}
            except ValueError:
                form = {}
        else:
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        user = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        if not _check_password(user, password, self.accounts):
            self.failed_logins.take("login:" + client)
            log.warning("failed UI sign-in from %s", client)
            error = '<p class="error">Wrong user name or password.</p>'
            await self._html(send, 401, LOGIN_PAGE.format(error=error))
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        max_age = int(self.session_hours * 3600)
        cookie = (f"{COOKIE}={make_session(user, self.key, self.session_hours)}; Path=/; Max-Age={max_age}; "
                  f"HttpOnly; SameSite=Strict{secure}")
        log.info("UI sign-in: %s", html.escape(user))
        await self._redirect(send, "/", cookie=cookie)

    # --- responses -----------------------------------------------------------------------

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra: list | None = None) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")] + list(extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _json(self, send: Any, status: int, code: str, message: str, extra: list | None = None) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        await self._send(send, status, body, b"application/json", extra)

    async def _html(self, send: Any, status: int, page: str) -> None:
        await self._send(send, status, page.encode(), b"text/html; charset=utf-8",
                         [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")])

    async def _redirect(self, send: Any, location: str, cookie: str | None = None) -> None:
        extra = [(b"location", location.encode())]
        if cookie:
            extra.append((b"set-cookie", cookie.encode()))
        await self._send(send, 303, b"", b"text/plain", extra)
