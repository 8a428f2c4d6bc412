"""Preview mode under faults: what happens between the offer and the agent's decision.

The offer is gated when the lead is offered; the agent may read the account for minutes
before starting the call. Every call must pass compliance as it is when it is dialed, an
offer nobody decides on must give its lead back, and an offer the dialer lost (a restart, a
reconnect that settled its attempt) must never be dialed."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import asyncpg

from compliance import ComplianceGate, ComplianceSettings
from dialer.preview import preview_queue
from dialer.runner import CampaignRunner
from tests.dialer._floor import NOON, floor, make_campaign, poll_until, preview_request, running

MODEL = {
    "seed": 3,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
}
ROOT = Path(__file__).resolve().parent.parent.parent


async def _request_row(pool: asyncpg.Pool, request: int) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT state, note, attempt_id FROM preview_requests WHERE id = $1", request
    )


async def _offered(pool: asyncpg.Pool, request: int) -> str:
    async def offered() -> bool:
        return (await _request_row(pool, request))["state"] == "offered"

    await poll_until(offered)
    return str((await _request_row(pool, request))["attempt_id"])


async def _final(pool: asyncpg.Pool, attempt: str) -> asyncpg.Record:
    async def final() -> bool:
        state = await pool.fetchval("SELECT state FROM call_attempts WHERE id = $1::uuid", attempt)
        return state == "final"

    await poll_until(final, 15)
    return await pool.fetchrow(
        "SELECT a.disposition, l.state AS lead, o.outcome FROM call_attempts a"
        " JOIN leads l ON l.id = a.lead_id"
        " LEFT JOIN compliance_outcomes o ON o.attempt_id = a.id WHERE a.id = $1::uuid",
        attempt,
    )


async def _accept(pool: asyncpg.Pool, request: int) -> None:
    # What POST /agent/preview/{id}/call writes (web/_desktop.py).
    moved = await pool.fetchval(
        "UPDATE preview_requests SET state = 'accepted' WHERE id = $1 AND state = 'offered'"
        " RETURNING id",
        request,
    )
    assert moved == request


async def _settled(pool: asyncpg.Pool, request: int) -> bool:
    return (await _request_row(pool, request))["state"] in ("none", "closed", "dialed")


async def test_a_cease_that_arrives_after_the_offer_stops_the_dial(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # The gate allowed the dial when the lead was offered; the debtor's cease came in while
    # the agent read the account. The old pacer dialed on the offer's decision.
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf1"), "Local/pf1@agents", "PF1", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf1")
            attempt = await _offered(db_pool, request)
            person = await db_pool.fetchval(
                "SELECT person_id FROM call_attempts WHERE id = $1::uuid", attempt
            )
            await db_pool.execute(
                "INSERT INTO contact_blocks (kind, person_id, source) VALUES ('cease', $1, 't')",
                person,
            )
            await _accept(db_pool, request)
            await poll_until(lambda: _settled(db_pool, request))
            row = await _final(db_pool, attempt)
    req = await _request_row(db_pool, request)
    assert req["state"] == "none"
    assert "compliance denied at dial time" in req["note"]
    assert "CEASE" in req["note"].upper()
    assert f.sim.calls.get(attempt) is None  # never originated
    # Not placed: the reservation is released, nothing counts against the debtor.
    assert (row["disposition"], row["outcome"]) == ("skipped", "not_placed")


async def test_a_calling_window_that_closes_after_the_offer_stops_the_dial(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf2"), "Local/pf2@agents", "PF2", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        shift = [timedelta(0)]
        runner.clock = lambda: NOON + shift[0]  # 12:00 in Mexico City
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf2")
            attempt = await _offered(db_pool, request)
            shift[0] = timedelta(hours=10, minutes=30)  # 22:30 there: after CONDUSEF's 22:00
            await _accept(db_pool, request)
            await poll_until(lambda: _settled(db_pool, request))
            row = await _final(db_pool, attempt)
    req = await _request_row(db_pool, request)
    assert req["state"] == "none", req
    assert "compliance denied at dial time" in req["note"]
    assert f.sim.calls.get(attempt) is None
    assert (row["disposition"], row["outcome"]) == ("skipped", "not_placed")


async def test_the_dial_time_check_does_not_count_the_offer_itself(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # Under a one-call-a-week cap, the offer's own reservation is the week's call: a check at
    # dial time that counted it as another call would deny every preview call.
    packs = tmp_path / "packs"
    packs.mkdir()
    shutil.copy(ROOT / "compliance" / "packs" / "mx.yaml", packs / "mx.yaml")
    (packs / "once.yaml").write_text(
        'pack: once\ntitle: "one call a week"\njurisdiction: MX\nrules:\n'
        "  - id: once_a_week\n    kind: frequency_cap\n    summary: one call a week\n"
        '    citation: "test"\n    max_calls: 1\n    period_days: 7\n    per: person\n',
        encoding="utf-8",
    )
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    await db_pool.execute("UPDATE campaigns SET compliance_packs = '{mx,once}' WHERE id = $1", cid)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf3"), "Local/pf3@agents", "PF3", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        runner.gate = ComplianceGate(db_pool, ComplianceSettings(pack_dir=packs))
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf3")
            attempt = await _offered(db_pool, request)
            await _accept(db_pool, request)
            row = await _final(db_pool, attempt)
    assert (await _request_row(db_pool, request))["state"] == "dialed"
    assert row["disposition"] == "agent"


async def test_an_offer_nobody_decides_on_gives_its_lead_back(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # The agent took the lead and walked away (or their session expired). The old pacer kept
    # the offer for ever: the lead in_call, its person unreachable by any campaign (one call
    # at a time), the ledger counting a call never made, the request open.
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        runner.preview.offer_ttl_s = 1.0
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf4")
            attempt = await _offered(db_pool, request)
            row = await _final(db_pool, attempt)
    req = await _request_row(db_pool, request)
    assert req["state"] == "closed"
    assert "expired" in req["note"]
    assert (row["disposition"], row["lead"], row["outcome"]) == ("skipped", "ready", "not_placed")
    assert f.sim.calls.get(attempt) is None
    assert runner.preview.offers == {}


async def test_an_offer_decided_as_it_expires_is_served_not_dropped(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # The agent's click and the expiry race: the accepted request is dialed (once), never
    # closed behind the agent's back.
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf5"), "Local/pf5@agents", "PF5", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf5")
            attempt = await _offered(db_pool, request)
            await _accept(db_pool, request)
            runner.preview.offer_ttl_s = 0.0  # expired, but decided before the pacer looked
            await runner.preview._expire()
            assert (await _request_row(db_pool, request))["state"] == "accepted"
            row = await _final(db_pool, attempt)
    assert (await _request_row(db_pool, request))["state"] == "dialed"
    assert row["disposition"] == "agent"


async def test_an_offer_whose_attempt_was_settled_elsewhere_is_never_dialed(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # Another node's reconcile (a takeover) can settle the offer's attempt while this pacer
    # still holds the offer. The old pacer, when the agent started the call, originated it: a
    # real call on an attempt already final (its result never written, the lead 'ready' again,
    # so another campaign could dial the same person meanwhile).
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf6"), "Local/pf6@agents", "PF6", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "pf6")
            attempt = await _offered(db_pool, request)
            await db_pool.execute(  # what a reconcile writes for an attempt with no channel
                "UPDATE call_attempts SET state = 'final', disposition = 'lost'"
                " WHERE id = $1::uuid",
                attempt,
            )
            await _accept(db_pool, request)
            await poll_until(lambda: _settled(db_pool, request))
            await asyncio.sleep(1.0)  # an Originate, had one been sent, has been answered
    assert f.sim.calls.get(attempt) is None  # never dialed
    row = await _request_row(db_pool, request)
    assert row["state"] == "none"
    assert "the offer expired" in row["note"]


async def test_an_offer_survives_an_ami_reconnect(db_pool: asyncpg.Pool, tmp_path: Path) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        f.sim.core.add_member(preview_queue("pf7"), "Local/pf7@agents", "PF7", 0.0)
        runner = await f.runner_for(code, tick_s=0.1)
        client = f.clients[0]
        async with running(runner, client):
            request = await preview_request(db_pool, cid, "pf7")
            attempt = await _offered(db_pool, request)
            before = client.connects_total
            f.sim.drop_ami()

            async def resynced() -> bool:
                return runner._synced_at_connect > before

            await poll_until(resynced)
            await _accept(db_pool, request)
            await poll_until(lambda: _settled(db_pool, request))
            row = await _final(db_pool, attempt)
    assert row["disposition"] == "agent"


async def _restart(
    db_pool: asyncpg.Pool, tmp_path: Path, agent: str
) -> tuple[int, str, asyncpg.Record]:
    """An offer open when its node stops without a word (abort); the node comes back."""
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        first = await f.runner_for(code, tick_s=0.1)
        async with asyncio.TaskGroup() as tg:
            await first.start(tg)
            f.clients[0].start()
            try:
                request = await preview_request(db_pool, cid, agent)
                attempt = await _offered(db_pool, request)
            finally:
                await first.abort()
        second: CampaignRunner = await f.runner_for(code, tick_s=0.1)
        async with running(second, f.clients[1]):
            await poll_until(lambda: _settled(db_pool, request), 15)
            row = await _final(db_pool, attempt)
    return request, attempt, row


async def test_an_offer_open_across_a_restart_is_closed_for_its_agent(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # The old pacer left the request 'offered' for ever (no pacer holds it after a restart):
    # the agent saw a stale screen pop and could ask for no other lead (one open request).
    request, _, _ = await _restart(db_pool, tmp_path, "pf8")
    req = await _request_row(db_pool, request)
    assert req["state"] == "closed"
    assert "expired" in req["note"]


async def test_an_offer_open_across_a_restart_is_not_placed(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    _, _, row = await _restart(db_pool, tmp_path, "pf9")
    assert (row["disposition"], row["outcome"]) == ("skipped", "not_placed")


async def test_two_agents_asking_at_once_never_get_the_same_lead(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        first = await preview_request(db_pool, cid, "pfa")
        second = await preview_request(db_pool, cid, "pfb")
        async with running(runner, f.clients[0]):
            await poll_until(lambda: _settled_or_offered(db_pool, first))
            await poll_until(lambda: _settled_or_offered(db_pool, second))
    rows = [await _request_row(db_pool, r) for r in (first, second)]
    states = sorted((r["state"], r["note"]) for r in rows)
    # One lead: one agent has it on offer, the other is told there is none.
    assert states == [("none", "no leads due"), ("offered", None)]


async def _settled_or_offered(pool: asyncpg.Pool, request: int) -> bool:
    return (await _request_row(pool, request))["state"] in ("none", "offered")
