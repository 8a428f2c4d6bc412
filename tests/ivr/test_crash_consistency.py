"""Crash consistency of the IVR: real faults between the IVR and PostgreSQL, between Asterisk and
the FastAGI server, and in the payment gateway; two calls for one debt at once.

The FastAGI calls run the shipped flow on Puente's AGI server against the simulated Asterisk
(``tests/ivr/test_agi_calls.py``'s :class:`Line`), with a :class:`FaultProxy` on each link: the
simulator reaches the AGI server through one (a dropped FastAGI connection is ``cut_all``), and
the IVR's pool reaches PostgreSQL through the other (a database that fails mid-call is
``refusing`` plus ``cut_all``). The assertions read the database over a direct pool.

The rule under test: the caller is never told something is confirmed unless it is committed;
a failure is an apology and an agent (Spanish by default, English); nothing is half-written,
nothing is written twice, no card digit is logged, and the session row ends with a reason.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from compliance import ComplianceGate
from ivr import ACTIONS, Catalog, CollectionsActions, IvrService, IvrSettings, build_ivr, plans
from ivr import _charge as charge_module
from ivr._actions import Call
from ivr._flow import load_flows
from ivr.cli import ConsoleChannel
from ivr.payments import SandboxGateway
from pbx.agi import AgiHangup, AgiServer, AgiSession, AgiSettings
from pbx.sim import SimServerSettings
from pbx.sim._agi_caller import AgiAnswer, AgiResponder
from pbx.sim.cli import build
from tests.ivr._seed import Debtor, debtor
from tests.ivr.test_agi_calls import Line, commands
from tests.support.faultproxy import FaultProxy

CARD = "4242424242424242"
EXPIRY = "1230"
CVV = "123"
CATALOG = Catalog.load()
FLOWS = load_flows(None, CATALOG, ACTIONS)
FLOW = FLOWS["collections"]


def keys_for(d: Debtor, *rest: str) -> list[str]:
    """Welcome (# = nothing, no wait), the account, the date of birth, then ``rest``."""
    return ["#", f"{d.account}#", "19800101#", *rest]


def pay_in_full(d: Debtor) -> list[str]:
    return keys_for(d, "1", "1", f"{CARD}#", EXPIRY, f"{CVV}#")


def promise_in_full(d: Debtor) -> list[str]:
    return keys_for(d, "1", "2")


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(
        parts._replace(netloc=f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}")
    )


class Rig(Line):
    """A :class:`Line` whose two links go through fault proxies."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: IvrService,
        agi: AgiServer,
        sim: Any,
        db_proxy: FaultProxy,
        agi_proxy: FaultProxy,
    ) -> None:
        super().__init__(pool, service, agi, sim)
        self.db_proxy = db_proxy
        self.agi_proxy = agi_proxy

    @property
    def gateway(self) -> SandboxGateway:
        return self.service.actions.gateway  # type: ignore[return-value]

    async def database_down(self) -> None:
        self.db_proxy.refusing = True
        await self.db_proxy.cut_all()

    def database_up(self) -> None:
        self.db_proxy.refusing = False

    async def count(self, table: str, d: Debtor, where: str = "true") -> int:
        return await self.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE debt_id = $1 AND {where}", d.debt_id
        )


@pytest.fixture
async def rig(db_pool: asyncpg.Pool, database_url: str) -> AsyncIterator[Rig]:
    parts = urlsplit(database_url)
    db_proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await db_proxy.start()
    ivr_pool = await asyncpg.create_pool(
        _through(database_url, db_proxy.port), min_size=0, max_size=5, timeout=3
    )
    service = build_ivr(ivr_pool, IvrSettings(), gate=ComplianceGate(ivr_pool), node="test")
    agi = AgiServer(service.routes(), AgiSettings(port=0))
    await agi.start()
    agi_proxy = FaultProxy("127.0.0.1", agi.port)
    await agi_proxy.start()
    sim = build(
        SimServerSettings(
            ami_port=0, agi=f"127.0.0.1:{agi_proxy.port}", agi_prompt_s=0.01, agi_key_s=0.0
        ),
        agents=1,
    )
    await sim.start()
    try:
        yield Rig(db_pool, service, agi, sim, db_proxy, agi_proxy)
    finally:
        await sim.stop()
        await agi.stop(grace_s=1)
        await agi_proxy.close()
        await ivr_pool.close()
        await db_proxy.close()


def on_command(
    monkeypatch: pytest.MonkeyPatch, prefix: str, act: Callable[[], Any], *, delay_s: float = 0.0
) -> asyncio.Event:
    """Run ``act`` (a function or a coroutine function) once, ``delay_s`` after Puente sends the
    first AGI command that starts with ``prefix``; the event is set when it has run."""
    original = AgiSession.command
    done = asyncio.Event()
    armed = [True]

    async def fire() -> None:
        await asyncio.sleep(delay_s)
        out = act()
        if asyncio.iscoroutine(out):
            await out
        done.set()

    async def command(self: AgiSession, command: str, timeout_s: float | None = None):
        if armed[0] and command.startswith(prefix):
            armed[0] = False
            task = asyncio.ensure_future(fire())
            if delay_s == 0:
                await task
        return await original(self, command, timeout_s)

    monkeypatch.setattr(AgiSession, "command", command)
    return done


def slow_commands(monkeypatch: pytest.MonkeyPatch, prefix: str, seconds: float) -> None:
    """The simulated caller takes ``seconds`` on every command that starts with ``prefix`` (a
    long prompt, a slow card entry): time for a fault to land in the middle of it."""

    class Slow(AgiResponder):
        def respond(self, command: str) -> AgiAnswer:
            answer = super().respond(command)
            if command.startswith(prefix):
                return AgiAnswer(answer.text, seconds, answer.hangup_after, answer.assigned)
            return answer

    monkeypatch.setattr("pbx.sim._server.AgiResponder", Slow)


def wrap_action(monkeypatch: pytest.MonkeyPatch, name: str, before: Callable[[], Any]) -> None:
    """Run ``before`` (a coroutine function) just before the action ``name`` does its work."""
    original = getattr(CollectionsActions, name)

    async def wrapped(self: CollectionsActions, args: Any, call: Call) -> Any:
        await before()
        return await original(self, args, call)

    monkeypatch.setattr(CollectionsActions, name, wrapped)


# -- 1. the database fails mid-call: an apology, an agent, nothing half-written ---------------


@pytest.mark.parametrize(("country", "lang"), [("MX", "es"), ("US", "en")])
async def test_database_lost_while_storing_a_promise(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, country: str, lang: str
) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, country=country, currency="MXN" if country == "MX" else "USD")
    wrap_action(monkeypatch, "store_promise", rig.database_down)
    on_command(monkeypatch, f"STREAM FILE puente/{lang}/apology", rig.database_up)
    call_id, dialogue = await rig.call(d, promise_in_full(d))
    sent = commands(dialogue)
    assert f'STREAM FILE puente/{lang}/apology ""' in sent
    assert not any("promise_recorded" in c or c.startswith("SAY DIGITS") for c in sent)
    assert rig.sim.call_variables(call_id)["AGISTATUS"] == "SUCCESS"  # the session ended
    assert rig.sim.call_variables(call_id)["PUENTE_NEXT"] == "agent"
    assert await rig.count("promises", d) == 0
    assert await rig.pool.fetchval("SELECT status FROM debts WHERE id = $1", d.debt_id) == "open"
    session = await rig.session(call_id)
    assert (session["outcome"], session["ended_at"] is not None) == ("transfer", True)


async def test_database_lost_inside_the_payment_transaction(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway approved; the row that records it and the balance go together or not at
    all. The caller is not told "approved"; the payment stays pending (its outcome is the
    gateway's, to be reconciled), and a second call cannot charge the debt again."""
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    apply = charge_module._apply_payment

    async def cut_then_apply(*args: Any) -> None:
        await rig.database_down()
        await apply(*args)

    monkeypatch.setattr(charge_module, "_apply_payment", cut_then_apply)
    on_command(monkeypatch, "STREAM FILE puente/es/apology", rig.database_up)
    call_id, dialogue = await rig.call(d, pay_in_full(d))
    sent = commands(dialogue)
    assert 'STREAM FILE puente/es/apology ""' in sent
    assert not any("payment_approved" in c for c in sent)
    pay = await rig.pool.fetch("SELECT status, confirmation_code FROM payments WHERE debt_id = $1",
                               d.debt_id)  # fmt: skip
    assert [(p["status"], p["confirmation_code"]) for p in pay] == [("pending", None)]
    debt = await rig.pool.fetchrow("SELECT balance_cents, status FROM debts WHERE id = $1",
                                   d.debt_id)  # fmt: skip
    assert (debt["balance_cents"], debt["status"]) == (150000, "open")
    assert (await rig.session(call_id))["outcome"] == "transfer"
    assert rig.gateway.charges == 1
    # The caller tries again: the debt has a payment whose outcome is not known; no new charge.
    monkeypatch.setattr(charge_module, "_apply_payment", apply)
    call_id, dialogue = await rig.call(d, pay_in_full(d))
    sent = commands(dialogue)
    assert rig.gateway.charges == 1
    assert await rig.count("payments", d) == 1
    assert not any("payment_approved" in c for c in sent)
    assert 'STREAM FILE puente/es/payment_unknown ""' in sent


async def test_database_lost_while_booking_a_callback(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    wrap_action(monkeypatch, "schedule_callback", rig.database_down)
    on_command(monkeypatch, "STREAM FILE puente/es/apology", rig.database_up)
    call_id, dialogue = await rig.call(d, keys_for(d, "5", "1"))
    sent = commands(dialogue)
    assert 'STREAM FILE puente/es/apology ""' in sent
    assert not any("callback_booked" in c for c in sent)
    assert await rig.count("callbacks", d) == 0
    assert (await rig.session(call_id))["outcome"] == "transfer"


async def test_database_away_when_the_call_starts_loses_nothing(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session row could not be written at the start (a blip): the promise made later in
    the call, once the database is back, is stored, and the session's row is there at the end."""
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    await rig.database_down()
    # Back once the session has started (its row could not be written), before any action.
    on_command(monkeypatch, "SET VARIABLE CHANNEL(language)", rig.database_up)
    call_id, dialogue = await rig.call(d, promise_in_full(d))
    sent = commands(dialogue)
    code = await rig.pool.fetchval(
        "SELECT confirmation_code FROM promises WHERE debt_id = $1", d.debt_id
    )
    assert code is not None, sent
    assert f'SAY DIGITS {code} ""' in sent
    session = await rig.session(call_id)
    assert session is not None
    assert (session["outcome"], session["verified"]) == ("promise", True)


# -- 2. the FastAGI connection dropped by Asterisk ---------------------------------------------


async def test_connection_dropped_mid_prompt(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    slow_commands(monkeypatch, "STREAM FILE puente/es/your_balance", 2.0)
    on_command(monkeypatch, "STREAM FILE puente/es/your_balance", rig.agi_proxy.cut_all,
               delay_s=0.2)  # fmt: skip
    call_id, _ = await rig.call(d, promise_in_full(d))
    session = await rig.session(call_id)
    assert session["outcome"] == "hangup:balance"
    assert session["ended_at"] is not None
    assert await rig.count("promises", d) == 0


async def test_connection_dropped_mid_card_entry_logs_no_card_data(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    slow_commands(monkeypatch, "GET DATA puente/es/enter_cvv", 2.0)
    on_command(monkeypatch, "GET DATA puente/es/enter_cvv", rig.agi_proxy.cut_all, delay_s=0.2)
    call_id, _ = await rig.call(d, pay_in_full(d))
    session = await rig.session(call_id)
    assert session["outcome"] == "hangup:card_cvv"
    assert session["ended_at"] is not None
    assert await rig.count("payments", d) == 0
    assert rig.gateway.charges == 0
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert CARD not in logs
    assert CARD[-8:] not in logs
    assert EXPIRY not in logs
    trail = str(session["trail"])
    assert CARD not in trail
    assert EXPIRY not in trail


async def test_connection_dropped_during_the_charge_records_it_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    gateway = rig.gateway
    charge = gateway.charge

    async def charge_then_drop(request: Any) -> Any:
        result = await charge(request)
        await rig.agi_proxy.cut_all()  # Asterisk goes away while the charge is answered
        await asyncio.sleep(0.1)
        return result

    monkeypatch.setattr(gateway, "charge", charge_then_drop)
    call_id, _ = await rig.call(d, pay_in_full(d))
    pay = await rig.pool.fetch("SELECT status FROM payments WHERE debt_id = $1", d.debt_id)
    assert [p["status"] for p in pay] == ["approved"]
    session = await rig.session(call_id)
    assert session["ended_at"] is not None
    assert session["outcome"] == "hangup:paid"  # not "error": the caller was gone
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert CARD not in logs
    assert EXPIRY not in logs
    # The caller calls back and keys the same payment: the debt is paid, nothing is charged.
    monkeypatch.setattr(gateway, "charge", charge)
    call_id, dialogue = await rig.call(d, pay_in_full(d))
    assert gateway.charges == 1
    assert await rig.count("payments", d) == 1
    assert 'STREAM FILE puente/es/nothing_due ""' in commands(dialogue)


async def test_connection_dropped_right_after_the_promise_then_a_call_back(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promise is committed before it is read back; the caller who did not hear the code
    (the line dropped) and calls back is told it, and no second promise is written."""
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    slow_commands(monkeypatch, "STREAM FILE puente/es/promise_recorded", 2.0)
    on_command(monkeypatch, "STREAM FILE puente/es/promise_recorded", rig.agi_proxy.cut_all,
               delay_s=0.2)  # fmt: skip
    call_id, _ = await rig.call(d, promise_in_full(d))
    session = await rig.session(call_id)
    assert session["outcome"] == "hangup:promise_done"
    code = await rig.pool.fetchval(
        "SELECT confirmation_code FROM promises WHERE debt_id = $1", d.debt_id
    )
    # Asterisk runs the flow again (or the caller calls back) and asks for the same promise.
    call_id, dialogue = await rig.call(d, promise_in_full(d))
    sent = commands(dialogue)
    assert await rig.count("promises", d) == 1
    assert 'STREAM FILE puente/es/promise_exists ""' in sent
    assert f'SAY DIGITS {code} ""' in sent
    assert (await rig.session(call_id))["outcome"] == "promise_exists"


# -- 3. the card charge: idempotent, a timeout is unknown --------------------------------------


async def test_gateway_timeout_is_unknown_and_never_resubmitted(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    rig.gateway.delay_s = 1.0  # decided at once, the answer lost in transit
    rig.service.actions.gateway_timeout_s = 0.2
    call_id, dialogue = await rig.call(d, pay_in_full(d))
    sent = commands(dialogue)
    assert rig.gateway.charges == 1
    # Never "no charge was made": the charge may have gone through.
    assert not any("payments_unavailable" in c or "payment_approved" in c for c in sent)
    assert 'STREAM FILE puente/es/payment_unknown ""' in sent
    assert rig.sim.call_variables(call_id)["PUENTE_NEXT"] == "agent"
    rows = await rig.pool.fetch("SELECT status FROM payments WHERE debt_id = $1", d.debt_id)
    assert [r["status"] for r in rows] == ["pending"]  # unknown: neither failed nor paid
    balance = await rig.pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id)
    assert balance == 150000
    # Another call, another card and amount (a settlement): not sent while the first is unknown.
    rig.gateway.delay_s = 0.0
    keys = keys_for(d, "2", "1", "5555555555554444#", EXPIRY, f"{CVV}#")
    _, dialogue = await rig.call(d, keys)
    assert rig.gateway.charges == 1
    assert await rig.count("payments", d) == 1
    assert 'STREAM FILE puente/es/payment_unknown ""' in commands(dialogue)


class _Console:
    """The flow over the console channel (no AGI), for the action-level races."""

    def __init__(self, pool: asyncpg.Pool, gateway: SandboxGateway) -> None:
        actions = CollectionsActions(pool, gateway=gateway, gate=ComplianceGate(pool))
        self.service = IvrService(pool, FLOWS, CATALOG, actions, node="test")

    async def call(self, d: Debtor, keys: list[str]) -> tuple[Any, str]:
        out = io.StringIO()
        channel = ConsoleChannel(CATALOG, [k if k != "#" else "" for k in keys], out)
        try:
            result = await self.service.run_call(
                FLOW, "inbound", channel, language="es", data={"dialed": d.dialed},
                caller=d.number,
            )  # fmt: skip
        except AgiHangup:
            result = None
        return result, out.getvalue()


async def test_a_retried_payment_step_charges_and_applies_once(db_pool: asyncpg.Pool) -> None:
    """The same step tried again (same session, same key) after its result was lost: the
    gateway answers its first result and the balance and the plan are applied once."""
    async with db_pool.acquire() as conn:
        d = await debtor(conn, balance_cents=100000)
    gateway = SandboxGateway()
    actions = CollectionsActions(db_pool, gateway=gateway)
    session_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language) VALUES ($1, 'collections', 'es')",
        session_id,
    )
    call = Call(session_id, {"verified": True, "debt_id": d.debt_id}, {}, "es", d.number,
                datetime.now(UTC))  # fmt: skip
    _, offer = await actions.choose_offer({"kind": "plan", "months": "3"}, call)
    call.data.update(offer)
    results = []
    for _ in range(3):
        call.secrets.update(card=CARD, expiry=EXPIRY, cvv=CVV)
        call.debt = None
        results.append(await actions.charge_card({}, call))
    assert [r for r, _ in results] == ["approved"] * 3
    assert len({u["confirmation"] for _, u in results}) == 1
    assert gateway.charges == 1
    assert (
        await db_pool.fetchval("SELECT count(*) FROM payments WHERE debt_id = $1", d.debt_id) == 1
    )
    assert await db_pool.fetchval("SELECT balance_cents FROM debts WHERE id = $1", d.debt_id) == (
        100000 - 33333
    )
    assert (
        await db_pool.fetchval("SELECT count(*) FROM promises WHERE debt_id = $1", d.debt_id) == 1
    )


# -- 4. two calls for the same debt at once ----------------------------------------------------


def barrier_before(monkeypatch: pytest.MonkeyPatch, name: str, parties: int) -> None:
    """Hold the action ``name`` until ``parties`` calls are in it: they race from there."""
    barrier = asyncio.Barrier(parties)
    original = getattr(CollectionsActions, name)

    async def wrapped(self: CollectionsActions, args: Any, call: Call) -> Any:
        async with asyncio.timeout(5):
            await barrier.wait()
        return await original(self, args, call)

    monkeypatch.setattr(CollectionsActions, name, wrapped)


async def test_two_calls_at_once_make_one_active_promise(
    db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
    console = _Console(db_pool, SandboxGateway())
    due = (datetime.now(UTC).date() + timedelta(days=5)).strftime("%d%m")
    barrier_before(monkeypatch, "store_promise", 2)
    (a, text_a), (b, text_b) = await asyncio.gather(
        console.call(d, keys_for(d, "1", "2")),  # pay in full, promised
        console.call(d, keys_for(d, "4", "500#", due, "1")),  # a custom promise
    )
    promises = await db_pool.fetch(
        "SELECT confirmation_code FROM promises WHERE debt_id = $1 AND status = 'active'",
        d.debt_id,
    )
    assert len(promises) == 1
    assert sorted([a.outcome, b.outcome]) == ["promise", "promise_exists"]
    code = " ".join(promises[0]["confirmation_code"])
    assert f"Su código de confirmación es {code}" in text_a
    assert f"Su código de confirmación es {code}" in text_b


async def test_two_calls_at_once_cannot_both_pay_the_debt(
    db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
    gateway = SandboxGateway(delay_s=0.3)
    console = _Console(db_pool, gateway)
    barrier_before(monkeypatch, "charge_card", 2)
    (a, _), (b, _) = await asyncio.gather(
        console.call(d, pay_in_full(d)),
        console.call(d, keys_for(d, "1", "1", "5555555555554444#", EXPIRY, f"{CVV}#")),
    )
    assert gateway.charges == 1
    rows = await db_pool.fetch("SELECT status FROM payments WHERE debt_id = $1", d.debt_id)
    assert [r["status"] for r in rows] == ["approved"]
    assert sorted([a.outcome, b.outcome]) == ["paid", "transfer"]


async def test_a_call_that_read_the_balance_before_another_paid_cannot_pay_again(
    db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session B heard the balance, then session A paid it all; B's payment is refused before
    the gateway, and B hears the account again (nothing due)."""
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
    gateway = SandboxGateway()
    console = _Console(db_pool, gateway)
    b_ready, paid = asyncio.Event(), asyncio.Event()
    original = CollectionsActions.charge_card

    async def charge_card(self: CollectionsActions, args: Any, call: Call) -> Any:
        async with asyncio.timeout(5):
            if call.secrets.get("card") == "5555555555554444":  # B: the offer read, A pays
                b_ready.set()
                await paid.wait()
                return await original(self, args, call)
            await b_ready.wait()  # A pays once B has heard the balance and the offer
            result = await original(self, args, call)
            paid.set()
            return result

    monkeypatch.setattr(CollectionsActions, "charge_card", charge_card)
    (a, _), (b, text_b) = await asyncio.gather(
        console.call(d, pay_in_full(d)),
        console.call(d, keys_for(d, "1", "1", "5555555555554444#", EXPIRY, f"{CVV}#")),
    )
    assert (a.outcome, b.outcome) == ("paid", "nothing_due"), text_b
    assert gateway.charges == 1
    assert "Su cuenta no tiene saldo pendiente" in text_b


async def test_a_taken_confirmation_code_does_not_lose_an_approved_payment(
    db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes are 7 random digits: with many payments a draw is sometimes taken. The approved
    charge is recorded with another code, not left pending behind an apology."""
    async with db_pool.acquire() as conn:
        d = await debtor(conn)
        other = await debtor(conn)
    taken = plans.confirmation_code(1234567)
    await db_pool.execute(
        "INSERT INTO payments (debt_id, idempotency_key, amount_cents, currency, status, gateway,"
        " confirmation_code) VALUES ($1, 'old', 100, 'MXN', 'approved', 'sandbox', $2)",
        other.debt_id,
        taken,
    )
    draws = iter([1234567, 7654321])
    monkeypatch.setattr(charge_module._random, "randbelow", lambda n: next(draws))
    gateway = SandboxGateway()
    result, text = await _Console(db_pool, gateway).call(d, pay_in_full(d))
    assert result is not None
    assert result.outcome == "paid", text
    row = await db_pool.fetchrow(
        "SELECT status, confirmation_code FROM payments WHERE debt_id = $1", d.debt_id
    )
    assert (row["status"], row["confirmation_code"]) == (
        "approved",
        plans.confirmation_code(7654321),
    )
