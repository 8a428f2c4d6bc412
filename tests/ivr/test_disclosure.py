"""What the collections flow says, and to whom, before and after the identity check.

Whoever answers an outbound call may not be the debtor (a spouse, a child, a coworker): until
the caller passed the identity check, nothing may tell them of a debt, an account, a balance or
a collection (FDCPA 15 U.S.C. 1692c(b), 1692b(2); Reg F 12 CFR 1006.6(d); CONDUSEF, despachos
de cobranza; Chile Ley 19.496 art. 37; Colombia Ley 2300 de 2023). After it, a debtor in the
United States hears the debt-collector disclosure before the debt is discussed (1692e(11), Reg F
1006.18(e)). The static checks walk the flow's graph; the others run calls against the database.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg
import pytest

from compliance import ComplianceGate
from ivr import ACTIONS, Catalog, CollectionsActions, IvrService, load_flows
from ivr._flow import State
from ivr._machine import Collect, File, Finish, FlowMachine, Play, RunAction, Speech
from ivr.cli import ConsoleChannel
from ivr.payments import SandboxGateway
from pbx.agi import AgiHangup
from tests.ivr._seed import POLICY, Debtor, debtor

CATALOG = Catalog.load()
FLOW = load_flows(None, CATALOG, ACTIONS)["collections"]
OUTBOUND = ("abandon-save", "reminder")  # answered by whoever picks up
IDENTIFY = "welcome"  # where the identity check starts (the person said it is them)

# Words that tell a listener of a debt or of a collection, in either language.
DEBT_WORDS = re.compile(
    r"\b(deud|adeud|saldo|cobr|pago|pagar|moros|vencid|crédit|credit|debt|balance|collect"
    r"|owe[sd]?\b|owing|pay|overdue|past due)",
    re.IGNORECASE,
)
# ... and those that tell a third party the person called has an account with the caller.
ACCOUNT_WORDS = re.compile(r"\b(cuenta|account|recordatorio|reminder|contrato|contract)", re.I)


def _state_prompts(s: State) -> list[str]:
    ids = [i.value for i in s.play if i.kind == "prompt"]
    if s.collect is not None:
        ids += [p for p in (s.collect.invalid, s.collect.noinput) if p]
    return ids


def _walk(roots: Iterable[str], *, skip: set[str], follow_keys: bool = True) -> set[str]:
    """The states reachable from ``roots`` without entering ``skip``."""
    seen: set[str] = set()
    todo = [r for r in roots if r not in skip]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        s = FLOW.states[name]
        for key, target in s.refs():
            if s.name == "verify" and key == "results.ok":
                continue  # the identity check passed: the next stage
            if not follow_keys and key.startswith("keys."):
                continue
            if target not in skip:
                todo.append(target)
        if s.kind == "collect" and FLOW.agent and not (s.collect and s.collect.no_agent_key):
            todo.append(FLOW.agent)
    return seen


def _before_verification() -> set[str]:
    roots = [*FLOW.entries.values(), FLOW.on_error]
    return _walk(roots, skip=set())


def _to_whoever_answered() -> set[str]:
    """Outbound entries up to the point where the person says it is them (key 1 to the
    identity check): every other key, a time-out, the agent key, an error."""
    roots = [FLOW.entries[e] for e in OUTBOUND]
    return _walk(roots, skip={IDENTIFY})


def _texts(prompt: str) -> dict[str, str]:
    return dict(CATALOG.texts[prompt])


def test_the_stages_are_what_the_walk_thinks() -> None:
    before = _before_verification()
    assert {"ask_account", "verify", "verify_failed", "locked"} <= before
    assert not {"disclosure", "balance", "menu", "load_offers"} & before
    answered = _to_whoever_answered()
    assert {"safe_harbor_message", "reminder_message"} <= answered
    assert IDENTIFY not in answered
    assert "ask_account" not in answered


def test_nothing_said_before_verification_names_a_debt_or_a_number() -> None:
    for name in sorted(_before_verification()):
        s = FLOW.states[name]
        for item in s.play:
            assert item.kind in ("prompt", "prompt_var", "digits"), (name, item)
            if item.kind == "prompt_var":
                assert item.value == "company", (name, item)  # never the disclosure here
            if item.kind == "digits":
                assert item.value == "callback_number", (name, item)
        for prompt in _state_prompts(s):
            for lang, text in _texts(prompt).items():
                assert not DEBT_WORDS.search(text), (name, prompt, lang, text)


def test_whoever_answered_hears_no_account_either() -> None:
    for name in sorted(_to_whoever_answered()):
        for prompt in _state_prompts(FLOW.states[name]):
            for lang, text in _texts(prompt).items():
                assert not ACCOUNT_WORDS.search(text), (name, prompt, lang, text)
                assert not DEBT_WORDS.search(text), (name, prompt, lang, text)


def test_no_money_is_said_before_the_disclosure() -> None:
    """From a passed identity check, every way to an amount plays a disclosure first."""
    disclosing = {
        n
        for n, s in FLOW.states.items()
        if any(
            (i.kind == "prompt" and i.value.startswith("disclosure_"))
            or (i.kind == "prompt_var" and i.value == "disclosure")
            for i in s.play
        )
    }
    start = FLOW.states["verify"].results["ok"]
    undisclosed = _walk([start], skip=disclosing) if start not in disclosing else set()
    for name in undisclosed:
        kinds = {i.kind for i in FLOW.states[name].play}
        assert not kinds & {"money", "number", "date"}, name
        assert FLOW.states[name].action not in ("load_offers", "choose_offer"), name


# -- the machine alone: what a third party hears, key by key ----------------------------------
def _said(speech: tuple[Speech, ...], lang: str) -> str:
    out = []
    for item in speech:
        if isinstance(item, File):
            pid = item.candidates[0].rsplit("/", 1)[-1]
            out.append(CATALOG.texts.get(pid, {}).get(lang, f"[{pid}]"))
    return " ".join(out)


def _answered(entry: str, lang: str) -> tuple[FlowMachine, Collect]:
    m = FlowMachine(FLOW, CATALOG, entry=entry, language=lang, data={"attempt": "x"})
    step = m.start()
    assert isinstance(step, RunAction)
    assert step.name == "load_attempt"
    step = m.action_done("ok", {"company": "company_acme", "callback_number": "5550100"})
    assert isinstance(step, Collect)
    return m, step


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("entry", OUTBOUND)
def test_not_the_person_ends_the_call_at_once(entry: str, lang: str) -> None:
    m, first = _answered(entry, lang)
    heard = _said(first.speech, lang)
    assert not ACCOUNT_WORDS.search(heard), heard
    assert not DEBT_WORDS.search(heard), heard
    step = m.collected("2")
    spoken = []
    while not isinstance(step, Finish):
        assert isinstance(step, Play), f"{entry}: a wrong party is asked again: {step}"
        spoken.append(_said(step.speech, lang))
        step = m.played()
    assert step.outcome == "wrong_party"
    assert m.state.name not in _before_verification() - _to_whoever_answered()
    for text in spoken:
        assert not ACCOUNT_WORDS.search(text), text
        assert not DEBT_WORDS.search(text), text


@pytest.mark.parametrize("entry", OUTBOUND)
def test_whoever_answered_hears_who_calls_and_a_number(entry: str) -> None:
    """TSR 16 CFR 310.4(b)(4)(iii), TCPA 47 CFR 64.1200(b): the name and a number, before any
    key (a third party who presses 2 has heard them already)."""
    _, first = _answered(entry, "es")
    files = [i.candidates[0] for i in first.speech if isinstance(i, File)]
    assert "puente/es/company_acme" in files
    assert any(getattr(i, "value", None) == "5550100" for i in first.speech)


def test_the_person_who_says_it_is_them_goes_to_the_identity_check() -> None:
    m, _ = _answered("reminder", "es")
    step = m.collected("1")
    assert m.state.name == IDENTIFY
    assert isinstance(step, Collect)


# -- Spanish and English say the same thing ----------------------------------------------------
_ES_KEY = re.compile(r"\bmarque (\d|cero|asterisco)\b", re.I)
_EN_KEY = re.compile(r"\bpress (\d|zero|star)\b", re.I)
_WORD_KEY = {"cero": "0", "zero": "0", "asterisco": "*", "star": "*"}


def test_every_prompt_offers_the_same_keys_in_both_languages() -> None:
    for pid, texts in CATALOG.texts.items():
        assert set(texts) == {"es", "en"}, pid
        if pid == "for_english":  # each language offers the other one
            continue
        es = [_WORD_KEY.get(k.lower(), k) for k in _ES_KEY.findall(texts["es"])]
        en = [_WORD_KEY.get(k.lower(), k) for k in _EN_KEY.findall(texts["en"])]
        assert es == en, (pid, texts)


def test_the_disclosures_say_the_same_in_both_languages() -> None:
    us = _texts("disclosure_us")
    assert "debt collector" in us["en"]
    assert "attempt to collect a debt" in us["en"]
    assert "information obtained will be used for that purpose" in us["en"]
    assert "cobrador de deudas" in us["es"]
    assert "intento de cobrar una deuda" in us["es"]
    assert "información obtenida se usará para ese fin" in us["es"]


# -- real calls --------------------------------------------------------------------------------
class Rig:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        actions = CollectionsActions(pool, gateway=SandboxGateway(), gate=ComplianceGate(pool))
        self.service = IvrService(pool, {FLOW.name: FLOW}, CATALOG, actions, node="test")

    async def call(
        self, d: Debtor, keys: list[str], *, entry: str = "inbound", lang: str = "es",
        attempt: str = "",
    ):  # fmt: skip
        out = io.StringIO()
        channel = ConsoleChannel(CATALOG, list(keys), out)
        data = {"dialed": d.dialed, "attempt": attempt}
        try:
            result = await self.service.run_call(
                FLOW, entry, channel, language=lang, data=data, caller=d.number
            )
        except AgiHangup:
            result = None
        return result, out.getvalue()

    async def attempt(self, d: Debtor) -> str:
        return str(
            await self.pool.fetchval(
                "INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state)"
                " VALUES (gen_random_uuid(), $1, $2, $3, 'n', 'p', 'queued') RETURNING id",
                d.person_id,
                d.debt_id,
                d.phone_id,
            )
        )


@pytest.fixture
async def rig(db_pool: asyncpg.Pool) -> Rig:
    return Rig(db_pool)


def _ivr_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("IVR:"))


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("entry", OUTBOUND)
async def test_a_third_party_hears_nothing_of_an_account(rig: Rig, entry: str, lang: str) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, language=lang)
    attempt = await rig.attempt(d)
    for keys, outcome in (([""], "reminded" if entry == "reminder" else "abandoned"),
                          (["2"], "wrong_party")):  # fmt: skip
        result, text = await rig.call(d, keys, entry=entry, lang=lang, attempt=attempt)
        heard = _ivr_lines(text)
        assert " ".join(d.dialed.lstrip("+")) in heard  # the call-back number
        assert not ACCOUNT_WORDS.search(heard), heard
        assert not DEBT_WORDS.search(heard), heard
        assert "1500" not in heard
        assert result is not None
        assert result.outcome == outcome
        assert heard.count("IVR:") <= 2  # the message with the question, and the goodbye
        session = await rig.pool.fetchrow(
            "SELECT outcome, verified FROM ivr_sessions WHERE id = $1", result.session_id
        )
        assert session["outcome"] == outcome
        assert not session["verified"]


async def _disclosure_then_balance(rig: Rig, d: Debtor) -> str:
    _, text = await rig.call(d, ["", f"{d.account}#", "19800101#", "0"], lang="en")
    assert "Your balance due is 1500 dollars" in text
    return text


async def test_a_us_debtor_hears_the_fdcpa_disclosure_whatever_the_policy(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        policy = {**POLICY, "disclosure": "disclosure_generic"}
        d = await debtor(conn, country="US", currency="USD", policy=policy)
    text = await _disclosure_then_balance(rig, d)
    miranda = text.index("This is an attempt to collect a debt")
    assert "This is a communication from a debt collector" in text
    assert miranda < text.index("Your balance due is")


@pytest.mark.parametrize("country", ["PR", "GU", "VI"])
async def test_a_debtor_in_a_us_territory_hears_the_fdcpa_disclosure(
    rig: Rig, country: str
) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, country=country, currency="USD")
    text = await _disclosure_then_balance(rig, d)
    assert text.index("This is an attempt to collect a debt") < text.index("Your balance due is")


@pytest.mark.parametrize(
    ("country", "notice"),
    [
        ("MX", "Le informamos que esta llamada es para la gestión de cobranza"),
        ("CO", "Esta llamada es para la gestión de cobranza de su cuenta"),
        ("CL", "Esta llamada es para la gestión de cobranza de su cuenta"),
        ("PE", "Esta llamada es para la gestión de cobranza de su cuenta"),
        ("ES", "Esta llamada es para la gestión de cobranza de su cuenta"),
        ("US", "Es un intento de cobrar una deuda"),
    ],
)
async def test_the_disclosure_comes_after_verification_and_before_the_balance(
    rig: Rig, country: str, notice: str
) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn, country=country)
    _, text = await rig.call(d, ["", f"{d.account}#", "19800101#", "0"])
    verified = text.index("[verify_identity: ok]")
    assert verified < text.index(notice) < text.index("Su saldo pendiente es de 1500")
    assert "cobranza" not in text[:verified]
    assert "deuda" not in text[:verified]


async def test_a_failed_check_says_nothing_of_the_debt(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
    wrong = [f"{d.account}#", "19990101#"]
    result, text = await rig.call(d, ["", *wrong, *wrong, *wrong])
    heard = _ivr_lines(text)
    assert result is not None
    assert result.outcome == "locked"
    assert not DEBT_WORDS.search(heard), heard
    assert "1500 pesos" not in heard
    assert heard.count("No pudimos verificar") == 2  # then locked: no endless retries


@pytest.mark.parametrize("entry", OUTBOUND)
async def test_without_its_attempt_a_call_still_names_the_campaigns_creditor(
    rig: Rig, entry: str
) -> None:
    # TSR 16 CFR 310.4(b)(4)(iii): the abandon-save message gives the seller's name and a
    # number. An attempt row that cannot be read (it should not happen) gave neither: the
    # dialplan passes the campaign too, and its creditor gives both.
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        code = f"hs{d.creditor_id}"
        await conn.execute(
            "INSERT INTO campaigns (code, name, creditor_id) VALUES ($1, 'T', $2)",
            code,
            d.creditor_id,
        )
    out = io.StringIO()
    data = {"attempt": str(uuid.uuid4()), "campaign": code}  # no such attempt
    result = await rig.service.run_call(
        FLOW, entry, ConsoleChannel(CATALOG, [""], out), language="es", data=data, caller=None
    )
    heard = _ivr_lines(out.getvalue())
    assert " ".join(d.dialed.lstrip("+")) in heard  # the creditor's call-back number
    assert "nuestra oficina" not in heard  # (the generic name said when nothing is known)
    assert not DEBT_WORDS.search(heard), heard
    assert result is not None
    assert result.outcome == ("reminded" if entry == "reminder" else "abandoned")


async def test_not_the_person_marks_the_number_so_it_is_not_dialed_again(rig: Rig) -> None:
    # The outcome alone changed nothing: the lead was retried on the same number and the
    # same third party called again. The number is now marked as an agent's wrong_party
    # disposition marks it (the gate refuses it), with an audit row; other numbers stay.
    async with rig.pool.acquire() as conn:
        d = await debtor(conn)
        other = await conn.fetchval(
            "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, '+525512340001',"
            " 'mobile') RETURNING id",
            d.person_id,
        )
    attempt = await rig.attempt(d)
    result = await rig.service.run_call(  # as the FastAGI handler calls it
        FLOW,
        "reminder",
        ConsoleChannel(CATALOG, ["2"], io.StringIO()),
        language="es",
        data={"attempt": attempt},
        caller=None,
        attempt_id=uuid.UUID(attempt),
    )
    assert result is not None
    assert result.outcome == "wrong_party"
    statuses = dict(
        await rig.pool.fetch(
            "SELECT id, status FROM phone_numbers WHERE person_id = $1", d.person_id
        )
    )
    assert statuses == {d.phone_id: "wrong_party", other: "active"}
    audit = await rig.pool.fetchval(
        "SELECT details->>'attempt' FROM audit_log WHERE action = 'ivr.wrong_party'"
        " AND subject = $1",
        f"phone:{d.phone_id}",
    )
    assert audit == attempt
    decision = await ComplianceGate(rig.pool).check(
        person_id=d.person_id,
        debt_ids=[d.debt_id],
        phone=d.phone_id,
        channel="voice",
        packs=["mx"],
        now=datetime(2026, 12, 1, 17, tzinfo=UTC),
    )
    assert not decision.allowed
