"""Compiled rules: the rule KINDS the engine implements, with a pack's parameters filled in.

A pack file (YAML, see ``compliance/packs``) is validated by :mod:`compliance._packs` and turned
into these immutable objects; the decision core only ever sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A weekly calling window: for Monday..Sunday (index 0..6), ranges of local minutes
# ``[start, end)`` with 0 <= start < end <= 1440.
WeeklyHours = tuple[tuple[tuple[int, int], ...], ...]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    pack: str
    citation: str
    summary: str


@dataclass(frozen=True, slots=True)
class SoftRule(Rule):
    """A rule an operator may waive with an :class:`~compliance.Override` when the pack says so.

    ``override_max_days``: an override counts for at most this many consecutive local days,
    the day it starts being day 1 (e.g. Reg F's 7-day consent exclusion).
    """

    overridable: bool = False
    override_citation: str = ""
    override_max_days: int | None = None


@dataclass(frozen=True, slots=True)
class WindowRule(SoftRule):
    weekly: WeeklyHours = ((),) * 7


@dataclass(frozen=True, slots=True)
class HolidayRule(SoftRule):
    country: str = ""
    # "all_subdivisions": when the debtor's subdivision is unknown, a holiday of any subdivision
    # blocks (conservative); "national_only": only national holidays then.
    unknown_region: str = "all_subdivisions"


@dataclass(frozen=True, slots=True)
class CapRule(SoftRule):
    max_calls: int = 1
    period_days: int = 7
    # "consecutive_days": an attempt counts while it is within the last ``period_days`` calendar
    # days in ANY candidate zone OR within the last ``period_days`` x 24 h (the union: the
    # conservative reading). "rolling": the last ``period_days`` x 24 h only.
    basis: str = "consecutive_days"
    per: str = "person_debt"  # or "person" (every debt of the person; one call counts once)
    channels: frozenset[str] = frozenset()
    number_kinds: frozenset[str] = frozenset()
    released: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CooldownRule(SoftRule):
    """After a contact, no call until ``days`` local days have passed (contact day = day 1)."""

    after: frozenset[str] = frozenset()
    days: int = 1
    per: str = "person_debt"
    contact_channels: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ChannelLockRule(SoftRule):
    """After a contact through one channel family, no other family for ``days`` local days."""

    after: frozenset[str] = frozenset()
    days: int = 7
    per: str = "person"


@dataclass(frozen=True, slots=True)
class ConsentRule(Rule):
    channels: frozenset[str] = frozenset()
    number_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BlockRule(Rule):
    blocks: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    title: str
    jurisdiction: str
    default: bool
    released: frozenset[str]
    counting_citation: str
    notes: str
    rules: tuple[Rule, ...]
    file: str = ""


@dataclass(frozen=True)
class RuleSet:
    """Every pack a campaign names, applied at once: the strictest wins."""

    packs: tuple[Pack, ...]
    windows: tuple[WindowRule, ...] = field(default=(), repr=False)
    holidays: tuple[HolidayRule, ...] = field(default=(), repr=False)
    caps: tuple[CapRule, ...] = field(default=(), repr=False)
    cooldowns: tuple[CooldownRule, ...] = field(default=(), repr=False)
    channel_locks: tuple[ChannelLockRule, ...] = field(default=(), repr=False)
    consents: tuple[ConsentRule, ...] = field(default=(), repr=False)
    blocks: tuple[BlockRule, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, packs: tuple[Pack, ...]) -> RuleSet:
        rules = [r for p in packs for r in p.rules]

        def kind(t: type) -> tuple:
            return tuple(r for r in rules if type(r) is t)

        return cls(
            packs=packs,
            windows=kind(WindowRule),
            holidays=kind(HolidayRule),
            caps=kind(CapRule),
            cooldowns=kind(CooldownRule),
            channel_locks=kind(ChannelLockRule),
            consents=kind(ConsentRule),
            blocks=kind(BlockRule),
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.packs)

    @property
    def soft_rules(self) -> tuple[SoftRule, ...]:
        return (*self.windows, *self.holidays, *self.caps, *self.cooldowns, *self.channel_locks)

    @property
    def lookback_days(self) -> int:
        """How far back the ledger must be read to evaluate every cap and cooldown."""
        days = [r.period_days for r in self.caps]
        days += [r.days for r in self.cooldowns] + [r.days for r in self.channel_locks]
        # +2: a calendar-day window starts at local midnight, up to a day before the 24 h one,
        # and zones differ by up to a day.
        return max(days, default=0) + 2
