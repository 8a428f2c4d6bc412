"""The simulator's event builders produce the field layout the real Asterisk 22 wrote."""

from __future__ import annotations

from collections import Counter

import pytest

from pbx.sim import _events as ev
from tests.support import transcripts


def _recorded_layouts() -> dict[str, Counter[tuple[str, ...]]]:
    layouts: dict[str, Counter[tuple[str, ...]]] = {}
    for rel in sorted(
        str(p.relative_to(transcripts.ROOT)) for p in transcripts.ROOT.glob("*/*.s2c.txt")
    ):
        for raw in transcripts.read(rel).decode("utf-8", "replace").split("\r\n\r\n"):
            keys = tuple(line.split(":", 1)[0] for line in raw.split("\r\n") if line)
            if keys and keys[0] == "Event":
                name = raw.split("\r\n", 1)[0][7:]
                layouts.setdefault(name, Counter())[keys] += 1
    return layouts


RECORDED = _recorded_layouts()
CH = ev.ChannelSnapshot(
    name="PJSIP/trunk-00000001", uniqueid="u1", linkedid="u1", context="puente-outbound"
)
AGENT = ev.ChannelSnapshot(name="Local/agent101@agents-00000002;1", uniqueid="u2", linkedid="u1")
MEMBER = ev.MemberSnapshot(
    "collections", "Agent 101", "Local/agent101@agents/n", "Local/agent101@agents/n"
)


@pytest.mark.parametrize(
    "built",
    [
        ev.channel_event("Newchannel", CH),
        ev.channel_event("Newstate", CH),
        ev.newexten(CH, "NoOp", "x"),
        ev.varset(CH, "AMDSTATUS", "HUMAN"),
        ev.dial_begin(CH, "trunk/sip:+15550001@127.0.0.1"),
        ev.dial_state(CH, "RINGING"),
        ev.dial_end(CH, "ANSWER"),
        ev.hangup_request(CH, 17, 486),
        ev.hangup_request(CH, 16),
        ev.soft_hangup_request(CH, 16),
        ev.hangup(CH, 16, "Normal Clearing"),
        ev.hangup(CH, 17, "User busy", 486),
        ev.originate_response("a1", "Failure", "PJSIP/x", "c", "s", 0, "<unknown>", "1", "n"),
        ev.device_state_change("PJSIP/trunk", "INUSE"),
        ev.queue_caller("QueueCallerJoin", CH, "collections", 1, 1),
        ev.queue_caller("QueueCallerLeave", CH, "collections", 1, 0),
        ev.queue_caller_abandon(CH, "collections", 1, 1, 3),
        ev.agent_event(
            "AgentCalled", CH, AGENT, "collections", "Local/agent101@agents/n", "Agent 101"
        ),
        ev.agent_event(
            "AgentConnect", CH, AGENT, "collections", "i", "m", ("HoldTime", "1"), ("RingTime", "1")
        ),
        ev.agent_event(
            "AgentComplete",
            CH,
            AGENT,
            "collections",
            "i",
            "m",
            ("HoldTime", "1"),
            ("TalkTime", "9"),
            ("Reason", "agent"),
        ),
        ev.member_event("QueueMemberStatus", MEMBER),
        ev.member_event("QueueMemberPause", MEMBER),
        ev.member_event("QueueMemberAdded", MEMBER),
        ev.member_event("QueueMemberRemoved", MEMBER),
    ],
    ids=lambda pairs: "-".join(v for k, v in pairs[:1]) + f"-{len(pairs)}",
)
def test_layout_is_one_the_real_asterisk_wrote(built: list[tuple[str, str]]) -> None:
    name = built[0][1]
    keys = tuple(k for k, _ in built)
    assert keys in RECORDED[name], f"{name}: {keys} not among {list(RECORDED[name])}"
    assert dict(built)["Privilege"].endswith(",all")


def test_user_event_for_amd_matches_the_recorded_shape() -> None:
    built = ev.user_event(CH, "AMDResult", [("AMDSTATUS", "HUMAN"), ("AMDCAUSE", "HUMAN-801-800")])
    assert tuple(k for k, _ in built) in RECORDED["UserEvent"]
