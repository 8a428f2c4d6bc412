"""What became of a dial, from Asterisk's events: one final disposition per attempt (pure).

With PJSIP trunks ``OriginateResponse``'s ``Reason`` only says answered (4), not answered in
time (3) or "something else" (0); busy, congestion, rejection and dead numbers are told apart
by the ``Hangup`` event's ``Cause`` or the ``DialEnd``'s ``DialStatus`` (recorded from
Asterisk 22: ``tests/data/asterisk-transcripts/README.md``). Local channels do give 5 (busy)
and 8 (congestion).

:class:`AttemptTracker` follows every attempt Puente originated (``ActionID`` = ``ChannelId``
= the attempt id, so the channel's ``Uniqueid`` is the attempt id too) and yields exactly one
:class:`Outcome` per attempt: when the call is answered, when a failure's cause is known, or
when the cause does not come in time (the reason alone then decides). Time is an argument.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Disposition(enum.StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    UNALLOCATED = "unallocated"
    FAILED = "failed"  # never left Asterisk: bad channel, unknown endpoint, no trunk
    # Answered by a tone, not a greeting (AMD: MACHINE with an AMDCAUSE FAX-... or SIT-...; see
    # :func:`tone_disposition`). Their own words, not ``unallocated`` or ``machine``: the
    # attempt's disposition is free text (no CHECK in the schema), so the report says what was
    # heard, and the retry schedule can be set for each.
    INTERCEPT = "intercept"  # a special information tone said: not in service (SIT IC or VC)
    FAX = "fax"  # a fax machine answered: never a person on that number
    SIT_OTHER = "sit_other"  # a special information tone of another or unresolved kind
    # The trunk's own provider refused the call: SIP 401 or 407 (it could not authenticate
    # Puente) or 402 (the account). Only the carrier Puente sends the call to challenges or
    # bills it: the call was never routed toward the debtor. (Asterisk's Cause is 21, as for a
    # debtor's 603; the SIP code comes as the Hangup's TechCause: sip/05 in the transcripts.)
    TRUNK_REFUSED = "trunk_refused"


# The SIP final responses (the Hangup's ``TechCause``) that only the trunk's own provider
# gives: the call never left it. A 403 may come from the far end too (a carrier's or a
# PBX's policy), so it stays ``rejected``, and counts; several in a row say the trunk is
# refusing (dialer/trunk_guard.py).
TRUNK_REFUSAL_TECH_CAUSES = frozenset({401, 402, 407})
#: What the trunk guard reads as the trunk refusing calls, when it comes dial after dial.
TRUNK_FAULT_TECH_CAUSES = frozenset({*TRUNK_REFUSAL_TECH_CAUSES, 403})


# Q.850 causes as Asterisk reports them.
_BY_CAUSE = {
    1: Disposition.UNALLOCATED,  # unallocated (unassigned) number
    # No route to destination: the network could not route the call, not a dead number
    # (Q.850: "the network ... does not serve the destination"). chan_pjsip's
    # hangup_sip2cause() gives it for SIP 420 Bad Extension, a Require option-tag the far
    # end does not support: a fault of the route that would fail every call on it. As
    # UNALLOCATED it marked each number so dialed disconnected for good, and released its count.
    3: Disposition.UNREACHABLE,
    17: Disposition.BUSY,
    18: Disposition.UNREACHABLE,  # no user responding
    19: Disposition.NO_ANSWER,  # user alerting, no answer
    20: Disposition.UNREACHABLE,  # subscriber absent
    21: Disposition.REJECTED,
    22: Disposition.UNALLOCATED,  # number changed
    27: Disposition.UNREACHABLE,  # destination out of order
    28: Disposition.UNALLOCATED,  # invalid number format
    34: Disposition.CONGESTION,
    38: Disposition.CONGESTION,  # network out of order
    41: Disposition.CONGESTION,  # temporary failure
    42: Disposition.CONGESTION,  # switching equipment congestion
    # What chan_pjsip's hangup_sip2cause() makes of other final responses: the call reached
    # the network, which did not complete it.
    29: Disposition.REJECTED,  # facility rejected (501)
    58: Disposition.REJECTED,  # bearer capability not available (488, 606)
    102: Disposition.UNREACHABLE,  # recovery on timer expiry (408, 504)
    127: Disposition.REJECTED,  # interworking, unspecified (other 4xx, 5xx, 6xx)
}
_BY_DIAL_STATUS = {
    "BUSY": Disposition.BUSY,
    "CONGESTION": Disposition.CONGESTION,
    "NOANSWER": Disposition.NO_ANSWER,
    "CHANUNAVAIL": Disposition.FAILED,
}
# What the compliance ledger records (its outcome vocabulary) for an unanswered dial.
LEDGER_OUTCOME = {
    Disposition.BUSY: "busy",
    Disposition.UNALLOCATED: "not_in_service",
    Disposition.NO_ANSWER: "no_answer",
    Disposition.REJECTED: "no_answer",
    Disposition.UNREACHABLE: "no_answer",
    Disposition.CONGESTION: "network_failure",
    Disposition.FAILED: "not_placed",
    Disposition.TRUNK_REFUSED: "not_placed",  # never routed toward the debtor
}


# -- answered by a tone ----------------------------------------------------------------------
# AMD's AMDCAUSE for a tone heard before any greeting (the detector's contract):
#   FAX-<hz>-<ms>          a fax machine (CNG 1100 Hz, CED 2100 Hz)
#   SIT-<KIND>-<hz>-<ms>   a special information tone, of the North American kinds (Telcordia):
#                          IC intercept, VC vacant code, NC no circuit, RO reorder,
#                          IO ineffective other, UNK heard but not resolved
#   SIT-<hz>-<ms>          the older form, no kind: UNK
# A carrier that *answers* to play its announcement (200 OK, then the tones and "the number you
# have dialed is not in service") reaches AMD; one that announces in early media and then
# fails the call gives a Q.850 cause (1, 34...) and never gets here.


class SitKind(enum.StrEnum):
    IC = "IC"  # intercept: the number changed or is not in service
    VC = "VC"  # vacant code: the number is not assigned
    NC = "NC"  # no circuit: all circuits busy, a network congestion
    RO = "RO"  # reorder: a congestion (or a failure) in the network, on the way
    IO = "IO"  # ineffective other: the call failed for some other reason
    UNK = "UNK"  # a SIT was heard, its kind not resolved


@dataclass(frozen=True)
class AnswerTone:
    """A tone that answered the call instead of a greeting, read from ``AMDCAUSE``.
    ``sit`` is None for a fax; ``hz``/``ms`` are None when the cause did not say them."""

    fax: bool
    sit: SitKind | None
    hz: int | None
    ms: int | None


def answer_tone(cause: str | None) -> AnswerTone | None:
    """The tone an ``AMDCAUSE`` names (None: not a tone, e.g. ``BEEP-...``, ``LONGGREETING-...``).

    The prefix decides, case and all, as the dialplan's ``${AMDCAUSE:0:4}`` test does (which
    decided whether the message was played): ``FAX-`` a fax, ``SIT-`` a special information
    tone. A SIT whose kind is missing (the older ``SIT-<hz>-<ms>``) or not one of the known
    kinds is ``UNK``: the kind is what tells a dead number, so only a known kind may say so."""
    if not cause:
        return None
    parts = cause.split("-")
    if parts[0] == "FAX" and len(parts) > 1:
        return AnswerTone(True, None, *_hz_ms(parts[1:]))
    if parts[0] != "SIT" or len(parts) < 2:
        return None
    try:
        kind = SitKind(parts[1])
    except ValueError:
        kind = None
    if kind is None:
        return AnswerTone(False, SitKind.UNK, *_hz_ms(parts[1:]))
    return AnswerTone(False, kind, *_hz_ms(parts[2:]))


def sit_resolved(cause: str | None) -> bool:
    """Whether ``cause`` names a special information tone of a kind the detector resolved
    (not ``UNK``): only such a tone is evidence about the number. An answering machine whose
    greeting opens on a tone in a SIT band gives an unresolved one on every dial."""
    tone = answer_tone(cause)
    return tone is not None and tone.sit is not None and tone.sit is not SitKind.UNK


def _hz_ms(parts: list[str]) -> tuple[int | None, int | None]:
    if len(parts) != 2:
        return None, None
    return _int(parts[0]), _int(parts[1])


# What each SIT kind means for the number and the lead. NC and RO are the network's own
# congestion: ``congestion``, as Q.850 34/42 are (retried soon, the ledger's network_failure).
# IO and an unresolved SIT do not say the number is dead: ``sit_other``, retried like
# ``unreachable``; the result marks the number disconnected only when an IO follows another
# resolved SIT on it (an intercept or an IO: dialer/results.py). An unresolved one never does.
_BY_SIT = {
    SitKind.IC: Disposition.INTERCEPT,
    SitKind.VC: Disposition.INTERCEPT,
    SitKind.NC: Disposition.CONGESTION,
    SitKind.RO: Disposition.CONGESTION,
    SitKind.IO: Disposition.SIT_OTHER,
    SitKind.UNK: Disposition.SIT_OTHER,
}


def tone_disposition(amd_status: str | None, amd_cause: str | None) -> Disposition | None:
    """The disposition of a call AMD found answered by a fax or a special information tone
    (None: not one, the usual machine and person rules apply). Only a ``MACHINE`` verdict: its
    cause is the detector's reason for it; another verdict went to a person's path."""
    if amd_status != "MACHINE":
        return None
    tone = answer_tone(amd_cause)
    if tone is None:
        return None
    if tone.fax:
        return Disposition.FAX
    return _BY_SIT[tone.sit or SitKind.UNK]


# The ledger's outcome for a call answered by a tone; each pack says which outcomes release the
# count. Under Regulation F a call counts when it is connected to the dialed number, and does not
# when it is not (a busy signal, a not-in-service indication: the us_federal pack's
# ``counting`` and its citation):
# - an intercept (IC/VC) is the network saying the number is not in service: not_in_service,
#   released, as Q.850 cause 1 is;
# - a SIT of network congestion (NC/RO) is the network's failure: network_failure, as
#   congestion is (no pack releases it today: it counts);
# - an IO or unresolved SIT may not be a SIT at all (a greeting opening on a tone in a SIT
#   band): if in doubt, the dial counts, as ``unreachable``'s no_answer;
# - a fax answered: the call was connected to the dialed number, though no person is there:
#   machine (counts).
TONE_LEDGER_OUTCOME: Mapping[str, str] = {
    Disposition.INTERCEPT: "not_in_service",
    Disposition.CONGESTION: "network_failure",
    Disposition.SIT_OTHER: "no_answer",
    Disposition.FAX: "machine",
}
# What becomes of the dialed number after each disposition (phone_numbers.status): the lead's
# next try takes the person's next active number (lead selection dials 'active' ones only).
NUMBER_STATUS_AFTER: Mapping[str, str] = {
    Disposition.UNALLOCATED: "disconnected",
    Disposition.INTERCEPT: "disconnected",
    Disposition.FAX: "fax",  # a fax line: never dialed again for voice (migration 0032)
}


def classify(
    reason: int | None,
    cause: int | None,
    dial_status: str | None,
    reached: bool = False,
    tech_cause: int | None = None,
) -> Disposition:
    """The disposition from the facts Asterisk gives (any of them may be missing), and
    whether the call was dialed out (``reached``: a DialEnd, or a Hangup with a cause).
    ``tech_cause``: the Hangup's ``TechCause`` (PJSIP: the SIP final response), which tells the
    trunk's own refusals (:data:`TRUNK_REFUSAL_TECH_CAUSES`) from the far end's.

    A failure is ``FAILED`` (never placed: the compliance ledger releases its count) only when
    it never was: an unknown endpoint, a bad dial string, a Local channel to nowhere. A dial
    that went out and failed for a reason not known here counts as ``REJECTED``: if in doubt,
    the dial counts."""
    if reason != 4 and tech_cause in TRUNK_REFUSAL_TECH_CAUSES:
        return Disposition.TRUNK_REFUSED
    found = _classify(reason, cause, dial_status)
    if found is Disposition.FAILED and reached:
        return Disposition.REJECTED
    return found


def _classify(reason: int | None, cause: int | None, dial_status: str | None) -> Disposition:
    if reason == 4:
        return Disposition.ANSWERED
    if reason == 5:
        return Disposition.BUSY
    if reason == 8:
        return Disposition.CONGESTION
    if cause is not None and cause in _BY_CAUSE:
        return _BY_CAUSE[cause]
    if reason == 3:
        return Disposition.NO_ANSWER
    if dial_status is not None and dial_status.upper() in _BY_DIAL_STATUS:
        return _BY_DIAL_STATUS[dial_status.upper()]
    return Disposition.FAILED


@dataclass(frozen=True)
class Outcome:
    attempt_id: str
    disposition: Disposition
    reason: int | None
    cause: int | None
    dial_status: str | None
    at: float
    tech_cause: int | None = None  # the Hangup's TechCause (PJSIP: the SIP final response)

    @property
    def ledger_outcome(self) -> str | None:
        """The compliance ledger's word for it (None: answered, decided later by AMD/agent)."""
        return LEDGER_OUTCOME.get(self.disposition)


@dataclass
class _Pending:
    originated_at: float
    reason: int | None = None
    failed_at: float | None = None
    cause: int | None = None
    tech_cause: int | None = None
    dial_status: str | None = None
    reached: bool = False  # it was dialed out (a DialEnd, or a Hangup with a cause, seen)
    answered: bool = False  # an OriginateResponse said Success, whatever its Reason


@dataclass
class AttemptTracker:
    """Attempts in flight, fed with AMI events; every attempt ends exactly once."""

    # How long to wait for the Hangup's cause after a failed OriginateResponse.
    cause_wait_s: float = 2.0
    pending: dict[str, _Pending] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def originated(self, attempt_id: str, now: float) -> None:
        if attempt_id in self.done or attempt_id in self.pending:
            raise ValueError(f"attempt {attempt_id} is already tracked")
        self.pending[attempt_id] = _Pending(now)

    def forget(self, attempt_id: str) -> None:
        """Stop following an attempt without an outcome (the caller settles it otherwise)."""
        self.pending.pop(attempt_id, None)
        self.done.discard(attempt_id)

    def event(self, name: str, fields: Mapping[str, str], now: float) -> list[Outcome]:
        """One AMI event (its name and fields); the outcomes it completes."""
        if name == "OriginateResponse":
            aid = fields.get("ActionID", "")
            p = self.pending.get(aid)
            if p is None:
                return []
            reason = _int(fields.get("Reason"))
            p.reason = reason
            if reason == 4 or fields.get("Response") == "Success":
                # Success is Asterisk's word that the call was answered, even with a Reason
                # it never sends with it (missing, not a number, unknown): never "not placed".
                p.answered = True
                return [self._finish(aid, now)]
            p.failed_at = now
            if p.cause is not None:
                return [self._finish(aid, now)]
            return []
        # An Originate's DialEnd has no caller channel: only Dest* fields (recorded from
        # Asterisk 22), its DestUniqueid being the originated channel's, the attempt id.
        uid = (fields.get("DestUniqueid") if name == "DialEnd" else None) or fields.get(
            "Uniqueid", ""
        )
        key = uid if uid in self.pending else uid.removesuffix(";2")
        p = self.pending.get(key)
        if p is None:
            return []
        if name == "DialEnd":
            p.dial_status = status_word(fields.get("DialStatus")) or p.dial_status
            p.reached = True  # dialed out (a Local channel to a missing context is not)
        elif name == "Hangup":
            p.cause = _int(fields.get("Cause"))
            p.tech_cause = _int(fields.get("TechCause"))
            p.reached = p.reached or bool(p.cause)  # a cause: the far side had its say
            if p.failed_at is not None:
                return [self._finish(key, now)]
        return []

    def tick(self, now: float) -> list[Outcome]:
        """Failures whose cause did not come in time end on what is known."""
        late = [
            aid
            for aid, p in self.pending.items()
            if p.failed_at is not None and now - p.failed_at >= self.cause_wait_s
        ]
        return [self._finish(aid, now) for aid in late]

    def fate_unknown(self, now: float) -> list[str]:
        """The AMI link dropped: these attempts need reconciling (CoreShowChannels)."""
        return sorted(self.pending)

    def _finish(self, aid: str, now: float) -> Outcome:
        p = self.pending.pop(aid)
        self.done.add(aid)
        return Outcome(
            aid,
            Disposition.ANSWERED
            if p.answered
            else classify(p.reason, p.cause, p.dial_status, p.reached, p.tech_cause),
            p.reason,
            p.cause,
            p.dial_status,
            now,
            p.tech_cause,
        )


# Reasons and causes are small numbers (Q.850 causes < 128); anything else is no fact, and
# would not fit the result's integer columns (a result that cannot be written is never final).
_MAX_CODE = 65535
# A DialStatus is one of a few short words; it is written with the result as text.
_MAX_STATUS_CHARS = 32


def _int(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and -_MAX_CODE <= value <= _MAX_CODE else None


def status_word(text: str | None) -> str | None:
    """A short status word as PostgreSQL can store it (no NUL), or None."""
    if not text:
        return None
    return text.replace("\x00", "")[:_MAX_STATUS_CHARS] or None
