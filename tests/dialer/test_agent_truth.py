"""The agent board against what Asterisk really sends: recorded event orders, calls of other
queues, device states, and the runner's event path (the board is updated by the event itself,
and the pacer woken on it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.agents import AgentBoard
from dialer.runner import CampaignRunner
from pbx.ami import ActionResult, AmiMessage
from tests.dialer._floor import floor, make_campaign
from tests.support.transcripts import log_chunks

Q = "collections"
ANA = "PJSIP/agent101"
# A QueueMemberStatus as Asterisk 22 sends it (ami/11-queue: every field of the real event).
MEMBER = {"Queue": Q, "MemberName": "Ana", "Interface": ANA, "StateInterface": ANA,
          "Membership": "dynamic", "Penalty": "0", "CallsTaken": "0", "LastCall": "0",
          "LastPause": "0", "LoginTime": "1795334968", "InCall": "0", "Status": "1",
          "Paused": "0", "PausedReason": "", "Ringinuse": "0", "Wrapuptime": "0"}  # fmt: skip


def _call(queue: str, uid: str, interface: str = ANA) -> dict[str, str]:
    """The fields of an AgentConnect/AgentComplete the board reads (recorded: ami/11-queue)."""
    return {"Queue": queue, "Interface": interface, "MemberName": "Ana", "Uniqueid": uid,
            "Linkedid": uid}  # fmt: skip


def _recorded_events(relative: str) -> Iterator[tuple[float, str, dict[str, str]]]:
    """The events of a recorded AMI session, in order, each at the time its bytes arrived."""
    buffer = b""
    for chunk in log_chunks(relative):
        if chunk.direction != "S->C":
            continue
        buffer += chunk.data
        *messages, buffer = buffer.split(b"\r\n\r\n")
        for raw in messages:
            lines = raw.decode().split("\r\n")
            fields = dict(line.split(": ", 1) for line in lines if ": " in line)
            if "Event" in fields:
                yield chunk.at_s, fields["Event"], fields


# -- recorded event orders ------------------------------------------------------------------------
def test_a_member_on_two_calls_at_once_is_busy_until_both_end() -> None:
    # Asterisk 22 (load/01-mixed-campaign, ringinuse = yes): agent101 connected to load-041
    # while still on load-029; load-029's AgentComplete came first. The board took it as the
    # end of the agent's only call: free (no wrap-up) while talking to load-041's caller, and
    # load-029's talk time measured from load-041's connect.
    board = AgentBoard(Q)
    agent = "Local/agent101@load-agents/n"
    talking: dict[str, float] = {}
    checked = 0
    for at, name, f in _recorded_events("load/01-mixed-campaign.log.txt"):
        if f.get("Interface") == agent and name == "QueueMemberRemoved":
            assert board.agents[agent].free(at)  # its calls all ended: free at last
            break
        board.event(name, f, at)
        if f.get("Interface") != agent:
            continue
        if name == "AgentConnect":
            talking[f["Uniqueid"]] = at
        elif name == "AgentComplete":
            started = talking.pop(f["Uniqueid"])
            # what the pacer learns is the call's own talk time (TalkTime: whole seconds)
            assert abs(board.talk_s[-1] - (at - started)) < 1e-9
            assert abs(board.talk_s[-1] - float(f["TalkTime"])) < 1.0, f["Uniqueid"]
        if talking:
            checked += 1
            assert not board.agents[agent].free(at), (name, f.get("Uniqueid"))
            assert board.agents[agent].status(at) == "busy"
            assert len(board.busy_elapsed(at)) == 1  # one agent, whatever its calls
    assert checked > 5
    assert len(board.talk_s) == 6


def test_a_call_whose_caller_channel_was_replaced_still_ends() -> None:
    # app_queue reports AgentComplete with the caller's LATEST channel: a Local channel
    # optimization replaces it (handle_local_optimization_end), and its Uniqueid with it; the
    # call's Linkedid stays. The call must still end, or the agent stays busy for ever.
    board = AgentBoard(Q)
    board.event("QueueMemberAdded", MEMBER, 0.0)
    board.event("AgentConnect", {**_call(Q, "c1;1"), "Linkedid": "c1"}, 1.0)
    board.event("AgentComplete", {**_call(Q, "c1-trunk"), "Linkedid": "c1"}, 31.0)
    assert (board.free(31.0), list(board.talk_s)) == (1, [30.0])
    # An AgentComplete of a call the board never saw connected (before a rebuild) ends none
    # of the calls it knows.
    board.event("AgentConnect", _call(Q, "c2"), 40.0)
    board.event("AgentComplete", _call(Q, "c0"), 41.0)
    assert board.free(41.0) == 0


def test_a_device_busy_with_no_queue_call_is_not_a_call_about_to_end() -> None:
    # busy_elapsed tells the pacer who is on a call and for how long: it opens lines for the
    # ones likely to end soon. An agent whose phone was unplugged (UNAVAILABLE), or who
    # makes a call of their own (INUSE with no AgentConnect), was counted as still on their
    # LAST queue call, minutes long by then: about to end, so lines were dialed for them.
    board = AgentBoard(Q, queue_wrapup_s=5.0)
    board.event("QueueMemberAdded", MEMBER, 0.0)
    board.event("AgentConnect", _call(Q, "c1"), 10.0)
    assert board.busy_elapsed(100.0) == (90.0,)
    board.event("AgentComplete", _call(Q, "c1"), 190.0)
    board.event("QueueMemberStatus", {**MEMBER, "LastCall": "1795335065"}, 190.0)
    assert board.free(195.0) == 1
    for status in ("5", "4", "2", "6"):  # UNAVAILABLE, INVALID, INUSE, RINGING
        board.event("QueueMemberStatus", {**MEMBER, "Status": status}, 200.0)
        assert board.free(200.0) == 0, status
        assert (board.busy_elapsed(200.0), board.wrap_left(200.0)) == ((), ()), status
    board.event("QueueMemberStatus", MEMBER, 300.0)  # plugged in again
    assert board.free(300.0) == 1


def test_a_device_whose_state_asterisk_does_not_know_is_rung_so_it_is_free() -> None:
    # app_queue's is_member_available(): AST_DEVICE_UNKNOWN (0) is available, as NOT_INUSE
    # (a PJSIP endpoint not qualified yet, as after an Asterisk restart). The board counted
    # the member busy: the queue rang them, the pacer dialed nothing for them.
    board = AgentBoard(Q)
    assert board.event("QueueMember", {**MEMBER, "Status": "0"}, 0.0)
    assert board.free(0.0) == 1
    board.event("QueueMemberPause", {**MEMBER, "Status": "0", "Paused": "1"}, 1.0)
    assert board.free(1.0) == 0


# -- calls of other queues (queues.conf: shared_lastcall = yes) -------------------------------
def test_a_call_from_another_queue_ends_in_a_wrap_up_in_this_one() -> None:
    # An agent of campaign queue "collections" is also in the inbound queue (the desktop adds
    # both). app_queue's update_queue() with shared_lastcall sets the member's lastcall in
    # EVERY queue: after an inbound call the member is not rung by "collections" for its
    # wrap-up. This queue only sees device-state QueueMemberStatus events (in use, then not in
    # use): the board counted the agent free the moment the inbound call ended, 5 s early.
    # The pacer dialed for them; the live person found nobody within the 2 s rule.
    board = AgentBoard(Q, queue_wrapup_s=5.0)
    board.event("QueueMemberAdded", MEMBER, 0.0)
    board.event("AgentConnect", _call("inbound", "in-1"), 10.0)
    # (the device-state race of AgentConnect: this queue's member still NOT_INUSE)
    board.event("QueueMemberStatus", MEMBER, 10.01)
    assert (board.free(11.0), board.agents[ANA].status(11.0)) == (0, "busy")
    board.event("QueueMemberStatus", {**MEMBER, "Status": "2"}, 10.02)
    assert board.busy_elapsed(40.0) == (30.0,)  # on a call: it will end
    board.event("AgentComplete", _call("inbound", "in-1"), 70.0)
    assert not board.event("QueueMemberStatus", {**MEMBER, "LastCall": "1795335065"}, 70.01)
    assert (board.free(74.9), board.wrap_left(72.0)) == (0, (3.0,))
    assert board.free(75.0) == 1
    assert list(board.talk_s) == []  # the pacer's model is this queue's calls only

    # Not a member of this queue: another queue's calls are none of its business.
    board.event("AgentConnect", _call("inbound", "in-2", "PJSIP/agent999"), 80.0)
    assert "PJSIP/agent999" not in board.agents
    # Without shared_lastcall the other queue's wrap-up is not this queue's.
    own = AgentBoard(Q, queue_wrapup_s=5.0, shared_lastcall=False)
    own.event("QueueMemberAdded", MEMBER, 0.0)
    own.event("AgentConnect", _call("inbound", "in-1"), 10.0)
    own.event("AgentComplete", _call("inbound", "in-1"), 70.0)
    assert own.free(70.0) == 1


def test_member_events_of_another_queue_change_nothing_here() -> None:
    # Paused in the inbound queue only (a QueuePause with a Queue): still free here.
    board = AgentBoard(Q)
    board.event("QueueMemberAdded", MEMBER, 0.0)
    board.event("QueueMemberPause", {**MEMBER, "Queue": "inbound", "Paused": "1"}, 1.0)
    board.event("QueueMemberRemoved", {**MEMBER, "Queue": "inbound"}, 2.0)
    assert (board.logged_in, board.free(2.0)) == (1, 1)


def test_the_next_wrap_up_end_is_known_for_the_pacer_to_wake_on() -> None:
    board = AgentBoard(Q, queue_wrapup_s=5.0)
    assert board.next_free_at(0.0) is None
    for n, ends in ((1, 30.0), (2, 20.0)):
        m = {**MEMBER, "Interface": f"PJSIP/agent{n}"}
        board.event("QueueMemberAdded", m, 0.0)
        board.event("AgentConnect", _call(Q, f"c{n}", m["Interface"]), 1.0)
        board.event("AgentComplete", _call(Q, f"c{n}", m["Interface"]), ends - 5.0)
    assert board.next_free_at(16.0) == 20.0
    assert board.next_free_at(20.0) == 30.0  # the first one is free now
    assert board.next_free_at(30.0) is None


# -- the runner's event path ------------------------------------------------------------------
MODEL = {
    "seed": 5,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "fail_after_s": {"dist": "fixed", "value": 0.1},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
    "machine_greeting_s": {"dist": "fixed", "value": 0.5},
}


@pytest.fixture
async def runner(db_pool, tmp_path: Path):
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        yield await f.runner_for(code)


def _event(runner: CampaignRunner, name: str, fields: dict[str, str]) -> None:
    runner._on_event(AmiMessage.from_pairs([("Event", name), *fields.items()]))


async def test_the_pacer_sees_each_event_at_once_and_is_woken_by_a_freed_agent(runner) -> None:
    # "Pacing sees the truth within 100 ms of the event": the board is changed by the event
    # itself (no task, no tick between), and an agent freed wakes the pacing step.
    runner.board.queue_wrapup_s = 0.0
    steps = [
        ("QueueMemberAdded", MEMBER, 1, True),
        ("QueueMemberStatus", {**MEMBER, "Status": "2"}, 0, False),  # rung: busy at once
        ("AgentConnect", _call(Q, "c1"), 0, False),
        ("AgentComplete", _call(Q, "c1"), 0, False),  # the device is still in use
        ("QueueMemberStatus", MEMBER, 1, True),
        ("QueueMemberPause", {**MEMBER, "Paused": "1", "PausedReason": "lunch"}, 0, False),
        ("QueueMemberPause", MEMBER, 1, True),
        ("AgentConnect", _call("inbound", "in-1"), 0, False),  # another queue's call
        ("AgentComplete", _call("inbound", "in-1"), 1, True),
        ("QueueMemberRemoved", MEMBER, 0, False),
    ]
    for name, fields, free, wakes in steps:
        runner._wake.clear()
        runner.agent_freed_at = None
        _event(runner, name, fields)
        assert runner.board.free(time.monotonic()) == free, name
        assert runner._wake.is_set() == wakes, name
        assert (runner.agent_freed_at is not None) == wakes, name


def _member_entry(paused: str) -> AmiMessage:
    return AmiMessage.from_pairs([("Event", "QueueMember"), ("Queue", "collections"),
                                  ("Name", "Ana"), ("Location", ANA), ("Status", "1"),
                                  ("Paused", paused), ("InCall", "0"), ("LastCall", "0"),
                                  ("Wrapuptime", "0")])  # fmt: skip


async def test_an_event_that_follows_the_queue_status_is_not_lost_by_the_rebuild(runner) -> None:
    # After a reconnect the board is rebuilt from QueueStatus. The AMI reader delivers the
    # events that follow QueueStatusComplete (in the same TCP read, or any read before
    # _sync_agents resumes) to the subscribers at once: to the OLD board, which _sync_agents
    # then clears and refills from the older list. A pause made in that instant was lost until
    # the next reconnect: the pacer dialed for a paused agent (every call abandoned).
    async def send_action(action: str, fields=()) -> ActionResult:
        ok = AmiMessage.from_pairs([("Response", "Success")])
        if action != "QueueStatus":
            return ActionResult(action, "y", ok, [])
        # Asterisk listed the member unpaused; the agent's pause came right after the list.
        _event(runner, "QueueMemberPause", {**MEMBER, "Paused": "1", "PausedReason": "lunch"})
        return ActionResult(action, "x", ok, [_member_entry("0")])

    runner.ami = SimpleNamespace(connects_total=1, send_action=send_action)
    await runner._sync_agents()
    assert runner.board.agents[ANA].paused
    assert runner.board.free(time.monotonic()) == 0
