"""Dispositions from Asterisk's recorded events, and one outcome per attempt."""

from __future__ import annotations

import msgspec
import pytest

from dialer.outcomes import AttemptTracker, Disposition, Outcome, classify
from pbx.ami import MessageFramer
from pbx.sim import DEFAULT_DIALPLAN, CalleeModel, ModelFile, SimCore, load_dialplan
from pbx.sim._actions import handle_action
from pbx.sim._core import Broadcast, Reply
from tests.support import transcripts

RECORDED = {
    "sip/01-pjsip-answer": Disposition.ANSWERED,
    "sip/02-pjsip-486-busy": Disposition.BUSY,
    "sip/03-pjsip-180-noanswer-timeout5000": Disposition.NO_ANSWER,
    "sip/04-pjsip-503-unavailable": Disposition.CONGESTION,
    "sip/05-pjsip-603-decline": Disposition.REJECTED,
    "sip/06-pjsip-nobody-listening": Disposition.UNREACHABLE,
    "sip/07-pjsip-unknown-endpoint": Disposition.FAILED,
    "sip/08-local-dial-pjsip-answer": Disposition.ANSWERED,
    "sip/09-local-dial-pjsip-busy": Disposition.BUSY,
    "sip/10-local-dial-pjsip-noanswer-timeout5000": Disposition.NO_ANSWER,
    "ami/03-originate-local-answer": Disposition.ANSWERED,
    "ami/04-originate-local-busy": Disposition.BUSY,
    "ami/05-originate-local-congestion": Disposition.CONGESTION,
    "ami/06-originate-local-noanswer-timeout5000": Disposition.NO_ANSWER,
    "ami/07-originate-invalid-technology": Disposition.FAILED,
    "ami/08-originate-local-nonexistent-context": Disposition.FAILED,
}


def facts(name: str) -> tuple[int | None, int | None, str | None]:
    """Reason, the first non-zero Hangup cause and the first DialEnd status, as recorded."""
    raw = transcripts.read(f"{name}.s2c.txt")
    framer = MessageFramer()
    messages = framer.feed(raw[raw.index(b"\r\n") + 2 :])
    reason = cause = status = None
    for m in messages:
        if m.name == "OriginateResponse" and reason is None:
            reason = int(m["Reason"])
        elif m.name == "Hangup" and cause is None and m.get("Cause") not in (None, "0"):
            cause = int(m["Cause"])
        elif m.name == "DialEnd" and status is None:
            status = m["DialStatus"]
    return reason, cause, status


@pytest.mark.parametrize(("name", "expected"), sorted(RECORDED.items()))
def test_recorded_outcomes_classify_as_asterisk_meant_them(name: str, expected) -> None:
    assert classify(*facts(name)) == expected


def test_ledger_outcomes_release_busy_and_dead_numbers() -> None:
    from dialer.outcomes import LEDGER_OUTCOME

    assert LEDGER_OUTCOME[Disposition.BUSY] == "busy"
    assert LEDGER_OUTCOME[Disposition.UNALLOCATED] == "not_in_service"
    assert Disposition.ANSWERED not in LEDGER_OUTCOME


def test_tracker_waits_for_the_cause_then_ends_once() -> None:
    t = AttemptTracker(cause_wait_s=2.0)
    t.originated("a1", 0.0)
    assert t.event("DialEnd", {"Uniqueid": "a1", "DialStatus": "BUSY"}, 1.0) == []
    assert t.event("OriginateResponse", {"ActionID": "a1", "Response": "Failure",
                                         "Reason": "0"}, 1.1) == []  # fmt: skip
    (out,) = t.event("Hangup", {"Uniqueid": "a1", "Cause": "17"}, 1.2)
    assert (out.disposition, out.ledger_outcome) == (Disposition.BUSY, "busy")
    assert t.event("Hangup", {"Uniqueid": "a1", "Cause": "17"}, 1.3) == []  # never twice
    with pytest.raises(ValueError, match="already tracked"):
        t.originated("a1", 2.0)


def test_tracker_ends_on_the_reason_when_no_cause_comes() -> None:
    t = AttemptTracker(cause_wait_s=2.0)
    t.originated("a2", 0.0)
    t.event("OriginateResponse", {"ActionID": "a2", "Response": "Failure", "Reason": "3"}, 5.0)
    assert t.tick(6.0) == []
    (out,) = t.tick(7.0)
    assert out.disposition == Disposition.NO_ANSWER
    assert t.fate_unknown(7.0) == []


def test_tracker_against_the_simulator_for_every_outcome() -> None:
    numbers = {
        "+15550000001": "human",
        "+15550000003": "busy",
        "+15550000004": "congestion",
        "+15550000005": "rejected",
        "+15550000006": "no_answer",
        "+15550000007": "unallocated",
        "+15550000008": "unreachable",
        "+15550000009": "forbidden",
        "+15550000010": "unauthorized",
    }
    spec = msgspec.convert(
        {"numbers": numbers, "ring_s": {"dist": "fixed", "value": 1.0},
         "fail_after_s": {"dist": "fixed", "value": 0.5},
         "unreachable_after_s": {"dist": "fixed", "value": 3.0}},
        ModelFile,
    )  # fmt: skip
    core = SimCore(load_dialplan(DEFAULT_DIALPLAN), CalleeModel(spec))
    core.globals["PUENTE_AUDIOSOCKET"] = "127.0.0.1:1"
    tracker = AttemptTracker()
    outcomes = {}
    now = 0.0
    for i, number in enumerate(numbers):
        aid = f"00000000-0000-4000-8000-{i:012d}"
        tracker.originated(aid, now)
        action = [("Action", "Originate"), ("ActionID", aid), ("ChannelId", aid),
                  ("Channel", f"PJSIP/{number}@trunk"), ("Context", "puente-outbound"),
                  ("Exten", "s"), ("Priority", "1"), ("Timeout", "20000"), ("Async", "true"),
                  ("Variable", f"PUENTE_ATTEMPT={aid}")]  # fmt: skip
        feed = handle_action(core, 1, action, now)
        while True:
            for out in feed:
                if isinstance(out, Broadcast | Reply) and out.pairs[0][0] == "Event":
                    fields = dict(out.pairs)
                    for o in tracker.event(fields["Event"], fields, now):
                        outcomes[o.attempt_id] = o.disposition
            nd = core.next_deadline()
            if nd is None or nd > 60:
                break
            now = nd
            feed = core.advance(now)
        outcomes.update({o.attempt_id: o.disposition for o in tracker.tick(now + 10)})
    by_number = {
        outcome: outcomes[f"00000000-0000-4000-8000-{i:012d}"]
        for i, outcome in enumerate(numbers.values())
    }
    assert by_number == {
        "human": Disposition.ANSWERED,
        "busy": Disposition.BUSY,
        "congestion": Disposition.CONGESTION,
        "rejected": Disposition.REJECTED,
        "no_answer": Disposition.NO_ANSWER,
        "unallocated": Disposition.UNALLOCATED,
        "unreachable": Disposition.UNREACHABLE,
        "forbidden": Disposition.REJECTED,
        "unauthorized": Disposition.TRUNK_REFUSED,
    }


def replay(name: str, cause: str | None = None, tech_cause: str | None = None) -> tuple:
    """Every recorded event of an Originate through the tracker (its attempt id: the recorded
    channel's Uniqueid, as ChannelId makes it); ``cause`` and ``tech_cause`` replace the
    Hangup's ``Cause`` and ``TechCause``."""
    out = replay_outcome(name, cause, tech_cause)
    return out.disposition, out.dial_status, out.ledger_outcome


def replay_outcome(name: str, cause: str | None = None, tech_cause: str | None = None) -> Outcome:
    raw = transcripts.read(f"{name}.s2c.txt")
    messages = MessageFramer().feed(raw[raw.index(b"\r\n") + 2 :])
    uid = next((m["Uniqueid"] for m in messages if m.name == "Newchannel"), "none")
    t = AttemptTracker(cause_wait_s=2.0)
    t.originated(uid, 0.0)
    outs = []
    for i, m in enumerate(messages):
        if m.name is None:
            continue
        fields = dict(m.pairs)
        if m.name == "OriginateResponse":
            fields["ActionID"] = uid
        if m.name == "Hangup" and cause is not None:
            fields["Cause"] = cause
        if m.name == "Hangup" and tech_cause is not None:
            fields["TechCause"] = tech_cause
        outs += t.event(m.name, fields, 0.1 * i)
    outs += t.tick(100.0)
    (out,) = outs
    return out


def test_the_sip_code_comes_with_the_outcome_and_tells_the_trunks_refusals() -> None:
    # Asterisk 22's Hangup carries the SIP final response as TechCause (recorded: 603). A
    # debtor's decline and the trunk's own provider refusing Puente are both Cause 21; before,
    # a trunk whose credentials had changed made every dial a "rejected" that counted.
    out = replay_outcome("sip/05-pjsip-603-decline")
    assert (out.cause, out.tech_cause, out.disposition) == (21, 603, Disposition.REJECTED)
    for code in ("401", "402", "407"):  # only the trunk's provider challenges or bills Puente
        assert replay("sip/05-pjsip-603-decline", tech_cause=code) == (
            Disposition.TRUNK_REFUSED,
            "NOANSWER",
            "not_placed",
        ), code
    # A 403 may be the far end's (a carrier's or a PBX's policy): it counts, as before.
    assert replay("sip/05-pjsip-603-decline", tech_cause="403")[::2] == (
        Disposition.REJECTED,
        "no_answer",
    )
    assert classify(0, 21, "NOANSWER", True, 401) is Disposition.TRUNK_REFUSED
    assert classify(4, 16, "ANSWER", True, 401) is Disposition.ANSWERED  # answered is answered


def test_the_recorded_dialend_is_matched_to_its_attempt_by_destuniqueid() -> None:
    # An Originate's DialEnd has only Dest* fields: its status was never matched before.
    assert replay("sip/05-pjsip-603-decline") == (Disposition.REJECTED, "NOANSWER", "no_answer")
    assert replay("sip/02-pjsip-486-busy") == (Disposition.BUSY, "BUSY", "busy")


def test_a_dial_that_went_out_and_failed_oddly_is_counted_not_released() -> None:
    # SIP 504/408 give cause 102, 488/606 cause 58, other final responses 127: the call
    # reached the network. Unknown to the tracker before, they were "never placed", which the
    # compliance ledger always releases; now they count.
    assert replay("sip/05-pjsip-603-decline", cause="102")[0] == Disposition.UNREACHABLE
    assert replay("sip/05-pjsip-603-decline", cause="58")[0] == Disposition.REJECTED
    assert replay("sip/05-pjsip-603-decline", cause="99")[2] == "no_answer"  # counted
    # What never left Asterisk is still released.
    assert replay("sip/07-pjsip-unknown-endpoint")[2] == "not_placed"
    assert replay("ami/08-originate-local-nonexistent-context")[2] == "not_placed"


def test_a_success_with_an_odd_reason_is_answered_never_released() -> None:
    # OriginateResponse Success means answered; with a Reason Asterisk never sends with it
    # (missing, not a number, unknown) it ended as FAILED: "not placed", the count released
    # while the debtor was on the line.
    for reason in (None, "99", "abc", "4294967296"):
        t = AttemptTracker()
        t.originated("a1", 0.0)
        fields = {"ActionID": "a1", "Response": "Success"}
        if reason is not None:
            fields["Reason"] = reason
        (out,) = t.event("OriginateResponse", fields, 1.0)
        assert out.disposition is Disposition.ANSWERED, reason
        assert out.ledger_outcome is None


def test_facts_the_result_cannot_store_are_dropped_not_kept() -> None:
    # The outcome is written to integer and text columns: a Reason or Cause beyond int4, or a
    # NUL in a DialStatus, failed that write on every try, so the attempt never became final
    # and held its line for ever.
    t = AttemptTracker()
    t.originated("a1", 0.0)
    t.event("DialEnd", {"DestUniqueid": "a1", "DialStatus": "BU\x00SY" + "Y" * 5000}, 0.5)
    t.event("Hangup", {"Uniqueid": "a1", "Cause": "99999999999"}, 0.6)
    outs = t.event(
        "OriginateResponse",
        {"ActionID": "a1", "Response": "Failure", "Reason": "-99999999999"},
        0.7,
    )
    (out,) = outs + t.tick(10.0)  # no cause it can use: it ends on what is known
    assert out.reason is None
    assert out.cause is None
    assert out.dial_status is not None
    assert "\x00" not in out.dial_status
    assert len(out.dial_status) <= 32
    assert out.disposition is Disposition.REJECTED  # it went out (DialEnd): counted


def test_no_route_to_destination_is_a_route_fault_not_a_dead_number() -> None:
    # Cause 3 is what chan_pjsip makes of SIP 420 Bad Extension (an option-tag the far end does
    # not support: every call on that route fails alike), and Q.850's "the network does not
    # serve the destination". As UNALLOCATED each such number was marked disconnected for good
    # and its dial released from the caps. It went out and failed: counted, number kept.
    disposition, _, ledger = replay("sip/05-pjsip-603-decline", cause="3")
    assert (disposition, ledger) == (Disposition.UNREACHABLE, "no_answer")
    assert classify(0, 3, "CHANUNAVAIL", reached=True) is Disposition.UNREACHABLE
    # Causes that do say the number is gone still do.
    assert classify(0, 1, None) is Disposition.UNALLOCATED  # SIP 404, 485, 604
    assert classify(0, 22, None) is Disposition.UNALLOCATED  # SIP 410 Gone
