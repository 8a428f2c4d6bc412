"""The shipped collections flow against a real database, through a scripted caller.

The channel here is ``puente ivr simulate``'s console channel (prompts as text, keys from a
list): the flow, the actions and the database are the real ones. The same flow over real
FastAGI sessions against the simulated Asterisk is in ``test_agi_calls.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from compliance import ComplianceGate
from ivr import ACTIONS, Catalog, CollectionsActions, IvrService, load_flows
from ivr._actions import Call
from ivr.cli import ConsoleChannel
from ivr.payments import SandboxGateway
from pbx.agi import AgiHangup
from tests.ivr._seed import POLICY, Debtor, debtor

CATALOG = Catalog.load()
FLOWS = load_flows(None, CATALOG, ACTIONS)
FLOW = FLOWS["collections"]


class Rig:
    def __init__(self, pool: asyncpg.Pool, gateway: SandboxGateway | None = None) -> None:
        self.pool = pool
        self.gateway = gateway or SandboxGateway()
        actions = CollectionsActions(pool, gateway=self.gateway, gate=ComplianceGate(pool))
        self.service = IvrService(pool, FLOWS, CATALOG, actions, node="test")
        self.attempt = ""

    async def call(self, d: Debtor, keys: list[str], *, entry: str = "inbound", lang: str = "es"):
        out = io.StringIO()
        channel = ConsoleChannel(CATALOG, list(keys), out)
        data = {"dialed": d.dialed, "attempt": self.attempt}
        try:
            result = await self.service.run_call(
                FLOW, entry, channel, language=lang, data=data, caller=d.number
            )
        except AgiHangup:
            result = None
        return result, out.getvalue()


@pytest.fixture
async def rig(db_pool: asyncpg.Pool) -> Rig:
    return Rig(db_pool)


def verified(d: Debtor) -> list[str]:
    """Welcome (no key), the account, the date of birth."""
    return ["", f"{d.account}#", "19800101#"]


async def test_pay_in_full_promise_with_the_discount(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    result, text = await rig.call(d, [*verified(d), "1", "2"])
    assert result is not None
    assert result.outcome == "promise"
    assert "Le informamos que esta llamada es para la gestión de cobranza" in text  # MX notice
    assert "Su saldo pendiente es de 1500 pesos" in text
    assert "El pago total es de 1350 pesos" in text  # 10 % discount
    promise = await rig.pool.fetchrow("SELECT * FROM promises WHERE debt_id = $1", d.debt_id)
    assert promise["total_cents"] == 135000
    assert promise["kind"] == "full"
    assert promise["source"] == "ivr"
    assert promise["ivr_session_id"] == result.session_id
    assert f"Su código de confirmación es {' '.join(promise['confirmation_code'])}" in text
    status = await rig.pool.fetchval("SELECT status FROM debts WHERE id = $1", d.debt_id)
    assert status == "promised"
    session = await rig.pool.fetchrow("SELECT * FROM ivr_sessions WHERE id = $1", result.session_id)
    assert session["verified"]
    assert session["outcome"] == "promise"
    assert session["debt_id"] == d.debt_id
    assert session["caller"].startswith("+52")
    assert d.number not in session["caller"]


async def test_nothing_about_the_debt_before_verification(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    result, text = await rig.call(d, ["", f"{d.account}#", "19990101#", "0"])
    assert "No pudimos verificar sus datos" in text
    assert "saldo" not in text
    assert "1500 pesos" not in text  # (not "1500": a session id may hold it)
    assert result is not None
    assert result.outcome == "transfer"


async def test_three_failures_lock_self_service_and_are_logged(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    wrong = [f"{d.account}#", "19990101#"]
    result, text = await rig.call(d, ["", *wrong, *wrong, *wrong])
    assert result is not None
    assert result.outcome == "locked"
    assert text.count("No pudimos verificar sus datos") == 2
    row = await rig.pool.fetchrow("SELECT ivr_locked_until FROM debts WHERE id = $1", d.debt_id)
    assert row["ivr_locked_until"] > datetime.now(UTC) + timedelta(minutes=29)
    failures = await rig.pool.fetchval(
        "SELECT count(*) FROM ivr_auth_failures WHERE debt_id = $1", d.debt_id
    )
    assert failures == 3
    audit = await rig.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'ivr.lockout' AND subject = $1",
        f"debt:{d.debt_id}",
    )
    assert audit == 1
    # The right answer on the next call does not open it.
    result, text = await rig.call(d, verified(d))
    assert result is not None
    assert result.outcome == "locked"
    assert "bloqueado temporalmente" in text


async def test_an_unknown_account_is_asked_the_factor_and_fails_like_a_wrong_one(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    result, text = await rig.call(d, ["", "99999999#", "19800101#", "0"])
    assert "fecha de nacimiento" in text
    assert "No pudimos verificar" in text
    assert result is not None
    assert result.outcome == "transfer"


async def test_english_on_request_and_by_country(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        us = await debtor(conn, country="US", currency="USD")
    _, text = await rig.call(d, ["9", f"{d.account}#", "19800101#", "0"])
    assert "Enter your account or reference number" in text
    assert "Your balance due is 1500 pesos" in text
    _result, text = await rig.call(us, [*verified(us), "0"], lang="en")
    assert "This is an attempt to collect a debt" in text
    assert "Your balance due is 1500 dollars" in text


async def test_instalment_plan_read_back_and_promised(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, balance_cents=100000)
    _result, text = await rig.call(d, [*verified(d), "3", "3#", "2"])
    assert "entre 2 y 6" in text  # 1000.00 / 50.00 minimum: 20, capped at the policy's 6
    assert "Su plan es de 3 pagos mensuales de 333 pesos y 33 centavos" in text
    promise = await rig.pool.fetchrow("SELECT * FROM promises WHERE debt_id = $1", d.debt_id)
    amounts = [i["amount_cents"] for i in json.loads(promise["plan"])]
    assert amounts == [33333, 33333, 33334]
    assert promise["kind"] == "plan"


async def test_a_plan_outside_the_policy_is_refused_then_retried(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, balance_cents=100000)
    result, text = await rig.call(d, [*verified(d), "3", "9#", "2#", "2"])
    assert "Ese plan no está disponible" in text
    assert result is not None
    assert result.outcome == "promise"


async def test_custom_promise_amount_and_date(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    due = datetime.now(UTC).date() + timedelta(days=5)
    keys = [*verified(d), "4", "500#", due.strftime("%d%m"), "1"]
    result, text = await rig.call(d, keys)
    assert result is not None
    assert result.outcome == "promise"
    assert f"Usted promete pagar 500 pesos con fecha {due.isoformat()}" in text
    promise = await rig.pool.fetchrow("SELECT * FROM promises WHERE debt_id = $1", d.debt_id)
    assert promise["total_cents"] == 50000
    assert promise["first_due"] == due


async def test_a_promise_too_far_out_is_refused(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    due = datetime.now(UTC).date() + timedelta(days=60)
    _result, text = await rig.call(d, [*verified(d), "4", "500#", due.strftime("%d%m"), "0"])
    assert "Ese monto o esa fecha no son posibles" in text
    count = await rig.pool.fetchval("SELECT count(*) FROM promises WHERE debt_id = $1", d.debt_id)
    assert count == 0


CARD = "4242424242424242"


def _card_keys(card: str = CARD, cvv: str = "123") -> list[str]:
    return [f"{card}#", "1230", cvv]


async def test_card_payment_stores_only_token_brand_last4(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    result, text = await rig.call(d, [*verified(d), "1", "1", *_card_keys()])
    assert result is not None
    assert result.outcome == "paid"
    assert "Su pago fue aprobado" in text
    pay = await rig.pool.fetchrow("SELECT * FROM payments WHERE debt_id = $1", d.debt_id)
    assert pay["status"] == "approved"
    assert pay["amount_cents"] == 135000
    assert pay["card_last4"] == "4242"
    assert pay["card_brand"] == "visa"
    assert pay["card_token"].startswith("tok_")
    debt = await rig.pool.fetchrow(
        "SELECT balance_cents, status FROM debts WHERE id = $1", d.debt_id
    )
    assert (debt["balance_cents"], debt["status"]) == (0, "paid")
    # The card number, expiry and CVV: in no log line, no row of any table.
    secrets = (CARD, "1230", f"{CARD[:6]}")
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(s in logs for s in secrets)
    for table in ("payments", "ivr_sessions", "promises", "audit_log", "ivr_auth_failures"):
        dump = await rig.pool.fetchval(
            f"SELECT coalesce(string_agg(t::text, '|'), '') FROM {table} t"
        )
        assert CARD not in dump, table
    # The expiry's four digits could match a timestamp's; look for them in the payment's
    # own values instead (every column but the times).
    pay_values = [str(v) for k, v in pay.items() if not k.endswith("_at")]
    assert not any("1230" in v for v in pay_values)
    assert CARD not in repr(result.data) + repr(result.trail)


async def test_declined_and_invalid_cards_go_back_to_the_options(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    keys = [
        *verified(d),
        "1",
        "1",
        *_card_keys("4000000000000002"),
        "1",
        *_card_keys(CARD[:-1] + "1"),
    ]
    result, text = await rig.call(d, [*keys, "2"])
    assert "rechazado por el banco" in text
    assert "no son válidos" in text
    assert result is not None
    assert result.outcome == "promise"
    rows = await rig.pool.fetch(
        "SELECT status, decline_reason FROM payments WHERE debt_id = $1", d.debt_id
    )
    assert [(r["status"], r["decline_reason"]) for r in rows] == [("declined", "card_declined")]


async def test_gateway_down_charges_nothing_and_offers_a_callback(db_pool: asyncpg.Pool) -> None:
    gateway = SandboxGateway()
    gateway.down = True
    rig = Rig(db_pool, gateway)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    result, text = await rig.call(d, [*verified(d), "1", "1", *_card_keys(), "1"])
    assert "los pagos no están disponibles" in text
    assert "No se hizo ningún cargo" in text
    assert gateway.charges == 0
    status = await rig.pool.fetchval("SELECT status FROM payments WHERE debt_id = $1", d.debt_id)
    assert status == "error"
    assert result is not None
    assert result.outcome == "callback"
    cb = await rig.pool.fetchrow("SELECT * FROM callbacks WHERE debt_id = $1", d.debt_id)
    assert cb["source"] == "ivr"
    assert cb["phone_id"] == d.phone_id
    local = cb["due_at"].astimezone(ZoneInfo("America/Mexico_City"))
    assert local.hour == 10
    assert cb["due_at"] > datetime.now(UTC)


async def test_a_callback_promised_by_the_ivr_makes_the_debts_ended_lead_due(
    db_pool: asyncpg.Pool,
) -> None:
    # The debt's lead had ended ('done'); the callback was stored with no lead and nobody
    # ever dialed it.
    gateway = SandboxGateway()
    gateway.down = True
    rig = Rig(db_pool, gateway)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (code, name) VALUES ($1, 'Ended') RETURNING id",
            f"ended{d.debt_id}",
        )
        lead = await conn.fetchval(
            "INSERT INTO leads (campaign_id, person_id, debt_id, state) VALUES ($1, $2, $3,"
            " 'done') RETURNING id",
            campaign, d.person_id, d.debt_id,
        )  # fmt: skip
    result, _ = await rig.call(d, [*verified(d), "1", "1", *_card_keys(), "1"])
    assert result is not None
    assert result.outcome == "callback"
    cb = await rig.pool.fetchrow("SELECT * FROM callbacks WHERE debt_id = $1", d.debt_id)
    assert cb["lead_id"] == lead
    row = await rig.pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead)
    assert (row["state"], row["next_try_at"]) == ("ready", cb["due_at"])


async def test_a_hang_up_during_the_charge_still_records_it_once(db_pool: asyncpg.Pool) -> None:
    gateway = SandboxGateway(delay_s=0.5)
    rig = Rig(db_pool, gateway)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    task = asyncio.create_task(rig.call(d, [*verified(d), "1", "1", *_card_keys()]))
    await asyncio.sleep(0.25)  # the charge is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await rig.pool.fetch("SELECT status FROM payments WHERE debt_id = $1", d.debt_id)
    assert [r["status"] for r in rows] == ["approved"]
    assert gateway.charges == 1


async def test_the_database_down_means_an_apology_and_an_agent(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
    # A pool whose server refuses connections: every action fails.
    dead = await asyncpg.create_pool(
        "postgresql://nobody@127.0.0.1:9/none", min_size=0, max_size=1, timeout=2
    )
    rig = Rig(dead)
    try:
        result, text = await rig.call(d, verified(d))
    finally:
        await dead.close()
    assert "tenemos un problema técnico" in text
    assert result is not None
    assert result.outcome == "transfer"


async def test_abandon_save_says_who_and_a_number_then_offers_self_service(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        attempt = await conn.fetchval(
            "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state)"
            " VALUES (gen_random_uuid(), $1, $2, $3, 'n', 'p', 'queued') RETURNING id",
            d.person_id,
            d.debt_id,
            d.phone_id,
        )
    rig.attempt = str(attempt)
    result, text = await rig.call(d, [""], entry="abandon-save")
    assert "Le llamamos de parte de" in text
    assert " ".join(d.dialed.lstrip("+")) in text
    assert result is not None
    assert result.outcome == "abandoned"
    result, text = await rig.call(
        d, ["1", "", f"{d.account}#", "19800101#", "0"], entry="abandon-save"
    )
    assert "Su saldo pendiente" in text
    assert result is not None
    assert result.outcome == "transfer"


async def test_settlement_and_nothing_due(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        paid = await debtor(conn, balance_cents=0)
    result, text = await rig.call(d, [*verified(d), "2", "2"])
    assert "El pago único de liquidación es de 900 pesos" in text  # 60 % of 1500
    promise = await rig.pool.fetchrow("SELECT * FROM promises WHERE debt_id = $1", d.debt_id)
    assert (promise["kind"], promise["total_cents"]) == ("settlement", 90000)
    result, text = await rig.call(paid, verified(paid))
    assert "Su cuenta no tiene saldo pendiente" in text
    assert result is not None
    assert result.outcome == "nothing_due"


async def test_simulate_prints_actions_and_writes(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    _, text = await rig.call(d, [*verified(d), "1", "2"])
    assert "   [verify_identity: ok]" in text
    assert "   wrote ivr_sessions: verified" in text
    assert "   wrote promises: full, 1 instalment(s), 135000" in text
    assert "CALLER: 19800101" in text


async def test_a_locked_account_sounds_like_an_unknown_one_until_the_right_factor(
    rig: Rig,
) -> None:
    # "Locked" straight after the account number told a caller which numbers exist (and that
    # someone had been trying them): now the lock is said only after a right second factor.
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        other = await debtor(conn)
    await rig.pool.execute(
        "UPDATE debts SET ivr_locked_until = now() + interval '30 minutes' WHERE id = $1",
        d.debt_id,
    )
    _, locked_wrong = await rig.call(d, ["", f"{d.account}#", "19990101#", "0"])
    unknown = dataclasses.replace(other, account="79999999")
    _, unknown_wrong = await rig.call(unknown, ["", "79999999#", "19990101#", "0"])
    assert "bloqueado" not in locked_wrong
    assert "No pudimos verificar sus datos" in locked_wrong
    session = re.compile(r"session [0-9a-f-]{36}")
    assert session.sub("", locked_wrong.replace(d.account, "N")) == session.sub(
        "", unknown_wrong.replace("79999999", "N")
    )
    result, text = await rig.call(d, verified(d))
    assert result is not None
    assert result.outcome == "locked"
    assert "bloqueado temporalmente" in text


async def test_an_unknown_account_is_asked_its_creditors_factor(rig: Rig) -> None:
    # A creditor that asks for the postal code: an account number that does not exist is
    # asked for it too, not for the date of birth (which would say "no such account").
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, policy={**POLICY, "second_factor": "postal_code"})
    _, known = await rig.call(d, ["", f"{d.account}#", "99999#", "0"])
    _, unknown = await rig.call(d, ["", "79999998#", "99999#", "0"])
    for text in (known, unknown):
        assert "marque su código postal" in text
        assert "fecha de nacimiento" not in text


async def test_a_right_factor_waits_for_a_lockout_being_written_and_is_locked(
    db_pool: asyncpg.Pool,
) -> None:
    """Guesses at once from several calls: a right one that comes while a failure is being
    counted (the debt locked by it) waits for it, and is refused if that failure locked the
    account. It was let through on what it had read before."""
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
    actions = CollectionsActions(db_pool, gateway=SandboxGateway())
    session = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language) VALUES ($1, 'collections', 'es')", session
    )
    call = Call(session, {"creditor_id": d.creditor_id}, {}, "es", None, datetime.now(UTC))
    _, found = await actions.find_account({"account": d.account}, call)
    call.data.update(found)
    async with db_pool.acquire() as other, other.transaction():
        # Another call's failure being counted: the debt locked, the lockout not yet written.
        await other.execute("SELECT 1 FROM debts WHERE id = $1 FOR UPDATE", d.debt_id)
        right = asyncio.ensure_future(actions.verify_identity({"factor": "19800101"}, call))
        await asyncio.sleep(0.3)
        assert not right.done()  # it waits for the failure's transaction
        await other.execute(
            "UPDATE debts SET ivr_locked_until = now() + interval '30 minutes' WHERE id = $1",
            d.debt_id,
        )
    result, _ = await right
    assert result == "locked"
    assert not await db_pool.fetchval("SELECT verified FROM ivr_sessions WHERE id = $1", session)
