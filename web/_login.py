"""The login page, ``POST /login`` and ``POST /logout``.

Login attempts are limited per client address and per user name
(``login_attempts_per_min`` in any 60 s, counted before the password is checked, so the
limit also bounds the scrypt work an attacker can cause); past it, 429 with ``Retry-After``.
Every failure is audited (``auth.login_failed``) with the reason; a name that is no user's is
not written anywhere (people type passwords into the name field). A disabled user gets the
same answer as a wrong password. Attempts refused over the limit are counted (the component's
status line) and logged, not audited (a flood would fill the audit log). The client address
is the TCP peer's: behind a reverse proxy, every user shares the proxy's address.
"""

from __future__ import annotations

import html
import logging
import math
import time

from aiohttp import web

from web._audit import audit
from web._auth import (
    SESSION_COOKIE,
    create_session,
    csrf_exempt,
    public,
    read_form,
    revoke_session,
)
from web._exceptions import TooManyRequests
from web._keys import CLOCK, LOGIN_LIMITER, POOL, SETTINGS, STATS, USER
from web._passwords import untypable, verify_password_async

log = logging.getLogger(__name__)

MAX_USERNAME_CHARS = 128
MAX_PASSWORD_CHARS = 1024

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Puente: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Puente</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<p><label>User name <input name="username" autocomplete="username" required autofocus></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"
required></label></p>
<p><button type="submit">Sign in</button></p>
</form></main></body></html>
"""


def _safe_next(value: object) -> str:
    """Only a local path: never another site (``//evil``, ``https://...``, ``/\\evil``)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/"
    # (and no control character or space at all: a browser drops tabs and newlines from a
    # URL, so "/\t/evil.example" is "//evil.example" to it)
    if value.startswith(("//", "/\\")) or any(c == "\\" or c <= " " or c == "\x7f" for c in value):
        return "/"
    return value


def _page(next_path: str, error: str | None = None, status: int = 200) -> web.Response:
    message = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(error=message, next=html.escape(next_path, quote=True))
    return web.Response(text=body, status=status, content_type="text/html")


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


@public
async def login_page(request: web.Request) -> web.Response:
    return _page(_safe_next(request.query.get("next")))


@public
@csrf_exempt
async def login(request: web.Request) -> web.StreamResponse:
    app = request.app
    form = await read_form(request)
    username = form.get("username")
    password = form.get("password")
    next_path = _safe_next(form.get("next"))
    if not isinstance(username, str) or not isinstance(password, str):
        return _page(next_path, "Enter a user name and a password.", status=400)
    username = username.strip()
    if not username or len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return _page(next_path, "Invalid user name or password.", status=401)
    if untypable(username):
        # No user has such a name (and PostgreSQL would refuse a NUL in the query): the answer
        # of any failed login, before the database is asked anything.
        return _page(next_path, "Invalid user name or password.", status=401)
    client = request.remote or "-"
    limiter = app[LOGIN_LIMITER]
    keys = (f"ip:{client}", f"user:{username.casefold()}")
    now_s = time.monotonic()
    wait_s = max(limiter.retry_after_s(k, now_s) for k in keys)
    if wait_s > 0:
        app[STATS].login_refused += 1
        log.info("login refused for a while: too many attempts (client %s)", client)
        raise TooManyRequests("too many login attempts; try again later", math.ceil(wait_s))
    # Counted before the password is checked (a burst of guesses at once is counted whole),
    # and taken back once it proves right: only failures count, so that the users behind one
    # address (an office, a reverse proxy) do not use up each other's logins.
    for k in keys:
        limiter.record(k, now_s)

    pool = app[POOL]
    row = await pool.fetchrow(
        "SELECT id, username, password_hash, disabled FROM users WHERE username = $1", username
    )
    matches = await verify_password_async(password, row["password_hash"] if row else None)
    if row is None or not matches or row["disabled"]:
        reason = "unknown_user" if row is None else "bad_password" if not matches else "disabled"
        app[STATS].login_failures += 1
        actor = row["username"] if row is not None else "anonymous"
        await audit(pool, actor, "auth.login_failed", f"user:{actor}" if row else None,
                    {"client": client, "reason": reason})  # fmt: skip
        log.info("login failed (%s) for %s from %s", reason, actor, client)
        return _page(next_path, "Invalid user name or password.", status=401)

    for k in keys:
        limiter.forgive(k, now_s)
    settings = app[SETTINGS]
    async with pool.acquire() as conn, conn.transaction():
        token, csrf = await create_session(
            conn, row["id"], now=app[CLOCK](), ttl_s=settings.session_ttl_s, client=client
        )
        await audit(conn, row["username"], "auth.login", f"user:{row['username']}",
                    {"client": client})  # fmt: skip
    app[STATS].logins += 1
    log.info("user %s logged in from %s", row["username"], client)
    response: web.StreamResponse
    if _wants_json(request):
        response = web.json_response({"username": row["username"], "csrf_token": csrf})
    else:
        response = _see_other(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_s,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies or None,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the browser's session (CSRF-checked like any state change)."""
    user = request[USER]
    if user.session_id is not None:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await revoke_session(conn, user.session_id)
            await audit(conn, user.username, "auth.logout", f"user:{user.username}")
    response: web.StreamResponse = (
        web.Response(status=204) if _wants_json(request) else _see_other("/login")
    )
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_login_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
