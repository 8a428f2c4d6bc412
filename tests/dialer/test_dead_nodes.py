"""Calls a dead node left open are settled by a live node: on its own PBX by any node, with
Asterisk's channels; on a PBX nobody drives, by the pacer, after an hour (dialer.presence)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from compliance import ComplianceGate
from dialer import runner as runner_module
from dialer.presence import Presence, live_sessions, session_name
from dialer.runner import CampaignRunner
from dialer.selection import claim_and_gate
from tests.dialer._floor import NOON, floor, make_campaign, poll_until
from tests.dialer.test_reconcile import MODEL, hold_then_hand_back


@pytest.fixture(autouse=True)
def quick_upkeep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The periodic passes every half second, and a node dead after a second's absence (30 s
    and 40 s in service)."""
    monkeypatch.setattr(runner_module, "_WINDOW_READ_S", 0.5)
    monkeypatch.setattr(runner_module, "_DEAD_AFTER_S", 1.0)


async def claim(pool: asyncpg.Pool, cid: int, code: str, want: int, node: str, pbx: str) -> list:
    dials, _ = await claim_and_gate(
        pool, ComplianceGate(pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=want, node=node, pbx=pbx, now=NOON,
    )  # fmt: skip
    assert len(dials) == want
    return [d.attempt_id for d in dials]


async def aged(pool: asyncpg.Pool, attempts: list[str], seconds: float) -> None:
    await pool.execute(
        "UPDATE call_attempts SET created_at = $2 WHERE id = ANY($1::uuid[])",
        attempts,
        NOON - timedelta(seconds=seconds),
    )


async def states(pool: asyncpg.Pool, cid: int) -> dict[str, tuple[str, str | None]]:
    rows = await pool.fetch(
        "SELECT id::text, state, disposition FROM call_attempts WHERE campaign_id = $1", cid
    )
    return {r["id"]: (r["state"], r["disposition"]) for r in rows}


@contextlib.asynccontextmanager
async def present(pool: asyncpg.Pool, *nodes: str) -> AsyncIterator[None]:
    presences = [Presence(pool, node) for node in nodes]
    for p in presences:
        assert await p.ensure()
    try:
        yield
    finally:
        for p in presences:
            await p.close()


@contextlib.asynccontextmanager
async def paced_elsewhere(pool: asyncpg.Pool, cid: int) -> AsyncIterator[None]:
    """The campaign's pacing lock held by a node on another Asterisk."""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_try_advisory_lock(x'70616365'::int, $1::int)", cid)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock_all()")


async def run_until(runner: CampaignRunner, done) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.TaskGroup() as tg:
        await runner.start(tg)
        try:
            await poll_until(done)
        except BaseException:
            await runner.abort()
            raise
        await runner.stop()


def test_session_names_fit_what_postgresql_keeps() -> None:
    assert session_name("node-a") == "puente/node-a"
    long = session_name("n" * 80)
    assert long.startswith("puente#")
    assert len(long.encode()) <= 63
    assert session_name("nodo-ñ") != session_name("nodo-n")
    assert session_name("nodo-ñ").isascii()
    assert session_name("n" * 80) != session_name("n" * 81)


async def test_presence_is_seen_while_held_and_gone_once_closed(db_pool) -> None:
    presence = Presence(db_pool, "n-" + "x" * 70)
    assert await presence.ensure()
    assert presence.name in await live_sessions(db_pool)
    # A lost session is opened again.
    assert presence._conn is not None
    await presence._conn.close()
    assert not presence.held
    assert await presence.ensure()
    assert presence.name in await live_sessions(db_pool)
    await presence.close()
    assert presence.name not in await live_sessions(db_pool)
    # The connection went back to the pool as any other: no name left on it.
    async with db_pool.acquire() as conn:
        assert not (await conn.fetchval("SHOW application_name")).startswith("puente")


async def test_a_node_that_does_not_pace_settles_what_a_dead_node_left_on_its_asterisk(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(
        db_pool, tmp_path, mode="progressive", leads=5, ring_timeout_s=10
    )
    live_call, gone_call, young = await claim(db_pool, cid, code, 3, "dead-node", "sim")
    (other_alive,) = await claim(db_pool, cid, code, 1, "alive-node", "sim")
    await aged(db_pool, [live_call, gone_call, other_alive], 300)
    await aged(db_pool, [young], 0)  # just sent, by the runner's clock
    async with (
        present(db_pool, "n2", "alive-node"),
        paced_elsewhere(db_pool, cid),
        floor(db_pool, model=MODEL, agents=0, audio_handler=hold_then_hand_back) as f,
    ):
        runner = await f.runner_for(code, node="n2", tick_s=0.2)
        client = f.clients[0]
        client.start()
        await client.wait_connected(5)
        number = await db_pool.fetchval(
            "SELECT n.e164 FROM call_attempts a JOIN phone_numbers n ON n.id = a.phone_id "
            "WHERE a.id = $1",
            live_call,
        )
        handle = await client.originate(
            [("Channel", f"PJSIP/{number}@trunk"), ("Context", "puente-outbound"),
             ("Exten", "s"), ("Timeout", "10000"), ("ChannelId", live_call),
             ("Variable", [f"PUENTE_ATTEMPT={live_call}", "PUENTE_QUEUE=collections"])],
            action_id=live_call,
        )  # fmt: skip
        assert (await handle.result(5))["Reason"] == "4"  # answered: in AudioSocket now

        async def gone_settled() -> bool:
            return (await states(db_pool, cid))[gone_call][0] == "final"

        await run_until(runner, gone_settled)
        seen = await states(db_pool, cid)
        assert not runner.is_leader
        assert seen[gone_call] == ("final", "lost")  # no channel: nobody heard its end
        assert runner.stats.adopted == 1  # the live call: followed here from now on
        assert seen[young][0] != "final"  # its Originate may still be on its way
        assert seen[other_alive][0] != "final"  # its node is alive: its own to settle
        lead_state = await db_pool.fetchval(
            "SELECT l.state FROM leads l JOIN call_attempts a ON a.lead_id = l.id WHERE a.id = $1",
            gone_call,
        )
        assert lead_state != "in_call"  # back to be tried again
        # The adopted call is ended by its own events (its Hangup, heard here).
        runner = await f.runner_for(code, node="n2", tick_s=0.2)

        async def adopted_ended() -> bool:
            return (await states(db_pool, cid))[live_call][0] == "final"

        await run_until(runner, adopted_ended)
        assert (await states(db_pool, cid))[other_alive][0] != "final"


async def test_a_node_without_a_presence_of_its_own_settles_nobody_elses_calls(
    db_pool, tmp_path: Path, caplog
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    (gone_call,) = await claim(db_pool, cid, code, 1, "dead-node", "sim")
    await aged(db_pool, [gone_call], 300)
    async with (
        paced_elsewhere(db_pool, cid),
        floor(db_pool, model=MODEL, agents=0) as f,
    ):
        runner = await f.runner_for(code, node="n2", tick_s=0.2)
        f.clients[0].start()

        async def looked() -> bool:
            return runner._presence_warned

        await run_until(runner, looked)
    assert (await states(db_pool, cid))[gone_call][0] != "final"
    assert "has no presence session" in caplog.text


async def test_the_pacer_settles_what_dead_nodes_left_on_an_asterisk_nobody_drives(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=5)
    old, recent = await claim(db_pool, cid, code, 2, "dead-node", "gone-pbx")
    (alive_old,) = await claim(db_pool, cid, code, 1, "alive-node", "gone-pbx")
    await aged(db_pool, [old, alive_old], 2 * 3600)
    await aged(db_pool, [recent], 600)
    async with (
        present(db_pool, "n1", "alive-node"),
        floor(db_pool, model=MODEL, agents=0) as f,
    ):
        runner = await f.runner_for(code, node="n1", tick_s=0.2)
        f.clients[0].start()

        async def old_settled() -> bool:
            return (await states(db_pool, cid))[old][0] == "final"

        await run_until(runner, old_settled)
    seen = await states(db_pool, cid)
    assert seen[old] == ("final", "lost")
    assert seen[recent][0] != "final"  # a node on that Asterisk may still settle it
    assert seen[alive_old][0] != "final"  # its node is alive
    # The ledger keeps counting the call that may have rung: its reservation stands, with no
    # outcome that would release it.
    assert await db_pool.fetchval(
        "SELECT count(*) FROM compliance_attempts WHERE attempt_id = $1::uuid", old
    )
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM compliance_outcomes WHERE attempt_id = $1::uuid", old
        )
        == 0
    )
    lead_state = await db_pool.fetchval(
        "SELECT l.state FROM leads l JOIN call_attempts a ON a.lead_id = l.id WHERE a.id = $1",
        old,
    )
    assert lead_state != "in_call"


async def test_the_pacer_leaves_a_live_nodes_calls_alone_until_it_is_dead_long_enough(
    db_pool, tmp_path: Path
) -> None:
    """A node whose lock was lost (or whose results wait for the database) still follows its
    calls: the pacer ended them as lost, over the results that node would write."""
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    (theirs,) = await claim(db_pool, cid, code, 1, "alive-node", "sim")
    await aged(db_pool, [theirs], 300)
    other = Presence(db_pool, "alive-node")
    await other.ensure()
    async with present(db_pool, "n1"), floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, node="n1", tick_s=0.2)
        f.clients[0].start()
        gone_at: list[float] = []

        async def settled_once_dead() -> bool:
            if not gone_at and runner.is_leader and runner._window_read_at > 2.0 + _t0:
                # Several passes with the node alive: nothing settled. Then it dies.
                assert (await states(db_pool, cid))[theirs][0] != "final"
                await other.close()
                gone_at.append(time.monotonic())
            return (await states(db_pool, cid))[theirs][0] == "final"

        _t0 = time.monotonic()
        await run_until(runner, settled_once_dead)
    assert gone_at
    assert time.monotonic() - gone_at[0] >= runner_module._DEAD_AFTER_S
    assert (await states(db_pool, cid))[theirs] == ("final", "lost")


async def test_a_claim_committed_but_never_dialed_is_swept(db_pool, tmp_path: Path) -> None:
    """The claim's commit went through while its caller saw an error: attempts nothing dials
    and, followed by nobody, nothing would end. The node's periodic sweep ends them."""
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, node="n1", tick_s=0.2)
        f.clients[0].start()
        stray: list[str] = []

        async def swept() -> bool:
            if not stray and runner._synced_at_connect:  # (after the connect's reconcile)
                stray.extend(await claim(db_pool, cid, code, 1, "n1", "sim"))
                await aged(db_pool, stray, 300)
            return bool(stray) and (await states(db_pool, cid))[stray[0]][0] == "final"

        await run_until(runner, swept)
    assert (await states(db_pool, cid))[stray[0]] == ("final", "lost")  # (the safe side)
    lead_state = await db_pool.fetchval(
        "SELECT l.state FROM leads l JOIN call_attempts a ON a.lead_id = l.id WHERE a.id = $1",
        stray[0],
    )
    assert lead_state != "in_call"
