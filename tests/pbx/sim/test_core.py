"""The simulator core in virtual time: each outcome emits what the real Asterisk emitted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import pytest

from pbx.sim._actions import handle_action
from pbx.sim._callees import CalleeModel, ModelFile
from pbx.sim._core import Broadcast, EndMedia, Reply, SimCore, StartAgi, StartAudioSocket
from pbx.sim._dialplan import load_dialplan, load_queue_names, parse_dialplan

ROOT = Path(__file__).resolve().parents[3]
PLAN = load_dialplan(ROOT / "asterisk_conf" / "extensions.conf")
ATTEMPT = "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"


def make_core(outcome: str, **model: object) -> SimCore:
    spec = msgspec.convert({"numbers": {"+5215500000001": outcome}, **model}, ModelFile)
    return SimCore(PLAN, CalleeModel(spec))


def originate(core: SimCore, now: float = 0.0, timeout_ms: int = 30000, asynchronous: bool = True):
    return handle_action(core, 1, _originate_pairs("collections", timeout_ms, asynchronous), now)


def _originate_pairs(queue: str, timeout_ms: int = 30000, asynchronous: bool = True) -> list:
    return [
        ("Action", "Originate"),
        ("ActionID", f"{ATTEMPT}-o"),
        ("Channel", "PJSIP/+5215500000001@trunk"),
        ("Context", "puente-outbound"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", str(timeout_ms)),
        ("Async", "true" if asynchronous else "false"),
        ("CallerID", '"Puente" <5550107>'),
        ("ChannelId", ATTEMPT),
        ("Variable", f"PUENTE_ATTEMPT={ATTEMPT}"),
        ("Variable", "PUENTE_CAMPAIGN=c1"),
        ("Variable", f"PUENTE_QUEUE={queue}"),
        ("Variable", "PUENTE_MODE=predictive"),
    ]


def run_until(core: SimCore, until: float) -> list:
    out = []
    while (t := core.next_deadline()) is not None and t <= until:
        out += core.advance(t)
    return out


def names(outputs: list) -> list[str]:
    res = []
    for o in outputs:
        if isinstance(o, Broadcast | Reply):
            d = dict(o.pairs)
            res.append(d.get("Event") or f"Response:{d.get('Response')}")
        else:
            res.append(type(o).__name__)
    return res


def field(outputs: list, event: str, key: str) -> list[str]:
    return [
        dict(o.pairs)[key]
        for o in outputs
        if isinstance(o, Broadcast) and dict(o.pairs).get("Event") == event
    ]


@pytest.mark.parametrize(
    ("outcome", "reason", "cause", "dial_status"),
    [
        ("busy", "0", "17", ["BUSY"]),
        ("congestion", "0", "34", ["CONGESTION"]),
        ("rejected", "0", "21", ["NOANSWER"]),
        ("unallocated", "0", "1", ["NOANSWER"]),
        ("no_answer", "3", "19", []),
    ],
)
def test_failed_outcomes_follow_the_recorded_table(outcome, reason, cause, dial_status) -> None:
    core = make_core(outcome)
    out = originate(core, timeout_ms=5000)
    out += run_until(core, 60)
    assert names(out)[:2] == ["Response:Success", "Newchannel"]
    assert field(out, "OriginateResponse", "Response") == ["Failure"]
    assert field(out, "OriginateResponse", "Reason") == [reason]
    assert field(out, "OriginateResponse", "Uniqueid") == ["<unknown>"]
    assert field(out, "OriginateResponse", "Channel") == ["PJSIP/+5215500000001@trunk"]
    assert field(out, "OriginateResponse", "ActionID") == [f"{ATTEMPT}-o"]
    assert field(out, "Hangup", "Cause") == [cause]
    assert field(out, "Hangup", "Uniqueid") == [ATTEMPT]
    assert field(out, "DialEnd", "DialStatus") == dial_status
    assert core.live_channels == 0


def test_no_answer_rings_until_the_originate_timeout() -> None:
    core = make_core("no_answer")
    originate(core, now=10.0, timeout_ms=8000)
    assert run_until(core, 17.9) == []
    out = run_until(core, 18.0)
    assert field(out, "OriginateResponse", "Reason") == ["3"]


def test_answered_call_runs_the_outbound_dialplan_into_audiosocket_then_the_queue() -> None:
    core = make_core(
        "human", ring_s={"dist": "fixed", "value": 2.0}, patience_s={"dist": "fixed", "value": 60.0}
    )
    out = originate(core)
    assert "VarSet" in names(out)
    out = run_until(core, 2.0)
    assert field(out, "OriginateResponse", "Reason") == ["4"]
    assert field(out, "OriginateResponse", "Uniqueid") == [ATTEMPT]
    assert field(out, "DialEnd", "DialStatus") == ["ANSWER"]
    starts = [o for o in out if isinstance(o, StartAudioSocket)]
    assert len(starts) == 1
    assert starts[0].uuid == ATTEMPT
    assert starts[0].address == "127.0.0.1:9092"
    channel = field(out, "Newchannel", "Channel") or [c.snap.name for c in core.channels.values()]
    # Puente sets the verdict over AMI, then ends the socket.
    out = handle_action(
        core,
        1,
        [
            ("Action", "Setvar"),
            ("ActionID", "s1"),
            ("Channel", channel[0]),
            ("Variable", "AMDSTATUS"),
            ("Value", "HUMAN"),
        ],
        2.5,
    )
    assert names(out) == ["Response:Success", "VarSet"]
    out = core.media_ended(ATTEMPT, 2.6)
    assert field(out, "UserEvent", "AMDSTATUS") == ["HUMAN"]
    assert field(out, "QueueCallerJoin", "Queue") == ["collections"]
    # No agents: the 2 s queue timeout sends the caller to abandon-save over AGI.
    out = run_until(core, 5.0)
    assert "QueueCallerAbandon" in names(out)
    agi = [o for o in out if isinstance(o, StartAgi)]
    assert agi
    assert agi[0].url == "agi://127.0.0.1:4573/abandon-save"
    assert dict(agi[0].env)["agi_network_script"] == "abandon-save"
    assert agi[0].args == (ATTEMPT, "c1")


def test_agent_in_queue_gets_the_call_and_completes() -> None:
    core = make_core(
        "human",
        ring_s={"dist": "fixed", "value": 1.0},
        talk_s={"dist": "fixed", "value": 30.0},
        patience_s={"dist": "fixed", "value": 60.0},
    )
    out = handle_action(
        core,
        1,
        [
            ("Action", "QueueAdd"),
            ("ActionID", "a"),
            ("Queue", "collections"),
            ("Interface", "PJSIP/agent101"),
            ("MemberName", "Ana"),
        ],
        0.0,
    )
    assert names(out) == ["Response:Success", "QueueMemberAdded"]
    originate(core)
    run_until(core, 1.0)
    out = core.media_ended(ATTEMPT, 1.5)
    out += run_until(core, 3.0)
    assert names(out).count("AgentCalled") == 1
    assert "AgentConnect" in names(out)
    assert field(out, "AgentConnect", "MemberName") == ["Ana"]
    out = run_until(core, 40.0)
    assert field(out, "AgentComplete", "Reason") == ["caller"]
    assert field(out, "Hangup", "Uniqueid")[-1] == ATTEMPT
    assert core.queues["collections"].members["PJSIP/agent101"].snap.calls_taken == 1


def test_the_queues_wrap_up_applies_to_a_member_without_its_own() -> None:
    # queues.conf wrapuptime = 5; QueueAdd gives the member none of its own: its events say
    # Wrapuptime: 0 and app_queue holds it back for the queue's 5 s after each call.
    core = make_core(
        "human",
        ring_s={"dist": "fixed", "value": 1.0},
        talk_s={"dist": "fixed", "value": 30.0},
        patience_s={"dist": "fixed", "value": 60.0},
    )
    core.queue("collections").wrapuptime = 5
    out = handle_action(
        core,
        1,
        [("Action", "QueueAdd"), ("ActionID", "a"), ("Queue", "collections"),
         ("Interface", "PJSIP/agent101")],
        0.0,
    )  # fmt: skip
    assert field(out, "QueueMemberAdded", "Wrapuptime") == ["0"]
    originate(core)
    run_until(core, 1.0)
    core.media_ended(ATTEMPT, 1.5)
    out = run_until(core, 40.0)
    assert field(out, "QueueMemberStatus", "Wrapuptime")[-1] == "0"
    member = core.queues["collections"].members["PJSIP/agent101"]
    assert member.snap.calls_taken == 1
    assert 4.9 < member.busy_until - member.snap.last_call <= 6.0


def test_the_callers_time_running_out_while_an_agent_rings_is_a_ring_no_answer() -> None:
    # app_queue's rna(): AgentRingNoAnswer with the ring's length in ms, the member's leg
    # hangs up; asterisk_conf's queues have autopause = no, so the member stays unpaused.
    core = make_core("human", ring_s={"dist": "fixed", "value": 1.0})
    core.s = dataclasses.replace(core.s, agent_ring_s=5.0)  # an agent who does not pick up
    handle_action(
        core, 1,
        [("Action", "QueueAdd"), ("ActionID", "a"), ("Queue", "collections"),
         ("Interface", "PJSIP/agent101")],
        0.0,
    )  # fmt: skip
    originate(core)
    run_until(core, 1.0)
    out = core.media_ended(ATTEMPT, 1.5)  # AMD: HUMAN, to the queue with a short budget
    out += run_until(core, 10.0)
    assert field(out, "AgentRingNoAnswer", "Interface") == ["PJSIP/agent101"]
    ring_ms = int(field(out, "AgentRingNoAnswer", "RingTime")[0])
    assert 500 <= ring_ms <= 2500
    assert "AgentConnect" not in names(out)
    member = core.queues["collections"].members["PJSIP/agent101"]
    assert (member.snap.paused, member.channel, member.ring) == (0, None, None)
    assert "QueueMemberPause" not in names(out)


def test_only_the_queues_of_queues_conf_exist_as_in_asterisk() -> None:
    # asterisk_conf/queues.conf: collections and two preview queues; the template is no queue.
    assert load_queue_names() == {"collections", "preview-a100", "preview-a101"}
    core = make_core("human", ring_s={"dist": "fixed", "value": 1.0})
    add = [("Action", "QueueAdd"), ("ActionID", "a"), ("Queue", "preview-a105"),
           ("Interface", "PJSIP/agent105")]  # fmt: skip
    (reply,) = handle_action(core, 1, add, 0.0)
    assert dict(reply.pairs)["Message"] == "Unable to add interface to queue: No such queue"
    remove = [("Action", "QueueRemove"), ("ActionID", "r"), ("Queue", "preview-a105"),
              ("Interface", "PJSIP/agent105")]  # fmt: skip
    (reply,) = handle_action(core, 1, remove, 0.0)
    assert dict(reply.pairs)["Message"] == "Unable to remove interface from queue: No such queue"
    # Queue() on it returns at once with QUEUESTATUS=UNKNOWN: the safe-harbor message plays.
    core = make_core("human", ring_s={"dist": "fixed", "value": 1.0})
    handle_action(core, 1, _originate_pairs("preview-a105"), 0.0)
    run_until(core, 1.0)
    out = core.media_ended(ATTEMPT, 1.5)
    assert ("QUEUESTATUS", "UNKNOWN") in [
        (d.get("Variable"), d.get("Value")) for d in (dict(o.pairs) for o in out
                                                        if isinstance(o, Broadcast))
    ]  # fmt: skip
    results = [d for d in (dict(o.pairs) for o in out if isinstance(o, Broadcast))
               if d.get("UserEvent") == "PuenteQueueResult"]  # fmt: skip
    assert [d["QUEUESTATUS"] for d in results] == ["UNKNOWN"]
    assert any(isinstance(o, StartAgi) and o.url.endswith("/abandon-save") for o in out)


def test_far_end_hangup_during_audiosocket_closes_the_media() -> None:
    core = make_core(
        "human", ring_s={"dist": "fixed", "value": 1.0}, patience_s={"dist": "fixed", "value": 3.0}
    )
    originate(core)
    run_until(core, 1.0)
    out = run_until(core, 10.0)
    assert any(isinstance(o, EndMedia) for o in out)
    assert field(out, "Hangup", "Cause") == ["16"]


def test_actions_answer_like_asterisk() -> None:
    core = make_core("busy")
    out = handle_action(core, 1, [("Action", "NoSuchAction"), ("ActionID", "x")], 0)
    assert dict(out[0].pairs)["Message"].startswith("Invalid/unknown command: NoSuchAction.")
    out = handle_action(
        core,
        1,
        [("Action", "Getvar"), ("ActionID", "g"), ("Channel", "PJSIP/none"), ("Variable", "X")],
        0,
    )
    assert dict(out[0].pairs) == {
        "Response": "Error",
        "ActionID": "g",
        "Message": "No such channel",
    }
    out = handle_action(
        core, 1, [("Action", "Originate"), ("ActionID", "n"), ("Channel", "nobody")], 0
    )
    assert dict(out[0].pairs)["Message"] == "Invalid channel"
    out = handle_action(core, 1, [("Action", "CoreShowChannels"), ("ActionID", "c")], 0)
    assert names(out) == ["Response:Success", "CoreShowChannelsComplete"]
    assert dict(out[-1].pairs)["ListItems"] == "0"
    out = handle_action(
        core, 1, [("Action", "QueueStatus"), ("ActionID", "q"), ("Queue", "nope")], 0
    )
    assert dict(out[-1].pairs)["ListItems"] == "0"


def _answered_in_audiosocket(core: SimCore) -> list:
    originate(core)
    out = run_until(core, 2.0)
    assert [o.uuid for o in out if isinstance(o, StartAudioSocket)] == [ATTEMPT]
    return out


def test_a_failed_audiosocket_under_tryexec_goes_on_as_notsure() -> None:
    """app_audiosocket returns -1 (no connection, bad UUID, 2 s idle); TryExec() (app_exec.c)
    sets TRYSTATUS=FAILED and returns 0: the answered person reaches the queue."""
    core = make_core(
        "human", ring_s={"dist": "fixed", "value": 2.0}, patience_s={"dist": "fixed", "value": 60.0}
    )
    _answered_in_audiosocket(core)
    out = core.media_failed(ATTEMPT, 2.5)
    assert next(
        (d["Variable"], d["Value"])
        for d in (dict(o.pairs) for o in out if isinstance(o, Broadcast))
        if d.get("Event") == "VarSet"
    ) == ("TRYSTATUS", "FAILED")
    assert field(out, "UserEvent", "AMDSTATUS") == ["NOTSURE"]
    assert field(out, "UserEvent", "AMDCAUSE") == ["PUENTE-NO-VERDICT"]
    assert field(out, "QueueCallerJoin", "Uniqueid") == [ATTEMPT]
    assert "Hangup" not in names(out)


def test_a_normal_end_of_audiosocket_under_tryexec_is_success() -> None:
    core = make_core(
        "human", ring_s={"dist": "fixed", "value": 2.0}, patience_s={"dist": "fixed", "value": 60.0}
    )
    _answered_in_audiosocket(core)
    out = core.media_ended(ATTEMPT, 2.5)
    assert ("TRYSTATUS", "SUCCESS") in [
        (d.get("Variable"), d.get("Value")) for d in (dict(o.pairs) for o in out)
    ]
    assert field(out, "UserEvent", "AMDSTATUS") == ["NOTSURE"]


def _core_with(dialplan: str) -> SimCore:
    spec = msgspec.convert(
        {"numbers": {"+5215500000001": "human"}, "ring_s": {"dist": "fixed", "value": 1.0},
         "patience_s": {"dist": "fixed", "value": 60.0}},
        ModelFile,
    )  # fmt: skip
    return SimCore(parse_dialplan(dialplan), CalleeModel(spec))


def test_a_failed_audiosocket_on_its_own_hangs_the_channel_up() -> None:
    """What Asterisk does without TryExec(): the application's -1 ends the PBX."""
    core = _core_with(
        "[puente-outbound]\nexten => s,1,AudioSocket(${PUENTE_ATTEMPT},127.0.0.1:9)\n"
        " same => n,UserEvent(After)\n"
    )
    originate(core)
    run_until(core, 1.0)
    out = core.media_failed(ATTEMPT, 1.5)
    assert field(out, "Hangup", "Uniqueid") == [ATTEMPT]
    assert "UserEvent" not in names(out)


def test_an_application_asterisk_does_not_have_hangs_the_channel_up() -> None:
    """pbx.c: "No application 'X' for extension": the PBX stops; nothing after it runs."""
    core = _core_with("[puente-outbound]\nexten => s,1,NoSuchApp(x)\n same => n,UserEvent(After)\n")
    originate(core)
    out = run_until(core, 1.0)
    assert field(out, "Hangup", "Uniqueid") == [ATTEMPT]
    assert "UserEvent" not in names(out)
    # Under TryExec() it is NOAPP, and the dialplan goes on.
    core = _core_with(
        "[puente-outbound]\nexten => s,1,TryExec(NoSuchApp(x))\n"
        " same => n,UserEvent(After,T: ${TRYSTATUS})\n same => n,Hangup()\n"
    )
    originate(core)
    out = run_until(core, 1.0)
    assert field(out, "UserEvent", "T") == ["NOAPP"]


@pytest.mark.parametrize(
    ("mode", "queue_result"), [("predictive", None), ("agentless", "IVRFAILED")]
)
def test_a_flow_that_cannot_run_leaves_the_message_not_silence(
    mode: str, queue_result: str | None
) -> None:
    """FastAGI unreachable: AGI() sets AGISTATUS=FAILURE and returns 0 (res_agi). The person
    no agent reached (abandon-save) or an agentless answer hears the campaign's message (the
    business name and the call-back number) instead of silence and a hang-up; an agentless
    one also counts as abandoned (QUEUESTATUS IVRFAILED)."""
    core = make_core(
        "human", ring_s={"dist": "fixed", "value": 2.0}, patience_s={"dist": "fixed", "value": 60.0}
    )
    pairs = [p for p in _originate_pairs("nobody") if p != ("Variable", "PUENTE_MODE=predictive")]
    pairs += [
        ("Variable", f"PUENTE_MODE={mode}"),
        ("Variable", "PUENTE_VM=puente/es/voicemail_limited&puente/es/company_acme"),
        ("Variable", "PUENTE_VM_NUMBER=5255000001"),
        ("Variable", "PUENTE_FLOW=reminder"),
    ]
    handle_action(core, 1, pairs, 0.0)
    out = run_until(core, 2.0)
    assert [o.uuid for o in out if isinstance(o, StartAudioSocket)] == [ATTEMPT]
    out = core.media_ended(ATTEMPT, 2.5)  # AMD done: NOTSURE
    out += run_until(core, 10.0)
    agi = [o for o in out if isinstance(o, StartAgi)]
    assert len(agi) == 1
    out = core.media_ended(ATTEMPT, 10.5, agi_status="FAILURE")
    out += run_until(core, 30.0)
    apps = [
        (d.get("Application"), d.get("AppData"))
        for d in (dict(o.pairs) for o in out if isinstance(o, Broadcast))
        if d.get("Event") == "Newexten"
    ]
    assert ("Playback", "puente/es/voicemail_limited&puente/es/company_acme") in apps
    assert ("SayDigits", "5255000001") in apps
    assert field(out, "UserEvent", "QUEUESTATUS") == ([queue_result] if queue_result else [])


def test_the_voicemail_message_reports_playbackstatus_as_asterisk_sets_it() -> None:
    """app_playback sets PLAYBACKSTATUS (a VarSet) as it returns (amd/02, agi/01); the machine
    path reports it in UserEvent(PuenteVoicemail), and the attempt's disposition is
    ``voicemail`` only when it says SUCCESS. Without it every message the simulator plays
    was recorded as not left."""
    core = make_core("machine", ring_s={"dist": "fixed", "value": 2.0})
    pairs = [
        *_originate_pairs("collections"),
        ("Variable", "PUENTE_VM=puente/en/voicemail_limited&puente/en/company_acme"),
        ("Variable", "PUENTE_VM_NUMBER=15550100000"),
    ]
    handle_action(core, 1, pairs, 0.0)
    out = run_until(core, 2.0)
    assert [o.uuid for o in out if isinstance(o, StartAudioSocket)] == [ATTEMPT]
    (channel,) = [c.snap.name for c in core.channels.values()]
    setvar = [("Action", "Setvar"), ("ActionID", "s1"), ("Channel", channel)]
    handle_action(core, 1, [*setvar, ("Variable", "AMDSTATUS"), ("Value", "MACHINE")], 2.5)
    out = core.media_ended(ATTEMPT, 2.6)
    out += run_until(core, 20.0)
    events = [dict(o.pairs) for o in out if isinstance(o, Broadcast)]
    vm = [e for e in events if e.get("UserEvent") == "PuenteVoicemail"]
    assert [e["PLAYBACKSTATUS"] for e in vm] == ["SUCCESS"]
    order = [
        e.get("Variable") or e.get("Application") or e.get("UserEvent")
        for e in events
        if e.get("Event") in ("VarSet", "Newexten", "UserEvent")
    ]
    assert order.index("Playback") < order.index("PLAYBACKSTATUS") < order.index("SayDigits")


@pytest.mark.parametrize(
    ("cause", "played"),
    [
        ("LONGGREETING-1500-1500", True),
        ("BEEP-4200-1000", True),
        ("FAX-1100-600", False),  # a fax machine records no voice
        ("SIT-985-300", False),  # an intercept ("not in service"): nobody gets the message
    ],
)
def test_the_message_is_left_on_answering_machines_only(cause: str, played: bool) -> None:
    """A fax or a special information tone is MACHINE too, but the message played to it is
    heard by nobody, and its PuenteVoicemail (PLAYBACKSTATUS SUCCESS) would record the
    attempt's disposition as a message left."""
    core = make_core("machine", ring_s={"dist": "fixed", "value": 2.0})
    pairs = [
        *_originate_pairs("collections"),
        ("Variable", "PUENTE_VM=puente/en/voicemail_limited&puente/en/company_acme"),
    ]
    handle_action(core, 1, pairs, 0.0)
    run_until(core, 2.0)
    (channel,) = [c.snap.name for c in core.channels.values()]
    for name, value in (("AMDCAUSE", cause), ("AMDSTATUS", "MACHINE")):
        setvar = [("Action", "Setvar"), ("ActionID", name), ("Channel", channel)]
        handle_action(core, 1, [*setvar, ("Variable", name), ("Value", value)], 2.5)
    out = core.media_ended(ATTEMPT, 2.6)
    out += run_until(core, 20.0)
    events = [dict(o.pairs) for o in out if isinstance(o, Broadcast)]
    assert [e["AMDCAUSE"] for e in events if e.get("UserEvent") == "PuenteAMD"] == [cause]
    apps = field(out, "Newexten", "Application")
    assert ("Playback" in apps) is played
    assert (field(out, "UserEvent", "UserEvent") == ["PuenteAMD", "PuenteVoicemail"]) is played
    assert field(out, "Hangup", "Uniqueid") == [ATTEMPT]


def voicemail_said(*variables: str) -> list[tuple[str, str]]:
    """A machine answers a call originated with ``variables`` (``NAME=value``) besides the
    voicemail message and number: what its Playback and SayDigits say, and in which language."""
    core = make_core("machine", ring_s={"dist": "fixed", "value": 2.0})
    pairs = [
        *_originate_pairs("collections"),
        *(("Variable", v) for v in variables),
        ("Variable", "PUENTE_VM_NUMBER=15550100000"),
    ]
    handle_action(core, 1, pairs, 0.0)
    run_until(core, 2.0)
    (channel,) = [c.snap.name for c in core.channels.values()]
    setvar = [("Action", "Setvar"), ("ActionID", "s1"), ("Channel", channel)]
    handle_action(core, 1, [*setvar, ("Variable", "AMDSTATUS"), ("Value", "MACHINE")], 2.5)
    out = core.media_ended(ATTEMPT, 2.6)
    out += run_until(core, 20.0)
    return [
        (d["Application"], d["Language"])
        for d in (dict(o.pairs) for o in out if isinstance(o, Broadcast))
        if d.get("Event") == "Newexten" and d.get("Application") in ("Playback", "SayDigits")
    ]


@pytest.mark.parametrize("lang", ["es", "en"])
def test_the_call_back_number_is_said_in_the_debtors_language(lang: str) -> None:
    """SayDigits() speaks in the channel's language (the trunk's, pjsip.conf): the message is
    the debtor's (PUENTE_LANG), and so must the number said after it be."""
    said = voicemail_said(f"PUENTE_LANG={lang}", f"PUENTE_VM=puente/{lang}/voicemail_limited")
    assert said == [("Playback", lang), ("SayDigits", lang)]


def test_queue_member_times_are_unix_seconds_as_in_asterisk() -> None:
    # ami/11: "LoginTime: 1795334968" (when app_queue added the member), LastPause likewise.
    # The simulator gave seconds since it started, which no Puente code could compare with
    # anything (the logged-out sweeper compares LoginTime with the logout).
    core = make_core("human")
    core.wall_zero = 1_795_334_900.0  # (the server sets it to time.time() when it starts)
    add = [("Action", "QueueAdd"), ("ActionID", "a"), ("Queue", "collections"),
           ("Interface", "PJSIP/agent105")]  # fmt: skip
    handle_action(core, 1, add, 68.4)
    pause = [("Action", "QueuePause"), ("ActionID", "p"), ("Interface", "PJSIP/agent105"),
             ("Paused", "true")]  # fmt: skip
    handle_action(core, 1, pause, 70.0)
    out = handle_action(core, 1, [("Action", "QueueStatus"), ("ActionID", "q")], 71.0)
    (member,) = [dict(o.pairs) for o in out if dict(o.pairs).get("Event") == "QueueMember"]
    assert member["LoginTime"] == "1795334968"
    assert member["LastPause"] == "1795334970"
