"""A trunk that refuses call after call (SIP 401, 402, 403, 407) stops the campaign's dialing
for a while, then lets one test call through at a time; the trunk's own refusals are never
counted against the debtor."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest

from dialer.trunk_guard import TrunkGuard
from tests.dialer._floor import floor, make_campaign, poll_until, running


# -- the guard (pure) --------------------------------------------------------------------------
def test_it_trips_after_refusals_in_a_row_only() -> None:
    g = TrunkGuard(trip_after=3, cool_off_s=30)
    assert not g.ended(403, 1.0)
    assert not g.ended(403, 2.0)
    assert not g.ended(None, 3.0)  # answered: the trunk carries calls, the count starts again
    assert not g.ended(603, 3.5)  # a debtor declined: not the trunk
    assert [g.ended(401, t) for t in (4.0, 5.0, 6.0)] == [False, False, True]
    assert (g.tripped, g.held_until, g.trips_total) == (True, 36.0, 1)
    assert g.lines(10, in_flight=0, now=20.0) == 0
    assert g.describe(20.0) == (
        "the trunk refused 3 calls in a row (SIP 401): paused, one test call in 16 s"
    )


def test_after_the_pause_one_test_call_at_a_time() -> None:
    g = TrunkGuard(trip_after=2, cool_off_s=10, max_cool_off_s=25)
    g.ended(407, 0.0)
    assert g.ended(407, 1.0)
    assert g.lines(8, in_flight=3, now=5.0) == 0
    assert not g.ended(407, 6.0)  # sent before the pause: the pause stands
    assert g.held_until == 11.0
    assert g.lines(8, in_flight=0, now=11.0) == 1
    assert g.lines(8, in_flight=1, now=11.5) == 0  # the test call is ringing
    assert (
        g.describe(11.5) == "the trunk refused 3 calls in a row (SIP 407): one test call at a time"
    )
    assert g.ended(407, 12.0)  # refused again: twice the pause
    assert g.held_until == 32.0
    assert g.ended(407, 32.5)  # and again: at most max_cool_off_s
    assert g.held_until == 57.5
    assert not g.ended(None, 60.0)  # a test call that went through: dialing as before
    assert not g.tripped
    assert g.lines(8, in_flight=5, now=60.0) == 8
    assert g.trips_total == 3


def test_bad_settings_are_refused() -> None:
    for kw in ({"trip_after": 0}, {"cool_off_s": 0}, {"cool_off_s": 700, "max_cool_off_s": 600}):
        with pytest.raises(ValueError, match="trunk guard"):
            TrunkGuard(**kw)  # type: ignore[arg-type]


# -- a campaign on a refusing trunk (the simulator, over real AMI) ------------------------------
def _model(outcome: str) -> dict:
    return {
        "seed": 3,
        "outcomes": {outcome: 1.0},
        "fail_after_s": {"dist": "fixed", "value": 0.05},
    }


async def _agentless(pool: asyncpg.Pool, tmp_path: Path, leads: int) -> tuple[int, str]:
    cid, code = await make_campaign(pool, tmp_path, mode="progressive", leads=leads)
    await pool.execute(
        "UPDATE campaigns SET mode = 'agentless', agentless_flow = 'reminder',"
        """ settings = settings || '{"max_lines": 3}'::jsonb WHERE id = $1""",
        cid,
    )
    return cid, code


async def test_a_forbidding_trunk_stops_the_dialing_and_says_why(
    db_pool: asyncpg.Pool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cid, code = await _agentless(db_pool, tmp_path, leads=40)
    attempts = "SELECT count(*) FROM call_attempts WHERE campaign_id = $1"
    async with floor(db_pool, model=_model("forbidden"), agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.05)

        async def paused() -> bool:
            return "the trunk refused" in runner.status()

        async def none_in_flight() -> bool:
            return not runner.calls

        with caplog.at_level(logging.ERROR, logger="dialer.runner"):
            async with running(runner, f.clients[0]):
                await poll_until(paused, 20)
                assert runner.held() == "trunk_refusing"  # /metrics: puente_dialing_held
                dialed = await db_pool.fetchval(attempts, cid)
                await poll_until(none_in_flight, 10)
                settled = await db_pool.fetchval(attempts, cid)
                await asyncio.sleep(1.0)
                assert await db_pool.fetchval(attempts, cid) == settled  # paused: no new dial
    # Five refusals in a row tripped it; what was ringing then ended too, and no more.
    assert 5 <= dialed <= settled <= 5 + 3
    assert "SIP 403" in runner.status()
    assert any("the trunk refused 5 calls in a row (SIP 403)" in r.message for r in caplog.records)
    # A 403 may be the far end's: each counts as a dial of the lead (rejected).
    rows = await db_pool.fetch(
        "SELECT disposition, count(*) FROM call_attempts WHERE campaign_id = $1"
        " AND state = 'final' GROUP BY 1",
        cid,
    )
    assert {r["disposition"] for r in rows} == {"rejected"}


async def test_the_trunks_own_refusals_are_not_counted_against_the_debtor(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, code = await _agentless(db_pool, tmp_path, leads=3)
    async with floor(db_pool, model=_model("unauthorized"), agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.05)

        async def all_final() -> bool:
            n = await db_pool.fetchval(
                "SELECT count(*) FROM call_attempts WHERE campaign_id = $1 AND state = 'final'",
                cid,
            )
            return n >= 3

        async with running(runner, f.clients[0]):
            await poll_until(all_final, 20)
    rows = await db_pool.fetch(
        """SELECT a.disposition, l.attempts, l.state,
                  (SELECT array_agg(o.outcome) FROM compliance_outcomes o
                   WHERE o.attempt_id = a.id) AS ledger
           FROM call_attempts a JOIN leads l ON l.id = a.lead_id
           WHERE a.campaign_id = $1 AND a.state = 'final'""",
        cid,
    )
    assert rows
    for r in rows:
        assert r["disposition"] == "trunk_refused"
        assert r["ledger"] == ["not_placed"]  # the debtor's budget is given back
        assert r["attempts"] == 0  # and the lead's try
        assert r["state"] == "ready"
