"""Plain data in and out of the pure decision core.

Every instant is an aware :class:`datetime.datetime`; local time is computed with ``zoneinfo``
from the candidate zones. Nothing here reads the clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

# Each vocabulary is written once, as the Literal the pack schema validates against; the tuples
# the code iterates are derived from it.

# Channels a call can be placed on; ``sms`` is accepted in the ledger so that other subsystems
# can record contacts made through it (channel locks count them).
CallChannel = Literal["voice", "autodialed_voice", "prerecorded"]
LedgerChannel = Literal[CallChannel, "sms"]
CALL_CHANNELS: tuple[str, ...] = get_args(CallChannel)
LEDGER_CHANNELS: tuple[str, ...] = get_args(LedgerChannel)
CHANNEL_FAMILY = {
    "voice": "phone",
    "autodialed_voice": "phone",
    "prerecorded": "phone",
    "sms": "sms",
}
NumberKind = Literal["mobile", "landline", "voip", "toll_free", "unknown"]
NUMBER_KINDS: tuple[str, ...] = get_args(NumberKind)

# What became of a reserved attempt. A pack says which ones release the count
# (``counting.released_outcomes``); ``not_placed`` (reserved, never dialled) always does.
ContactOutcome = Literal["direct_contact", "conversation"]
Outcome = Literal[
    "no_answer",
    "voicemail",
    "machine",
    "abandoned",
    "busy",
    "not_in_service",
    "network_failure",
    "wrong_party",
    ContactOutcome,
    "not_placed",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
CONTACT_OUTCOMES: tuple[str, ...] = get_args(ContactOutcome)
ALWAYS_RELEASED = frozenset({"not_placed"})


class Code(enum.StrEnum):
    """Why a dial is denied. Hard codes can never be overridden."""

    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    HOLIDAY = "HOLIDAY"
    CAP_REACHED = "CAP_REACHED"
    COOLDOWN = "COOLDOWN"
    CHANNEL_LOCKED = "CHANNEL_LOCKED"
    CEASE = "CEASE"
    DNC = "DNC"
    NO_CONSENT = "NO_CONSENT"
    NO_TIMEZONE = "NO_TIMEZONE"
    INVALID_NUMBER = "INVALID_NUMBER"
    WRONG_PARTY = "WRONG_PARTY"
    UNKNOWN_NUMBER = "UNKNOWN_NUMBER"
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    UNKNOWN_DEBT = "UNKNOWN_DEBT"
    DUPLICATE_ATTEMPT = "DUPLICATE_ATTEMPT"
    BAD_REQUEST = "BAD_REQUEST"
    COMPLIANCE_UNAVAILABLE = "COMPLIANCE_UNAVAILABLE"


SOFT_CODES = frozenset(
    {Code.OUTSIDE_WINDOW, Code.HOLIDAY, Code.CAP_REACHED, Code.COOLDOWN, Code.CHANNEL_LOCKED}
)


@dataclass(frozen=True, slots=True)
class Contact:
    """The debtor: address (ISO country, ISO 3166-2 region, postal code) and a stated zone."""

    person_id: int | None = None
    country: str | None = None
    region: str | None = None
    postal_code: str | None = None
    stated_timezone: str | None = None


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """The number to dial. ``kind`` as stored (``unknown``: derived from the numbering plan)."""

    e164: str
    kind: str = "unknown"
    phone_id: int | None = None
    status: str = "active"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row: an attempt (or an inbound contact) about one debt.

    ``outcomes`` are ``(outcome, at)`` pairs; an entry with none is pending and counts.
    """

    attempt_id: str
    debt_id: int
    at: datetime
    channel: str = "voice"
    number_kind: str = "unknown"
    direction: str = "outbound"
    outcomes: tuple[tuple[str, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class Block:
    """A ``cease`` or ``dnc`` entry on a number, a person, or a person x debt."""

    kind: str
    e164: str | None = None
    person_id: int | None = None
    debt_id: int | None = None
    channel: str = "all"
    effective_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    """Consent (or its withdrawal) for one number and channel; the latest record wins."""

    e164: str
    channel: str
    granted: bool
    recorded_at: datetime
    source: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's waiver of soft rules (all soft rules when ``rule_ids`` is empty).

    Valid in ``[valid_from, valid_until)``; never waives a hard block.
    """

    override_id: int | None
    valid_from: datetime
    valid_until: datetime
    rule_ids: tuple[str, ...] = ()
    debt_id: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class History:
    """What the ledger and the contact tables know about this person and number."""

    entries: tuple[LedgerEntry, ...] = ()
    blocks: tuple[Block, ...] = ()
    consents: tuple[Consent, ...] = ()
    overrides: tuple[Override, ...] = ()


EMPTY_HISTORY = History()


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that denies the dial, with its source."""

    rule_id: str
    pack: str
    code: Code
    citation: str
    message: str
    debt_id: int | None = None
    until: datetime | None = None
    #: The rule holds the number dialed only (a block on that E.164), not the person: another
    #: of the person's numbers may be allowed.
    on_number: bool = False

    @property
    def hard(self) -> bool:
        return self.code not in SOFT_CODES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "pack": self.pack,
            "code": str(self.code),
            "citation": self.citation,
            "message": self.message,
        }
        if self.debt_id is not None:
            out["debt_id"] = self.debt_id
        if self.until is not None:
            out["until"] = iso_utc(self.until)
        if self.on_number:
            out["on_number"] = True
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reason:
        until = d.get("until")
        return cls(
            rule_id=d["rule_id"],
            pack=d["pack"],
            code=Code(d["code"]),
            citation=d["citation"],
            message=d["message"],
            debt_id=d.get("debt_id"),
            until=datetime.fromisoformat(until) if until else None,
            on_number=bool(d.get("on_number", False)),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one dial: allowed or not, why, and when it next could be."""

    allowed: bool
    reasons: tuple[Reason, ...]
    next_allowed_at: datetime | None
    now: datetime
    timezones: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()
    overrides_used: tuple[int, ...] = ()
    reserved: bool = False
    attempt_id: str | None = None
    decision_id: int | None = None
    debt_ids: tuple[int, ...] = field(default=())

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(str(r.code) for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reserved": self.reserved,
            "at": iso_utc(self.now),
            "next_allowed_at": iso_utc(self.next_allowed_at) if self.next_allowed_at else None,
            "reasons": [r.to_dict() for r in self.reasons],
            "timezones": list(self.timezones),
            "packs": list(self.packs),
            "debt_ids": list(self.debt_ids),
            "overrides_used": list(self.overrides_used),
            "attempt_id": self.attempt_id,
            "decision_id": self.decision_id,
        }


# The instants the engine decides for: local dates stay far from datetime's limits (years 1 and
# 9999) whatever the zone, horizon or lookback. Outside them a dial is denied (BAD_REQUEST).
MIN_YEAR = 1970
MAX_YEAR = 2200
MIN_INSTANT = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)


def iso_utc(t: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (seconds, or microseconds when there are any).

    An instant that has no UTC reading in :class:`datetime` (``9999-12-31T23:59:59-14:00``)
    keeps its own offset instead of raising.
    """
    try:
        u = t.astimezone(UTC)
    except OverflowError:
        return t.isoformat()
    text = u.isoformat(timespec="microseconds" if u.microsecond else "seconds")
    return text.replace("+00:00", "Z")
