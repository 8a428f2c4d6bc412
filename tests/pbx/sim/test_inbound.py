"""Inbound calls and per-call scripted FastAGI callers in the simulated Asterisk.

Pure tests of the core in virtual time first; then Puente's real FastAGI server against the
simulator over TCP (the ``rig`` of ``test_server``, its AGI() pointed at this module's flows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import msgspec
import pytest

from pbx.agi import AgiEnvironment, AgiHangup, AgiServer, AgiSession, AgiSettings
from pbx.ami import AmiMessage
from pbx.sim import DEFAULT_DIALPLAN, CalleeModel, ModelFile, SimCore, load_dialplan
from pbx.sim._agi_caller import DEAD
from pbx.sim._calls import CallBook
from pbx.sim._core import Broadcast, ChannelGone, StartAgi
from pbx.sim._dialplan import DialplanError
from tests.pbx.sim import test_server
from tests.pbx.sim.test_server import BY_OUTCOME, Rig

rig = test_server.rig  # the simulator with Puente's AMI client, AudioSocket server and an agent

CALLER = "+5215512345678"
DID = "5551234"


# -- the core, in virtual time ----------------------------------------------------------------
def _core() -> SimCore:
    spec = msgspec.convert({"talk_s": {"dist": "fixed", "value": 5.0}}, ModelFile)
    return SimCore(load_dialplan(DEFAULT_DIALPLAN), CalleeModel(spec))


def _events(outputs: list) -> list[dict[str, str]]:
    return [dict(o.pairs) for o in outputs if isinstance(o, Broadcast)]


def test_an_inbound_call_rings_in_answers_and_runs_agi_with_its_args() -> None:
    core = _core()
    ch, out = core.call_in(DID, 0.0, caller=CALLER)
    events = _events(out)
    new = events[0]
    assert new["Event"] == "Newchannel"
    assert new["Channel"] == "PJSIP/trunk-00000000"
    assert (new["ChannelState"], new["ChannelStateDesc"]) == ("4", "Ring")
    assert (new["CallerIDNum"], new["Exten"], new["Context"]) == (CALLER, DID, "puente-inbound")
    assert new["Uniqueid"] == new["Linkedid"] == ch.id
    apps = [e["Application"] for e in events if e["Event"] == "Newexten"]
    assert apps == ["NoOp", "Set", "Set", "Answer", "Set", "AGI"]
    up = next(e for e in events if e["Event"] == "Newstate")
    assert (up["ChannelState"], up["ChannelStateDesc"]) == ("6", "Up")
    (start,) = [o for o in out if isinstance(o, StartAgi)]
    assert start.args == (DID,)
    env = dict(start.env)
    keys = [k for k, _ in start.env]
    assert keys[-3:] == ["agi_accountcode", "agi_threadid", "agi_arg_1"]  # recorded order
    assert env["agi_request"] == "agi://127.0.0.1:4573/inbound"
    assert env["agi_network_script"] == "inbound"
    assert (env["agi_callerid"], env["agi_dnid"]) == (CALLER, DID)
    assert (env["agi_context"], env["agi_extension"], env["agi_priority"]) == (
        "puente-inbound",
        DID,
        "6",
    )
    # The trunk endpoint's language (asterisk_conf/pjsip.conf: language = es), as Asterisk.
    assert (env["agi_type"], env["agi_language"], env["agi_arg_1"]) == ("PJSIP", "es", DID)

    # The flow sets PUENTE_NEXT over AGI and closes: the dialplan reads it and hangs up.
    out = core.set_variable(ch.id, "PUENTE_NEXT", "done")
    assert _events(out)[0]["Variable"] == "PUENTE_NEXT"
    out = core.media_ended(ch.id, 1.0)
    events = _events(out)
    assert (events[0]["Variable"], events[0]["Value"]) == ("AGISTATUS", "SUCCESS")
    apps = [e["Application"] for e in events if e["Event"] == "Newexten"]
    assert apps == ["GotoIf", "Hangup"]
    assert [e["Event"] for e in events][-2:] == ["Hangup", "DeviceStateChange"]
    assert (events[-2]["Cause"], events[-1]["State"]) == ("16", "NOT_INUSE")
    (gone,) = [o for o in out if isinstance(o, ChannelGone)]
    assert gone.variables["PUENTE_NEXT"] == "done"
    assert gone.variables["AGISTATUS"] == "SUCCESS"
    assert not core.channels


def test_a_plus_number_is_stripped_by_the_dialplan_but_stays_the_dnid() -> None:
    core = _core()
    _, out = core.call_in("+525551234", 0.0, caller=CALLER, variables={"CHANNEL(language)": "es"})
    (start,) = [o for o in out if isinstance(o, StartAgi)]
    env = dict(start.env)
    assert (env["agi_dnid"], env["agi_extension"], env["agi_arg_1"]) == (
        "+525551234",
        "525551234",
        "525551234",
    )
    assert env["agi_language"] == "es"
    assert _events(out)[0]["Language"] == "es"


def test_the_ivr_context_runs_a_flow_by_name_without_args() -> None:
    core = _core()
    _, out = core.call_in("payments", 0.0, caller=CALLER, context="puente-ivr")
    (start,) = [o for o in out if isinstance(o, StartAgi)]
    env = dict(start.env)
    assert env["agi_network_script"] == "payments"
    assert not any(k.startswith("agi_arg_") for k in env)


def test_a_number_the_dialplan_does_not_route_is_refused() -> None:
    with pytest.raises(DialplanError, match="404"):
        _core().call_in("abc", 0.0, caller=CALLER)


def test_the_call_book_forgets_the_oldest_ended_calls() -> None:
    book = CallBook(history=2)
    for n in range(3):
        book.channel_gone(f"c{n}", {"N": str(n)})
    assert book.get("c0") is None
    kept = book.get("c2")
    assert kept is not None
    assert kept.variables == {"N": "2"}
    assert book.forgotten_total == 1
    book.script_number("+1555", ["1#"])
    book.script_number("+1555", ["2#"])
    assert book.take_number_script("+1555") == ["1#"]
    assert book.take_number_script("+1555") == ["2#"]
    assert book.take_number_script("+1555") is None


# -- over TCP, with Puente's FastAGI server --------------------------------------------------
class Flows:
    """Puente's side of the IVR: what each flow saw and got."""

    def __init__(self) -> None:
        self.envs: list[AgiEnvironment] = []
        self.digits: list[str] = []
        self.next = "agent"
        self.confirm = False  # ask a second question (the caller may hang up there)
        self.after_hangup: list[int] = []  # answer codes of commands sent after the hang-up

    async def inbound(self, s: AgiSession) -> None:
        assert s.env is not None
        self.envs.append(s.env)
        await s.answer()
        try:
            got = await s.get_data("puente/es/ingrese-documento", 3000, 8)
            self.digits.append(got.digits)
            await s.set_variable("PUENTE_QUEUE", "collections")
            await s.set_variable("PUENTE_NEXT", self.next)
            if self.confirm:
                await s.get_data("puente/es/confirme", 3000, 1)
        except AgiHangup:
            # The caller left: variables still read, channel I/O is refused (agi/02-04).
            self.after_hangup.append((await s.command("GET VARIABLE PUENTE_NEXT")).code)
            self.after_hangup.append((await s.command('STREAM FILE puente/es/adios ""')).code)
            raise

    async def abandon_save(self, s: AgiSession) -> None:
        assert s.env is not None
        self.envs.append(s.env)
        got = await s.get_data("puente/es/abandono", 3000, 1)
        self.digits.append(got.digits)
        await s.set_variable("PUENTE_NEXT", "done")

    async def survey(self, s: AgiSession) -> None:
        assert s.env is not None
        self.envs.append(s.env)
        got = await s.get_data("puente/es/encuesta", 3000, 1)
        self.digits.append(got.digits)


@pytest.fixture
async def ivr(rig: Rig) -> AsyncIterator[Flows]:
    flows = Flows()
    server = AgiServer(
        {"inbound": flows.inbound, "abandon-save": flows.abandon_save, "survey": flows.survey},
        AgiSettings(port=0),
    )
    await server.start()
    rig.sim.core.globals["PUENTE_AGI"] = f"127.0.0.1:{server.port}"
    rig.sim.settings = dataclasses.replace(rig.sim.settings, agi_prompt_s=0.05, agi_key_s=0.01)
    try:
        yield flows
    finally:
        await server.stop(grace_s=0.5)


def _of(call_id: str, event: str):
    return lambda m: m.name == event and m.get("Uniqueid") == call_id


def _seen(rig: Rig, call_id: str, event: str) -> list[AmiMessage]:
    return [m for m in rig.events if m.name == event and m.get("Uniqueid") == call_id]


@pytest.mark.parametrize("next_step", ["agent", "done"])
async def test_inbound_flow_sees_the_call_and_the_dialplan_follows_its_variable(
    rig: Rig, ivr: Flows, next_step: str
) -> None:
    ivr.next = next_step
    call_id = rig.sim.call_in(DID, caller=CALLER, keys=["1234#", "H"])
    await rig.sim.wait_call_ended(call_id, 10)

    (env,) = ivr.envs
    assert env.args == (DID,)
    assert (env.callerid, env.dnid, env.uniqueid, env.script) == (CALLER, DID, call_id, "inbound")
    assert env.channel.startswith("PJSIP/trunk-")
    assert ivr.digits == ["1234"]
    assert rig.sim.agi_dialogue(call_id) == [
        ("ANSWER", "200 result=0"),
        ("GET DATA puente/es/ingrese-documento 3000 8", "200 result=1234"),
        ('SET VARIABLE PUENTE_QUEUE "collections"', "200 result=1"),
        (f'SET VARIABLE PUENTE_NEXT "{next_step}"', "200 result=1"),
    ]
    variables = rig.sim.call_variables(call_id)
    assert variables["PUENTE_NEXT"] == next_step
    assert variables["AGISTATUS"] == "SUCCESS"  # Puente closed the socket: AGI() returned

    hangup = await rig.wait_for(_of(call_id, "Hangup"))
    (new,) = _seen(rig, call_id, "Newchannel")
    assert (new["CallerIDNum"], new["Exten"], new["ChannelState"]) == (CALLER, DID, "4")
    assert [m["ChannelStateDesc"] for m in _seen(rig, call_id, "Newstate")] == ["Up"]
    assert any(m["Variable"] == "PUENTE_NEXT" for m in _seen(rig, call_id, "VarSet"))
    if next_step == "agent":
        connect = await rig.wait_for(_of(call_id, "AgentConnect"))
        assert connect["Queue"] == "collections"
    else:
        assert not _seen(rig, call_id, "QueueCallerJoin")
        apps = [m["Application"] for m in _seen(rig, call_id, "Newexten")]
        assert apps[-2:] == ["GotoIf", "Hangup"]
        assert hangup["Cause"] == "16"


async def test_caller_hanging_up_mid_flow_gets_the_hangup_line_then_511(
    rig: Rig, ivr: Flows
) -> None:
    ivr.confirm = True
    call_id = rig.sim.call_in(DID, caller=CALLER, keys=["1234#", "H"])
    await rig.sim.wait_call_ended(call_id, 10)

    assert rig.sim.agi_dialogue(call_id)[-5:] == [
        ("GET DATA puente/es/confirme 3000 1", "200 result=-1"),
        ("", "HANGUP"),  # after the -1, before the next answer (agi/02, agi/04)
        # -1 is also a missing prompt file: the helper asks before it calls this a hang-up.
        ("CHANNEL STATUS", DEAD.rstrip("\n")),
        ("GET VARIABLE PUENTE_NEXT", "200 result=1 (agent)"),
        ('STREAM FILE puente/es/adios ""', DEAD.rstrip("\n")),
    ]
    assert ivr.after_hangup == [200, 511]
    variables = rig.sim.call_variables(call_id)
    assert variables["AGISTATUS"] == "HANGUP"
    assert variables["PUENTE_NEXT"] == "agent"  # set, but the caller is gone: no queue
    await rig.wait_for(_of(call_id, "Hangup"))
    assert not _seen(rig, call_id, "QueueCallerJoin")
    statuses = [m["Value"] for m in _seen(rig, call_id, "VarSet") if m["Variable"] == "AGISTATUS"]
    assert statuses == ["HANGUP"]


async def test_consecutive_agi_legs_of_a_call_share_its_keys(rig: Rig, ivr: Flows) -> None:
    # No agent: the queue times out and abandon-save runs as a second AGI leg of the call.
    rig.sim.core.queue("collections").members.clear()
    rig.sim.core.globals["PUENTE_INBOUND_QUEUE_TIMEOUT_S"] = "0.2"
    call_id = rig.sim.call_in(DID, caller=CALLER, keys=["1234#", "9"])
    await rig.sim.wait_call_ended(call_id, 10)

    assert [e.script for e in ivr.envs] == ["inbound", "abandon-save"]
    assert ivr.envs[1].args == ("", "")  # ${PUENTE_ATTEMPT},${PUENTE_CAMPAIGN}: unset inbound
    assert ivr.digits == ["1234", "9"]  # one key list, consumed in order across the legs
    assert rig.sim.agi_dialogue(call_id)[-2:] == [
        ("GET DATA puente/es/abandono 3000 1", "200 result=9"),
        ('SET VARIABLE PUENTE_NEXT "done"', "200 result=1"),
    ]
    variables = rig.sim.call_variables(call_id)
    assert (variables["QUEUESTATUS"], variables["PUENTE_NEXT"]) == ("TIMEOUT", "done")
    await rig.wait_for(_of(call_id, "QueueCallerAbandon"))


async def test_script_number_reaches_the_next_outbound_agi_leg(rig: Rig, ivr: Flows) -> None:
    number = BY_OUTCOME["human"]
    rig.sim.script_number(number, ["7#"])
    first, _ = await rig.originate(number, PUENTE_MODE="agentless", PUENTE_FLOW="survey")
    await rig.sim.wait_call_ended(first, 15)
    second, _ = await rig.originate(number, PUENTE_MODE="agentless", PUENTE_FLOW="survey")
    await rig.sim.wait_call_ended(second, 15)

    assert ivr.digits == ["7", "1"]  # then the global agi_keys ("1234", 1 digit asked)
    assert ivr.envs[0].args == (first, "c1")
    assert rig.sim.agi_dialogue(first) == [
        ("GET DATA puente/es/encuesta 3000 1", "200 result=7"),
    ]
    assert rig.sim.call_variables(first)["PUENTE_FLOW"] == "survey"


async def test_waiting_for_a_live_call_times_out_and_unknown_calls_are_refused(
    rig: Rig, ivr: Flows
) -> None:
    ivr.confirm = True
    call_id = rig.sim.call_in(DID, caller=CALLER, keys=["1234#", "1"])
    with pytest.raises(TimeoutError):
        await rig.sim.wait_call_ended(call_id, 0.01)
    await rig.sim.wait_call_ended(call_id, 10)
    with pytest.raises(KeyError):
        rig.sim.call_variables("no-such-call")
