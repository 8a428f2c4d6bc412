"""The wallboard's figures from the database: today and over the legal window, per campaign."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.ivr._seed import debtor
from web._wallboard import wallboard

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


async def test_rates_denials_and_promises(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        cid = await conn.fetchval(
            "INSERT INTO campaigns (code, name, state, abandon_target) VALUES"
            " ('wb', 'Wallboard', 'running', 0.03) RETURNING id"
        )
        today = NOW - timedelta(hours=2)
        last_week = NOW - timedelta(days=7)
        rows = [
            *[("agent", today)] * 6,
            ("abandoned", today),
            ("hangup", today),
            *[("no_answer", today)] * 8,
            *[("machine", today)] * 3,
            ("voicemail", today),
            *[("agent", last_week)] * 10,
            ("abandoned", last_week),
        ]
        first = None
        for disposition, at in rows:
            attempt = uuid.uuid4()
            first = first or attempt
            await conn.execute(
                "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, node, pbx,"
                " state, disposition, created_at) VALUES ($1, $2, $3, $4, 'n', 'p', 'final',"
                " $5, $6)",
                attempt, cid, d.person_id, d.debt_id, disposition, at,
            )  # fmt: skip
        for code in ("OUTSIDE_WINDOW", "OUTSIDE_WINDOW", "FREQUENCY_CAP"):
            await conn.execute(
                "INSERT INTO compliance_decisions (decided_at, channel, campaign, allowed,"
                " reasons) VALUES ($1, 'voice', 'wb', false, $2::jsonb)",
                today,
                json.dumps([{"code": code}]),
            )
        await conn.execute(
            "INSERT INTO promises (debt_id, attempt_id, source, plan, total_cents,"
            " confirmation_code, created_at) VALUES ($1, $2, 'agent', '[]', 12345, '11111116', $3)",
            d.debt_id,
            first,
            today,
        )
    board = await wallboard(
        db_pool, NOW, lambda: {"wb": {"agents": {"free": 1, "busy": 3}, "in_flight": 8}}
    )
    (wb,) = [c for c in board["campaigns"] if c["campaign"] == "wb"]
    assert wb["dials_today"] == 20
    assert wb["live_answer_rate_today"] == round(8 / 20, 4)
    assert wb["abandon_rate_today"] == round(1 / 8, 4)
    assert wb["abandon_rate_window"] == round(2 / 19, 4)
    assert wb["amd_today"] == {"machine": 4, "person": 8}
    assert wb["denials_today"] == {"OUTSIDE_WINDOW": 2, "FREQUENCY_CAP": 1}
    assert (wb["promises_today"], wb["promised_cents_today"]) == (1, 12345)
    assert wb["dial_level"] == 2.0
    assert wb["abandon_target"] == 0.03
