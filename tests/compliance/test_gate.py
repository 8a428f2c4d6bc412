"""``ComplianceGate`` against the real PostgreSQL: reservation, Reg F counting, blocks,
concurrency and fail-closed behaviour.

Every test seeds its own person (and its own numbers) in the module's database, so the tests do
not see each other's ledger rows, blocks or overrides.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from compliance import Code, ComplianceGate, ComplianceSettings, UnknownAttempt

from . import _seed

US = ["us_federal"]
_numbers = itertools.count(1)


def at(text: str) -> datetime:
    """An instant written in UTC without the offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Monday 9 March 2026, 10:00 EDT (New York is on daylight time since Sunday 8 March).
T0 = at("2026-03-09T14:00")
# Tuesday 10 March 2026, 14:00 EDT: inside the 08:00-21:00 window, not a holiday.
TUE_1400 = at("2026-03-10T18:00")


def ny_number() -> str:
    """A fresh, valid New York number (each test uses its own, so DNC rows stay local)."""
    return f"+1212555{next(_numbers):04d}"


async def ny_person(pool: asyncpg.Pool, *, numbers: int = 1, debts: int = 1) -> _seed.Seeded:
    async with pool.acquire() as conn:
        return await _seed.person(
            conn,
            country="US",
            region="NY",
            postal_code="10001",
            numbers=tuple((ny_number(), "landline") for _ in range(numbers)),
            debts=debts,
        )


async def reserve(gate: ComplianceGate, p: _seed.Seeded, now: datetime, **kw):
    args = {
        "person_id": p.person_id,
        "debt_ids": p.debt_ids,
        "phone": p.numbers[0],
        "channel": "voice",
        "packs": US,
        "now": now,
        "attempt_id": uuid.uuid4(),
    }
    args.update(kw)
    return await gate.check_and_reserve(**args)


async def check(gate: ComplianceGate, p: _seed.Seeded, now: datetime, **kw):
    args = {
        "person_id": p.person_id,
        "debt_ids": p.debt_ids,
        "phone": p.numbers[0],
        "channel": "voice",
        "packs": US,
        "now": now,
    }
    args.update(kw)
    return await gate.check(**args)


async def ledger(pool: asyncpg.Pool, person_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM compliance_attempts WHERE person_id = $1 ORDER BY reserved_at, id",
        person_id,
    )


# -- 1. an allowed dial is reserved and stored ----------------------------------------------------
async def test_allowed_dial_is_reserved_with_one_ledger_row_per_debt(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool, debts=2)
    attempt = uuid.uuid4()
    d = await reserve(gate, p, TUE_1400, attempt_id=attempt, campaign="spring")
    assert d.allowed, d.reasons
    assert d.reserved
    assert d.reasons == ()
    assert d.next_allowed_at == TUE_1400
    assert d.timezones == ("America/New_York",)
    assert d.packs == ("us_federal",)
    assert d.attempt_id == str(attempt)
    assert d.decision_id is not None

    rows = await ledger(db_pool, p.person_id)
    assert sorted(r["debt_id"] for r in rows) == sorted(p.debt_ids)
    for r in rows:
        assert r["attempt_id"] == attempt
        assert r["decision_id"] == d.decision_id
        assert r["reserved_at"] == TUE_1400
        assert r["phone_id"] == p.phone_ids[0]
        assert r["e164"] == p.numbers[0]
        assert r["number_kind"] == "landline"
        assert r["channel"] == "voice"
        assert r["direction"] == "outbound"
        assert r["campaign"] == "spring"
        assert r["packs"] == ["us_federal"]

    stored = await db_pool.fetchrow(
        "SELECT * FROM compliance_decisions WHERE id = $1", d.decision_id
    )
    assert stored["person_id"] == p.person_id
    assert stored["allowed"]
    assert stored["reserved"]
    assert stored["attempt_id"] == attempt
    assert stored["decided_at"] == TUE_1400
    assert sorted(stored["debt_ids"]) == sorted(p.debt_ids)
    assert stored["margin_s"] == 90
    assert stored["reasons"] in ("[]", [])

    # A denied dial (22:30 EDT) is stored with its reasons and reserves nothing.
    late = await reserve(gate, p, at("2026-03-11T02:30"))
    assert not late.allowed
    assert not late.reserved
    assert late.codes == ("OUTSIDE_WINDOW",)
    assert late.next_allowed_at == at("2026-03-11T12:00")  # Wednesday 08:00 EDT
    assert len(await ledger(db_pool, p.person_id)) == 2

    history = await gate.decisions(p.person_id)
    assert [h["id"] for h in history] == [late.decision_id, d.decision_id]  # newest first
    newest, first = history
    assert first["allowed"]
    assert first["reserved"]
    assert first["attempt_id"] == str(attempt)
    assert first["reasons"] == []
    assert first["campaign"] == "spring"
    assert not newest["allowed"]
    assert not newest["reserved"]
    assert newest["next_allowed_at"] == at("2026-03-11T12:00")
    assert [(r["code"], r["rule_id"], r["pack"]) for r in newest["reasons"]] == [
        ("OUTSIDE_WINDOW", "us_fed_hours", "us_federal")
    ]
    assert newest["reasons"][0]["citation"].startswith("15 USC 1692c(a)(1)")


# -- 2. Reg F 7-in-7 ------------------------------------------------------------------------------
# Hours after T0 of seven calls: Mon 10:00 and 15:00, Tue 11:00, Wed 12:00, Thu 09:00, Fri 13:00,
# Sat 10:00 EDT.
SPREAD = (0, 5, 25, 50, 71, 99, 120)


async def test_reg_f_seven_in_seven_exact_next_allowed_and_busy_released(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    attempts = []
    for h in SPREAD:
        d = await reserve(gate, p, T0 + timedelta(hours=h))
        assert d.allowed, (h, d.reasons)
        assert d.reserved
        attempts.append(d.attempt_id)
    assert len(await ledger(db_pool, p.person_id)) == 7

    sunday = T0 + timedelta(hours=148)  # Sunday 15 March, 14:00 EDT
    eighth = await reserve(gate, p, sunday)
    assert not eighth.allowed
    assert not eighth.reserved
    assert eighth.codes == ("CAP_REACHED",)
    assert eighth.reasons[0].rule_id == "us_fed_7_in_7"
    assert eighth.reasons[0].debt_id == p.debt_ids[0]
    # the first call (Mon 10:00 EDT) leaves the period at max(+168 h, day 8 00:00 local)
    nxt = at("2026-03-16T14:00")  # Monday 16 March, 10:00 EDT
    assert eighth.next_allowed_at == nxt
    assert eighth.reasons[0].until == nxt
    assert len(await ledger(db_pool, p.person_id)) == 7

    assert (await check(gate, p, nxt)).allowed
    before = await check(gate, p, nxt - timedelta(minutes=1))
    assert not before.allowed
    assert before.codes == ("CAP_REACHED",)
    assert before.next_allowed_at == nxt
    # check() reserves and stores nothing
    assert len(await ledger(db_pool, p.person_id)) == 7
    assert len(await gate.decisions(p.person_id)) == 8

    # A busy signal is not a placed call under Reg F: it releases its slot.
    busy_at = T0 + timedelta(hours=SPREAD[2], seconds=20)
    assert await gate.record_outcome(attempts[2], "busy", busy_at)
    assert not await gate.record_outcome(attempts[2], "busy", busy_at)  # idempotent
    again = await reserve(gate, p, sunday)
    assert again.allowed, again.reasons
    assert again.reserved
    ninth = await reserve(gate, p, sunday + timedelta(hours=1))
    assert ninth.codes == ("CAP_REACHED",)
    assert len(await ledger(db_pool, p.person_id)) == 8

    # A voicemail counts: recording it on another attempt frees nothing.
    voicemail_at = T0 + timedelta(hours=SPREAD[3], seconds=40)
    assert await gate.record_outcome(attempts[3], "voicemail", voicemail_at)
    assert (await check(gate, p, sunday + timedelta(hours=2))).codes == ("CAP_REACHED",)


async def test_record_outcome_rejects_unknown_attempts_and_outcomes(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    with pytest.raises(UnknownAttempt):
        await gate.record_outcome(uuid.uuid4(), "busy", T0)
    with pytest.raises(ValueError, match="unknown outcome"):
        await gate.record_outcome(uuid.uuid4(), "hung_up", T0)


# -- 3. a conversation starts the 7-day cooldown --------------------------------------------------
async def test_conversation_starts_the_seven_day_cooldown(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    first = await reserve(gate, p, T0)
    assert first.reserved
    assert await gate.record_outcome(first.attempt_id, "conversation", T0 + timedelta(minutes=5))

    next_day = await reserve(gate, p, T0 + timedelta(days=1))
    assert not next_day.allowed
    assert not next_day.reserved
    assert next_day.codes == ("COOLDOWN",)
    assert next_day.reasons[0].rule_id == "us_fed_after_conversation"
    # Monday 9 March is day 1; day 8 starts Monday 16 March 00:00 EDT, the window at 08:00 EDT
    assert next_day.reasons[0].until == at("2026-03-16T04:00")
    assert next_day.next_allowed_at == at("2026-03-16T12:00")

    sunday = await check(gate, p, at("2026-03-15T20:00"))  # day 7, 16:00 EDT
    assert sunday.codes == ("COOLDOWN",)
    assert (await check(gate, p, at("2026-03-16T12:00"))).allowed
    assert len(await ledger(db_pool, p.person_id)) == 1


async def test_a_late_conversation_still_starts_its_cooldown(db_pool) -> None:
    """The ledger window takes attempts by their outcome's time too (migration 0003)."""
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    first = await reserve(gate, p, T0)
    assert first.reserved
    # A callback on the same attempt, recorded as a conversation three days later.
    assert await gate.record_outcome(first.attempt_id, "conversation", T0 + timedelta(days=3))
    later = await check(gate, p, T0 + timedelta(days=9, hours=2))  # reserved 9 days ago
    assert later.codes == ("COOLDOWN",)
    assert (await check(gate, p, T0 + timedelta(days=11))).allowed


async def test_inbound_conversation_starts_the_cooldown_for_its_debt_only(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool, debts=2)
    about, other = p.debt_ids
    cid = await gate.record_contact(
        person_id=p.person_id, debt_ids=[about], outcome="conversation", at=T0
    )
    rows = await ledger(db_pool, p.person_id)
    assert [(str(r["attempt_id"]), r["debt_id"], r["direction"]) for r in rows] == [
        (cid, about, "inbound")
    ]
    d = await check(gate, p, T0 + timedelta(days=2), debt_ids=[about])
    assert d.codes == ("COOLDOWN",)
    assert d.next_allowed_at == at("2026-03-16T12:00")
    assert (await check(gate, p, T0 + timedelta(days=2), debt_ids=[other])).allowed
    both = await check(gate, p, T0 + timedelta(days=2))
    assert both.codes == ("COOLDOWN",)
    assert both.reasons[0].debt_id == about


async def test_autodialed_call_to_a_mobile_reads_consent_from_the_database(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    async with db_pool.acquire() as conn:
        p = await _seed.person(conn, country="US", region="NY", numbers=((ny_number(), "mobile"),))
    auto = {"channel": "autodialed_voice"}
    assert (await check(gate, p, TUE_1400, **auto)).codes == ("NO_CONSENT",)
    assert (await check(gate, p, TUE_1400)).allowed  # a manual voice call needs none
    consent = """INSERT INTO consents (phone_id, channel, granted, source, recorded_at)
                 VALUES ($1, 'autodialed_voice', $2, 'test', $3)"""
    await db_pool.execute(consent, p.phone_ids[0], True, at("2026-03-01T00:00"))
    d = await reserve(gate, p, TUE_1400, **auto)
    assert d.allowed, d.reasons
    assert d.reserved
    assert (await ledger(db_pool, p.person_id))[0]["channel"] == "autodialed_voice"
    assert (await check(gate, p, TUE_1400, channel="prerecorded")).codes == ("NO_CONSENT",)
    # A withdrawal counts as soon as it is recorded, even dated ahead (another machine's
    # clock, the API's slack): the snapshot left it out until its date, and the number was
    # dialed on the grant meanwhile.
    await db_pool.execute(consent, p.phone_ids[0], False, TUE_1400 + timedelta(hours=1))
    for when in (TUE_1400 + timedelta(minutes=59), TUE_1400 + timedelta(hours=1)):
        d = await check(gate, p, when, **auto)
        assert d.codes == ("NO_CONSENT",)
        assert d.next_allowed_at is None
    # A grant dated ahead counts from its date only.
    await db_pool.execute(consent, p.phone_ids[0], True, TUE_1400 + timedelta(hours=2))
    assert (await check(gate, p, TUE_1400 + timedelta(hours=1), **auto)).codes == ("NO_CONSENT",)
    assert (await check(gate, p, TUE_1400 + timedelta(hours=2), **auto)).allowed


async def test_colombia_holiday_and_sms_contact_locking_voice_for_the_week(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    async with db_pool.acquire() as conn:
        p = await _seed.person(conn, country="CO", numbers=(("+573001234567", "mobile"),))
    co = {"packs": ["co"]}
    # Saint Joseph is observed on Monday 23 March 2026; Tuesday opens at 07:00 Bogotá (12:00Z)
    d = await reserve(gate, p, at("2026-03-23T15:00"), **co)
    assert d.codes == ("HOLIDAY",)
    assert d.next_allowed_at == at("2026-03-24T12:00")
    assert d.timezones == ("America/Bogota",)
    # a direct contact by SMS on Tuesday 10 March, 10:00 Bogotá
    await gate.record_contact(
        person_id=p.person_id,
        debt_ids=p.debt_ids,
        outcome="direct_contact",
        at=at("2026-03-10T15:00"),
        channel="sms",
        direction="outbound",
    )
    d = await reserve(gate, p, at("2026-03-12T15:00"), **co)
    assert d.codes == ("CHANNEL_LOCKED",)
    assert d.next_allowed_at == at("2026-03-17T12:00")  # day 8 is Tuesday 17 March, 07:00
    assert (await reserve(gate, p, at("2026-03-17T12:00"), **co)).reserved


# -- 4. cease and do-not-call ---------------------------------------------------------------------
async def test_cease_and_dnc_deny_and_no_override_lifts_them(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool, numbers=2)
    ok_number, dnc_number = p.numbers
    await db_pool.execute(
        "INSERT INTO contact_blocks (kind, e164, source) VALUES ('dnc', $1, 'test')", dnc_number
    )
    d = await reserve(gate, p, TUE_1400, phone=dnc_number)
    assert not d.allowed
    assert not d.reserved
    assert d.codes == ("DNC",)
    assert d.next_allowed_at is None
    # the same number given by its id is blocked too
    assert (await check(gate, p, TUE_1400, phone=p.phone_ids[1])).codes == ("DNC",)
    assert (await check(gate, p, TUE_1400, phone=ok_number)).allowed

    late = at("2026-03-11T02:30")  # Tuesday 22:30 EDT: only an override could allow it
    assert (await check(gate, p, late, phone=ok_number)).codes == ("OUTSIDE_WINDOW",)
    oid = await gate.grant_override(
        person_id=p.person_id,
        valid_from=at("2026-03-10T00:00"),
        valid_until=at("2026-03-12T00:00"),
        reason="debtor asked for a late callback",
        granted_by="supervisor1",
    )
    audit = await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'compliance.override' AND subject = $1",
        f"person:{p.person_id}",
    )
    assert audit == 1
    # the override is in force: it lifts the soft window on the clean number...
    lifted = await reserve(gate, p, late, phone=ok_number)
    assert lifted.allowed, lifted.reasons
    assert lifted.reserved
    assert lifted.overrides_used == (oid,)
    # ...but never a do-not-call entry
    for when in (late, TUE_1400):
        d = await reserve(gate, p, when, phone=dnc_number)
        assert not d.allowed
        assert not d.reserved
        assert "DNC" in d.codes
        assert d.next_allowed_at is None
        assert d.overrides_used == ()

    await db_pool.execute(
        "INSERT INTO contact_blocks (kind, person_id, source) VALUES ('cease', $1, 'letter')",
        p.person_id,
    )
    for when in (late, TUE_1400):
        d = await reserve(gate, p, when, phone=ok_number)
        assert not d.allowed
        assert not d.reserved
        assert "CEASE" in d.codes
        assert d.next_allowed_at is None
        assert d.overrides_used == ()
    assert (await check(gate, p, TUE_1400, phone=ok_number)).codes == ("CEASE",)
    assert len(await ledger(db_pool, p.person_id)) == 1  # only the overridden late call


async def test_a_revoked_block_no_longer_denies(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    await db_pool.execute(
        """INSERT INTO contact_blocks (kind, person_id, source, revoked_at)
           VALUES ('cease', $1, 'letter', $2)""",
        p.person_id,
        at("2026-03-10T16:00"),  # 12:00 EDT
    )
    assert (await check(gate, p, at("2026-03-10T15:59"))).codes == ("CEASE",)
    assert (await check(gate, p, at("2026-03-10T16:00"))).allowed


# -- 5. concurrency -------------------------------------------------------------------------------
async def test_fifty_concurrent_reservations_never_exceed_the_cap(db_pool) -> None:
    assert db_pool.get_max_size() >= 5
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    decisions = await asyncio.gather(*(reserve(gate, p, TUE_1400) for _ in range(50)))
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 7
    assert all(d.reserved for d in allowed)
    denied = [d for d in decisions if not d.allowed]
    assert all(d.codes == ("CAP_REACHED",) and not d.reserved for d in denied)

    rows = await ledger(db_pool, p.person_id)
    assert len(rows) == 7
    assert {str(r["attempt_id"]) for r in rows} == {d.attempt_id for d in allowed}
    assert all(r["debt_id"] == p.debt_ids[0] for r in rows)
    stored = await db_pool.fetchrow(
        """SELECT count(*) AS n, count(*) FILTER (WHERE reserved) AS reserved
           FROM compliance_decisions WHERE person_id = $1""",
        p.person_id,
    )
    assert (stored["n"], stored["reserved"]) == (50, 7)


# -- 6. bad requests ------------------------------------------------------------------------------
async def test_invalid_number_is_a_denial_not_an_exception(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    d = await reserve(gate, p, TUE_1400, phone="+1555")
    assert not d.allowed
    assert not d.reserved
    assert "INVALID_NUMBER" in d.codes
    assert d.next_allowed_at is None
    assert (await check(gate, p, TUE_1400, phone="+1555")).codes[0] in (
        "INVALID_NUMBER",
        "UNKNOWN_NUMBER",
    )
    # an invalid number on file (the database accepts its shape; the numbering plan does not)
    async with db_pool.acquire() as conn:
        q = await _seed.person(
            conn, country="US", region="NY", numbers=(("+1999555123", "unknown"),)
        )
    d = await reserve(gate, q, TUE_1400)
    assert d.codes == ("INVALID_NUMBER",)
    assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []
    assert await ledger(db_pool, q.person_id) == []


async def test_duplicate_attempt_id_is_denied(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    attempt = uuid.uuid4()
    assert (await reserve(gate, p, TUE_1400, attempt_id=attempt)).reserved
    d = await reserve(gate, p, TUE_1400 + timedelta(minutes=1), attempt_id=str(attempt))
    assert not d.allowed
    assert not d.reserved
    assert d.codes == ("DUPLICATE_ATTEMPT",)
    rows = await ledger(db_pool, p.person_id)
    assert [(r["attempt_id"], r["reserved_at"]) for r in rows] == [(attempt, TUE_1400)]


async def test_one_attempt_id_reserved_concurrently_for_several_persons_is_a_duplicate(
    db_pool,
) -> None:
    gate = ComplianceGate(db_pool)
    persons = [await ny_person(db_pool) for _ in range(8)]
    for _ in range(3):
        attempt = uuid.uuid4()
        decisions = await asyncio.gather(
            *(reserve(gate, p, TUE_1400, attempt_id=attempt) for p in persons)
        )
        assert sum(d.reserved for d in decisions) == 1
        assert sorted(d.codes for d in decisions if not d.reserved) == [("DUPLICATE_ATTEMPT",)] * 7
        owners = await db_pool.fetch(
            "SELECT DISTINCT person_id FROM compliance_attempts WHERE attempt_id = $1", attempt
        )
        assert len(owners) == 1


async def test_unknown_person_debt_or_number_is_denied(db_pool) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    other = await ny_person(db_pool)
    d = await reserve(gate, p, TUE_1400, person_id=2_000_000_000)
    assert d.codes == ("UNKNOWN_PERSON",)
    d = await reserve(gate, p, TUE_1400, debt_ids=other.debt_ids)
    assert d.codes == ("UNKNOWN_DEBT",)
    d = await reserve(gate, p, TUE_1400, phone=other.numbers[0])
    assert d.codes == ("UNKNOWN_NUMBER",)
    assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []


# -- 7. fail closed -------------------------------------------------------------------------------
async def test_closed_pool_is_a_denial(database_url) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await pool.close()
    gate = ComplianceGate(pool)
    d = await gate.check_and_reserve(
        person_id=1, debt_ids=[1], phone="+12125551234", channel="voice", packs=US,
        now=TUE_1400, attempt_id=uuid.uuid4(),
    )  # fmt: skip
    assert not d.allowed
    assert not d.reserved
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
    assert d.next_allowed_at is None
    assert d.reasons[0].code is Code.COMPLIANCE_UNAVAILABLE
    d = await gate.check(
        person_id=1, debt_ids=[1], phone="+12125551234", channel="voice", packs=US, now=TUE_1400
    )
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)


async def test_unreachable_database_is_a_denial() -> None:
    # nothing listens on port 1; min_size=0 so that the pool connects only on acquire
    pool = await asyncpg.create_pool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, timeout=2
    )
    try:
        gate = ComplianceGate(pool, ComplianceSettings(timeout_s=3))
        d = await gate.check_and_reserve(
            person_id=1, debt_ids=[1], phone="+12125551234", channel="voice", packs=US,
            now=TUE_1400, attempt_id=uuid.uuid4(),
        )  # fmt: skip
        assert not d.allowed
        assert not d.reserved
        assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
    finally:
        await pool.close()


async def test_a_check_that_cannot_finish_in_time_is_a_denial(db_pool) -> None:
    p = await ny_person(db_pool)
    gate = ComplianceGate(db_pool, ComplianceSettings(timeout_s=0.3))
    async with db_pool.acquire() as holder, holder.transaction():
        # another node holds the person's lock
        await holder.execute("SELECT pg_advisory_xact_lock(compliance_lock_key($1))", p.person_id)
        d = await reserve(gate, p, TUE_1400)
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
    assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []
    # once the lock is free the same gate decides again
    assert (await reserve(gate, p, TUE_1400)).reserved


# -- 8. unknown pack ------------------------------------------------------------------------------
async def test_unknown_pack_is_unavailable_and_logged(db_pool, caplog) -> None:
    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    with caplog.at_level(logging.ERROR, logger="compliance"):
        d = await reserve(gate, p, TUE_1400, packs=["us_federal", "atlantis"])
    assert not d.allowed
    assert not d.reserved
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)
    assert "atlantis" in d.reasons[0].message
    logged = [r for r in caplog.records if r.name == "compliance._gate"]
    assert logged
    assert logged[0].levelno == logging.ERROR
    assert "atlantis" in logged[0].getMessage()
    assert await ledger(db_pool, p.person_id) == []
    # no pack at all is refused the same way
    d = await reserve(gate, p, TUE_1400, packs=[])
    assert d.codes == ("COMPLIANCE_UNAVAILABLE",)


async def test_a_stored_stated_zone_that_does_not_exist_denies(db_pool) -> None:
    # 13:30Z is 09:30 in New York but 05:30 in Los Angeles, where the debtor said they are
    gate = ComplianceGate(db_pool)
    async with db_pool.acquire() as conn:
        p = await _seed.person(
            conn,
            country="US",
            region="NY",
            stated_timezone="America/Los_Angles",
            numbers=((ny_number(), "landline"),),
        )
    d = await reserve(gate, p, at("2026-03-10T13:30"))
    assert d.codes == ("NO_TIMEZONE",)
    assert "'America/Los_Angles'" in d.reasons[0].message
    assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []


async def test_an_instant_outside_the_supported_years_is_a_bad_request(db_pool) -> None:
    from compliance import DialRequest

    gate = ComplianceGate(db_pool)
    p = await ny_person(db_pool)
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        now = datetime.fromisoformat(when)
        for d in (
            await check(gate, p, now),
            await reserve(gate, p, now),
            *await gate.check_and_reserve_many(
                [DialRequest(p.person_id, tuple(p.debt_ids), p.numbers[0], uuid.uuid4())],
                packs=US,
                now=now,
            ),
        ):
            assert d.codes == ("BAD_REQUEST",)
            assert "outside the supported years 1970-2200" in d.reasons[0].message
            assert not d.reserved
    assert await ledger(db_pool, p.person_id) == []
