"""A campaign dialed through the simulated Asterisk over TCP, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

from dialer.pacing import learn_answer_model
from dialer.runner import AbandonWindow, RunnerStats
from pbx.ami import AmiMessage
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


async def test_an_unforeseen_fault_stops_neither_the_service_nor_a_result(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # A fault no check caught (here: writing results fails three times) used to escape the
    # runner into the service's TaskGroup and stop every server. The campaign retries, the
    # result is kept, and every attempt still ends exactly once.
    import dialer.runner as runner_module

    real = runner_module.write_result
    faults = {"left": 3, "whys": []}

    async def flaky(*args, **kwargs):
        if faults["left"]:
            faults["left"] -= 1
            raise OverflowError("Python int too large to convert to C int (test)")
        return await real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "write_result", flaky)
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=20)
    async with floor(db_pool, model=MODEL, agents=2) as f:
        runner = await f.runner_for(code, tick_s=0.25, warmup_calls=5)
        async with asyncio.TaskGroup() as tg:
            await runner.start(tg)
            f.clients[0].start()
            for _ in range(32):
                await asyncio.sleep(0.25)
                faults["whys"].append(runner.why)
            assert not runner._task.done()
            await runner.stop()
    assert faults["left"] == 0
    assert "error: OverflowError (see the log)" in faults["whys"]
    rows = await db_pool.fetch("SELECT state FROM call_attempts WHERE campaign_id = $1", cid)
    assert len(rows) == runner.stats.dials > 3
    assert all(r["state"] == "final" for r in rows)
    assert runner.stats.finals == len(rows)


def test_what_a_runner_keeps_per_call_is_bounded() -> None:
    # A service runs for months: the answer delays and latencies it keeps are the latest only,
    # and the answer model reads the newest of them.
    stats = RunnerStats()
    for i in range(10_000):
        stats.live_delays.append(float(i))
    assert len(stats.live_delays) == 2000
    model = learn_answer_model(20_000, 10_000, stats.live_delays)
    assert min(model.live_delays) == 9500.0  # the newest 500


async def test_the_closed_loop_corrects_on_the_campaigns_window_in_the_database(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # What a restart, a takeover by another node or the days before left in call_attempts is
    # what the loop corrects on (the legal window is 30 days), not what this process counted.
    cid, code = await make_campaign(db_pool, tmp_path, mode="predictive", leads=1)
    await db_pool.execute(
        """INSERT INTO call_attempts (id, campaign_id, node, pbx, state, disposition, abandoned,
                                      created_at)
           SELECT gen_random_uuid(), $1, 'old', 'sim', 'final', d, d = 'abandoned', now() - age
           FROM (VALUES ('agent', 40, interval '10 days'), ('abandoned', 10, interval '10 days'),
                        ('agent', 5, interval '2 hours'), ('abandoned', 1, interval '2 hours'),
                        ('busy', 7, interval '2 hours'), ('abandoned', 3, interval '40 days'))
                AS v (d, n, age), generate_series(1, n)""",
        cid,
    )
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, warmup_calls=0)
        _one_free_agent(runner)
        seen: list = []

        def capture(state, *_args):
            seen.append(state)
            return 0

        monkeypatch.setattr("dialer.runner.lines_to_open", capture)
        runner.stats.answered = 10
        assert runner.window is None
        runner._lines_wanted(1.0)  # not read yet: one line per free agent, no risk taken
        assert seen == []
        # Results this runner wrote before the read are in the database...
        runner.stats.final_live, runner.stats.final_abandoned = 2, 0
        await runner._read_window()
        # 30 days: 56 live answers (abandoned ones included), 11 abandoned; 24 h: 6 and 1.
        assert (runner.window.live, runner.window.abandoned) == (56, 11)
        assert (runner.window.day_live, runner.window.day_abandoned) == (6, 1)
        # ...those written after it are added (4 live, 1 abandoned), and so are its calls in
        # progress: one abandoned in the safe-harbor menu, one with an agent, one a machine.
        runner.stats.final_live, runner.stats.final_abandoned = 6, 1
        for n, (amd, abandoned) in enumerate((("HUMAN", True), ("NOTSURE", False),
                                              ("MACHINE", False))):  # fmt: skip
            runner.calls[f"x{n}"] = SimpleNamespace(
                amd=amd, abandoned=abandoned, answered_at=0.5, sent_at=0.0, connected=True,
                requeued=False,
            )  # fmt: skip
        runner._lines_wanted(1.0)
        runner.calls.clear()
    (state,) = seen
    assert (state.window_live, state.window_abandoned) == (56 + 4 + 2, 11 + 1 + 1)
    assert (state.day_live, state.day_abandoned) == (6 + 4 + 2, 1 + 1 + 1)


async def test_an_agent_whose_phone_rang_out_is_paused_and_told_why(db_pool, tmp_path) -> None:
    # asterisk_conf's queues have autopause = no (app_queue would pause whoever rang when the
    # caller's 1-2 s ran out); the pacer pauses an agent whose phone rang a whole second.
    _, code = await make_campaign(db_pool, tmp_path, mode="predictive", leads=1)
    agent = await db_pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, 'Ana', 'Local/100@agents') "
        "ON CONFLICT (interface) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        code,
    )
    await db_pool.execute("DELETE FROM agent_states WHERE agent_id = $1", agent)
    await db_pool.execute(  # logged in on the desktop
        "INSERT INTO agent_states (agent_id, state, at) VALUES ($1, 'ready', now())", agent
    )
    async with floor(db_pool, model=MODEL, agents=2) as f:
        runner = await f.runner_for(code)
        runner.is_leader = True
        f.clients[0].start()
        await f.clients[0].wait_connected(10)
        rang = {"Queue": "collections", "MemberName": "Sim Agent 101"}
        runner._ring_no_answer({**rang, "Interface": "Local/101@agents", "RingTime": "400"})
        runner._ring_no_answer({**rang, "Interface": "Local/100@agents", "RingTime": "1500"})
        await asyncio.gather(*runner._sends)
        members = f.sim.core.queues["collections"].members
        assert members["Local/100@agents"].snap.paused == 1
        assert members["Local/101@agents"].snap.paused == 0  # the caller's time was short
    row = await db_pool.fetchrow(
        "SELECT state, reason FROM agent_states WHERE agent_id = $1 ORDER BY id DESC LIMIT 1",
        agent,
    )
    assert dict(row) == {"state": "paused", "reason": "no answer"}


async def test_the_campaign_queue_gets_the_logged_in_agents_and_loses_the_logged_out(
    db_pool, tmp_path, caplog
) -> None:
    # An agent takes calls for one campaign at a time (agents.campaign_id, chosen on the
    # desktop): the campaign's leader seats its own logged-in agents (a campaign started later,
    # a change that raced with the desktop's), and takes out of its queue the agents logged out
    # and those working another campaign, which that campaign's pacer counts as free: two
    # pacers dialing for one agent abandon calls.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    suffix = code[-6:]
    other, twin = [
        await db_pool.fetchval(
            "INSERT INTO campaigns (code, name, mode, state, queue_name)"
            " VALUES ($1, $1, 'predictive', 'running', $2) RETURNING id",
            f"{prefix}{suffix}",
            queue,
        )
        for prefix, queue in (("other", f"other-{suffix}"), ("twin", "collections"))
    ]
    rows = {}
    for name, interface, state, reason, campaign in (
        ("Ana", f"PJSIP/ana{suffix}", "ready", None, cid),
        ("Bea", f"PJSIP/bea{suffix}", "paused", "lunch", cid),
        ("Cy", f"PJSIP/cy{suffix}", "ready", None, other),  # another campaign's: not seated
        ("Dee", f"PJSIP/dee{suffix}", "ready", None, None),  # no campaign chosen: not seated
        ("Luz", "Local/102@agents", "logged_out", None, cid),  # still a member in Asterisk
        ("Max", "Local/100@agents", "ready", None, other),  # a member, but works elsewhere
        ("Ned", "Local/103@agents", "ready", None, twin),  # another campaign on this queue
    ):
        rows[name] = await db_pool.fetchval(
            "INSERT INTO agents (code, name, interface, campaign_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (interface) DO UPDATE SET name = EXCLUDED.name,"
            " campaign_id = EXCLUDED.campaign_id RETURNING id",
            f"{name.lower()}{suffix}", name, interface, campaign,
        )  # fmt: skip
        await db_pool.execute("DELETE FROM agent_states WHERE agent_id = $1", rows[name])
        await db_pool.execute(  # (a minute ago: a change under way is left to the desktop)
            "INSERT INTO agent_states (agent_id, state, reason, at)"
            " VALUES ($1, $2, $3, now() - interval '1 minute')",
            rows[name], state, reason,
        )  # fmt: skip
    codes = {
        name: await db_pool.fetchval("SELECT code FROM agents WHERE id = $1", agent_id)
        for name, agent_id in rows.items()
    }
    async with floor(db_pool, model=MODEL, agents=4) as f:
        runner = await f.runner_for(code)
        f.clients[0].start()
        await f.clients[0].wait_connected(10)
        await runner._sync_agents()
        assert set(runner.board.agents) == {f"Local/{n}@agents" for n in (100, 101, 102, 103)}
        caplog.set_level("INFO", logger="dialer.runner")
        await runner._seat_agents()
        members = f.sim.core.queues["collections"].members
        assert (
            members[f"PJSIP/ana{suffix}"].snap.paused,
            members[f"PJSIP/bea{suffix}"].snap.paused,
        ) == (0, 1)
        assert members[f"PJSIP/bea{suffix}"].snap.paused_reason == "lunch"
        assert f"PJSIP/cy{suffix}" not in members
        assert f"PJSIP/dee{suffix}" not in members
        assert "Local/102@agents" not in members  # logged out on the desktop
        assert "Local/100@agents" not in members  # taking calls for the other campaign
        assert "Local/103@agents" in members  # its campaign's queue is this one
        assert "Local/101@agents" in members  # no state set on the desktop: left alone
        # A pause recorded where there is no PBX link (a web-only node): the leader applies
        # it; a change under way (seconds old) is left to the desktop that makes it.
        paused = (
            "INSERT INTO agent_states (agent_id, state, reason, at)"
            " VALUES ($1, 'paused', $2, now() - make_interval(secs => $3))"
        )
        await db_pool.execute(paused, rows["Ana"], "break", 30)
        await db_pool.execute(paused, rows["Bea"], "lunch", 20)  # still lunch
        await db_pool.execute(
            "INSERT INTO agent_states (agent_id, state, at) VALUES ($1, 'ready', now())",
            rows["Bea"],
        )  # Bea is going ready right now: the desktop's change, left alone
        runner._synced_at_connect = -1  # read the members back, as after a reconnect
        await runner._sync_agents()
        await runner._seat_agents()
        ana, bea = members[f"PJSIP/ana{suffix}"].snap, members[f"PJSIP/bea{suffix}"].snap
        assert (ana.paused, ana.paused_reason) == (1, "break")
        assert bea.paused == 1
    seated = [r.getMessage() for r in caplog.records if r.name == "dialer.runner"]
    assert f"dialer {code}: QueueAdd agent {codes['Ana']} (ready)" in seated
    assert f"dialer {code}: QueueRemove agent {codes['Luz']} (logged out)" in seated
    assert f"dialer {code}: QueueRemove agent {codes['Max']} (on campaign other{suffix})" in seated
    assert not [m for m in seated if "PJSIP/" in m or "Local/" in m]  # agents by code only


async def test_callers_waiting_in_the_queue_who_are_not_ours_count_as_waiting(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # Inbound and IVR callers who asked for an agent wait in PUENTE_INBOUND_QUEUE, which may be
    # this campaign's queue: the next free agent goes to them, not to a live answer of ours.
    _, code = await make_campaign(db_pool, tmp_path, mode="predictive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, warmup_calls=0)
        _one_free_agent(runner)
        runner.window = AbandonWindow(0, 0, 0, 0)
        runner.stats.answered = 10
        seen: list = []
        monkeypatch.setattr(
            "dialer.runner.lines_to_open", lambda state, *a: seen.append(state) or 0
        )

        def queue_event(name: str, uid: str, queue: str = "collections") -> None:
            runner._on_event(
                AmiMessage.from_pairs([("Event", name), ("Queue", queue), ("Uniqueid", uid)])
            )

        queue_event("QueueCallerJoin", "1795335254.40")  # an inbound caller
        queue_event("QueueCallerJoin", "1795335254.41", queue="other")  # not this queue
        runner._lines_wanted(1.0)
        queue_event("QueueCallerLeave", "1795335254.40")  # an agent took them
        runner._lines_wanted(2.0)
        # One of ours seen waiting before its call was adopted (a restart, a takeover): once.
        queue_event("QueueCallerJoin", "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61")
        runner.calls["3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"] = SimpleNamespace(
            amd="HUMAN", abandoned=False, answered_at=0.5, sent_at=0.0, connected=False,
            requeued=False,
        )  # fmt: skip
        runner._lines_wanted(3.0)
        queue_event("QueueCallerLeave", "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61")
        del runner.calls["3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"]
        runner._lines_wanted(4.0)
    assert [s.waiting_live for s in seen] == [1, 0, 1, 0]


def _one_free_agent(runner) -> None:
    """A member logged in to the campaign's queue, free (the pacer has someone to dial for)."""
    runner.board.event(
        "QueueMemberAdded",
        {"Queue": "collections", "Interface": "Local/1@agents", "Status": "1"},
        0.0,
    )


async def test_two_campaigns_paced_on_one_queue_both_stop_dialing(db_pool, tmp_path) -> None:
    # The API refuses to start a campaign on another active one's queue; rows from before that
    # rule (or written by hand) are caught by the pacers: if in doubt, do not dial.
    _, first = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    _, second = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=1) as f:
        a = await f.runner_for(first)
        b = await f.runner_for(second, node="n2")
        for client in f.clients:
            client.start()
            await client.wait_connected(10)
        try:
            assert await a._lead()
            assert await b._lead()
            await a._check_queue_shared()
            assert a.shared_with == second
            await a._dial_tick()
            assert a.why == (
                f"queue collections is also paced by campaign {second}: not dialing"
                " (both pacers would count the same agents free)"
            )
            assert a.stats.dials == 0
            await b._release_lead()  # the other one stops: the queue is this one's again
            await a._check_queue_shared()
            assert a.shared_with is None
        finally:
            await a._release_lead()
            await b._release_lead()


async def test_a_pacer_lock_in_another_database_is_not_a_pacer_on_this_queue(
    db_pool, pg_admin_url, tmp_path
) -> None:
    # Advisory locks are the server's, keyed per database: another Puente database (or another
    # test module's) on the same server whose campaign has the same id is not pacing here.
    _, first = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    _, second = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    second_id = await db_pool.fetchval("SELECT id FROM campaigns WHERE code = $1", second)
    elsewhere = await asyncpg.connect(pg_admin_url)
    try:
        await elsewhere.execute("SELECT pg_advisory_lock(x'70616365'::int, $1)", second_id)
        async with floor(db_pool, model=MODEL, agents=1) as f:
            a = await f.runner_for(first)
            await a._check_queue_shared()
            assert a.shared_with is None
    finally:
        await elsewhere.close()


async def test_abort_stops_the_loop_even_when_the_cancel_comes_out_as_a_database_error(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # abort() cancels the loop and terminates the leader's connection. A cancel landing in a
    # transaction on that connection came out as asyncpg's InterfaceError (the rollback on the
    # closed connection failed): the loop took it for an outage and went on dialing, and
    # `puente bench dialer --seconds 120` never finished.
    import asyncpg

    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.05)

        async def stuck_in_a_transaction() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise asyncpg.InterfaceError("the underlying connection is closed") from None

        monkeypatch.setattr(runner, "_refresh", stuck_in_a_transaction)
        loop = asyncio.get_running_loop()
        await runner.start(SimpleNamespace(create_task=loop.create_task))  # (no TaskGroup:
        await asyncio.sleep(0.2)  # one would wait forever for a loop that never ends)
        await runner.abort()
        done, _ = await asyncio.wait([runner._task], timeout=5)
        assert runner._task in done
