"""``check_and_reserve_many``: a pacer tick's dials, with the single path's guarantees."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from compliance import ComplianceGate, DialRequest
from tests.compliance.test_gate import SPREAD, T0, TUE_1400, US, ledger, ny_person, reserve


def request(p, **kw) -> DialRequest:
    args = {
        "person_id": p.person_id,
        "debt_ids": p.debt_ids,
        "phone": p.numbers[0],
        "attempt_id": uuid.uuid4(),
    }
    args.update(kw)
    return DialRequest(**args)


async def test_a_mixed_batch_decides_each_request_in_order_and_stores_them_all(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    a = await ny_person(db_pool, debts=2)
    b = await ny_person(db_pool)
    dup = uuid.uuid4()
    batch = [
        request(a),  # allowed, two ledger rows
        request(b, person_id=999_999),  # unknown person
        request(b, phone="+1555"),  # invalid number
        request(b, attempt_id=dup),  # allowed
        request(a, attempt_id=dup, person_id=b.person_id),  # b again: next round, duplicate id
        request(b, attempt_id="not-a-uuid"),  # refused before the database
    ]
    decisions = await gate.check_and_reserve_many(batch, packs=US, now=TUE_1400)
    assert [d.allowed for d in decisions] == [True, False, False, True, False, False]
    assert decisions[1].codes[0] == "UNKNOWN_PERSON"
    assert "INVALID_NUMBER" in decisions[2].codes
    assert "DUPLICATE_ATTEMPT" in decisions[4].codes
    assert decisions[5].codes == ("BAD_REQUEST",)
    assert [d.reserved for d in decisions] == [d.allowed for d in decisions]
    assert all(d.decision_id for d in decisions[:5])
    rows = await ledger(db_pool, a.person_id)
    assert sorted(r["debt_id"] for r in rows) == sorted(a.debt_ids)
    assert {r["decision_id"] for r in rows} == {decisions[0].decision_id}
    assert [str(r["attempt_id"]) for r in await ledger(db_pool, b.person_id)] == [str(dup)]
    stored = await db_pool.fetch(
        "SELECT id, allowed, reserved, reasons FROM compliance_decisions WHERE id = ANY($1)",
        [d.decision_id for d in decisions[:5]],
    )
    assert len(stored) == 5
    by_id = {r["id"]: r for r in stored}
    for d in decisions[:5]:
        assert by_id[d.decision_id]["allowed"] is d.allowed


async def test_same_person_twice_in_a_batch_sees_the_first_reservation(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    for minutes in SPREAD[:6]:  # six of the seven Reg F calls
        assert (await reserve(gate, p, T0 + timedelta(minutes=minutes * 60))).reserved
    now = T0 + timedelta(days=5)
    decisions = await gate.check_and_reserve_many(
        [request(p), request(p), request(p)], packs=US, now=now
    )
    assert [d.allowed for d in decisions] == [True, False, False]
    assert decisions[1].codes == ("CAP_REACHED",)
    assert len(await ledger(db_pool, p.person_id)) == 7


async def test_concurrent_batches_never_exceed_the_cap(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    people = [await ny_person(db_pool) for _ in range(3)]
    # Ten batches at once, each asking twice for every person, in different orders.
    batches = [
        [request(p) for p in (people if i % 2 else people[::-1]) for _ in range(2)]
        for i in range(10)
    ]
    results = await asyncio.gather(
        *(gate.check_and_reserve_many(b, packs=US, now=TUE_1400) for b in batches)
    )
    for p in people:
        allowed = sum(
            d.allowed
            for batch, decisions in zip(batches, results, strict=True)
            for r, d in zip(batch, decisions, strict=True)
            if r.person_id == p.person_id
        )
        assert allowed == 7
        assert len(await ledger(db_pool, p.person_id)) == 7
    assert not any("COMPLIANCE_UNAVAILABLE" in d.codes for ds in results for d in ds)


async def test_batch_and_single_decide_alike(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    one = await ny_person(db_pool)
    two = await ny_person(db_pool)
    late = TUE_1400 + timedelta(hours=9)  # 23:00 EDT
    single = await reserve(gate, one, late)
    (batched,) = await gate.check_and_reserve_many([request(two)], packs=US, now=late)
    assert batched.codes == single.codes == ("OUTSIDE_WINDOW",)
    assert batched.next_allowed_at == single.next_allowed_at
    assert batched.reasons[0].citation == single.reasons[0].citation


async def test_a_failing_round_is_denied_whole(database_url) -> None:
    import asyncpg

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await pool.close()
    gate = ComplianceGate(pool)
    decisions = await gate.check_and_reserve_many(
        [DialRequest(1, (1,), "+12125550100", uuid.uuid4())] * 2, packs=US, now=TUE_1400
    )
    assert [d.codes for d in decisions] == [("COMPLIANCE_UNAVAILABLE",)] * 2
