"""Structural conformance: the simulator emits, for the recorded scenarios, what Asterisk did.

The recorded client actions (``*.c2s.txt``) are replayed into the simulator core with a callee
model that reproduces the SIPp behaviour of each scenario; the sequence of AMI messages (event
names) and the fields Puente reads must match the recording (``*.s2c.txt``).
"""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from pbx.sim._actions import handle_action
from pbx.sim._callees import CalleeModel, ModelFile
from pbx.sim._core import Broadcast, Reply, SimCore, SimSettings, StartAudioSocket
from pbx.sim._dialplan import load_dialplan
from tests.support import transcripts

RIG = load_dialplan(transcripts.ROOT / "rig" / "etc-asterisk" / "extensions.conf")
READ_FIELDS = ("Response", "Reason", "Cause", "DialStatus", "ActionID", "Message")
SKIP_EVENTS = {"FullyBooted", "SuccessfulAuth"}


def parse(raw: bytes) -> list[list[tuple[str, str]]]:
    msgs = []
    for block in raw.decode("utf-8", "replace").split("\r\n\r\n"):
        lines = [
            ln for ln in block.split("\r\n") if ln and not ln.startswith("Asterisk Call Manager")
        ]
        if lines:
            msgs.append(
                [tuple(ln.split(": ", 1)) if ": " in ln else (ln.rstrip(":"), "") for ln in lines]
            )
    return msgs


def label(pairs) -> str:
    d = dict(pairs)
    return d.get("Event") or f"Response:{d.get('Response')}"


def recorded(name: str) -> list[list[tuple[str, str]]]:
    msgs = parse(transcripts.read(f"{name}.s2c.txt"))
    out = []
    for m in msgs:
        d = dict(m)
        if d.get("Event") in SKIP_EVENTS or d.get("Message") in ("Authentication accepted",):
            continue
        if d.get("Response") == "Goodbye":
            continue
        out.append(m)
    return out


def simulate(name: str, outcomes: dict[str, str], settle_s: float = 120.0):
    spec = msgspec.convert(
        {
            "numbers": outcomes,
            "ring_s": {"dist": "fixed", "value": 1.0},
            "fail_after_s": {"dist": "fixed", "value": 0.5},
            "patience_s": {"dist": "fixed", "value": 600.0},
        },
        ModelFile,
    )
    core = SimCore(
        RIG, CalleeModel(spec), SimSettings(endpoints=("sipp",), trunk_context="from-sipp")
    )
    out = []
    now = 0.0
    for action in parse(transcripts.read(f"{name}.c2s.txt")):
        kind = dict(action)["Action"]
        if kind in ("Login", "Logoff"):
            continue
        # Let time pass to where the recorder sent the next action.
        while (t := core.next_deadline()) is not None and t <= now + 3.0:
            out += core.advance(t)
        now += 3.0
        out += handle_action(core, 1, action, now)
        starts = [o for o in out if isinstance(o, StartAudioSocket)]
        if kind == "Setvar" and starts:
            out += core.media_ended(starts[0].call_id, now + 0.1)
    while (t := core.next_deadline()) is not None and t <= now + settle_s:
        out += core.advance(t)
    return [o.pairs for o in out if isinstance(o, Broadcast | Reply)]


def essentials(msgs, keep=None):
    rows = []
    for m in msgs:
        d = dict(m)
        if keep is not None and label(m) not in keep:
            continue
        rows.append((label(m), *(f"{k}={d[k]}" for k in READ_FIELDS if k in d and k != "ActionID")))
    return rows


@pytest.mark.parametrize(
    ("name", "outcomes"),
    [
        ("sip/02-pjsip-486-busy", {"busy": "busy"}),
        ("sip/03-pjsip-180-noanswer-timeout5000", {"noanswer": "no_answer"}),
        ("sip/05-pjsip-603-decline", {"decline": "rejected"}),
        ("sip/07-pjsip-unknown-endpoint", {}),
    ],
)
def test_failed_originates_match_the_recording_in_order(
    name: str, outcomes: dict[str, str]
) -> None:
    assert essentials(simulate(name, outcomes)) == essentials(recorded(name))


def test_congestion_matches_the_recording_up_to_asterisk_own_race() -> None:
    # In sip/04 OriginateResponse overtook DialEnd; in the load run both orders occur.
    name = "sip/04-pjsip-503-unavailable"
    assert Counter(essentials(simulate(name, {"unavail": "congestion"}))) == Counter(
        essentials(recorded(name))
    )


def test_answered_call_matches_the_recording() -> None:
    name = "sip/01-pjsip-answer"
    sim, rec = simulate(name, {"sipp": "human"}), recorded(name)
    # Stasis delivers Newstate/DialState/OriginateResponse in either order: compare as multisets,
    # and the call's end exactly.
    assert Counter(essentials(sim)) == Counter(essentials(rec))
    assert essentials(sim)[-3:] == essentials(rec)[-3:]


def test_production_amd_path_matches_audiosocket_07() -> None:
    name = "audiosocket/07-pjsip-answer-pcap-audiosocket.ami"
    sim, rec = simulate(name, {"pcap": "human"}), recorded(name)
    # Our Setvar arrives at a different moment than the recorder's; everything else in order.
    assert essentials(sim) == essentials(rec)
    sim_vars = [dict(m)["Variable"] for m in sim if label(m) == "VarSet"]
    rec_vars = [dict(m)["Variable"] for m in rec if label(m) == "VarSet"]
    assert sim_vars == rec_vars
    user = next(dict(m) for m in sim if label(m) == "UserEvent")
    assert user["UserEvent"] == "PuenteAMD"
    assert user["AMDSTATUS"] == "MACHINE"
    assert user["UUID"] == "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"
    uniqueids = {dict(m).get("Uniqueid") for m in sim if dict(m).get("Uniqueid")}
    assert uniqueids == {"3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"}
