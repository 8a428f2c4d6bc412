"""Who is asking: browser sessions (cookie + CSRF token), API bearer tokens, roles.

- A browser logs in at ``/login`` and gets the ``puente_session`` cookie (HttpOnly,
  SameSite=Lax, Secure when ``secure_cookies``). Every state-changing request made with that
  cookie must also carry the session's CSRF token (header ``X-CSRF-Token`` or form field
  ``csrf_token``), else 403: another site can make the browser send the cookie, not read the
  token.
- An API client sends ``Authorization: Bearer <token>`` (``puente users token``); no CSRF
  token is needed, since a browser never adds that header by itself.
- Tokens and session ids are random 256-bit secrets; only their SHA-256 is stored.

:func:`auth_middleware` resolves the user of every request and refuses anonymous requests to
anything not marked :func:`public` (401 JSON under ``/api/``, a redirect to ``/login`` for
pages); :func:`require` restricts a page to some roles (API routes declare their roles).
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from web._exceptions import BadRequest, Forbidden, Unauthorized
from web._keys import CLOCK, POOL, PUBLIC_PREFIXES, USER
from web._passwords import new_token, token_digest

log = logging.getLogger(__name__)

ROLES = ("admin", "supervisor", "agent")
SESSION_COOKIE = "puente_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_PREFIX = "pns_"
TOKEN_PREFIX = "pnt_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class User:
    """An authenticated user, as the request's handlers see it."""

    id: int
    username: str
    role: str
    agent_id: int | None
    agent_code: str | None
    via: str  # "session" or "token"
    session_id: int | None = None
    token_id: int | None = None
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"


_AGENT = """
LEFT JOIN LATERAL (
    SELECT a.id, a.code FROM agents a WHERE a.user_id = u.id ORDER BY a.id LIMIT 1
) ag ON true
"""
_SESSION = f"""
SELECT u.id, u.username, u.role, ag.id AS agent_id, ag.code AS agent_code,
       s.id AS session_id, s.csrf_token
FROM web_sessions s JOIN users u ON u.id = s.user_id {_AGENT}
WHERE s.revoked_at IS NULL AND s.expires_at > $2 AND NOT u.disabled"""
_TOKEN = f"""
SELECT u.id, u.username, u.role, ag.id AS agent_id, ag.code AS agent_code, t.id AS token_id
FROM api_tokens t JOIN users u ON u.id = t.user_id {_AGENT}
WHERE t.revoked_at IS NULL AND NOT u.disabled"""
_BY_SESSION = _SESSION + " AND s.token_sha256 = $1"
_BY_TOKEN = _TOKEN + " AND t.token_sha256 = $1"
# The same, by the session's or token's id: a websocket's user, checked again while it is open.
_SESSION_BY_ID = _SESSION + " AND s.id = $1"
_TOKEN_BY_ID = _TOKEN + " AND t.id = $1"


# -- sessions and tokens (database) -----------------------------------------------------------
async def create_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: int,
    *,
    now: datetime,
    ttl_s: int,
    client: str | None,
) -> tuple[str, str]:
    """A new session for ``user_id``: ``(cookie value, CSRF token)``, given out once."""
    token = new_token(SESSION_PREFIX)
    csrf = new_token("")
    await conn.execute(
        "INSERT INTO web_sessions (token_sha256, user_id, csrf_token, client, created_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        token_digest(token),
        user_id,
        csrf,
        (client or "")[:64] or None,
        now,
        now + timedelta(seconds=ttl_s),
    )
    return token, csrf


async def revoke_session(conn: asyncpg.Connection | asyncpg.Pool, session_id: int) -> None:
    await conn.execute(
        "UPDATE web_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id,
    )


async def create_api_token(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, name: str
) -> tuple[int, str]:
    """A new API token for ``user_id``: ``(id, token)``; the token is shown once, never kept."""
    token = new_token(TOKEN_PREFIX)
    token_id = await conn.fetchval(
        "INSERT INTO api_tokens (token_sha256, user_id, name) VALUES ($1, $2, $3) RETURNING id",
        token_digest(token),
        user_id,
        name,
    )
    return token_id, token


def _user(row: asyncpg.Record, via: str) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        agent_id=row["agent_id"],
        agent_code=row["agent_code"],
        via=via,
        session_id=row.get("session_id"),
        token_id=row.get("token_id"),
        csrf_token=row.get("csrf_token"),
    )


def _bearer(request: web.Request) -> str | None:
    """The bearer token of the request; "" when the header is there but unusable."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256 or not token.isascii():
        return ""
    return token


async def resolve_user(request: web.Request) -> User | None:
    """The user of ``request`` from its bearer token, else its session cookie; None if none.

    Raises :class:`Unauthorized` for an ``Authorization`` header that names no live token
    (a client that sent credentials wants to know they failed).
    """
    pool = request.app[POOL]
    bearer = _bearer(request)
    if bearer is not None:
        row = await pool.fetchrow(_BY_TOKEN, token_digest(bearer)) if bearer else None
        if row is None:
            raise Unauthorized("invalid or revoked API token")
        return _user(row, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 256 or not cookie.isascii():
        return None
    row = await pool.fetchrow(_BY_SESSION, token_digest(cookie), request.app[CLOCK]())
    return _user(row, "session") if row is not None else None


async def signed_in_now(pool: asyncpg.Pool, user: User, now: datetime) -> User | None:
    """``user`` as it is now (its role and agent read again), or None when its session has
    ended (logged out, expired, its user disabled) or its token was revoked.

    A request is authenticated once; a websocket outlives the request that opened it, so what
    it pushes (screen pops, the wallboard) is checked with this first.
    """
    if user.session_id is not None:
        row = await pool.fetchrow(_SESSION_BY_ID, user.session_id, now)
        return _user(row, "session") if row is not None else None
    if user.token_id is not None:
        row = await pool.fetchrow(_TOKEN_BY_ID, user.token_id)
        return _user(row, "token") if row is not None else None
    return None


# -- the middleware ---------------------------------------------------------------------------
def public(handler: Handler) -> Handler:
    """Mark a page or route as reachable without logging in (``/login``)."""
    handler.__puente_public__ = True  # type: ignore[attr-defined]
    return handler


def csrf_exempt(handler: Handler) -> Handler:
    """Mark a handler whose POST needs no CSRF token (``/login``: it starts a new session and
    changes nothing of the one the browser may already have)."""
    handler.__puente_csrf_exempt__ = True  # type: ignore[attr-defined]
    return handler


def is_api(request: web.Request) -> bool:
    return request.path.startswith(API_PREFIX)


def _is_public(request: web.Request) -> bool:
    match = request.match_info
    if match.http_exception is not None:  # 404/405: let the router answer
        return True
    if getattr(match.handler, "__puente_public__", False):
        return True
    return any(request.path.startswith(p) for p in request.app[PUBLIC_PREFIXES])


async def read_form(request: web.Request) -> Any:
    """The request's form fields; :class:`BadRequest` when the body is not a readable form."""
    try:
        return await request.post()  # bounded by the application's client_max_size (413)
    except (ValueError, LookupError, HttpProcessingError):  # a bad boundary or charset, bad UTF-8
        raise BadRequest("malformed form body", "body") from None


async def _csrf_ok(request: web.Request, user: User) -> bool:
    expected = user.csrf_token or ""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in _FORMS:
        form = await read_form(request)
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode("utf-8"))


def login_redirect(request: web.Request) -> web.HTTPFound:
    target = request.rel_url.path_qs if request.method == "GET" else "/"
    return web.HTTPFound(str(URL("/login").with_query(next=target)))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the user; refuse anonymous access to private routes and cookie-authenticated
    state changes without the session's CSRF token."""
    user = await resolve_user(request)
    request[USER] = user
    if user is None:
        if not _is_public(request):
            if is_api(request):
                raise Unauthorized("authentication required (a session or a bearer token)")
            raise login_redirect(request)
    elif (
        user.via == "session"
        and request.method not in SAFE_METHODS
        and not getattr(request.match_info.handler, "__puente_csrf_exempt__", False)
        and not await _csrf_ok(request, user)
    ):
        raise Forbidden(f"missing or wrong CSRF token (send the {CSRF_HEADER} header)")
    return await handler(request)


def require(*roles: str) -> Callable[[Handler], Handler]:
    """Restrict a page (or any aiohttp handler) to users with one of ``roles``.

    An anonymous request is sent to ``/login`` (401 under ``/api/``); a user without the
    role gets 403.
    """
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles must be some of {ROLES}, got {roles}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request, *args: Any, **kwargs: Any) -> web.StreamResponse:
            user: User | None = request.get(USER)
            if user is None:
                if is_api(request):
                    raise Unauthorized("authentication required")
                raise login_redirect(request)
            if user.role not in roles:
                raise Forbidden(f"this needs the role {' or '.join(roles)}")
            return await handler(request, *args, **kwargs)

        return wrapped

    return decorate
