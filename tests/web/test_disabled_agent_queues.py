"""A disabled agent leaves every queue, not only its campaign's.

``puente users disable`` runs as its own process, without a PBX link: it records the agent
logged out. Each campaign's leader takes it out of that campaign's queue; the inbound queue and
its own ``preview-<code>`` queue were left until the desktop logged it out (it never would: the
user can no longer log in). The service's sweeper (web/_logged_out.py) removes it from every
queue Asterisk still has it in. Asterisk is the simulator, over real AMI.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from dialer.agents import LOGIN_UNDER_WAY_S, QueueMember, leftover_removals, login_under_way
from pbx.ami import AmiClient, AmiSettings
from pbx.sim import SimServerSettings
from pbx.sim import build as build_sim
from tests.web._api_support import account, unique
from web._logged_out import LoggedOutSweeper
from web._users import disable_user


def test_every_dynamic_membership_of_a_logged_out_agent_is_removed() -> None:
    gone = QueueMember("PJSIP/a1", "Agent a1")
    members = [
        {"Queue": "camp", "Location": "PJSIP/a1", "Membership": "dynamic"},
        {"Queue": "inbound", "Location": "PJSIP/a1", "Membership": "dynamic"},
        {"Queue": "preview-a1", "Location": "PJSIP/a1", "Membership": "dynamic"},
        {"Queue": "support", "Location": "PJSIP/a1", "Membership": "static"},  # queues.conf
        {"Queue": "inbound", "Location": "PJSIP/a2", "Membership": "dynamic"},  # not logged out
    ]
    steps = leftover_removals(members, {gone.interface: gone})
    assert [(m, s.action, dict(s.fields)) for m, s in steps] == [
        (gone, "QueueRemove", {"Queue": q, "Interface": "PJSIP/a1"})
        for q in ("camp", "inbound", "preview-a1")
    ]


def test_a_membership_added_after_the_logout_is_a_login_under_way_for_a_while() -> None:
    out = {"PJSIP/a1": 1_000.0}  # logged out at 1,000 s
    fresh = {"Queue": "in", "Location": "PJSIP/a1", "LoginTime": "1010"}
    assert login_under_way(fresh, out, now=1_011.0)
    assert not login_under_way(fresh, out, now=1_010.0 + LOGIN_UNDER_WAY_S)  # a leftover now
    old = {"Queue": "in", "Location": "PJSIP/a1", "LoginTime": "999"}  # from before the logout
    assert not login_under_way(old, out, now=1_001.0)
    assert not login_under_way({**fresh, "LoginTime": ""}, out, now=1_011.0)  # unknown: leftover
    assert not login_under_way({**fresh, "Location": "PJSIP/a2"}, out, now=1_011.0)


@contextlib.asynccontextmanager
async def _pbx(*queues: str) -> AsyncIterator[AmiClient]:
    """The simulator with ``queues``, and a connected AMI client to it."""
    sim = build_sim(SimServerSettings(ami_port=0, secret="s3cret"))
    for q in queues:
        sim.core.queue(q)
    await sim.start()
    client = AmiClient(
        AmiSettings(port=sim.ami_port, username="puente", secret="s3cret", ping_interval_s=60)
    )
    client.start()
    try:
        await client.wait_connected(5)
        yield client
    finally:
        await client.close()
        await sim.stop()


async def _members(client: AmiClient) -> set[tuple[str, str]]:
    status = await client.send_action("QueueStatus", ())
    return {(e["Queue"], e["Location"]) for e in status.events if e.name == "QueueMember"}


async def test_a_disabled_agent_is_taken_out_of_its_inbound_and_preview_queues(
    db_pool: asyncpg.Pool,
) -> None:
    gone = await account(db_pool, "agent")
    stays = await account(db_pool, "agent")
    tag = unique("q")
    campaign, inbound, preview = f"{tag}-camp", f"{tag}-in", f"preview-{gone.agent_code}"
    async with _pbx(campaign, inbound, preview) as client:
        # What the desktop did: both agents ready (their campaign's queue and the inbound
        # queue), the first one in its preview queue too after asking for a lead.
        joined = {
            (campaign, f"PJSIP/{gone.agent_code}"),
            (inbound, f"PJSIP/{gone.agent_code}"),
            (preview, f"PJSIP/{gone.agent_code}"),
            (inbound, f"PJSIP/{stays.agent_code}"),
        }
        for queue, interface in sorted(joined):
            result = await client.send_action(
                "QueueAdd", [("Queue", queue), ("Interface", interface), ("Paused", "false")]
            )
            assert result.ok, result.message
        for agent in (gone, stays):
            await db_pool.execute(
                "INSERT INTO agent_states (agent_id, state, at) VALUES ($1, 'ready',"
                " now() - interval '1 minute')",
                agent.agent_id,
            )
        assert await _members(client) >= joined

        assert await disable_user(db_pool, gone.name, actor="test") == {gone.agent_code: "ready"}
        sweeper = LoggedOutSweeper(db_pool, lambda: client, settle_s=0)
        removed = await sweeper.sweep()
        assert sorted(removed) == sorted(
            f"{gone.agent_code} from {q}" for q in (campaign, inbound, preview)
        )
        members = await _members(client)
        assert not any(i == f"PJSIP/{gone.agent_code}" for _, i in members), members
        assert (inbound, f"PJSIP/{stays.agent_code}") in members  # (still ready)
        # Nothing changed since: the next sweep asks Asterisk nothing more.
        assert await sweeper.sweep() == []
        assert sweeper.removed_total == 3


async def test_a_logout_just_written_is_left_to_the_desktop(db_pool: asyncpg.Pool) -> None:
    # The desktop tells Asterisk first, then writes the state: a state a few seconds old may be
    # a change under way (a logout, then ready again); the sweeper waits for it to settle.
    agent = await account(db_pool, "agent")
    queue = unique("q")
    async with _pbx(queue) as client:
        interface = f"PJSIP/{agent.agent_code}"
        await client.send_action("QueueAdd", [("Queue", queue), ("Interface", interface)])
        await db_pool.execute(
            "INSERT INTO agent_states (agent_id, state) VALUES ($1, 'logged_out')", agent.agent_id
        )
        assert await LoggedOutSweeper(db_pool, lambda: client, settle_s=30).sweep() == []
        assert (queue, interface) in await _members(client)


async def test_a_login_under_way_is_not_undone(db_pool: asyncpg.Pool) -> None:
    # The agent logged out a while ago and is logging in again on the desktop, which adds its
    # queues before it writes "ready". Before, a sweep in between took it out of the inbound
    # queue, where nothing put it back until its next login.
    agent = await account(db_pool, "agent")
    queue = unique("q")
    async with _pbx(queue) as client:
        await db_pool.execute(
            "INSERT INTO agent_states (agent_id, state, at) VALUES ($1, 'logged_out',"
            " now() - interval '1 minute')",
            agent.agent_id,
        )
        interface = f"PJSIP/{agent.agent_code}"
        await client.send_action("QueueAdd", [("Queue", queue), ("Interface", interface)])
        sweeper = LoggedOutSweeper(db_pool, lambda: client, settle_s=0)
        assert await sweeper.sweep() == []
        assert (queue, interface) in await _members(client)
        # Never written "ready": past the window it is a leftover, and the next sweep (not
        # skipped as "nothing changed") removes it.
        sweeper._login_s = 0.0
        assert await sweeper.sweep() == [f"{agent.agent_code} from {queue}"]
        assert (queue, interface) not in await _members(client)
