"""The demo's web logins: a supervisor and one agent per demo campaign, each agent linked to
one of the simulated Asterisk's queue members (so its desktop gets that member's screen pops).

The password is ``PUENTE_DEMO_PASSWORD`` or, without it, a random one made at start and shown
once on the demo's summary (never in the log).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

import asyncpg

from web._passwords import hash_password_async


def demo_password() -> str:
    return os.environ.get("PUENTE_DEMO_PASSWORD") or secrets.token_urlsafe(9)


async def ensure_demo_users(
    pool: asyncpg.Pool, password: str, agents: Sequence[tuple[str, str, str]]
) -> list[str]:
    """Create or reset the demo users; ``agents`` are (code, queue member interface, campaign
    code) triples: each demo agent works its campaign (the one the desktop offers first).
    Returns the user names."""
    hashed = await hash_password_async(password)
    names = ["supervisor"]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES ('supervisor', $1,"
            " 'supervisor') ON CONFLICT (username) DO UPDATE SET password_hash = $1,"
            " disabled = false",
            hashed,
        )
        for code, interface, campaign in agents:
            user = await conn.fetchval(
                "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'agent')"
                " ON CONFLICT (username) DO UPDATE SET password_hash = $2, disabled = false"
                " RETURNING id",
                code,
                hashed,
            )
            await conn.execute(
                "INSERT INTO agents (code, name, interface, user_id, campaign_id)"
                " VALUES ($1, $1, $2, $3, (SELECT id FROM campaigns WHERE code = $4))"
                " ON CONFLICT (code) DO UPDATE SET interface = $2, user_id = $3,"
                " campaign_id = coalesce(agents.campaign_id, EXCLUDED.campaign_id)",
                code,
                interface,
                user,
                campaign,
            )
            names.append(code)
    return names
