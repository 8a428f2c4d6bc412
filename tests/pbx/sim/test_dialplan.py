"""The dialplan interpreter, and Puente's real extensions.conf run through it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pbx.sim._dialplan import (
    DialplanCursor,
    DialplanError,
    evaluate_expression,
    load_dialplan,
    parse_dialplan,
    pattern_matches,
    split_args,
    substitute,
)

ROOT = Path(__file__).resolve().parents[3]
PUENTE_CONF = ROOT / "asterisk_conf" / "extensions.conf"
RIG_CONF = (
    ROOT / "tests" / "data" / "asterisk-transcripts" / "rig" / "etc-asterisk" / "extensions.conf"
)


def run(dialplan, context, exten, variables, apps_seen=None, max_steps=50):
    """Run a channel through the dialplan, returning the non-jump applications executed."""
    cursor = DialplanCursor(dialplan, context, exten)
    scope = {**dialplan.globals, **variables}
    seen = [] if apps_seen is None else apps_seen
    for _ in range(max_steps):
        step = cursor.step(scope)
        if step is None:
            break
        if step.app == "Set":
            name, _, value = step.data.partition("=")
            scope[name] = value
        if step.app not in ("Goto", "GotoIf"):
            seen.append((step.context, step.exten, step.app, step.data))
        if step.app == "Hangup":
            break
        cursor.advance(step)
    return seen, scope


@pytest.mark.parametrize(
    ("pattern", "exten", "matches"),
    [
        ("_X.", "5215512345678", True),
        ("_X.", "5", False),  # '.' needs one or more
        ("_+X.", "+34600111222", True),
        ("_[a-z].", "abandon-save", True),
        ("_[a-z].", "Abandon", False),
        ("_agent.", "agent101", False),  # lower-case n is [2-9]: the recorded gotcha
        ("_age[n]t.", "agent101", True),
        ("_50XX", "5071", True),
        ("_NXX", "155", False),
        ("_Z!", "1", True),
    ],
)
def test_patterns_follow_asterisk(pattern: str, exten: str, matches: bool) -> None:
    assert pattern_matches(pattern, exten) is matches


def test_substitution_and_expressions() -> None:
    scope = {"A": "MACHINE", "EXTEN": "+5215512345678", "EMPTY": ""}
    assert substitute("${EXTEN:1}", scope) == "5215512345678"
    assert substitute("${EXTEN:1:2}", scope) == "52"
    assert substitute("${EXTEN:-4}", scope) == "5678"
    assert substitute('$["${A}" = "MACHINE"]', scope) == "1"
    assert substitute('$["${A}" != "MACHINE"]', scope) == "0"
    assert substitute('$["${EMPTY}" = ""]', scope) == "1"
    assert substitute("${MISSING}x", scope) == "x"
    assert evaluate_expression('"a" = "a" & "b" = "c"') == "0"
    assert evaluate_expression('"a" = "b" | "b" = "b"') == "1"
    assert split_args('1,AudioSocket returned: $["x" = "y"],(a,b)') == [
        "1",
        'AudioSocket returned: $["x" = "y"]',
        "(a,b)",
    ]


def test_the_rig_dialplan_parses() -> None:
    rig = load_dialplan(RIG_CONF)
    assert rig.globals["DEFAULT_AS_UUID"] == "9f0c4f1a-5c3e-4b9e-8d1e-1a2b3c4d5e6f"
    seen, _ = run(rig, "puente-outbound-test", "s", {"UUID": "u-1", "AMDSTATUS": "MACHINE"})
    assert [a for _, _, a, _ in seen] == ["NoOp", "AudioSocket", "Verbose", "UserEvent", "Hangup"]
    assert seen[2][3] == "1,AudioSocket returned on : AMDSTATUS=MACHINE"
    assert rig.find_extension("load-agents", "agent101") is not None


@pytest.mark.parametrize(
    ("amd", "mode", "queuestatus", "expected_tail"),
    [
        # (After a call an agent took, Queue() returns only with option c: CONTINUE.)
        ("HUMAN", "predictive", "CONTINUE", ["Queue", "UserEvent", "Hangup"]),
        ("NOTSURE", "predictive", "TIMEOUT", ["Queue", "UserEvent", "AGI", "Hangup"]),
        # A queue queues.conf lacks: the safe-harbor message all the same.
        ("HUMAN", "predictive", "UNKNOWN", ["Queue", "UserEvent", "AGI", "Hangup"]),
        ("HUMAN", "preview", "TIMEOUT", ["Queue", "UserEvent", "AGI", "Hangup"]),
        ("MACHINE", "predictive", "", ["Playback", "UserEvent", "Hangup"]),
        ("HANGUP", "predictive", "", ["Hangup"]),
        ("HUMAN", "agentless", "", ["AGI", "Hangup"]),
    ],
)
def test_puente_outbound_contract(
    amd: str, mode: str, queuestatus: str, expected_tail: list[str]
) -> None:
    plan = load_dialplan(PUENTE_CONF)
    variables = {
        "PUENTE_ATTEMPT": "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61",
        "PUENTE_CAMPAIGN": "c1",
        "PUENTE_MODE": mode,
        "PUENTE_QUEUE": "collections",
        "PUENTE_FLOW": "reminder",
        "PUENTE_VM": "puente/vm-es",
        "PUENTE_PREVIEW_QUEUE_TIMEOUT_S": "60",
    }
    cursor = DialplanCursor(plan, "puente-outbound", "s")
    scope = {**plan.globals, **variables}
    apps = []
    for _ in range(40):
        step = original = cursor.step(scope)
        if step is None:
            break
        if step.app == "Set":
            k, _, v = step.data.partition("=")
            scope[k] = v
        if step.app == "TryExec" and step.data.startswith("AudioSocket("):
            # TryExec(): a failed AudioSocket() goes on with NOTSURE instead of a hang-up.
            step = dataclasses.replace(step, app="AudioSocket", data=step.data[12:-1])
        if step.app == "AudioSocket":
            # What Puente does over AMI while the call is inside AudioSocket().
            assert step.data == f"{variables['PUENTE_ATTEMPT']},127.0.0.1:9092"
            assert scope["AMDSTATUS"] == "NOTSURE"  # the fail-safe default
            scope["AMDSTATUS"] = amd
        if step.app == "Queue":  # (preview: the agent's wait Puente set, not AMD's 2 s)
            assert step.data == ("collections,,,,60" if mode == "preview" else "collections,,,,2")
            scope["QUEUESTATUS"] = queuestatus
        if step.app not in ("Goto", "GotoIf", "NoOp", "Set"):
            apps.append(step.app)
        if step.app == "Hangup":
            break
        cursor.advance(original)
    assert apps[0] == "AudioSocket"
    assert apps[2:] == expected_tail


@pytest.mark.parametrize("entry", ["abandon", "agentless"])
def test_a_person_who_asks_an_ivr_for_an_agent_waits_like_an_inbound_caller(entry: str) -> None:
    # The first Queue() had what AMD left of the 2 s rule (1-2 s): asked again from the
    # safe-harbor menu or an agentless flow, it was as short, and the person went round again.
    plan = load_dialplan(PUENTE_CONF)
    cursor = DialplanCursor(plan, "puente-outbound", entry)
    scope = {**plan.globals, "PUENTE_QUEUE": "collections", "PUENTE_QUEUE_TIMEOUT_S": "1",
             "PUENTE_NEXT": "agent", "PUENTE_FLOW": "reminder"}  # fmt: skip
    seen = []
    for _ in range(20):
        step = cursor.step(scope)
        if step is None or step.app == "Queue":
            break
        if step.app == "Set":
            k, _, v = step.data.partition("=")
            scope[k] = v
        if step.app == "AGI":
            assert scope["PUENTE_NEXT"] == ""  # cleared: only this run's choice counts
            scope["PUENTE_NEXT"] = "agent"
        seen.append(step.app)
        cursor.advance(step)
    assert "AGI" in seen
    assert step is not None
    assert step.data == "collections,,,,600"


def test_inbound_and_ivr_contexts_reach_the_agi_server() -> None:
    plan = load_dialplan(PUENTE_CONF)
    seen, _ = run(plan, "puente-inbound", "+5215500000000", {})
    agi = [d for _, _, a, d in seen if a == "AGI"]
    assert agi == ["agi://127.0.0.1:4573/inbound,5215500000000"]
    seen, _ = run(plan, "puente-ivr", "payments", {})
    assert [d for _, _, a, d in seen if a == "AGI"] == ["agi://127.0.0.1:4573/payments"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("exten => s,1,NoOp()", "outside any section"),
        ("[a]\nsame => n,NoOp()", "no preceding"),
        ("[a]\nexten => s,n,NoOp()", "numeric first priority"),
        ("[a]\nexten => s,1,NoOp()\nexten => s,1,Hangup()", "defined twice"),
        ("[a]\n[a]", "defined twice"),
        ("[a]\nexten => s,1,No Op(", "malformed application"),
    ],
)
def test_malformed_dialplans_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(DialplanError, match=problem):
        parse_dialplan(text, "x.conf")


def test_goto_to_a_missing_place_is_an_error() -> None:
    plan = parse_dialplan("[a]\nexten => s,1,Goto(b,s,1)\n")
    cursor = DialplanCursor(plan, "a", "s")
    step = cursor.step({})
    assert step is not None
    with pytest.raises(DialplanError, match="missing extension"):
        cursor.advance(step)
