"""The ledger under real concurrency: caps hold exactly, outcomes and blocks never slip past a
reservation in flight, a killed connection leaves nothing half-written and never allows.

Every race here is released deterministically: the contenders queue on a lock a test connection
holds (the person's advisory lock, or the debt's row, which a reservation's ledger insert must
share for its foreign key), the test waits until PostgreSQL shows them waiting, then lets go.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pytest

from compliance import ComplianceGate, ComplianceSettings, DialRequest
from dialer.selection import claim_and_gate
from tests.compliance import _seed
from tests.compliance.test_gate import US, ledger, ny_number, ny_person, reserve
from tests.dialer._floor import NOON

NOW = NOON  # a Wednesday, 14:00 or 13:00 in New York: inside the window, no holiday
SLOW = ComplianceSettings(timeout_s=30)  # contenders wait on purpose; no timeouts here


async def _until(pred: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15) -> None:
    async with asyncio.timeout(timeout_s):
        while not await pred():  # noqa: ASYNC110 (the state is PostgreSQL's: poll it)
            await asyncio.sleep(0.01)


async def _waiting(pool: asyncpg.Pool, events: tuple[str, ...]) -> int:
    return await pool.fetchval(
        """SELECT count(*) FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND wait_event = ANY($1::text[])""",
        list(events),
    )


async def _wait_for(pool: asyncpg.Pool, events: tuple[str, ...], n: int) -> None:
    async def enough() -> bool:
        return await _waiting(pool, events) >= n

    await _until(enough, f"{n} backends waiting on {events}")


ROW = ("transactionid", "tuple")
ADVISORY = ("advisory",)


@asynccontextmanager
async def _holding(url: str, sql: str, *args: object) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction that took a lock with ``sql``; rolled back on exit."""
    conn = await asyncpg.connect(url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(sql, *args)
        try:
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


def _person_lock(person_id: int) -> tuple[str, int]:
    return "SELECT pg_advisory_xact_lock(compliance_lock_key($1))", person_id


def _debt_row(debt_id: int) -> tuple[str, int]:
    # A reservation's ledger insert checks its foreign key to the debt (FOR KEY SHARE): holding
    # the row FOR UPDATE stops the reservation after it read the ledger, before it commits.
    return "SELECT 1 FROM debts WHERE id = $1 FOR UPDATE", debt_id


async def _stored(pool: asyncpg.Pool, person_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM compliance_decisions WHERE person_id = $1 ORDER BY id", person_id
    )


# -- 1. many reservations released at once: the caps hold exactly ---------------------------------
async def test_a_storm_across_debts_numbers_campaigns_and_two_nodes_never_exceeds_the_cap(
    database_url, db_pool
) -> None:
    node2 = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    try:
        gates = [ComplianceGate(db_pool, SLOW), ComplianceGate(node2, SLOW)]
        p = await ny_person(db_pool, numbers=2, debts=2)
        a, b = p.debt_ids
        shapes = [(a,), (b,), (a, b)]
        singles = [
            {
                "gate": gates[i % 2],
                "debt_ids": shapes[i % 3],
                "phone": (p.numbers[i % 2], p.phone_ids[(i + 1) % 2])[i % 4 // 2],
                "campaign": f"camp{i % 3}",
            }
            for i in range(16)
        ]
        batches = [
            (gates[i], [DialRequest(p.person_id, s, p.numbers[i], uuid.uuid4()) for s in shapes])
            for i in range(2)
        ]
        async with _holding(database_url, *_person_lock(p.person_id)):
            tasks = [
                asyncio.create_task(
                    reserve(
                        s["gate"],
                        p,
                        NOW,
                        debt_ids=s["debt_ids"],
                        phone=s["phone"],
                        campaign=s["campaign"],
                    )
                )
                for s in singles
            ]
            tasks += [
                asyncio.create_task(g.check_and_reserve_many(reqs, packs=US, now=NOW))
                for g, reqs in batches
            ]
            await _wait_for(db_pool, ADVISORY, len(tasks))
        results = await asyncio.gather(*tasks)
    finally:
        await node2.close()
    decided = [(s["debt_ids"], d) for s, d in zip(singles, results, strict=False)]
    for (_, reqs), ds in zip(batches, results[len(singles) :], strict=True):
        decided += [(r.debt_ids, d) for r, d in zip(reqs, ds, strict=True)]
    per_debt = Counter(x for debts, d in decided if d.allowed for x in debts)
    assert per_debt == {a: 7, b: 7}  # Reg F: exactly seven per debt, never eight
    assert all(d.reserved == d.allowed for _, d in decided)
    rows = await ledger(db_pool, p.person_id)
    assert Counter(r["debt_id"] for r in rows) == {a: 7, b: 7}
    # The audit trail: every decision of the storm is stored, the denials with their reasons.
    stored = await _stored(db_pool, p.person_id)
    assert len(stored) == len(decided)
    assert {r["id"] for r in stored} == {d.decision_id for _, d in decided}
    for r in stored:
        if not r["allowed"]:
            assert "CAP_REACHED" in r["reasons"]
    assert not any("COMPLIANCE_UNAVAILABLE" in d.codes for _, d in decided)


async def test_a_storm_against_a_per_person_cap(database_url, db_pool) -> None:
    gate = ComplianceGate(db_pool, SLOW)
    p = await ny_person(db_pool, numbers=2, debts=3)
    packs = ["us_federal", "us_wa"]  # Washington: 3 calls per person, all debts together
    async with _holding(database_url, *_person_lock(p.person_id)):
        tasks = [
            asyncio.create_task(
                reserve(
                    gate,
                    p,
                    NOW,
                    packs=packs,
                    debt_ids=(p.debt_ids[i % 3],),
                    phone=p.numbers[i % 2],
                    campaign=f"camp{i % 2}",
                )
            )
            for i in range(9)
        ]
        await _wait_for(db_pool, ADVISORY, len(tasks))
    decisions = await asyncio.gather(*tasks)
    assert sum(d.allowed for d in decisions) == 3
    assert {c for d in decisions if not d.allowed for c in d.codes} == {"CAP_REACHED"}
    assert len({r["attempt_id"] for r in await ledger(db_pool, p.person_id)}) == 3


async def _campaign(pool: asyncpg.Pool, packs: list[str]) -> tuple[int, str]:
    code = f"race{os.urandom(4).hex()}"
    cid = await pool.fetchval(
        "INSERT INTO campaigns (code, name, compliance_packs) VALUES ($1, 'Race', $2) RETURNING id",
        code,
        packs,
    )
    return cid, code


async def _lead(pool: asyncpg.Pool, campaign_id: int, person_id: int, debt_id: int) -> None:
    await pool.execute(
        "INSERT INTO leads (campaign_id, person_id, debt_id, next_try_at) VALUES ($1, $2, $3, $4)",
        campaign_id,
        person_id,
        debt_id,
        NOW - timedelta(hours=1),
    )


async def test_claims_of_many_campaigns_and_a_second_node_never_exceed_the_cap(
    database_url, db_pool
) -> None:
    """dialer.selection.claim_and_gate: the batch gate inside the claim's transaction."""
    p = await ny_person(db_pool, debts=2)
    campaigns = [await _campaign(db_pool, US) for _ in range(8)]
    for cid, _ in campaigns:
        for debt in p.debt_ids:
            await _lead(db_pool, cid, p.person_id, debt)
    node2 = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        gate2 = ComplianceGate(node2, SLOW)
        async with _holding(database_url, *_person_lock(p.person_id)):
            claims = [
                asyncio.create_task(
                    claim_and_gate(
                        db_pool,
                        ComplianceGate(db_pool, SLOW),
                        campaign_id=cid,
                        campaign_code=code,
                        packs=US,
                        want=5,
                        node="n1",
                        pbx="sim",
                        now=NOW,
                    )
                )
                for cid, code in campaigns
            ]
            singles = [
                asyncio.create_task(reserve(gate2, p, NOW, debt_ids=(d,), channel="voice"))
                for d in p.debt_ids
            ]
            await _wait_for(db_pool, ADVISORY, len(claims) + len(singles))
        results = await asyncio.gather(*claims)
        alone = await asyncio.gather(*singles)
    finally:
        await node2.close()
    # One call at a time to a person (dialer.selection): of the 8 campaigns' claims, released
    # together, one dials; the others find its attempt open under the person's lock.
    assert sum(len(dials) for dials, _ in results) == 1
    per_debt = Counter(x.debt_id for dials, _ in results for x in dials)
    per_debt.update(x for d in alone if d.allowed for x in d.debt_ids)
    assert all(n <= 7 for n in per_debt.values())
    rows = await ledger(db_pool, p.person_id)
    assert Counter(r["debt_id"] for r in rows) == per_debt
    dialed = await db_pool.fetchval(
        "SELECT count(*) FROM call_attempts WHERE person_id = $1", p.person_id
    )
    assert dialed == sum(len(dials) for dials, _ in results)


async def test_a_server_defaulting_to_repeatable_read_still_holds_the_cap(
    database_url, db_pool
) -> None:
    """The ledger is read after the person's lock, which only works in READ COMMITTED: a
    transaction snapshot taken before the lock (REPEATABLE READ, a DBA's server default) would
    miss the reservations committed while it waited."""
    rr = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=10,
        server_settings={"default_transaction_isolation": "repeatable read"},
    )
    try:
        gate = ComplianceGate(rr, SLOW)
        p = await ny_person(db_pool)
        q = await ny_person(db_pool)
        async with _holding(database_url, *_person_lock(p.person_id)):
            tasks = [asyncio.create_task(reserve(gate, p, NOW)) for _ in range(5)]
            tasks += [
                asyncio.create_task(
                    gate.check_and_reserve_many(
                        [DialRequest(p.person_id, p.debt_ids, p.numbers[0], uuid.uuid4())],
                        packs=US,
                        now=NOW,
                    )
                )
                for _ in range(4)
            ]
            await _wait_for(db_pool, ADVISORY, len(tasks))
        results = await asyncio.gather(*tasks)
        decisions = results[:5] + [ds[0] for ds in results[5:]]
        assert sum(d.allowed for d in decisions) <= 7
        # ... and the dialer's claim on such a server too
        cid, code = await _campaign(db_pool, US)
        for _ in range(7):  # q is at the cap already
            assert (await reserve(ComplianceGate(db_pool), q, NOW)).reserved
        await _lead(db_pool, cid, q.person_id, q.debt_ids[0])
        dials, _ = await claim_and_gate(
            rr, gate, campaign_id=cid, campaign_code=code, packs=US, want=1, node="n1",
            pbx="sim", now=NOW,
        )  # fmt: skip
        assert dials == []
    finally:
        await rr.close()
    assert len(await ledger(db_pool, p.person_id)) == sum(d.allowed for d in decisions)
    assert len(await ledger(db_pool, q.person_id)) == 7


async def test_a_callers_transaction_in_another_isolation_level_is_a_denial(db_pool) -> None:
    """Given a caller's connection, the gate cannot choose the level: the snapshot refuses to
    read the ledger in anything but READ COMMITTED (migration 0021), so the dial is denied."""
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    for level in ("repeatable_read", "serializable"):
        async with db_pool.acquire() as conn, conn.transaction(isolation=level):
            reqs = [DialRequest(p.person_id, p.debt_ids, p.numbers[0], uuid.uuid4())]
            (d,) = await gate.check_and_reserve_many(reqs, packs=US, now=NOW, conn=conn)
        assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
        assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []


# -- 2. outcomes and blocks racing a reservation in flight -----------------------------------------
async def _race(
    database_url: str,
    db_pool: asyncpg.Pool,
    p,
    write: Callable[[asyncpg.Connection], Awaitable[object]],
    **reserve_kw: object,
):
    """Stop a reservation after it read the ledger, run ``write`` in its own transaction, let
    the reservation go. Returns the decision and whether ``write`` had committed meanwhile."""
    gate = ComplianceGate(db_pool, SLOW)

    async def writer() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await write(conn)
        finally:
            await conn.close()

    async with _holding(database_url, *_debt_row(p.debt_ids[0])):
        res = asyncio.create_task(reserve(gate, p, NOW, **reserve_kw))
        await _wait_for(db_pool, ROW, 1)  # the reservation: snapshot read, ledger insert waits
        w = asyncio.create_task(writer())

        async def settled() -> bool:
            return w.done() or await _waiting(db_pool, ADVISORY) >= 1

        await _until(settled, "the writer committed or queued behind the reservation")
        committed_meanwhile = w.done()
    decision = await res
    await w
    return decision, committed_meanwhile


async def test_a_cease_written_while_a_reservation_is_in_flight_is_never_overtaken(
    database_url, db_pool
) -> None:
    p = await ny_person(db_pool)

    async def cease(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "INSERT INTO contact_blocks (kind, person_id, source) VALUES ('cease', $1, 'web:t')",
            p.person_id,
        )

    d, committed_meanwhile = await _race(database_url, db_pool, p, cease)
    # Either the reservation saw the cease, or it committed before the cease did.
    assert not (d.allowed and committed_meanwhile), "a dial got through after the cease"
    assert "CEASE" in (await reserve(ComplianceGate(db_pool), p, NOW)).codes


async def test_a_dnc_on_the_number_written_while_a_reservation_is_in_flight(
    database_url, db_pool
) -> None:
    p = await ny_person(db_pool)

    async def dnc(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "INSERT INTO contact_blocks (kind, e164, source) VALUES ('dnc', $1, 'web:t')",
            p.numbers[0],
        )

    d, committed_meanwhile = await _race(database_url, db_pool, p, dnc)
    assert not (d.allowed and committed_meanwhile), "a dial got through after the DNC entry"
    assert "DNC" in (await reserve(ComplianceGate(db_pool), p, NOW)).codes


async def test_a_consent_withdrawn_while_an_autodialed_reservation_is_in_flight(
    database_url, db_pool
) -> None:
    async with db_pool.acquire() as conn:
        p = await _seed.person(conn, country="US", region="NY", numbers=((ny_number(), "mobile"),))
    consent = """INSERT INTO consents (phone_id, channel, granted, source, recorded_at)
                 VALUES ($1, 'autodialed_voice', $2, 'test', $3)"""
    await db_pool.execute(consent, p.phone_ids[0], True, NOW - timedelta(days=30))

    async def withdraw(conn: asyncpg.Connection) -> None:
        await conn.execute(consent, p.phone_ids[0], False, NOW - timedelta(minutes=1))

    d, committed_meanwhile = await _race(
        database_url, db_pool, p, withdraw, channel="autodialed_voice"
    )
    assert not (d.allowed and committed_meanwhile), "a dial got through after the withdrawal"
    later = await reserve(ComplianceGate(db_pool), p, NOW, channel="autodialed_voice")
    assert later.codes == ("NO_CONSENT",)


@pytest.mark.parametrize("status", ["wrong_party", "disconnected", "fax"])
async def test_a_number_marked_unusable_while_a_reservation_is_in_flight(
    database_url, db_pool, status: str
) -> None:
    p = await ny_person(db_pool)

    async def mark(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "UPDATE phone_numbers SET status = $2 WHERE id = $1", p.phone_ids[0], status
        )

    d, committed_meanwhile = await _race(database_url, db_pool, p, mark)
    assert not (d.allowed and committed_meanwhile), f"a dial got through to a {status} number"
    assert not (await reserve(ComplianceGate(db_pool), p, NOW)).allowed


async def test_a_conversation_recorded_while_a_reservation_is_in_flight(
    database_url, db_pool
) -> None:
    """The outcome waits for the person's lock: the reservation commits first (it was right
    when it decided), and the next one sees the cooldown."""
    gate = ComplianceGate(db_pool, SLOW)
    p = await ny_person(db_pool)
    first = await reserve(gate, p, NOW - timedelta(hours=1))
    assert first.reserved

    async def conversation(conn: asyncpg.Connection) -> None:
        await gate.record_outcome(first.attempt_id, "conversation", NOW - timedelta(minutes=5),
                                  conn=conn)  # fmt: skip

    d, committed_meanwhile = await _race(database_url, db_pool, p, conversation)
    assert not (d.allowed and committed_meanwhile)
    assert (await reserve(gate, p, NOW + timedelta(minutes=1))).codes == ("COOLDOWN",)


async def test_a_release_racing_reservations_at_the_cap_frees_exactly_one_slot(
    database_url, db_pool
) -> None:
    gate = ComplianceGate(db_pool, SLOW)
    p = await ny_person(db_pool)
    taken = [await reserve(gate, p, NOW - timedelta(minutes=70 - 10 * i)) for i in range(7)]
    assert all(d.reserved for d in taken)
    async with _holding(database_url, *_person_lock(p.person_id)):
        tasks = [asyncio.create_task(reserve(gate, p, NOW)) for _ in range(3)]
        tasks.append(
            asyncio.create_task(
                gate.record_outcome(taken[3].attempt_id, "busy", NOW - timedelta(minutes=39))
            )
        )
        tasks += [asyncio.create_task(reserve(gate, p, NOW)) for _ in range(3)]
        await _wait_for(db_pool, ADVISORY, len(tasks))
    results = await asyncio.gather(*tasks)
    decisions = [r for r in results if not isinstance(r, bool)]
    assert sum(d.allowed for d in decisions) == 1  # the busy call's slot, once
    assert {c for d in decisions if not d.allowed for c in d.codes} == {"CAP_REACHED"}


# -- 3. a connection killed mid-transaction --------------------------------------------------------
async def _kill_waiting(pool: asyncpg.Pool, events: tuple[str, ...]) -> int:
    return await pool.fetchval(
        """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND wait_event = ANY($1::text[])""",
        list(events),
    )


@pytest.mark.parametrize("where", ["waiting_for_the_person", "writing_the_reservation"])
@pytest.mark.parametrize("path", ["single", "batch"])
async def test_a_backend_killed_mid_reservation_denies_and_leaves_nothing(
    database_url, db_pool, where: str, path: str
) -> None:
    gate = ComplianceGate(db_pool, SLOW)
    p = await ny_person(db_pool)
    lock, events = (
        (_person_lock(p.person_id), ADVISORY)
        if where == "waiting_for_the_person"
        else (_debt_row(p.debt_ids[0]), ROW)
    )
    async with _holding(database_url, *lock):
        if path == "single":
            task = asyncio.create_task(reserve(gate, p, NOW))
        else:
            reqs = [DialRequest(p.person_id, p.debt_ids, p.numbers[0], uuid.uuid4())]
            task = asyncio.create_task(gate.check_and_reserve_many(reqs, packs=US, now=NOW))
        await _wait_for(db_pool, events, 1)
        assert await _kill_waiting(db_pool, events) == 1
        result = await task
    d = result if path == "single" else result[0]
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
    assert not d.allowed
    assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []
    assert await _stored(db_pool, p.person_id) == []
    assert (await reserve(gate, p, NOW)).reserved  # nothing left locked or counted


async def test_a_claim_killed_mid_gate_fails_closed_and_leaves_nothing(
    database_url, db_pool
) -> None:
    p = await ny_person(db_pool)
    cid, code = await _campaign(db_pool, US)
    await _lead(db_pool, cid, p.person_id, p.debt_ids[0])
    gate = ComplianceGate(db_pool, SLOW)
    args = {
        "campaign_id": cid, "campaign_code": code, "packs": US, "want": 1, "node": "n1",
        "pbx": "sim", "now": NOW,
    }  # fmt: skip
    async with _holding(database_url, *_debt_row(p.debt_ids[0])):
        task = asyncio.create_task(claim_and_gate(db_pool, gate, **args))
        await _wait_for(db_pool, ROW, 1)
        assert await _kill_waiting(db_pool, ROW) == 1
        try:
            dials, _ = await task
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            dials = []
    assert dials == []
    assert await ledger(db_pool, p.person_id) == []
    assert await _stored(db_pool, p.person_id) == []
    assert (
        await db_pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1", cid)
        == 0
    )
    assert await db_pool.fetchval("SELECT state FROM leads WHERE campaign_id = $1", cid) == "ready"
    dials, _ = await claim_and_gate(db_pool, gate, **args)
    assert len(dials) == 1


# -- 4. the audit trail cannot be rewritten through UPDATE or DELETE -------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE compliance_decisions SET allowed = NOT allowed WHERE person_id = $1",
        "DELETE FROM compliance_decisions WHERE person_id = $1",
        "UPDATE compliance_attempts SET reserved_at = reserved_at - interval '8 days'"
        " WHERE person_id = $1",
        "DELETE FROM compliance_attempts WHERE person_id = $1",
        "UPDATE compliance_outcomes SET outcome = 'busy' WHERE person_id = $1",
        "DELETE FROM compliance_outcomes WHERE person_id = $1",
    ],
)
async def test_the_ledger_refuses_update_and_delete(db_pool, sql: str) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    d = await reserve(gate, p, NOW)
    assert d.reserved
    await gate.record_outcome(d.attempt_id, "conversation", NOW + timedelta(minutes=1))
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute(sql, p.person_id)
