"""The shipped flows over real FastAGI sessions: Puente's AGI server, the simulated Asterisk
running ``asterisk_conf/extensions.conf``, scripted callers and a real database.

The caller's script is a list of entries, one per input (``"1234#"`` keys then #, ``"1"`` one
key, ``""`` nothing, ``"H"`` hang up); when it runs out the caller hangs up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from compliance import ComplianceGate
from ivr import IvrService, IvrSettings, build_ivr
from pbx.agi import AgiServer, AgiSettings
from pbx.sim import SimServerSettings
from pbx.sim._agi_caller import AgiResponder
from pbx.sim.cli import build
from tests.ivr._seed import Debtor, debtor

CARD = "4242424242424242"


class Line:
    def __init__(self, pool: asyncpg.Pool, service: IvrService, agi: AgiServer, sim) -> None:
        self.pool = pool
        self.service = service
        self.agi = agi
        self.sim = sim
        self.since = None

    async def call(self, d: Debtor, keys: list[str], **kw: object) -> tuple[str, list]:
        """Place the call; wait for the IVR to end its session (then end an agent's call)."""
        exten = kw.pop("exten", d.dialed.lstrip("+"))
        self.since = await self.pool.fetchval("SELECT clock_timestamp()")
        call_id = self.sim.call_in(exten, caller=kw.pop("caller", d.number), keys=keys, **kw)
        for _ in range(400):
            session = await self.session(call_id)
            if session is not None and session["ended_at"] is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the dialplan after AGI(): Hangup, or the agent queue
        if self.sim.call_variables(call_id).get("PUENTE_NEXT") == "agent":
            self.sim.apply(self.sim.core.far_end_hangup(call_id, self.sim.now()))
        await self.sim.wait_call_ended(call_id, 20)
        return call_id, self.sim.agi_dialogue(call_id)

    async def session(self, call_id: str) -> asyncpg.Record:
        # Uniqueids repeat across simulator runs: this call's latest session.
        return await self.pool.fetchrow(
            "SELECT * FROM ivr_sessions WHERE uniqueid = $1 AND started_at >= $2"
            " ORDER BY started_at DESC LIMIT 1",
            call_id,
            self.since,
        )


@pytest.fixture
async def line(db_pool: asyncpg.Pool) -> AsyncIterator[Line]:
    service = build_ivr(db_pool, IvrSettings(), gate=ComplianceGate(db_pool), node="test")
    agi = AgiServer(service.routes(), AgiSettings(port=0))
    await agi.start()
    sim = build(
        SimServerSettings(
            ami_port=0, agi=f"127.0.0.1:{agi.port}", agi_prompt_s=0.01, agi_key_s=0.0
        ),
        agents=1,
    )
    await sim.start()
    try:
        yield Line(db_pool, service, agi, sim)
    finally:
        await sim.stop()
        await agi.stop(grace_s=1)


def commands(dialogue: list) -> list[str]:
    return [c for c, _ in dialogue if c]


def verified(d: Debtor) -> list[str]:
    return ["#", f"{d.account}#", "19800101#"]


async def test_inbound_promise_in_spanish_over_fastagi(line: Line) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    call_id, dialogue = await line.call(d, [*verified(d), "1", "2"])
    sent = commands(dialogue)
    assert sent[0] == "GET VARIABLE PUENTE_LANG"
    assert 'SET VARIABLE CHANNEL(language) "es"' in sent
    assert 'STREAM FILE puente/es/welcome "0123456789*#"' in sent
    assert "GET DATA puente/es/enter_account 7000 16" in sent
    assert 'SAY NUMBER 1500 ""' in sent
    assert 'SAY NUMBER 1350 ""' in sent
    code = await line.pool.fetchval(
        "SELECT confirmation_code FROM promises WHERE debt_id = $1", d.debt_id
    )
    assert f'SAY DIGITS {code} ""' in sent
    assert sent[-1] == 'SET VARIABLE PUENTE_IVR_OUTCOME "promise"'
    variables = line.sim.call_variables(call_id)
    assert variables["AGISTATUS"] == "SUCCESS"
    assert variables.get("PUENTE_NEXT", "") == ""
    session = await line.session(call_id)
    assert session["outcome"] == "promise"
    assert session["verified"]
    assert session["entry"] == "inbound"


async def test_english_then_an_agent_with_the_ivr_context(line: Line) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    call_id, dialogue = await line.call(d, ["9", f"{d.account}#", "19800101#", "0#"])
    sent = commands(dialogue)
    assert 'SET VARIABLE CHANNEL(language) "en"' in sent
    assert "GET DATA puente/en/enter_account 7000 16" in sent
    variables = line.sim.call_variables(call_id)
    assert variables["PUENTE_NEXT"] == "agent"
    session = await line.session(call_id)
    assert variables["PUENTE_IVR_SESSION"] == str(session["id"])
    assert session["outcome"] == "transfer"
    assert session["verified"]


async def test_garbage_and_too_long_input_get_the_invalid_prompt(line: Line) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    too_long = "1" * 30 + "#"
    call_id, dialogue = await line.call(d, ["#", "12#", too_long, "*#*", "0#"])
    sent = commands(dialogue)
    # "12": too short for an account; "*#*": GET DATA returns "*", not a date of birth.
    assert sent.count('STREAM FILE puente/es/invalid_entry "0123456789*#"') == 2
    # 30 keys: GET DATA stops at 16, an account that is not there: the factor is asked anyway.
    assert sent.count("GET DATA puente/es/enter_dob 8000 8") == 2
    assert ("GET DATA puente/es/enter_dob 8000 8", "200 result=*") in dialogue
    assert (await line.session(call_id))["outcome"] == "transfer"


# "#" alone: nothing pressed but no wait for the timeout (the simulator waits in real time).
FULL_PAYMENT = ["#", "ACCOUNT#", "19800101#", "1", "1", f"{CARD}#", "1230", "123#"]
# Where each hang-up lands: the first prompt or input after the last key.
STATES = ["welcome", "ask_account", "ask_dob", "disclosure", "read_full", "card_number",
          "card_expiry", "card_cvv"]  # fmt: skip


@pytest.mark.parametrize("at", range(len(FULL_PAYMENT)))
async def test_a_hang_up_at_every_state_is_recorded_and_nothing_half_written(
    line: Line, at: int
) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    keys = [k.replace("ACCOUNT", d.account) for k in FULL_PAYMENT[:at]] + ["H"]
    call_id, _dialogue = await line.call(d, keys)
    session = await line.session(call_id)
    assert session["outcome"] == f"hangup:{STATES[at]}"
    assert session["ended_at"] is not None
    assert (
        await line.pool.fetchval("SELECT count(*) FROM promises WHERE debt_id = $1", d.debt_id) == 0
    )
    assert (
        await line.pool.fetchval("SELECT count(*) FROM payments WHERE debt_id = $1", d.debt_id) == 0
    )
    assert line.agi.errors_total == 0


async def test_card_payment_over_fastagi_leaves_no_card_data(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    keys = [k.replace("ACCOUNT", d.account) for k in FULL_PAYMENT]
    call_id, dialogue = await line.call(d, keys)
    sent = commands(dialogue)
    assert "GET DATA puente/es/enter_card 10000 19" in sent
    assert 'STREAM FILE puente/es/payment_approved ""' in sent
    assert (await line.session(call_id))["outcome"] == "paid"
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert CARD not in logs
    assert "1230" not in logs
    for table in ("payments", "ivr_sessions", "promises", "audit_log", "call_attempts"):
        dump = await line.pool.fetchval(
            f"SELECT coalesce(string_agg(t::text, '|'), '') FROM {table} t"
        )
        assert CARD not in dump, table
    pay = await line.pool.fetchrow("SELECT * FROM payments WHERE debt_id = $1", d.debt_id)
    assert (pay["status"], pay["card_last4"]) == ("approved", "4242")


async def _attempt(conn: asyncpg.Connection, d: Debtor) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state)"
            " VALUES (gen_random_uuid(), $1, $2, $3, 'n', 'sim', 'queued') RETURNING id",
            d.person_id,
            d.debt_id,
            d.phone_id,
        )
    )


async def test_abandon_save_from_the_outbound_dialplan(line: Line) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
        attempt = await _attempt(conn, d)
    variables = {"PUENTE_ATTEMPT": attempt, "PUENTE_CAMPAIGN": "c1", "PUENTE_LANG": "es"}
    call_id, dialogue = await line.call(
        d, [""], exten="abandon", context="puente-outbound", caller="5550100", variables=variables
    )
    sent = commands(dialogue)
    code = await line.pool.fetchval("SELECT code FROM creditors WHERE id = $1", d.creditor_id)
    # Within the first commands: who is calling and a number to call back (TSR safe harbor).
    assert sent[2:5] == [
        'STREAM FILE puente/es/safe_harbor_intro "0123456789*#"',
        f'STREAM FILE puente/es/company_{code} "0123456789*#"',
        'STREAM FILE puente/es/safe_harbor_number "0123456789*#"',
    ]
    assert f'SAY DIGITS {d.dialed.lstrip("+")} "0123456789*#"' in sent
    session = await line.session(call_id)
    assert session["outcome"] == "abandoned"
    assert str(session["attempt_id"]) == attempt


async def test_agentless_reminder_then_self_service(line: Line) -> None:
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
        attempt = await _attempt(conn, d)
    variables = {"PUENTE_ATTEMPT": attempt, "PUENTE_CAMPAIGN": "c1", "PUENTE_FLOW": "reminder",
                 "PUENTE_QUEUE": "collections", "PUENTE_MODE": "agentless"}  # fmt: skip
    call_id, dialogue = await line.call(
        d, ["1", "#", f"{d.account}#", "19800101#", "4", "100#", "0101", "0#"],
        exten="agentless", context="puente-outbound", caller="5550100", variables=variables,
    )  # fmt: skip
    sent = commands(dialogue)
    assert 'STREAM FILE puente/es/reminder_intro "0123456789*#"' in sent
    assert "GET DATA puente/es/enter_account 7000 16" in sent
    session = await line.session(call_id)
    assert session["entry"] == "reminder"
    assert session["verified"]
    assert json.loads(session["trail"])[0]["state"] == "reminder_start"


# -- missing prompt files: Asterisk answers GET DATA "200 result=-1", as for a hang-up ----------
def missing_sounds(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """This simulated PBX lacks these sound files (its FastAGI legs answer accordingly)."""
    fake = functools.partial(AgiResponder, missing_sounds=frozenset(names))
    monkeypatch.setattr("pbx.sim._server.AgiResponder", fake)


async def test_a_missing_collect_prompt_plays_its_fallback_and_the_call_goes_on(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing_sounds(monkeypatch, "puente/es/enter_account")
    catalog = line.service.catalog
    fallbacks = {**catalog.fallbacks, "enter_account": ("puente/es/enter_account_v1",)}
    line.service.catalog = dataclasses.replace(catalog, fallbacks=fallbacks)
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    call_id, dialogue = await line.call(d, [*verified(d), "1", "2"])
    at = dialogue.index(("GET DATA puente/es/enter_account 7000 16", "200 result=-1"))
    assert dialogue[at + 1 : at + 3] == [
        ("CHANNEL STATUS", "200 result=6"),  # the caller is there: the file was missing
        ("GET DATA puente/es/enter_account_v1 7000 16", f"200 result={d.account}"),
    ]
    session = await line.session(call_id)
    assert session["outcome"] == "promise"  # not "hangup:ask_account"
    assert session["verified"]
    assert line.sim.call_variables(call_id)["AGISTATUS"] == "SUCCESS"
    assert line.agi.failures_total == 1


async def test_a_missing_card_prompt_still_takes_the_payment_without_logging_it(
    line: Line, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    missing_sounds(monkeypatch, "puente/es/enter_card")  # no fallback: keys with no prompt
    async with line.pool.acquire() as conn:
        d = await debtor(conn)
    call_id, dialogue = await line.call(d, [k.replace("ACCOUNT", d.account) for k in FULL_PAYMENT])
    sent = commands(dialogue)
    at = sent.index("GET DATA puente/es/enter_card 10000 19")
    assert sent[at + 1 : at + 3] == ["CHANNEL STATUS", 'GET DATA "" 10000 19']
    assert (await line.session(call_id))["outcome"] == "paid"
    pay = await line.pool.fetchrow("SELECT * FROM payments WHERE debt_id = $1", d.debt_id)
    assert (pay["status"], pay["card_last4"]) == ("approved", "4242")
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "no sound file for puente/es/enter_card" in logs
    assert CARD not in logs
    assert "1230" not in logs
