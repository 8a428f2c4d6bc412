"""An agent's state is its membership of Asterisk's queues, changed there first.

``POST /api/v1/agents/{code}/state`` sends QueueAdd / QueuePause / QueueRemove for the agent's
interface before it records the state. An agent takes calls for one campaign at a time: going
ready joins that campaign's queue only (a member of two active campaigns' queues was counted
free by both pacers, and dialed for by both). The preview request joins the agent's own queue
before it asks for a lead. Asterisk is :class:`tests.web._app_queue.AppQueue` (app_queue's
answers, including its refusals), and at the end the simulator over real AMI, read back with
QueueStatus as the dialer reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from dialer.agents import AgentBoard
from pbx.ami import AmiClient, AmiSettings
from pbx.sim import SimServerSettings
from pbx.sim import build as build_sim
from tests.web._api_support import Account, account, audit_rows, unique
from tests.web._app_queue import AppQueue, Member
from web import WebSettings, create_app
from web._agents import QueueMember, queue_steps
from web._desktop import desktop_extension

LINK_DOWN = "the PBX link is down: try again in a moment"


@contextlib.asynccontextmanager
async def desk(
    pool: asyncpg.Pool, ami: Callable[[], Any] | None, inbound_queue: str | None = None
) -> AsyncIterator[TestClient]:
    # The settings' default unless a test asks for an inbound queue (the default is none).
    settings = WebSettings() if inbound_queue is None else WebSettings(inbound_queue=inbound_queue)
    app = create_app(pool, settings, extensions=[desktop_extension(ami=ami)])
    async with TestClient(TestServer(app)) as http:
        yield http


async def _campaign(
    pool: asyncpg.Pool, queue: str, *, mode: str = "progressive", state: str = "running"
) -> str:
    code = unique("c")
    await pool.execute(
        "INSERT INTO campaigns (code, name, mode, state, queue_name, agentless_flow)"
        " VALUES ($1, $1, $2, $3, $4, $5)",
        code, mode, state, queue, "collections" if mode == "agentless" else None,
    )  # fmt: skip
    return code


async def _stop_all(pool: asyncpg.Pool) -> None:
    # The module's database is shared by its tests: only this test's campaigns are active.
    await pool.execute(
        "UPDATE campaigns SET state = 'stopped' WHERE state IN ('running', 'paused')"
    )


@dataclass
class Floor:
    """Three queues of active campaigns (a, b, c), and three of campaigns no agent goes ready
    for (preview, draft, stopped)."""

    active: list[str]  # the queues a, b, c
    codes: list[str]  # a campaign on each: a (progressive), b (predictive, paused), c (agentless)
    twin: str  # a second campaign on a (predictive; from before the API refused that)
    inactive: list[str]  # the queues of the campaigns below
    idle: dict[str, str]  # preview, draft and stopped campaigns: what each is -> its code

    def choices(self) -> str:
        """How the API lists the active campaigns (their names are their codes here)."""
        return ", ".join(f"{c} ({c})" for c in sorted([*self.codes, self.twin]))


@pytest.fixture
async def floor(db_pool: asyncpg.Pool) -> Floor:
    await _stop_all(db_pool)
    tag = unique("q")
    a, b, c = f"{tag}-a", f"{tag}-b", f"{tag}-c"
    codes = [
        await _campaign(db_pool, a),
        await _campaign(db_pool, b, mode="predictive", state="paused"),
        await _campaign(db_pool, c, mode="agentless"),  # its IVR hands callers to this queue
    ]
    twin = await _campaign(db_pool, a, mode="predictive")
    inactive = [f"{tag}-preview", f"{tag}-draft", f"{tag}-stopped"]
    idle = {
        "preview": await _campaign(db_pool, inactive[0], mode="preview"),
        "draft": await _campaign(db_pool, inactive[1], state="draft"),
        "stopped": await _campaign(db_pool, inactive[2], mode="predictive", state="stopped"),
    }
    return Floor([a, b, c], codes, twin, inactive, idle)


def _iface(agent: Account) -> str:
    return f"PJSIP/{agent.agent_code}"  # tests.web._api_support.agent_row


def _add(agent: Account, queue: str) -> tuple[str, dict[str, str]]:
    return ("QueueAdd", {"Queue": queue, "Interface": _iface(agent),
                         "MemberName": f"Agent {agent.agent_code}", "Paused": "false"})  # fmt: skip


def _remove(agent: Account, queue: str) -> tuple[str, dict[str, str]]:
    return ("QueueRemove", {"Queue": queue, "Interface": _iface(agent)})


async def _set(
    http: TestClient,
    agent: Account,
    state: str,
    reason: str | None = None,
    *,
    campaign: str | None = None,
) -> Any:
    body = {"state": state}
    if reason is not None:
        body["reason"] = reason
    if campaign is not None:
        body["campaign"] = campaign
    r = await http.post(f"/api/v1/agents/{agent.agent_code}/state", json=body, headers=agent.auth)
    return r.status, await r.json()


async def _states(pool: asyncpg.Pool, agent: Account) -> list[str]:
    rows = await pool.fetch(
        "SELECT state FROM agent_states WHERE agent_id = $1 ORDER BY id", agent.agent_id
    )
    return [r["state"] for r in rows]


async def _campaign_of(pool: asyncpg.Pool, agent: Account) -> str | None:
    return await pool.fetchval(
        "SELECT c.code FROM agents a LEFT JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1",
        agent.agent_id,
    )


# -- which actions, pure ------------------------------------------------------------------------
def test_the_actions_of_each_change() -> None:
    m = QueueMember("PJSIP/agent101", "Ana")

    def plan(
        before: str, after: str, reason: str | None = None, leave: tuple[str, ...] = ()
    ) -> list[tuple[str, dict]]:
        steps = queue_steps(m, before, after, ["q1", "q2"], reason=reason, before_reason="lunch",
                            own_queue="preview-a101", leave=leave)  # fmt: skip
        return [(s.action, dict(s.fields)) for s in steps]

    add = {"Interface": "PJSIP/agent101", "MemberName": "Ana", "Paused": "false"}
    login = [("QueueAdd", {"Queue": q, **add}) for q in ("q1", "q2")]
    unpause = ("QueuePause", {"Interface": "PJSIP/agent101", "Paused": "false"})
    assert plan("logged_out", "ready") == login
    assert plan("paused", "ready") == [unpause, *login]
    assert plan("ready", "ready") == [unpause, *login]  # after an autopause (queues.conf)
    # Another campaign: its queue is left before the unpause (its calls never reach the agent
    # unpaused); a queue the agent keeps is not left.
    assert plan("paused", "ready", leave=("q0", "q2")) == [
        ("QueueRemove", {"Queue": "q0", "Interface": "PJSIP/agent101"}), unpause, *login
    ]  # fmt: skip
    assert plan("ready", "paused", "break") == [
        ("QueuePause", {"Interface": "PJSIP/agent101", "Paused": "true", "Reason": "break"})
    ]
    assert plan("paused", "logged_out") == [
        ("QueueRemove", {"Queue": q, "Interface": "PJSIP/agent101"})
        for q in ("q1", "q2", "preview-a101")
    ]
    assert plan("ready", "talking") == []
    # What a failed change takes back: a join is left, a leave re-joins as the agent was.
    steps = queue_steps(m, "paused", "logged_out", ["q1"], before_reason="lunch")
    assert steps[0].undo is not None
    assert dict(steps[0].undo.fields) == {**add, "Queue": "q1", "Paused": "true",
                                          "Reason": "lunch"}  # fmt: skip
    unpausing = queue_steps(m, "paused", "ready", [], before_reason="lunch")[0]
    assert unpausing.undo is not None
    assert dict(unpausing.undo.fields)["Reason"] == "lunch"


# -- one campaign at a time, through the API, against app_queue's answers -----------------------
async def test_with_several_active_campaigns_and_none_chosen_ready_is_refused_naming_them(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, *floor.inactive)
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready")
    assert (status, body) == (422, {
        "error": "campaign: an agent takes calls for one campaign at a time; choose one of: "
                 + floor.choices(),
        "field": "campaign",
    })  # fmt: skip
    assert ami.sent == []
    assert await _states(db_pool, agent) == []
    assert await _campaign_of(db_pool, agent) is None


async def test_ready_joins_the_chosen_campaigns_queue_and_no_other(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, *floor.inactive, "collections")
    b = floor.active[1]
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready", campaign=floor.codes[1])
    assert (status, body["state"], body["campaign"]) == (200, "ready", floor.codes[1])
    assert ami.sent == [_add(agent, b)]  # (and no inbound queue: none by default)
    assert ami.member(b, _iface(agent)) == Member(f"Agent {agent.agent_code}")
    for q in [*floor.active, *floor.inactive, "collections"]:
        if q != b:
            assert ami.member(q, _iface(agent)) is None
    assert await _states(db_pool, agent) == ["ready"]
    assert await _campaign_of(db_pool, agent) == floor.codes[1]
    (row,) = await audit_rows(db_pool, "agent.state", f"agent:{agent.agent_code}")
    assert json.loads(row["details"]) == {"state": "ready", "reason": None,
                                          "campaign": floor.codes[1]}  # fmt: skip


async def test_the_agents_campaign_is_its_next_logins(db_pool: asyncpg.Pool, floor: Floor) -> None:
    agent = await account(db_pool, "agent")
    own = f"preview-{agent.agent_code}"
    ami = AppQueue.defining(*floor.active, own)
    c = floor.active[2]
    async with desk(db_pool, lambda: ami) as http:
        r = await http.get("/api/v1/agent/campaigns", headers=agent.auth)
        listed = await r.json()
        assert listed == {
            "campaigns": [{"code": x, "name": x} for x in sorted([*floor.codes, floor.twin])],
            "current": None,
        }
        assert (await _set(http, agent, "ready", campaign=floor.codes[2]))[0] == 200
        assert (await _set(http, agent, "logged_out"))[0] == 200
        assert ami.sent[-2:] == [_remove(agent, c), _remove(agent, own)]
        r = await http.get("/api/v1/agent/campaigns", headers=agent.auth)
        assert (await r.json())["current"] == floor.codes[2]
        ami.sent.clear()
        status, body = await _set(http, agent, "ready")  # none named: its own
    assert (status, body["campaign"]) == (200, floor.codes[2])
    assert ami.sent == [_add(agent, c)]
    assert await _states(db_pool, agent) == ["ready", "logged_out", "ready"]


async def test_ready_for_another_campaign_moves_the_agent(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    own = f"preview-{agent.agent_code}"
    a, _, c = floor.active
    ami = AppQueue.defining(*floor.active, own)
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready", campaign=floor.codes[0]))[0] == 200
        assert (await _set(http, agent, "paused", "lunch"))[0] == 200
        ami.sent.clear()
        status, body = await _set(http, agent, "ready", campaign=floor.codes[2])
        assert (status, body["state"], body["campaign"]) == (200, "ready", floor.codes[2])
        # Out of a's queue first, still paused; then unpaused; then into c's.
        assert ami.sent == [
            _remove(agent, a),
            ("QueuePause", {"Interface": _iface(agent), "Paused": "false"}),
            _add(agent, c),
        ]
        assert ami.member(a, _iface(agent)) is None
        assert ami.member(c, _iface(agent)) == Member(f"Agent {agent.agent_code}")
        # The same campaign again: no move.
        ami.sent.clear()
        assert (await _set(http, agent, "ready", campaign=floor.codes[2]))[0] == 200
        assert [x for x, _ in ami.sent] == ["QueuePause", "QueueAdd"]
        ami.sent.clear()
        assert (await _set(http, agent, "logged_out"))[0] == 200
    assert ami.sent == [_remove(agent, c), _remove(agent, own)]
    assert not any(_iface(agent) in members for members in ami.queues.values())
    assert await _states(db_pool, agent) == ["ready", "paused", "ready", "ready", "logged_out"]
    assert await _campaign_of(db_pool, agent) == floor.codes[2]


async def test_the_only_active_campaign_is_chosen_by_itself(db_pool: asyncpg.Pool) -> None:
    await _stop_all(db_pool)
    queue = unique("q")
    code = await _campaign(db_pool, queue, mode="predictive", state="paused")
    await _campaign(db_pool, queue, mode="preview")  # preview campaigns are no choice
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(queue)
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready")
    assert (status, body["campaign"]) == (200, code)
    assert ami.sent == [_add(agent, queue)]
    assert await _campaign_of(db_pool, agent) == code


async def test_a_campaign_that_takes_no_calls_is_no_choice(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, *floor.inactive)
    choose = f"choose one of: {floor.choices()}"
    preview, draft, stopped = floor.idle["preview"], floor.idle["draft"], floor.idle["stopped"]
    async with desk(db_pool, lambda: ami) as http:
        for named, error in (
            ("nosuch", f"campaign: no campaign 'nosuch'; {choose}"),
            (draft, f"campaign: {draft!r} is draft; {choose}"),
            (stopped, f"campaign: {stopped!r} is stopped; {choose}"),
            (preview, f"campaign: {preview!r} is in preview mode (its leads are asked for with "
                      f"Next lead, in the agent's own queue); {choose}"),
        ):  # fmt: skip
            status, body = await _set(http, agent, "ready", campaign=named)
            assert (status, body) == (422, {"error": error, "field": "campaign"})
        # A campaign is chosen going ready, not pausing or logging out.
        status, body = await _set(http, agent, "paused", "lunch", campaign=floor.codes[0])
        assert (status, body["field"]) == (422, "campaign")
    assert ami.sent == []
    assert await _states(db_pool, agent) == []


# -- the inbound queue ------------------------------------------------------------------------
async def test_the_inbound_queue_is_none_by_default(db_pool: asyncpg.Pool, floor: Floor) -> None:
    # Inbound callers wait up to 600 s: in an outbound campaign's agents' queues they take the
    # agents its pacer counts as free. Only where it is configured is it joined.
    assert WebSettings().inbound_queue == ""
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, "collections")
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready", campaign=floor.codes[0]))[0] == 200
    assert ami.sent == [_add(agent, floor.active[0])]
    assert ami.member("collections", _iface(agent)) is None


async def test_a_configured_inbound_queue_is_joined_too(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    own = f"preview-{agent.agent_code}"
    a = floor.active[0]
    ami = AppQueue.defining(*floor.active, "collections", own)
    async with desk(db_pool, lambda: ami, inbound_queue="collections") as http:
        status, _ = await _set(http, agent, "ready", campaign=floor.codes[0])
        assert status == 200
        assert ami.sent == [_add(agent, a), _add(agent, "collections")]
        ami.sent.clear()
        assert (await _set(http, agent, "logged_out"))[0] == 200
    assert ami.sent == [_remove(agent, q) for q in (a, "collections", own)]


async def test_an_inbound_queue_that_is_another_campaigns_is_not_joined(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a, b, _ = floor.active
    ami = AppQueue.defining(*floor.active)
    async with desk(db_pool, lambda: ami, inbound_queue=b) as http:
        assert (await _set(http, agent, "ready", campaign=floor.codes[0]))[0] == 200
        assert ami.sent == [_add(agent, a)]  # b's pacer would count the agent as its own
        ami.sent.clear()
        assert (await _set(http, agent, "ready", campaign=floor.codes[1]))[0] == 200
    assert ami.sent == [  # its campaign's queue is the inbound queue: joined once
        _remove(agent, a), ("QueuePause", {"Interface": _iface(agent), "Paused": "false"}),
        _add(agent, b),
    ]  # fmt: skip


async def test_with_no_campaign_active_ready_is_for_the_inbound_queue_only(
    db_pool: asyncpg.Pool,
) -> None:
    await _stop_all(db_pool)
    await _campaign(db_pool, unique("q"), mode="preview")
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining("collections")
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready")
        assert (status, body) == (422, {
            "error": "campaign: no campaign is running or paused (outside preview mode), so "
                     "there are no calls to go ready for; preview leads are asked for with Next "
                     "lead",
            "field": "campaign",
        })  # fmt: skip
    async with desk(db_pool, lambda: ami, inbound_queue="collections") as http:
        status, body = await _set(http, agent, "ready")
    assert (status, body["campaign"]) == (200, None)
    assert ami.sent == [_add(agent, "collections")]
    assert await _states(db_pool, agent) == ["ready"]


# -- pause, logout, Asterisk's answers and refusals ---------------------------------------------
async def test_pause_and_ready_again_pause_and_unpause_in_the_campaigns_queue(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a = floor.active[0]
    late = f"{a}-late"
    ami = AppQueue.defining(*floor.active, late)
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready", campaign=floor.codes[0]))[0] == 200
        ami.sent.clear()
        status, body = await _set(http, agent, "paused", "lunch")
        assert (status, body["state"], body["reason"]) == (200, "paused", "lunch")
        assert ami.sent == [
            ("QueuePause", {"Interface": _iface(agent), "Paused": "true", "Reason": "lunch"})
        ]
        assert ami.member(a, _iface(agent)) == Member(
            f"Agent {agent.agent_code}", paused=True, reason="lunch"
        )
        await _campaign(db_pool, late)  # started during the pause: another campaign's
        ami.sent.clear()
        status, body = await _set(http, agent, "ready")
        assert (status, body["campaign"]) == (200, floor.codes[0])  # its own, still
        assert ami.sent == [
            ("QueuePause", {"Interface": _iface(agent), "Paused": "false"}),
            _add(agent, a),  # "Already there": the agent stays as it is
        ]
        assert ami.member(a, _iface(agent)) == Member(f"Agent {agent.agent_code}")
        assert ami.member(late, _iface(agent)) is None
        # The desktop's old second call is gone: one request moves Asterisk and the record.
        r = await http.post("/api/v1/agent/queue", json={"paused": False}, headers=agent.auth)
        assert r.status in (404, 405)
    assert await _states(db_pool, agent) == ["ready", "paused", "ready"]


async def test_already_there_and_not_there_are_no_errors(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    b = floor.active[1]
    ami = AppQueue.defining(*floor.active)  # no preview queue for this agent in queues.conf
    # Asterisk restarted with persistentmembers = yes: the agent is in its queue already.
    ami.queues[b][_iface(agent)] = Member("Agent")
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready", campaign=floor.codes[1]))[0] == 200
        assert ami.answers == [("QueueAdd", "Error", "Unable to add interface: Already there")]
        assert (await _set(http, agent, "logged_out"))[0] == 200
        ami.answers.clear()
        assert (await _set(http, agent, "logged_out"))[0] == 200  # twice: nothing to leave
        assert ami.answers == [
            ("QueueRemove", "Error", "Unable to remove interface: Not there"),
            ("QueueRemove", "Error", "Unable to remove interface from queue: No such queue"),
        ]  # its campaign's queue, its preview queue
        # A pause while in no queue: nothing to pause (Interface not found), recorded.
        assert (await _set(http, agent, "paused", "break"))[0] == 200
        assert ami.answers[-1] == ("QueuePause", "Error", "Interface not found")
        # Ready from there joins its campaign's queue.
        assert (await _set(http, agent, "ready"))[0] == 200
        assert ami.member(b, _iface(agent)) is not None
    assert await _states(db_pool, agent) == [
        "ready", "logged_out", "logged_out", "paused", "ready"
    ]  # fmt: skip


async def test_a_node_without_a_pbx_link_records_states_for_the_dialer_to_seat(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    # ami.enabled = false (a web-only node): no AMI here, so the state is recorded and the
    # dialer's leader puts the agent in its campaign's queue (dialer/runner.py _seat_agents).
    agent = await account(db_pool, "agent")
    async with desk(db_pool, None) as http:
        status, body = await _set(http, agent, "ready", campaign=floor.codes[0])
        assert (status, body["state"]) == (200, "ready")
        status, body = await _set(http, agent, "paused", "lunch")
        assert (status, body["state"]) == (200, "paused")
    assert await _states(db_pool, agent) == ["ready", "paused"]
    assert await _campaign_of(db_pool, agent) is not None


async def test_the_pbx_link_down_is_an_error_and_nothing_is_recorded(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    down = AppQueue.defining(*floor.active)
    down.connected = False
    for link in (down, None):  # not connected; AMI disabled
        async with desk(db_pool, lambda link=link: link) as http:
            for state, reason, campaign in (("ready", None, floor.codes[0]),
                                            ("paused", "lunch", None),
                                            ("logged_out", None, None)):  # fmt: skip
                status, body = await _set(http, agent, state, reason, campaign=campaign)
                assert (status, body) == (422, {"error": LINK_DOWN, "field": "state"})
    assert down.sent == []
    assert await _states(db_pool, agent) == []
    assert await _campaign_of(db_pool, agent) is None
    assert await audit_rows(db_pool, "agent.state", f"agent:{agent.agent_code}") == []


async def test_a_refusal_names_what_was_refused_and_takes_back_what_was_done(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a, b, c = floor.active
    ami = AppQueue.defining(a, c, "collections")  # b is missing from queues.conf
    async with desk(db_pool, lambda: ami, inbound_queue="collections") as http:
        status, body = await _set(http, agent, "ready", campaign=floor.codes[1])
        assert status == 422
        assert body["field"] == "state"
        assert body["error"] == (
            f"queue {b} is not defined in Asterisk (queues.conf): Asterisk refused the QueueAdd"
            f" to queue {b}: Unable to add interface to queue: No such queue"
        )
        assert ami.sent == [_add(agent, b)]  # the inbound queue was never tried
        assert await _states(db_pool, agent) == []
        assert await _campaign_of(db_pool, agent) is None

        # A move to b, paused: out of a, unpaused, b refused; a is joined again as it was.
        assert (await _set(http, agent, "ready", campaign=floor.codes[0]))[0] == 200
        assert (await _set(http, agent, "paused", "meeting"))[0] == 200
        ami.sent.clear()
        status, body = await _set(http, agent, "ready", campaign=floor.codes[1])
        assert status == 422
        assert [(x, f.get("Queue"), f.get("Paused")) for x, f in ami.sent] == [
            ("QueueRemove", a, None), ("QueuePause", None, "false"), ("QueueAdd", b, "false"),
            ("QueuePause", None, "true"), ("QueueAdd", a, "true"),
        ]  # fmt: skip
        paused = Member(f"Agent {agent.agent_code}", paused=True, reason="meeting")
        assert ami.member(a, _iface(agent)) == paused
        assert ami.member("collections", _iface(agent)) == paused
        assert await _campaign_of(db_pool, agent) == floor.codes[0]

        # A member Asterisk will not remove (a static member in queues.conf): no logout, and
        # the queue it had already left is joined again, as it was (paused, with its reason).
        ami.queues["collections"][_iface(agent)].dynamic = False
        status, body = await _set(http, agent, "logged_out")
        assert (status, body["error"]) == (
            422, "Asterisk refused the QueueRemove from queue collections: Member not dynamic"
        )  # fmt: skip
        assert ami.member(a, _iface(agent)) == paused
    assert await _states(db_pool, agent) == ["ready", "paused"]


async def test_no_answer_in_time_or_a_lost_link_is_an_error(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a = floor.active[0]
    stalled = AppQueue.defining(*floor.active, "collections")
    stalled.stall_at = 2
    async with desk(db_pool, lambda: stalled, inbound_queue="collections") as http:
        status, body = await _set(http, agent, "ready", campaign=floor.codes[0])
    assert (status, body["error"]) == (
        422, "Asterisk did not answer the QueueAdd to queue collections in time: try again in a "
             "moment"
    )  # fmt: skip
    assert stalled.member(a, _iface(agent)) is None  # taken back
    dropped = AppQueue.defining(*floor.active)
    dropped.drop_at = 1
    async with desk(db_pool, lambda: dropped) as http:
        status, body = await _set(http, agent, "ready", campaign=floor.codes[0])
    assert (status, body["error"]) == (
        422, f"the PBX link was lost during the QueueAdd to queue {a}: try again in a moment"
    )  # fmt: skip
    assert await _states(db_pool, agent) == []


async def test_a_pause_reason_is_one_line_of_text(db_pool: asyncpg.Pool, floor: Floor) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active)
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "paused", "lunch\r\nAction: Originate")
    assert (status, body["field"]) == (422, "reason")
    assert ami.sent == []


# -- preview: the agent's own queue first -------------------------------------------------------
async def _preview(db_pool: asyncpg.Pool) -> str:
    code = unique("pv")
    await db_pool.execute(
        "INSERT INTO campaigns (code, name, mode, state) VALUES ($1, $1, 'preview', 'running')",
        code,
    )
    return code


async def _ask(http: TestClient, agent: Account, campaign: str) -> tuple[int, Any]:
    r = await http.post("/api/v1/agent/preview", json={"campaign": campaign}, headers=agent.auth)
    return r.status, await r.json()


async def _requests(db_pool: asyncpg.Pool, agent: Account) -> int:
    return await db_pool.fetchval(
        "SELECT count(*) FROM preview_requests WHERE agent_id = $1", agent.agent_id
    )


async def test_a_preview_request_without_the_agents_queue_gets_no_lead(
    db_pool: asyncpg.Pool,
) -> None:
    agent = await account(db_pool, "agent")
    campaign = await _preview(db_pool)
    own = f"preview-{agent.agent_code}"
    ami = AppQueue.defining("collections")
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _ask(http, agent, campaign)
        assert (status, body) == (422, {
            "error": f"queue {own} is not defined in Asterisk (queues.conf): Asterisk refused "
                     f"the QueueAdd to queue {own}: Unable to add interface to queue: No such "
                     "queue",
            "field": "campaign",
        })  # fmt: skip
        assert await _requests(db_pool, agent) == 0
        ami.connected = False
        assert await _ask(http, agent, campaign) == (422, {"error": LINK_DOWN, "field": "campaign"})
        assert await _requests(db_pool, agent) == 0

        ami.connected = True
        ami.queues[own] = {_iface(agent): Member("Agent")}  # there already: fine
        status, body = await _ask(http, agent, campaign)
        assert (status, body["state"]) == (200, "wanted")
        assert await _requests(db_pool, agent) == 1


async def test_a_preview_request_joins_the_agents_queue(db_pool: asyncpg.Pool) -> None:
    agent = await account(db_pool, "agent")
    campaign = await _preview(db_pool)
    own = f"preview-{agent.agent_code}"
    ami = AppQueue.defining(own)
    async with desk(db_pool, lambda: ami) as http:
        assert (await _ask(http, agent, campaign))[0] == 200
    assert ami.actions("QueueAdd") == [
        {"Queue": own, "Interface": _iface(agent), "MemberName": f"Agent {agent.agent_code}",
         "Paused": "false"}
    ]  # fmt: skip
    assert ami.member(own, _iface(agent)) is not None


# -- end to end: the simulator over AMI, read back as the dialer reads it ------------------------
async def test_with_the_simulator_the_dialer_sees_the_agent_who_went_ready(
    db_pool: asyncpg.Pool,
) -> None:
    await db_pool.execute(
        "UPDATE campaigns SET state = 'stopped' WHERE state IN ('running', 'paused')"
    )
    await _campaign(db_pool, "collections", mode="predictive")
    agent = await account(db_pool, "agent")
    sim = build_sim(SimServerSettings(ami_port=0, secret="s3cret"))
    await sim.start()
    client = AmiClient(
        AmiSettings(port=sim.ami_port, username="puente", secret="s3cret", ping_interval_s=60)
    )
    client.start()

    async def board() -> AgentBoard:
        """What dialer/runner.py's _sync_agents builds from QueueStatus."""
        result = await client.send_action("QueueStatus", [("Queue", "collections")])
        b = AgentBoard("collections")
        for ev in result.events:
            if ev.name == "QueueMember":
                b.event("QueueMember", dict(ev.pairs), time.monotonic())
        return b

    try:
        await client.wait_connected(5)
        assert (await board()).logged_in == 0  # before: "no agents logged in"
        async with desk(db_pool, lambda: client) as http:
            assert (await _set(http, agent, "ready"))[0] == 200
            b = await board()
            assert b.logged_in == 1
            assert b.agents[_iface(agent)].free(time.monotonic())

            assert (await _set(http, agent, "paused", "lunch"))[0] == 200
            status = await client.send_action("QueueStatus", [("Queue", "collections")])
            (member,) = [e for e in status.events if e.name == "QueueMember"]
            assert (member["Name"], member["Membership"]) == (f"Agent {agent.agent_code}",
                                                              "dynamic")  # fmt: skip
            assert (member["Paused"], member["PausedReason"]) == ("1", "lunch")
            assert not (await board()).agents[_iface(agent)].free(time.monotonic())

            assert (await _set(http, agent, "ready"))[0] == 200
            assert (await board()).agents[_iface(agent)].free(time.monotonic())

            assert (await _set(http, agent, "logged_out"))[0] == 200
            assert (await board()).logged_in == 0
    finally:
        await client.close()
        await sim.stop()


async def test_no_database_connection_is_held_while_asterisk_answers(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    # The pool is the dialer's too: a stalled Asterisk at a shift's start (every agent
    # clicking Ready) must not take its connections while the AMI actions wait.
    agent = await account(db_pool, "agent")
    slow = AppQueue.defining(*floor.active)
    gate, asked, seen = asyncio.Event(), asyncio.Event(), []
    send = slow.send_action

    async def stalling(action, fields=(), **kw):
        seen.append(db_pool.get_size() - db_pool.get_idle_size())  # connections in use
        asked.set()
        await gate.wait()
        return await send(action, fields, **kw)

    slow.send_action = stalling  # type: ignore[method-assign]
    async with desk(db_pool, lambda: slow) as http:
        request = asyncio.ensure_future(_set(http, agent, "ready", campaign=floor.codes[0]))
        await asyncio.wait_for(asked.wait(), 10)
        gate.set()
        status, _ = await request
    assert status == 200
    assert seen == [0]


async def test_a_pause_reason_that_says_nothing_or_too_much_is_refused_by_name(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    # Asterisk trims a header value: a reason of blanks paused the member with no reason at
    # all, while the desktop and the audit recorded "   ". A reason is asked for a pause only.
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active)
    async with desk(db_pool, lambda: ami) as http:
        for reason in ("", "   ", "\t", "x" * 201):
            status, body = await _set(http, agent, "paused", reason)
            assert (status, body["field"]) == (422, "reason"), repr(reason)
            assert "reason" in body["error"], body
        status, body = await _set(http, agent, "ready", "lunch", campaign=floor.codes[0])
        assert (status, body) == (
            422, {"error": "reason: only a pause has a reason", "field": "reason"}
        )  # fmt: skip
        assert ami.sent == []
        assert await _states(db_pool, agent) == []
        status, body = await _set(http, agent, "paused", "  lunch ")
        assert (status, body["reason"]) == (200, "lunch")  # what Asterisk keeps, recorded
    assert ami.actions("QueuePause")[-1]["Reason"] == "lunch"
