"""A campaign dialed through the simulated Asterisk over TCP, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialer.pacing import learn_answer_model
from dialer.runner import RunnerStats
from tests.dialer._floor import floor, make_campaign

MODEL = {
    "seed": 5,
    "outcomes": {"human": 0.4, "busy": 0.2, "no_answer": 0.15, "unallocated": 0.1,
                 "machine": 0.15},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "fail_after_s": {"dist": "fixed", "value": 0.1},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
    "machine_greeting_s": {"dist": "fixed", "value": 0.5},
}  # fmt: skip


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_a_campaign_runs_and_every_attempt_ends_once(db_pool, tmp_path: Path, mode) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode=mode, leads=40)
    async with floor(db_pool, model=MODEL, agents=3) as f:
        runner = await f.runner_for(code, tick_s=0.25, warmup_calls=5)
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)  # subscribes before the first events
            f.clients[0].start()
            await asyncio.sleep(8)
            await runner.stop()

    rows = await db_pool.fetch(
        "SELECT id, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
    )
    assert len(rows) == runner.stats.dials > 5
    assert all(r["state"] == "final" for r in rows), [r["state"] for r in rows]
    assert runner.stats.finals == len(rows), runner.stats  # each ended exactly once
    dispositions = {r["disposition"] for r in rows}
    # (each call's fate is drawn per attempt id, fresh each run: assert the vocabulary)
    assert dispositions <= {"busy", "agent", "no_answer", "unallocated", "machine", "abandoned",
                            "hangup"}  # fmt: skip
    assert len(dispositions) >= 2
    unanswered = {"busy": "busy", "no_answer": "no_answer", "unallocated": "not_in_service"}
    for r in rows:
        if r["disposition"] in unanswered:  # the ledger knows, so the count is right
            assert (
                await db_pool.fetchval(
                    "SELECT outcome FROM compliance_outcomes WHERE attempt_id = $1", r["id"]
                )
                == unanswered[r["disposition"]]
            )
    states = await db_pool.fetch(
        "SELECT state, count(*) FROM leads WHERE campaign_id = $1 GROUP BY 1", cid
    )
    assert {s["state"] for s in states} <= {"ready", "done", "cancelled"}


def test_what_a_runner_keeps_per_call_is_bounded() -> None:
    # A service runs for months: the answer delays and latencies it keeps are the latest only,
    # and the answer model reads the newest of them.
    stats = RunnerStats()
    for i in range(10_000):
        stats.live_delays.append(float(i))
    assert len(stats.live_delays) == 2000
    model = learn_answer_model(20_000, 10_000, stats.live_delays)
    assert min(model.live_delays) == 9500.0  # the newest 500
