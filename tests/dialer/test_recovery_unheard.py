"""Calls that ended while nobody listened (the node down, or its AMI link): settled from what was
known of them before, not as dials that never reached anyone."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from compliance import ComplianceGate
from dialer.campaigns import RetrySchedule
from dialer.results import write_result
from dialer.runner import CampaignRunner, _Call
from dialer.selection import Dial, claim_and_gate
from pbx import PbxError
from pbx.ami import ActionResult, AmiMessage
from tests.dialer._floor import NOON, answered_while_stalled, floor, make_campaign, running

MODEL = {
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.2},
    "patience_s": {"dist": "fixed", "value": 60.0},
}


def _channels(*up: str):
    """An AMI whose CoreShowChannels lists ``up`` (answered channels) and nothing else."""

    async def send_action(action: str, fields=()) -> ActionResult:
        assert action == "CoreShowChannels"
        ok = AmiMessage.from_pairs([("Response", "Success")])
        events = [
            AmiMessage.from_pairs(
                [("Event", "CoreShowChannel"), ("Uniqueid", aid), ("ChannelState", "6")]
            )
            for aid in up
        ]
        return ActionResult(action, "x", ok, events)

    return SimpleNamespace(send_action=send_action, connects_total=1)


async def _dials(pool, cid: int, code: str, n: int) -> list[Dial]:
    dials, denied = await claim_and_gate(
        pool, ComplianceGate(pool), campaign_id=cid, campaign_code=code, packs=["mx"], want=n,
        node="n1", pbx="sim", now=NOON,
    )  # fmt: skip
    assert len(dials) == n, denied
    return dials


async def _settle(runner: CampaignRunner) -> None:
    if runner._sends:
        await asyncio.gather(*runner._sends)
    await runner._drain_finals()


async def _one_ringing(db_pool, tmp_path: Path) -> tuple[CampaignRunner, Dial]:
    """A runner of a new campaign, following one dial of it, sent at 0 and still ringing."""
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    (d,) = await _dials(db_pool, cid, code, 1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)
    runner.calls[d.attempt_id] = _Call(d, 0.0)
    runner.tracker.originated(d.attempt_id, 0.0)
    return runner, d


async def test_a_restart_settles_answered_calls_that_ended_unheard_from_what_was_written(
    db_pool, tmp_path: Path
) -> None:
    # Before the "crash" the run had written down, as they happened: each call's answer, an
    # agent taking one, one abandoned, one a machine; the fifth was answered and nothing more.
    # All ended while the node was down. They were all settled 'lost', as if nobody had been
    # reached: the debtor who had just spoken to an agent was called again an hour later (the
    # lead 'ready', not 'done'), and the abandoned call and the machine left no ledger outcome.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=5)
    agent, abandoned, machine, unknown, live = await _dials(db_pool, cid, code, 5)
    agent_id = await db_pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, 'A', $2) RETURNING id",
        f"a{os.urandom(3).hex()}",
        f"Local/{os.urandom(3).hex()}@agents",
    )
    await db_pool.execute(
        "UPDATE call_attempts SET answered_at = $2 WHERE id = ANY($1::uuid[])",
        [d.attempt_id for d in (agent, abandoned, machine, unknown, live)],
        NOON,
    )
    await db_pool.execute(
        "UPDATE call_attempts SET agent_id = $2, connected_at = $3 WHERE id = ANY($1::uuid[])",
        [agent.attempt_id, live.attempt_id],
        agent_id,
        NOON,
    )
    await db_pool.execute(
        "UPDATE call_attempts SET abandoned = true WHERE id = $1::uuid", abandoned.attempt_id
    )
    await db_pool.execute(
        "UPDATE call_attempts SET amd_status = 'MACHINE' WHERE id = $1::uuid", machine.attempt_id
    )
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)  # the node after its restart
    runner.ami = _channels(live.attempt_id)  # only the agent's second call is still up
    await runner._reconcile(all_nodes=False)
    # The call still up is adopted as what it was: its Hangup ends it as the agent's.
    assert runner.calls[live.attempt_id].connected
    runner._on_event(
        AmiMessage.from_pairs([("Event", "Hangup"), ("Uniqueid", live.attempt_id),
                               ("Cause", "16")])
    )  # fmt: skip
    await _settle(runner)

    rows = {
        str(r["id"]): r
        for r in await db_pool.fetch(
            "SELECT a.id, a.state, a.disposition, a.answered_at, a.abandoned, l.state AS lead "
            "FROM call_attempts a JOIN leads l ON l.id = a.lead_id WHERE a.campaign_id = $1",
            cid,
        )
    }
    got = {aid: (r["state"], r["disposition"]) for aid, r in rows.items()}
    assert got == {
        agent.attempt_id: ("final", "agent"),
        abandoned.attempt_id: ("final", "abandoned"),
        machine.attempt_id: ("final", "machine"),
        unknown.attempt_id: ("final", "lost"),  # answered, and then? Nobody knows.
        live.attempt_id: ("final", "agent"),
    }
    assert rows[agent.attempt_id]["lead"] == "done"  # not dialed again an hour later
    assert rows[live.attempt_id]["lead"] == "done"
    assert rows[abandoned.attempt_id]["abandoned"]
    # The answer time is the one written when it happened, for every one of them.
    assert all(r["answered_at"] == NOON for r in rows.values())
    ledger = dict(
        await db_pool.fetch(
            "SELECT attempt_id::text, outcome FROM compliance_outcomes "
            "WHERE attempt_id = ANY($1::uuid[])",
            list(rows),
        )
    )
    assert ledger == {
        abandoned.attempt_id: "abandoned",
        machine.attempt_id: "machine",
        # (an agent took them: a conversation, whose cooldowns start)
        agent.attempt_id: "conversation",
        live.attempt_id: "conversation",
    }


async def test_a_reconnect_settles_a_followed_call_that_ended_unheard_as_its_events_had_it(
    db_pool, tmp_path: Path
) -> None:
    # The AMI link dropped while an agent was talking to the debtor, and the call ended before
    # it came back. This run had heard the AgentConnect; the reconcile still settled it 'lost'.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    talking, ringing = await _dials(db_pool, cid, code, 2)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)
    for d in (talking, ringing):
        runner.calls[d.attempt_id] = _Call(d, 0.0)
    runner.calls[talking.attempt_id].answered_at = 1.0
    runner.calls[talking.attempt_id].amd = "HUMAN"
    runner.calls[talking.attempt_id].connected = True
    runner.tracker.originated(ringing.attempt_id, 0.0)
    runner.ami = _channels()  # neither channel is there any more
    await runner._reconcile(all_nodes=False)
    await _settle(runner)
    got = dict(
        await db_pool.fetch(
            "SELECT id::text, disposition FROM call_attempts WHERE campaign_id = $1", cid
        )
    )
    # (the one that was still ringing may have been answered, or not: fate unknown)
    assert got == {talking.attempt_id: "agent", ringing.attempt_id: "lost"}


async def test_a_followed_call_found_answered_at_a_reconnect_is_written_down_as_answered(
    db_pool, tmp_path: Path
) -> None:
    # Its OriginateResponse went to the lost session; the reconcile finds its channel Up. The
    # run counted it answered, but did not write it down as the other answers are: a restart
    # finding it ended unheard then settled it 'lost', as if nobody had been reached.
    runner, d = await _one_ringing(db_pool, tmp_path)
    runner.ami = _channels(d.attempt_id)
    await runner._reconcile(all_nodes=False)
    await _settle(runner)
    assert runner.calls[d.attempt_id].answered_at is not None
    row = await db_pool.fetchrow(
        "SELECT state, answered_at FROM call_attempts WHERE id = $1::uuid", d.attempt_id
    )
    assert row["state"] != "final"
    assert row["answered_at"] is not None


async def test_the_answer_and_the_amd_verdict_are_written_down_as_they_happen(
    db_pool, tmp_path: Path
) -> None:
    # Nothing of a call in progress but its abandonment and its agent was in the database: a
    # restart finding it ended could not tell an answered call from one that never rang.
    runner, d = await _one_ringing(db_pool, tmp_path)
    for pairs in (
        [("Event", "OriginateResponse"), ("ActionID", d.attempt_id), ("Response", "Success"),
         ("Reason", "4")],
        [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", d.attempt_id),
         ("AMDSTATUS", "MACHINE")],
    ):  # fmt: skip
        runner._on_event(AmiMessage.from_pairs(pairs))
    await asyncio.gather(*runner._sends)
    row = await db_pool.fetchrow(
        "SELECT state, answered_at, amd_status FROM call_attempts WHERE id = $1::uuid",
        d.attempt_id,
    )
    assert row["state"] != "final"
    assert row["answered_at"] is not None
    assert row["amd_status"] == "MACHINE"


async def test_an_attempt_never_placed_does_not_use_up_the_leads_tries(
    db_pool, tmp_path: Path
) -> None:
    # max_attempts counts dials. An Originate Asterisk refused (or could not place: an unknown
    # endpoint, a trunk down) used one up all the same: with the trunk refusing for a while,
    # every lead reached its last try and was cancelled without ever being called.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    refused, rang = await _dials(db_pool, cid, code, 2)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)
    campaign = dataclasses.replace(runner.c, retry=RetrySchedule.parse({"max_attempts": 1}))
    gate = ComplianceGate(db_pool)
    for d, disposition in ((refused, "failed"), (rang, "no_answer")):
        assert await write_result(
            db_pool, gate, campaign, d, disposition, None, amd=None, answered=False, now=NOON
        )
    leads = {
        r["id"]: (r["state"], r["attempts"])
        for r in await db_pool.fetch(
            "SELECT id, state, attempts FROM leads WHERE campaign_id = $1", cid
        )
    }
    assert leads[refused.lead_id] == ("ready", 0)  # its one try is still to come
    assert leads[rang.lead_id] == ("cancelled", 1)  # the last try was made: the lead ends


async def test_a_call_answered_during_a_long_stall_is_not_ended_lost_on_a_timer(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # The link stalls (a hung Asterisk, a network partition: the client still thinks it is
    # connected), the callee answers and reaches an agent, and the stall lasts longer than
    # stale_after_s. The dial was ended 'lost' on that timer alone: final while the debtor
    # talked to the agent, its lead retried, and the reconcile after the reconnect, which
    # looks at open attempts only, never saw the call. Now the stale dial is looked for among
    # Asterisk's channels first; while that cannot be done, it waits for the reconcile.
    import dialer.runner as runner_module

    monkeypatch.setattr(runner_module, "_AUDIT_S", 0.3)
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    model = {**MODEL, "ring_s": {"dist": "fixed", "value": 0.3},
             "talk_s": {"dist": "fixed", "value": 4.0}}  # fmt: skip
    async with floor(db_pool, model=model, agents=1) as f:
        runner = await f.runner_for(code, tick_s=0.1, stale_after_s=0.8)
        async with running(runner, f.clients[0]):  # (aborted if the test fails)
            aid = await answered_while_stalled(runner, f.sim)
            await asyncio.sleep(1.5)  # well past stale_after_s, several audits
            f.sim.drop_ami()
            f.sim.resume_ami()
            async with asyncio.timeout(30):
                while runner.calls:  # noqa: ASYNC110 - the runner's state
                    await asyncio.sleep(0.1)
    row = await db_pool.fetchrow(
        "SELECT disposition, answered_at FROM call_attempts WHERE id = $1::uuid", aid
    )
    # Ended by its own Hangup, as an answered call ('agent' if the AgentConnect was heard; it
    # may have gone out on the stalled link and been lost with it).
    assert row["disposition"] in ("agent", "hangup")
    assert row["answered_at"] is not None


async def test_an_agent_connect_the_database_missed_is_written_with_the_result(
    db_pool, tmp_path: Path, monkeypatch
) -> None:
    # The database was away when the agent took the call: the agent was never written on the
    # attempt, and the result, written once the database was back, did not name them either.
    # The agent could then not record the disposition (promise, callback, dispute) on their
    # own call: the API refuses an attempt that is not theirs.
    import dialer.runner as runner_module

    async def unreachable(*_args, **_kwargs) -> None:
        raise OSError("connection refused (test)")

    monkeypatch.setattr(runner_module, "assign_agent", unreachable)
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    (d,) = await _dials(db_pool, cid, code, 1)
    interface = f"Local/{os.urandom(3).hex()}@agents"
    agent_id = await db_pool.fetchval(
        "INSERT INTO agents (code, name, interface) VALUES ($1, 'A', $2) RETURNING id",
        f"a{os.urandom(3).hex()}",
        interface,
    )
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code)
    runner.calls[d.attempt_id] = _Call(d, 0.0)
    runner.tracker.originated(d.attempt_id, 0.0)
    for pairs in (
        [("Event", "OriginateResponse"), ("ActionID", d.attempt_id), ("Response", "Success"),
         ("Reason", "4")],
        [("Event", "AgentConnect"), ("Queue", "collections"), ("Uniqueid", d.attempt_id),
         ("Interface", interface)],
        [("Event", "Hangup"), ("Uniqueid", d.attempt_id), ("Cause", "16")],
    ):  # fmt: skip
        runner._on_event(AmiMessage.from_pairs(pairs))
    await _settle(runner)
    row = await db_pool.fetchrow(
        "SELECT disposition, agent_id, connected_at FROM call_attempts WHERE id = $1::uuid",
        d.attempt_id,
    )
    assert row["disposition"] == "agent"
    assert row["agent_id"] == agent_id
    assert row["connected_at"] is not None


@pytest.mark.parametrize("answer", ["refused", "cut short"])
async def test_a_channel_listing_refused_or_cut_short_settles_nothing(
    db_pool, tmp_path: Path, answer: str
) -> None:
    # An AMI user without the rights gets an Error; a list whose Complete counts more items
    # than came is missing some. Taken for listings, every call missing from them ended as
    # lost, its lead and its person free while the debtor was on the phone.
    runner, _ = await _one_ringing(db_pool, tmp_path)

    async def send_action(action: str, fields=()) -> ActionResult:
        if answer == "refused":
            error = [("Response", "Error"), ("Message", "Permission denied")]
            return ActionResult(action, "x", AmiMessage.from_pairs(error))
        ok = AmiMessage.from_pairs([("Response", "Success"), ("EventList", "start")])
        complete = AmiMessage.from_pairs(
            [("Event", "CoreShowChannelsComplete"), ("EventList", "Complete"), ("ListItems", "2")]
        )
        return ActionResult(action, "x", ok, [], complete)

    runner.ami = SimpleNamespace(send_action=send_action, connects_total=1)
    with pytest.raises(PbxError):
        await runner._reconcile(all_nodes=False)
    await _settle(runner)
    states = await db_pool.fetch(
        "SELECT state FROM call_attempts WHERE id = ANY($1::uuid[])", list(runner.calls)
    )
    assert states
    assert all(r["state"] != "final" for r in states)
