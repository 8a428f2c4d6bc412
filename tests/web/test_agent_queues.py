"""An agent's state is its membership of Asterisk's queues, changed there first.

``POST /api/v1/agents/{code}/state`` sends QueueAdd / QueuePause / QueueRemove for the agent's
interface before it records the state; the preview request joins the agent's own queue before
it asks for a lead. Asterisk is :class:`tests.web._app_queue.AppQueue` (app_queue's answers,
including its refusals), and at the end the simulator over real AMI, read back with QueueStatus
as the dialer reads it.
"""

from __future__ import annotations

import contextlib
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
    pool: asyncpg.Pool, ami: Callable[[], Any], inbound_queue: str = ""
) -> AsyncIterator[TestClient]:
    # (No inbound queue unless a test asks: the campaigns' queues are what most tests follow.)
    settings = WebSettings(inbound_queue=inbound_queue)
    app = create_app(pool, settings, extensions=[desktop_extension(ami=ami)])
    async with TestClient(TestServer(app)) as http:
        yield http


async def _campaign(
    pool: asyncpg.Pool, queue: str, *, mode: str = "progressive", state: str = "running"
) -> None:
    await pool.execute(
        "INSERT INTO campaigns (code, name, mode, state, queue_name, agentless_flow)"
        " VALUES ($1, $1, $2, $3, $4, $5)",
        unique("c"), mode, state, queue, "collections" if mode == "agentless" else None,
    )  # fmt: skip


@dataclass
class Floor:
    """Three queues agents take calls from (a, b, c), and three they do not (preview, draft,
    stopped)."""

    active: list[str]
    inactive: list[str]


@pytest.fixture
async def floor(db_pool: asyncpg.Pool) -> Floor:
    # The module's database is shared by its tests: only this test's campaigns are active.
    await db_pool.execute(
        "UPDATE campaigns SET state = 'stopped' WHERE state IN ('running', 'paused')"
    )
    tag = unique("q")
    a, b, c = f"{tag}-a", f"{tag}-b", f"{tag}-c"
    await _campaign(db_pool, a)
    await _campaign(db_pool, a, mode="predictive")  # two campaigns, one queue: one QueueAdd
    await _campaign(db_pool, b, mode="predictive", state="paused")
    await _campaign(db_pool, c, mode="agentless")  # its IVR hands callers to this queue
    inactive = [f"{tag}-preview", f"{tag}-draft", f"{tag}-stopped"]
    await _campaign(db_pool, inactive[0], mode="preview")
    await _campaign(db_pool, inactive[1], state="draft")
    await _campaign(db_pool, inactive[2], mode="predictive", state="stopped")
    return Floor([a, b, c], inactive)


def _iface(agent: Account) -> str:
    return f"PJSIP/{agent.agent_code}"  # tests.web._api_support.agent_row


async def _set(http: TestClient, agent: Account, state: str, reason: str | None = None) -> Any:
    body = {"state": state} if reason is None else {"state": state, "reason": reason}
    r = await http.post(f"/api/v1/agents/{agent.agent_code}/state", json=body, headers=agent.auth)
    return r.status, await r.json()


async def _states(pool: asyncpg.Pool, agent: Account) -> list[str]:
    rows = await pool.fetch(
        "SELECT state FROM agent_states WHERE agent_id = $1 ORDER BY id", agent.agent_id
    )
    return [r["state"] for r in rows]


# -- which actions, pure ------------------------------------------------------------------------
def test_the_actions_of_each_change() -> None:
    m = QueueMember("PJSIP/agent101", "Ana")

    def plan(before: str, after: str, reason: str | None = None) -> list[tuple[str, dict]]:
        steps = queue_steps(m, before, after, ["q1", "q2"], reason=reason, before_reason="lunch",
                            own_queue="preview-a101")  # fmt: skip
        return [(s.action, dict(s.fields)) for s in steps]

    add = {"Interface": "PJSIP/agent101", "MemberName": "Ana", "Paused": "false"}
    login = [("QueueAdd", {"Queue": q, **add}) for q in ("q1", "q2")]
    unpause = ("QueuePause", {"Interface": "PJSIP/agent101", "Paused": "false"})
    assert plan("logged_out", "ready") == login
    assert plan("paused", "ready") == [unpause, *login]
    assert plan("ready", "ready") == [unpause, *login]  # after an autopause (queues.conf)
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


# -- through the API, against app_queue's answers ------------------------------------------------
async def test_ready_joins_the_queue_of_every_active_campaign_and_no_other(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, *floor.inactive)
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready")
    assert (status, body["state"]) == (200, "ready")
    assert ami.actions("QueueAdd") == [
        {"Queue": q, "Interface": _iface(agent), "MemberName": f"Agent {agent.agent_code}",
         "Paused": "false"}
        for q in floor.active
    ]  # fmt: skip
    assert [a for a, _ in ami.sent] == ["QueueAdd"] * 3
    for q in floor.active:
        assert ami.member(q, _iface(agent)) == Member(f"Agent {agent.agent_code}")
    for q in floor.inactive:
        assert ami.member(q, _iface(agent)) is None
    assert await _states(db_pool, agent) == ["ready"]
    assert len(await audit_rows(db_pool, "agent.state", f"agent:{agent.agent_code}")) == 1


async def test_ready_joins_the_inbound_queue_too(db_pool: asyncpg.Pool, floor: Floor) -> None:
    # Inbound and IVR callers who ask for an agent wait in PUENTE_INBOUND_QUEUE (collections):
    # ready agents take them even when no active campaign dials through that queue.
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active, "collections")
    async with desk(db_pool, lambda: ami, inbound_queue="collections") as http:
        status, _ = await _set(http, agent, "ready")
    assert status == 200
    assert [a["Queue"] for a in ami.actions("QueueAdd")] == [*floor.active, "collections"]
    assert ami.member("collections", _iface(agent)) is not None


async def test_pause_and_ready_again_pause_and_unpause_in_every_queue(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    late = f"{floor.active[0]}-late"
    ami = AppQueue.defining(*floor.active, late)
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready"))[0] == 200
        ami.sent.clear()
        status, body = await _set(http, agent, "paused", "lunch")
        assert (status, body["state"], body["reason"]) == (200, "paused", "lunch")
        assert ami.sent == [
            ("QueuePause", {"Interface": _iface(agent), "Paused": "true", "Reason": "lunch"})
        ]
        assert all(ami.member(q, _iface(agent)).paused for q in floor.active)  # type: ignore[union-attr]
        assert {ami.member(q, _iface(agent)).reason for q in floor.active} == {"lunch"}  # type: ignore[union-attr]

        await _campaign(db_pool, late)  # started during the pause
        ami.sent.clear()
        assert (await _set(http, agent, "ready"))[0] == 200
        assert ami.sent[0] == ("QueuePause", {"Interface": _iface(agent), "Paused": "false"})
        assert [f["Queue"] for f in ami.actions("QueueAdd")] == sorted([*floor.active, late])
        for q in [*floor.active, late]:
            member = ami.member(q, _iface(agent))
            assert member is not None
            assert not member.paused
        # The desktop's old second call is gone: one request moves Asterisk and the record.
        r = await http.post("/api/v1/agent/queue", json={"paused": False}, headers=agent.auth)
        assert r.status in (404, 405)
    assert await _states(db_pool, agent) == ["ready", "paused", "ready"]


async def test_logout_leaves_every_queue_and_the_agents_preview_queue(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    own = f"preview-{agent.agent_code}"
    ami = AppQueue.defining(*floor.active, *floor.inactive, own)
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready"))[0] == 200
        ami.queues[own][_iface(agent)] = Member("Agent")  # it asked for a preview lead
        ami.sent.clear()
        status, body = await _set(http, agent, "logged_out")
    assert (status, body["state"]) == (200, "logged_out")
    assert ami.actions("QueueRemove") == [
        {"Queue": q, "Interface": _iface(agent)} for q in [*floor.active, own]
    ]
    assert not any(_iface(agent) in members for members in ami.queues.values())
    assert await _states(db_pool, agent) == ["ready", "logged_out"]


async def test_already_there_and_not_there_are_no_errors(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    ami = AppQueue.defining(*floor.active)  # no preview queue for this agent in queues.conf
    # Asterisk restarted with persistentmembers = yes: the agent is in one queue already.
    ami.queues[floor.active[1]][_iface(agent)] = Member("Agent")
    async with desk(db_pool, lambda: ami) as http:
        assert (await _set(http, agent, "ready"))[0] == 200
        assert ("QueueAdd", "Error", "Unable to add interface: Already there") in ami.answers
        assert all(ami.member(q, _iface(agent)) for q in floor.active)
        assert (await _set(http, agent, "logged_out"))[0] == 200
        ami.answers.clear()
        assert (await _set(http, agent, "logged_out"))[0] == 200  # twice: nothing to leave
        assert ("QueueRemove", "Error", "Unable to remove interface: Not there") in ami.answers
        assert (
            "QueueRemove", "Error", "Unable to remove interface from queue: No such queue"
        ) in ami.answers  # its preview queue  # fmt: skip
        # A pause while in no queue: nothing to pause (Interface not found), recorded.
        assert (await _set(http, agent, "paused", "break"))[0] == 200
        assert ami.answers[-1] == ("QueuePause", "Error", "Interface not found")
        # Ready from there joins every queue.
        assert (await _set(http, agent, "ready"))[0] == 200
        assert all(ami.member(q, _iface(agent)) for q in floor.active)
    assert await _states(db_pool, agent) == [
        "ready", "logged_out", "logged_out", "paused", "ready"
    ]  # fmt: skip


async def test_the_pbx_link_down_is_an_error_and_nothing_is_recorded(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    down = AppQueue.defining(*floor.active)
    down.connected = False
    for link in (down, None):  # not connected; AMI disabled
        async with desk(db_pool, lambda link=link: link) as http:
            for state, reason in (("ready", None), ("paused", "lunch"), ("logged_out", None)):
                status, body = await _set(http, agent, state, reason)
                assert (status, body) == (422, {"error": LINK_DOWN, "field": "state"})
    assert down.sent == []
    assert await _states(db_pool, agent) == []
    assert await audit_rows(db_pool, "agent.state", f"agent:{agent.agent_code}") == []


async def test_a_refusal_names_what_was_refused_and_takes_back_what_was_done(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a, b, c = floor.active
    ami = AppQueue.defining(a, c)  # b is missing from queues.conf
    async with desk(db_pool, lambda: ami) as http:
        status, body = await _set(http, agent, "ready")
        assert status == 422
        assert body["field"] == "state"
        assert body["error"] == (
            f"queue {b} is not defined in Asterisk (queues.conf): Asterisk refused the QueueAdd"
            f" to queue {b}: Unable to add interface to queue: No such queue"
        )
        # a was joined, then left again; c was never tried.
        assert [(x, f["Queue"]) for x, f in ami.sent] == [
            ("QueueAdd", a), ("QueueAdd", b), ("QueueRemove", a)
        ]  # fmt: skip
        assert ami.member(a, _iface(agent)) is None
        assert await _states(db_pool, agent) == []

        # A member Asterisk will not remove (a static member in queues.conf): no logout, and
        # the queue it had already left is joined again, as it was (paused, with its reason).
        ami.queues[b] = {}
        assert (await _set(http, agent, "ready"))[0] == 200
        assert (await _set(http, agent, "paused", "meeting"))[0] == 200
        ami.queues[b][_iface(agent)].dynamic = False
        status, body = await _set(http, agent, "logged_out")
        assert (status, body["error"]) == (
            422, f"Asterisk refused the QueueRemove from queue {b}: Member not dynamic"
        )  # fmt: skip
        assert ami.member(a, _iface(agent)) == Member(
            f"Agent {agent.agent_code}", paused=True, reason="meeting"
        )
    assert await _states(db_pool, agent) == ["ready", "paused"]


async def test_no_answer_in_time_or_a_lost_link_is_an_error(
    db_pool: asyncpg.Pool, floor: Floor
) -> None:
    agent = await account(db_pool, "agent")
    a, b, _ = floor.active
    stalled = AppQueue.defining(*floor.active)
    stalled.stall_at = 2
    async with desk(db_pool, lambda: stalled) as http:
        status, body = await _set(http, agent, "ready")
    assert (status, body["error"]) == (
        422, f"Asterisk did not answer the QueueAdd to queue {b} in time: try again in a moment"
    )  # fmt: skip
    assert stalled.member(a, _iface(agent)) is None  # taken back
    dropped = AppQueue.defining(*floor.active)
    dropped.drop_at = 1
    async with desk(db_pool, lambda: dropped) as http:
        status, body = await _set(http, agent, "ready")
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
