"""Users and their API tokens: the operations behind ``puente users`` and ``/api/v1/tokens``.

A token is printed (or returned) once; only its SHA-256 is kept, so a lost token is revoked
and replaced, never recovered. Disabling a user ends its sessions at once; its tokens stop
working too (every request checks ``users.disabled``).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._auth import ROLES, create_api_token
from web._exceptions import Conflict, NotFound, UserError
from web._passwords import check_new_password, hash_password_async, untypable
from web._schema import ID
from web._values import object_schema

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_TOKEN_LABEL_CHARS = 100
# (as the CLI's --label: no control character, which a terminal listing tokens would obey)
_TOKEN_NAME = {
    "type": "string",
    "maxLength": MAX_TOKEN_LABEL_CHARS,
    "pattern": r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$",
}


async def add_user(
    pool: asyncpg.Pool,
    username: str,
    password: str,
    role: str,
    *,
    agent_code: str | None = None,
    actor: str = "cli",
) -> int:
    """Create a user (and link it to the agent ``agent_code``); its id. :class:`UserError`
    for a bad name or role, a name taken, an unknown or already linked agent;
    :class:`web.PasswordError` for a password too short or too long."""
    if not USERNAME.fullmatch(username):  # (match would take a trailing newline)
        raise UserError(f"user name {username!r}: 1-64 letters, digits and _ . @ -")
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    if agent_code is not None and (not agent_code or untypable(agent_code)):
        raise UserError(f"agent code {agent_code[:70]!r}: not an agent's code")
    check_new_password(password)
    password_hash = await hash_password_async(password)
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)"
            " ON CONFLICT (username) DO NOTHING RETURNING id",
            username,
            password_hash,
            role,
        )
        if user_id is None:
            raise UserError(f"user {username!r} already exists")
        if agent_code is not None:
            agent = await conn.fetchrow(
                "SELECT id, user_id FROM agents WHERE code = $1 FOR UPDATE", agent_code
            )
            if agent is None:
                raise UserError(f"no agent {agent_code!r}")
            if agent["user_id"] is not None:
                raise UserError(f"agent {agent_code!r} is already linked to another user")
            await conn.execute("UPDATE agents SET user_id = $2 WHERE id = $1", agent["id"], user_id)
        await audit(conn, actor, "user.add", f"user:{username}",
                    {"role": role, "agent": agent_code})  # fmt: skip
    return user_id


async def _user_id(conn: asyncpg.Connection, username: str) -> int:
    if not USERNAME.fullmatch(username):  # no user has it (nor could PostgreSQL store it)
        raise UserError(f"no user {username[:70]!r}")
    found = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
    if found is None:
        raise UserError(f"no user {username!r}")
    return found


async def new_token(pool: asyncpg.Pool, username: str, label: str = "", *, actor: str = "cli"
                    ) -> tuple[int, str]:  # fmt: skip
    """A new API token for ``username``: ``(id, token)``; show the token once.
    :class:`UserError` for an unknown user or a label the API would refuse too."""
    if len(label) > MAX_TOKEN_LABEL_CHARS:
        raise UserError(f"a token label has at most {MAX_TOKEN_LABEL_CHARS} characters")
    if untypable(label):
        raise UserError("a token label may not contain control characters or invalid UTF-8")
    async with pool.acquire() as conn, conn.transaction():
        user_id = await _user_id(conn, username)
        token_id, token = await create_api_token(conn, user_id, label)
        await audit(conn, actor, "token.create", f"user:{username}",
                    {"token_id": token_id, "name": label})  # fmt: skip
    return token_id, token


async def disable_user(pool: asyncpg.Pool, username: str, *, actor: str = "cli") -> dict[str, str]:
    """Disable a user: no login, its sessions end now, and the agent it works as (if any) is
    logged out: a state row the service acts on (no PBX link here): each campaign's leader takes
    it out of its queue, and the logged-out sweeper (web/_logged_out.py) out of every other
    queue it is still in (the inbound queue, its preview queue), so nobody who left is counted
    free by a pacer, dialed for, or rung. Returns the agents logged out (code -> the state they
    were in)."""
    async with pool.acquire() as conn, conn.transaction():
        user_id = await _user_id(conn, username)
        await conn.execute("UPDATE users SET disabled = true WHERE id = $1", user_id)
        ended = await conn.execute(
            "UPDATE web_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
        )
        details: dict[str, object] = {"sessions_ended": int(ended.split()[-1])}
        out: dict[str, str] = {}
        for agent in await conn.fetch(
            "SELECT a.id, a.code, s.state FROM agents a"
            " LEFT JOIN agent_current_states s ON s.agent_id = a.id WHERE a.user_id = $1",
            user_id,
        ):
            if agent["state"] not in (None, "logged_out"):
                await conn.execute(
                    "INSERT INTO agent_states (agent_id, state) VALUES ($1, 'logged_out')",
                    agent["id"],
                )
                out[agent["code"]] = agent["state"]
        if out:
            details["agents_logged_out"] = out
        await audit(conn, actor, "user.disable", f"user:{username}", details)
    return out


async def revoke_token(pool: asyncpg.Pool | asyncpg.Connection, token_id: int, *,
                       actor: str = "cli") -> bool:  # fmt: skip
    """Revoke one token; False when it was already revoked (or does not exist)."""
    row = await pool.fetchrow(
        "UPDATE api_tokens t SET revoked_at = now() FROM users u"
        " WHERE t.id = $1 AND t.revoked_at IS NULL AND u.id = t.user_id RETURNING u.username",
        token_id,
    )
    if row is not None:
        await audit(pool, actor, "token.revoke", f"user:{row['username']}", {"token_id": token_id})
    return row is not None


# -- API --------------------------------------------------------------------------------------
async def me(call: ApiCall) -> Any:
    """Who the caller is; for a browser session, also its CSRF token (for the page's JS)."""
    u = call.user
    out: dict[str, Any] = {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "agent": u.agent_code,
        "via": u.via,
    }
    if u.via == "session":
        out["csrf_token"] = u.csrf_token
    return out


async def list_tokens(call: ApiCall) -> Any:
    rows = await call.pool.fetch(
        "SELECT id, name, created_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
        call.user.id,
    )
    return {"tokens": [dict(r) for r in rows]}


async def create_token(call: ApiCall) -> Any:
    name = call.body.get("name", "")
    async with call.pool.acquire() as conn, conn.transaction():
        token_id, token = await create_api_token(conn, call.user.id, name)
        await audit(conn, call.user.username, "token.create", f"user:{call.user.username}",
                    {"token_id": token_id, "name": name})  # fmt: skip
    return {"id": token_id, "name": name, "token": token}


async def revoke_token_api(call: ApiCall) -> Any:
    """Revoke one of the caller's tokens (an admin: anyone's)."""
    token_id = call.params["id"]
    async with call.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT user_id, revoked_at FROM api_tokens WHERE id = $1 FOR UPDATE", token_id
        )
        if row is None or (row["user_id"] != call.user.id and call.user.role != "admin"):
            raise NotFound(f"no token {token_id}")
        if row["revoked_at"] is not None:
            raise Conflict(f"token {token_id} is already revoked")
        await revoke_token(conn, token_id, actor=call.user.username)
    return {"id": token_id, "revoked": True}


ROUTES = [
    ApiRoute("GET", "/me", me, "The authenticated user (and a session's CSRF token)", "auth"),
    ApiRoute("GET", "/tokens", list_tokens, "The caller's API tokens (never the secrets)",
             "auth"),
    ApiRoute("POST", "/tokens", create_token, "Create an API token (shown once)", "auth",
             body=object_schema({"name": _TOKEN_NAME}), status=201,
             response="The token: keep it, it is not shown again"),
    ApiRoute("POST", "/tokens/{id}/revoke", revoke_token_api, "Revoke an API token", "auth",
             params={"id": ID}, response="Revoked"),
]  # fmt: skip
