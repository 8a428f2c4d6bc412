"""The wallboard's figures from the database: today and over the legal window, per campaign."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from dialer.campaigns import LIVE_DISPOSITIONS
from tests._plans import generic_plan
from tests.ivr._seed import debtor
from tests.web._reads import reads
from web._desktop import SharedBoard
from web._wallboard import (
    _CAMPAIGNS,
    _DENIALS,
    _HISTORY,
    _PROMISES,
    MACHINE,
    WindowHistory,
    wallboard,
)

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
                " state, disposition, abandoned, created_at) VALUES ($1, $2, $3, $4, 'n', 'p',"
                " 'final', $5, $5 = 'abandoned', $6)",
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


async def test_the_board_reads_only_todays_and_the_windows_rows(db_pool: asyncpg.Pool) -> None:
    # A year of history under a few rows of today and of the 30-day window: 30,000 attempts
    # before the window, 30,000 compliance decisions and 10,000 promises before today. Checked
    # on the generic plans prepared statements may cache, every second per open board: the
    # attempts were hash-joined whole, the decisions and the promises read whole, and the
    # promises' attempts hash-joined whole (~500 ms at 500,000 attempts; ~10 ms with these).
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        cid = await conn.fetchval(
            "INSERT INTO campaigns (code, name, state) VALUES ('wb-year', 'Year', 'running')"
            " RETURNING id"
        )
        for since, step, n in (
            (timedelta(days=31), timedelta(minutes=15), 30000),  # history
            (timedelta(days=10), timedelta(hours=1), 40),  # the window
            (timedelta(0), timedelta(minutes=10), 12),
        ):  # today
            await conn.execute(
                """INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, node, pbx,
                                              state, disposition, abandoned, created_at)
                   SELECT gen_random_uuid(), $1, $2, $3, 'n', 'p', 'final',
                          (ARRAY['agent', 'abandoned', 'no_answer', 'machine'])[1 + g % 4],
                          g % 4 = 1, $4::timestamptz - $5::interval - g * $6::interval
                   FROM generate_series(1, $7) g""",
                cid, d.person_id, d.debt_id, NOW, since, step, n,
            )  # fmt: skip
        await conn.execute(
            """INSERT INTO compliance_decisions (decided_at, channel, campaign, allowed, reasons)
               SELECT $1::timestamptz - interval '1 day' - g * interval '1 minute', 'voice',
                      'wb-year', g % 3 <> 0,
                      CASE WHEN g % 3 = 0 THEN '[{"code": "OUTSIDE_WINDOW"}]'::jsonb
                           ELSE '[]'::jsonb END
               FROM generate_series(1, 30000) g
               UNION ALL
               SELECT $1::timestamptz - g * interval '1 minute', 'voice', 'wb-year', false,
                      '[{"code": "FREQUENCY_CAP"}]'::jsonb
               FROM generate_series(1, 4) g""",
            NOW,
        )
        await conn.execute(
            """INSERT INTO promises (debt_id, attempt_id, source, plan, total_cents,
                                     confirmation_code, created_at)
               SELECT $1, a.id, 'agent', '[]', 100, 'wb-year-' || row_number() OVER (),
                      a.created_at
               FROM call_attempts a
               WHERE a.campaign_id = $2 AND a.disposition = 'agent'
                 AND (a.created_at < $3::timestamptz - interval '31 days'
                      OR a.created_at >= $3::timestamptz - interval '1 day')""",
            d.debt_id,
            cid,
            NOW,
        )
        await conn.execute("ANALYZE call_attempts, compliance_decisions, promises")

    board = await wallboard(db_pool, NOW)
    (year,) = [c for c in board["campaigns"] if c["campaign"] == "wb-year"]
    assert year["dials_today"] == 12
    assert year["amd_today"] == {"machine": 3, "person": 6}
    assert year["abandon_rate_today"] == 0.5
    assert year["abandon_rate_window"] == round((3 + 10) / (6 + 20), 4)
    assert year["denials_today"] == {"FREQUENCY_CAP": 4}
    assert (year["promises_today"], year["promised_cents_today"]) == (3, 300)

    midnight = NOW.replace(hour=0)
    tomorrow = midnight + timedelta(days=1)
    board_types = "timestamptz, text[], text[], timestamptz"
    live = list(LIVE_DISPOSITIONS)
    board_args = (midnight, live, list(MACHINE), tomorrow)
    for name, sql, types, args, tables in (
        ("campaigns", _CAMPAIGNS, board_types, board_args, ("call_attempts",)),
        ("history", _HISTORY, "text[], timestamptz, timestamptz", (live, NOW, midnight),
         ("call_attempts",)),
        ("denials", _DENIALS, "timestamptz, timestamptz", (midnight, tomorrow),
         ("compliance_decisions",)),
        ("promises", _PROMISES, "timestamptz, timestamptz", (midnight, tomorrow),
         ("promises", "call_attempts")),
    ):  # fmt: skip
        plan = await generic_plan(db_pool, sql, types, *args)
        for table in tables:
            read = reads(plan["Plan"], table)
            # today's and the window's rows (of this test and the ones above), not the history
            assert read, (name, table)
            assert sum(n for *_, n in read) <= 100, (name, table, read)
            assert all(kind != "Seq Scan" for kind, *_ in read), (name, table, read)


async def test_the_windows_history_is_read_again_only_when_old_or_on_another_date(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        cid = await conn.fetchval(
            "INSERT INTO campaigns (code, name, state) VALUES ('wb-cache', 'Cache', 'running')"
            " RETURNING id"
        )

        async def attempt(disposition: str, at: datetime) -> None:
            await conn.execute(
                "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, node, pbx,"
                " state, disposition, abandoned, created_at) VALUES ($1, $2, $3, $4, 'n', 'p',"
                " 'final', $5, $5 = 'abandoned', $6)",
                uuid.uuid4(), cid, d.person_id, d.debt_id, disposition, at,
            )  # fmt: skip

        for disposition in ("agent", "agent", "abandoned", "no_answer"):
            await attempt(disposition, NOW - timedelta(hours=1))
            await attempt(disposition, NOW - timedelta(days=3))
        await attempt("agent", NOW - timedelta(days=40))  # before the window

        clock = 1000.0
        history = WindowHistory(300, lambda: clock)

        async def window(now: datetime = NOW) -> tuple[float | None, float | None]:
            """The window's rate with the history kept and read fresh."""
            rates = []
            for h in (history, None):
                board = await wallboard(db_pool, now, history=h)
                (wb,) = [c for c in board["campaigns"] if c["campaign"] == "wb-cache"]
                rates.append(wb["abandon_rate_window"])
            return rates[0], rates[1]

        assert await window() == (round(2 / 6, 4),) * 2
        assert history.computed == 1

        await attempt("abandoned", NOW - timedelta(days=2))  # written late, before today
        clock += 299
        assert await window() == (round(2 / 6, 4), round(3 / 7, 4))  # kept
        await attempt("abandoned", NOW - timedelta(minutes=5))  # today's part: always fresh
        assert await window() == (round(3 / 7, 4), round(4 / 8, 4))
        assert history.computed == 1

        clock += 1  # old: read again
        assert await window() == (round(4 / 8, 4),) * 2
        assert history.computed == 2

        await attempt("agent", NOW - timedelta(days=2))
        tomorrow = NOW + timedelta(days=1)  # another date: read again, however fresh
        assert await window(tomorrow) == (round(4 / 9, 4),) * 2
        assert history.computed == 3


async def test_open_boards_share_one_computation_per_period() -> None:
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a query's time: the other sockets wait for it, not redo it
        return f"board {calls}"

    board = SharedBoard(0.2, compute)
    assert await asyncio.gather(*(board.get() for _ in range(20))) == ["board 1"] * 20
    assert await board.get() == "board 1"  # still fresh
    await asyncio.sleep(0.25)
    assert await asyncio.gather(*(board.get() for _ in range(5))) == ["board 2"] * 5
    assert calls == board.computed == 2
