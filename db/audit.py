"""The audit log: one append-only row per change a user or the service makes (never a secret
in it), written by every part that changes what the log records: the web's users, the IVR, the
compliance overrides, the trunks' channels."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: str,
    action: str,
    subject: str | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append ``action`` (``campaign.start``) by ``actor`` (a user name, or ``ivr``) on
    ``subject`` (``campaign:demo-mx``); run it in the transaction of the change it records."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4::jsonb)",
        actor,
        action,
        subject,
        json.dumps(dict(details or {}), default=str, ensure_ascii=False),
    )
