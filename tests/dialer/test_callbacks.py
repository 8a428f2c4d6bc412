"""Callbacks: scheduled, claimed first when due, dialed on their number, taken with the attempt,
still gated; on the real database."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest

from compliance import ComplianceGate
from dialer.callbacks import (
    _SCHEDULE,
    CallbackError,
    cancel_callback,
    pending_callbacks,
    schedule_callback,
)
from dialer.campaigns import Campaign
from dialer.results import write_result
from dialer.selection import _CLAIM, _CLAIM_CALLBACKS, _DUE_CALLBACK_DEBTS, claim_and_gate
from tests._plans import generic_plan, scans
from tests.dialer import test_selection
from tests.dialer.test_selection import NOON

# Ten leads in Mexico City, priorities 0, 1, 2, 0, 1, 2, ... (one number each), at NOON.
campaign = test_selection.campaign


async def claim(db_pool, campaign, want: int, now: datetime = NOON):
    cid, code = campaign
    return await claim_and_gate(
        db_pool, ComplianceGate(db_pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=want, node="n1", pbx="sim", now=now,
    )  # fmt: skip


async def lowest_lead(db_pool, cid: int):
    """The campaign's lowest-priority lead: the last one selection would take on its own."""
    return await db_pool.fetchrow(
        "SELECT id, person_id, debt_id, priority FROM leads WHERE campaign_id = $1 "
        "ORDER BY priority, id LIMIT 1",
        cid,
    )


async def schedule(db_pool, lead, due_at: datetime, phone_id: int | None = None, **kw) -> int:
    async with db_pool.acquire() as conn, conn.transaction():
        return await schedule_callback(
            conn, debt_id=lead["debt_id"], person_id=lead["person_id"], phone_id=phone_id,
            due_at=due_at, source=kw.pop("source", "ivr"), **kw,
        )  # fmt: skip


async def add_number(db_pool, person_id: int) -> tuple[int, str]:
    e164 = f"+52331{int.from_bytes(os.urandom(3), 'big') % 10_000_000:07d}"
    pid = await db_pool.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, 'mobile') RETURNING id",
        person_id,
        e164,
    )
    return pid, e164


async def test_scheduling_makes_the_lead_due_at_the_callback(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    due = NOON + timedelta(minutes=45)
    cb = await schedule(db_pool, lead, due, requested_by="ivr:session-1")
    row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead["id"])
    assert (row["state"], row["next_try_at"]) == ("ready", due)
    async with db_pool.acquire() as conn:
        (pending,) = await pending_callbacks(conn, lead["person_id"])
    assert pending.id == cb
    assert pending.lead_id == lead["id"]  # the one lead of the debt
    assert pending.debt_id == lead["debt_id"]
    assert pending.due_at == due
    assert (pending.source, pending.requested_by) == ("ivr", "ivr:session-1")


async def test_a_due_callback_is_claimed_before_higher_priority_leads(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    assert lead["priority"] == 0
    await schedule(db_pool, lead, NOON - timedelta(minutes=5))
    (dial,), denied = await claim(db_pool, campaign, 1)
    assert not denied
    assert dial.lead_id == lead["id"]  # before the six leads of priority 1 and 2
    # And the next claim goes back to priority order.
    (after,), _ = await claim(db_pool, campaign, 1)
    assert await db_pool.fetchval("SELECT priority FROM leads WHERE id = $1", after.lead_id) == 2


async def test_a_callback_is_not_dialed_before_its_time(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    due = NOON + timedelta(hours=2)
    cb = await schedule(db_pool, lead, due)
    dials, _ = await claim(db_pool, campaign, 10)
    assert len(dials) == 9  # every other lead
    assert lead["id"] not in {d.lead_id for d in dials}
    await db_pool.execute(  # the others are due again, all of higher priority or older
        "UPDATE leads SET state = 'ready', next_try_at = $2 WHERE campaign_id = $1 AND id <> $3",
        cid,
        NOON,
        lead["id"],
    )
    await db_pool.execute(  # (their calls ended)
        "UPDATE call_attempts SET state = 'final', disposition = 'no_answer'"
        " WHERE campaign_id = $1",
        cid,
    )
    early, early_denied = await claim(db_pool, campaign, 1, now=due - timedelta(minutes=1))
    claimed = [d.lead_id for d in early] + [d.lead_id for d in early_denied]
    assert len(claimed) == 1
    assert claimed != [lead["id"]]
    on_time, _ = await claim(db_pool, campaign, 1, now=due + timedelta(minutes=1))
    assert [d.lead_id for d in on_time] == [lead["id"]]
    taken = await db_pool.fetchrow("SELECT done_at, attempt_id FROM callbacks WHERE id = $1", cb)
    assert taken["done_at"] == due + timedelta(minutes=1)
    assert str(taken["attempt_id"]) == on_time[0].attempt_id


async def test_the_callbacks_number_is_dialed_while_it_is_active(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    first = await db_pool.fetchval(
        "SELECT id FROM phone_numbers WHERE person_id = $1 ORDER BY id LIMIT 1", lead["person_id"]
    )
    second, second_e164 = await add_number(db_pool, lead["person_id"])
    await schedule(db_pool, lead, NOON - timedelta(minutes=1), phone_id=second)
    (dial,), _ = await claim(db_pool, campaign, 1)
    # The rotation would take the first number (never tried, oldest); the callback says second.
    assert (dial.lead_id, dial.phone_id, dial.e164) == (lead["id"], second, second_e164)
    assert (
        await db_pool.fetchval(
            "SELECT phone_id FROM compliance_attempts WHERE attempt_id = $1::uuid",
            dial.attempt_id,
        )
        == second
    )  # the gate reserved that number
    # A callback on a number that is no longer active: the rotation's number instead.
    await db_pool.execute("UPDATE leads SET state = 'ready' WHERE id = $1", lead["id"])
    await db_pool.execute(  # (its call ended)
        "UPDATE call_attempts SET state = 'final', disposition = 'no_answer' WHERE id = $1::uuid",
        dial.attempt_id,
    )
    await schedule(db_pool, lead, NOON + timedelta(hours=1), phone_id=second)
    await db_pool.execute("UPDATE phone_numbers SET status = 'wrong_party' WHERE id = $1", second)
    (again,), _ = await claim(db_pool, campaign, 1, now=NOON + timedelta(hours=1))
    assert (again.lead_id, again.phone_id) == (lead["id"], first)


async def test_the_callback_is_taken_in_the_attempts_transaction(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    cb = await schedule(db_pool, lead, NOON - timedelta(minutes=10))
    (dial,), _ = await claim(db_pool, campaign, 1)
    row = await db_pool.fetchrow(
        "SELECT done_at, attempt_id, lead_id, cancelled_at, xmin::text AS tx FROM callbacks "
        "WHERE id = $1",
        cb,
    )
    attempt_tx = await db_pool.fetchval(
        "SELECT xmin::text FROM call_attempts WHERE id = $1::uuid", dial.attempt_id
    )
    assert row["done_at"] == NOON
    assert str(row["attempt_id"]) == dial.attempt_id
    assert row["lead_id"] == dial.lead_id == lead["id"]
    assert row["cancelled_at"] is None
    assert row["tx"] == attempt_tx  # written by the very transaction that wrote the attempt
    async with db_pool.acquire() as conn:
        assert await pending_callbacks(conn, lead["person_id"]) == []


class _DiesAfterReserving(ComplianceGate):
    async def check_and_reserve_many(self, *args, **kwargs):
        await super().check_and_reserve_many(*args, **kwargs)
        raise RuntimeError("node died")


async def test_a_death_before_the_attempt_leaves_the_callback_pending(db_pool, campaign) -> None:
    cid, code = campaign
    lead = await lowest_lead(db_pool, cid)
    cb = await schedule(db_pool, lead, NOON - timedelta(minutes=10))
    with pytest.raises(RuntimeError, match="node died"):
        await claim_and_gate(
            db_pool, _DiesAfterReserving(db_pool), campaign_id=cid, campaign_code=code,
            packs=["mx"], want=1, node="n1", pbx="sim", now=NOON,
        )  # fmt: skip
    row = await db_pool.fetchrow("SELECT done_at, attempt_id FROM callbacks WHERE id = $1", cb)
    assert (row["done_at"], row["attempt_id"]) == (None, None)
    (dial,), _ = await claim(db_pool, campaign, 1)
    assert dial.lead_id == lead["id"]


async def test_a_callback_the_gate_denies_stays_pending(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    late = NOON + timedelta(hours=10, minutes=30)  # 22:30 in Mexico City: the window is shut
    cb = await schedule(db_pool, lead, late - timedelta(minutes=5))
    dials, denied = await claim(db_pool, campaign, 1, now=late)
    assert dials == []
    (d,) = denied
    assert d.lead_id == lead["id"]  # claimed first, then denied
    opens = NOON + timedelta(hours=19)  # 07:00 the next morning
    assert d.decision.next_allowed_at == opens
    row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead["id"])
    assert (row["state"], row["next_try_at"]) == ("ready", opens)
    cb_row = await db_pool.fetchrow("SELECT done_at, attempt_id FROM callbacks WHERE id = $1", cb)
    assert (cb_row["done_at"], cb_row["attempt_id"]) == (None, None)
    # Not claimed again before the window opens (no busy loop on a pending callback) ...
    assert lead["id"] not in {
        x.lead_id for x in (await claim(db_pool, campaign, 1, now=late + timedelta(minutes=1)))[1]
    }
    # ... and first when it does.
    (dial,), _ = await claim(db_pool, campaign, 1, now=opens)
    assert dial.lead_id == lead["id"]
    assert await db_pool.fetchval("SELECT attempt_id FROM callbacks WHERE id = $1", cb) is not None


async def test_a_lead_in_a_call_comes_back_at_the_callback(db_pool, campaign) -> None:
    _, code = campaign
    c = await Campaign.load(db_pool, code)
    gate = ComplianceGate(db_pool)
    dials, _ = await claim(db_pool, campaign, 2)
    retried, spoken = dials
    cbs = {}
    for d in dials:  # asked for during the call: only the callback is written
        lead = await db_pool.fetchrow("SELECT * FROM leads WHERE id = $1", d.lead_id)
        cbs[d.lead_id] = await schedule(
            db_pool, lead, NOON + timedelta(minutes=30), source="agent", requested_by="agent7"
        )
        after = await db_pool.fetchrow("SELECT * FROM leads WHERE id = $1", d.lead_id)
        assert (after["state"], after["next_try_at"]) == ("in_call", lead["next_try_at"])
    # No lead was made due at scheduling: none names the callback yet.
    names = "SELECT lead_id FROM callbacks WHERE id = $1"
    assert await db_pool.fetchval(names, cbs[spoken.lead_id]) is None
    end = NOON + timedelta(minutes=2)
    # No answer: the schedule says in 2 h; the callback brings it back at 12:30.
    assert await write_result(
        db_pool, gate, c, retried, "no_answer", None, amd=None, answered=False, now=end
    )
    # An agent spoke to them (the lead would be done): the callback keeps it.
    assert await write_result(
        db_pool, gate, c, spoken, "agent", None, amd=None, answered=True, now=end
    )
    for d in dials:
        row = await db_pool.fetchrow(
            "SELECT state, next_try_at FROM leads WHERE id = $1", d.lead_id
        )
        assert (row["state"], row["next_try_at"]) == ("ready", NOON + timedelta(minutes=30))
    # Without a callback, the schedule and the agent's "done" stand.
    async with db_pool.acquire() as conn:
        assert await cancel_callback(conn, cbs[spoken.lead_id], at=end)
        assert not await cancel_callback(conn, cbs[spoken.lead_id], at=end)  # already cancelled
    (third,), _ = await claim(db_pool, campaign, 1, now=NOON + timedelta(minutes=31))
    assert third.lead_id == retried.lead_id  # its callback is due: first
    later = NOON + timedelta(hours=1)
    assert await write_result(
        db_pool, gate, c, third, "agent", None, amd=None, answered=True, now=later
    )
    assert await db_pool.fetchval("SELECT state FROM leads WHERE id = $1", third.lead_id) == "done"


async def test_a_cancelled_callback_is_no_longer_first(db_pool, campaign) -> None:
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    cb = await schedule(db_pool, lead, NOON - timedelta(minutes=5))
    async with db_pool.acquire() as conn:
        assert await cancel_callback(conn, cb, at=NOON - timedelta(minutes=1))
        assert await pending_callbacks(conn, lead["person_id"]) == []
    (dial,), _ = await claim(db_pool, campaign, 1)
    assert dial.lead_id != lead["id"]
    assert await db_pool.fetchval("SELECT done_at FROM callbacks WHERE id = $1", cb) is None


async def test_bad_callbacks_are_refused(db_pool, campaign) -> None:
    cid, _ = campaign
    a, b = await db_pool.fetch(
        "SELECT id, person_id, debt_id FROM leads WHERE campaign_id = $1 ORDER BY id LIMIT 2", cid
    )
    b_phone = await db_pool.fetchval(
        "SELECT id FROM phone_numbers WHERE person_id = $1", b["person_id"]
    )
    async with db_pool.acquire() as conn:
        kw = {"due_at": NOON, "source": "ivr"}
        with pytest.raises(CallbackError, match=r"debt \d+ is not person"):
            await schedule_callback(
                conn, debt_id=b["debt_id"], person_id=a["person_id"], phone_id=None, **kw
            )
        with pytest.raises(CallbackError, match=rf"or number {b_phone} is not person"):
            await schedule_callback(
                conn, debt_id=a["debt_id"], person_id=a["person_id"], phone_id=b_phone, **kw
            )
        with pytest.raises(CallbackError, match="source"):
            await schedule_callback(
                conn, debt_id=a["debt_id"], person_id=a["person_id"], phone_id=None,
                due_at=NOON, source="sms",
            )  # fmt: skip
        with pytest.raises(CallbackError, match="time zone"):
            await schedule_callback(
                conn, debt_id=a["debt_id"], person_id=a["person_id"], phone_id=None,
                due_at=datetime(2026, 12, 2, 12, 0), source="ivr",
            )  # fmt: skip
    written = "SELECT count(*) FROM callbacks WHERE debt_id = $1"
    assert await db_pool.fetchval(written, a["debt_id"]) == 0
    assert await db_pool.fetchval("SELECT next_try_at FROM leads WHERE id = $1", b["id"]) < NOON


async def bulk_leads(db_pool, cid: int, n: int) -> None:
    """``n`` more ready leads (and their debts) for the campaign's first person; analysed."""
    lead = await db_pool.fetchrow(
        "SELECT person_id, debt_id FROM leads WHERE campaign_id = $1", cid
    )
    await db_pool.execute(
        """INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency)
           SELECT d.person_id, d.creditor_id, 'bulk-' || g, 100, d.currency
           FROM debts d, generate_series(1, $2::int) g WHERE d.id = $1""",
        lead["debt_id"],
        n,
    )
    await db_pool.execute(
        """INSERT INTO leads (campaign_id, person_id, debt_id, priority)
           SELECT $1, person_id, id, (id % 97)::int FROM debts WHERE account_ref LIKE 'bulk-%'""",
        cid,
    )
    await db_pool.execute("ANALYZE leads")


async def test_the_claim_reads_pending_callbacks_by_their_index(db_pool, campaign) -> None:
    cid, _ = campaign
    await bulk_leads(db_pool, cid, 20_000)  # enough for the plans to matter
    debts = [r["debt_id"] for r in await db_pool.fetch(
        "SELECT debt_id FROM leads WHERE campaign_id = $1", cid
    )]  # fmt: skip
    # A long history of callbacks kept or cancelled, and a few pending.
    await db_pool.execute(
        """INSERT INTO callbacks (person_id, debt_id, due_at, source, done_at, cancelled_at)
           SELECT d.person_id, d.id, $2::timestamptz - g * interval '1 minute', 'agent',
                  CASE WHEN g % 2 = 0 THEN $2 END, CASE WHEN g % 2 = 1 THEN $2 END
           FROM generate_series(1, 20000) g
           JOIN debts d ON d.id = ($1::bigint[])[1 + g % cardinality($1::bigint[])]""",
        debts,
        NOON,
    )
    for debt in debts[:3]:
        await db_pool.execute(
            "INSERT INTO callbacks (person_id, debt_id, due_at, source) "
            "SELECT person_id, id, $2, 'api' FROM debts WHERE id = $1",
            debt,
            NOON - timedelta(minutes=1),
        )
    await db_pool.execute("ANALYZE callbacks")
    assert sorted(await db_pool.fetchval(_DUE_CALLBACK_DEBTS, NOON)) == sorted(debts[:3])
    # The due debts come from the pending callbacks' partial indexes, not from the history.
    plan = await generic_plan(db_pool, _DUE_CALLBACK_DEBTS, "timestamptz", NOON)
    on_callbacks = [s for s in scans(plan["Plan"]) if s[1] == "callbacks"]
    assert on_callbacks, "the due debts are read from callbacks"
    assert all(s[0] != "Seq Scan" and "pending" in (s[2] or "") for s in on_callbacks)
    # Their leads are claimed by debt (the campaign's unique index, or the leads' debt index
    # when the plan starts from the debts, whose status it reads), not by walking the ready
    # leads looking for them; the rows are updated through the primary key.
    plan = await generic_plan(
        db_pool, _CLAIM_CALLBACKS, "bigint, timestamptz, int, text, bigint[]",
        cid, NOON, 5, "n1", debts[:3],
    )  # fmt: skip
    nodes = scans(plan["Plan"])
    on_leads = [s for s in nodes if s[1] == "leads" and "Scan" in s[0]]
    by_debt = {"leads_campaign_id_debt_id_key", "leads_debt_idx"}
    used = {s[2] for s in on_leads}
    assert "leads_pkey" in used, nodes
    assert used - {"leads_pkey"} <= by_debt, nodes
    assert used & by_debt, nodes
    assert sum(s[3] for s in on_leads) == 6, nodes  # 3 leads found, 3 updated
    assert plan["Plan"]["Actual Rows"] == 3


async def test_the_claim_walks_the_ready_leads_in_order_and_stops(db_pool, campaign) -> None:
    # 20,000 ready leads: the claim reads them by leads_ready_order_idx in the claim's order
    # (no sort of the whole campaign), stops at the few it takes and updates them by their
    # primary key. Checked on the generic plan that a prepared statement may cache: one made
    # for an unknown LIMIT updated the claimed leads through a scan of the whole table.
    cid, _ = campaign
    await bulk_leads(db_pool, cid, 20_000)
    # (persons of their own: the claim reads each claimed lead's person's language by its
    # primary key, which a planner skips for a sequential scan of a table of a few rows)
    await db_pool.execute(
        "INSERT INTO persons (full_name) SELECT 'bulk ' || g FROM generate_series(1, 20000) g;"
        " ANALYZE persons"
    )
    plan = await generic_plan(
        db_pool, _CLAIM, "bigint, timestamptz, int, text", cid, NOON + timedelta(days=1), 5, "n1"
    )
    text = json.dumps(plan)
    assert "leads_ready_order_idx" in text
    assert '"Sort"' not in text, text
    nodes = scans(plan["Plan"])
    assert all(s[0] != "Seq Scan" for s in nodes), nodes
    assert plan["Plan"]["Actual Rows"] == 5
    assert sum(s[3] for s in nodes if s[2]) <= 50  # the 5 it claims (and their updates)


async def test_scheduling_finds_the_debts_leads_by_their_index(db_pool, campaign) -> None:
    # 20,000 leads: a callback finds its debt's open leads by leads_debt_idx. The unique
    # (campaign_id, debt_id) index cannot be searched by debt alone: every lead's entry was read.
    cid, _ = campaign
    await bulk_leads(db_pool, cid, 20_000)
    lead = await lowest_lead(db_pool, cid)
    plan = await generic_plan(
        db_pool, _SCHEDULE, "bigint, bigint, bigint, timestamptz, text, text, bigint",
        lead["debt_id"], lead["person_id"], None, NOON + timedelta(hours=1), "agent", "agent7",
        lead["id"],
    )  # fmt: skip
    nodes = scans(plan["Plan"])
    on_leads = [s for s in nodes if s[1] == "leads" and "Scan" in s[0]]
    assert [s[2] for s in on_leads] == ["leads_debt_idx"], nodes
    assert not [s for s in nodes if s[0] == "Seq Scan" and s[1] in ("leads", "debts")], nodes
    assert plan["Plan"]["Actual Rows"] == 1  # the callback
    await schedule(db_pool, lead, NOON + timedelta(hours=1))
    row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead["id"])
    assert (row["state"], row["next_try_at"]) == ("ready", NOON + timedelta(hours=1))


async def test_the_lead_of_the_call_that_asked_is_due_again_though_the_call_ended_it(
    db_pool, campaign
) -> None:
    # An agent records the callback in wrap-up: the call's end already made its lead 'done'.
    # Left so, the callback was never dialed (selection only claims ready leads).
    cid, _ = campaign
    lead = await lowest_lead(db_pool, cid)
    await db_pool.execute("UPDATE leads SET state = 'done' WHERE id = $1", lead["id"])
    due = NOON + timedelta(hours=3)
    await schedule(db_pool, lead, due, source="agent", lead_id=lead["id"])
    row = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead["id"])
    assert (row["state"], row["next_try_at"]) == ("ready", due)
    # Another finished lead of the debt is not: only the one named.
    other = await db_pool.fetchval(
        "INSERT INTO campaigns (code, name) VALUES ($1, $1) RETURNING id",
        f"cb-{os.getpid()}-{int.from_bytes(os.urandom(3), 'big')}",
    )
    done = await db_pool.fetchval(
        "INSERT INTO leads (campaign_id, person_id, debt_id, state) VALUES ($1, $2, $3, 'done')"
        " RETURNING id",
        other, lead["person_id"], lead["debt_id"],
    )  # fmt: skip
    await schedule(db_pool, lead, due, source="agent", lead_id=lead["id"])
    assert await db_pool.fetchval("SELECT state FROM leads WHERE id = $1", done) == "done"
