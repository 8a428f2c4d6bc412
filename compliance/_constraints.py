"""Soft rules as sets of allowed instants (half-open UTC intervals) over a horizon.

Each rule of a time-dependent kind (window, holiday, cap, cooldown, channel lock) becomes a
:class:`Constraint` whose ``allowed(lo, hi)`` is the set of instants in ``[lo, hi)`` at which
that rule alone would let the dial go. The decision intersects them: ``now`` is allowed when it
is in every set, and ``next_allowed_at`` is the first instant of the intersection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from compliance._rules import (
    CapRule,
    ChannelLockRule,
    CooldownRule,
    HolidayRule,
    SoftRule,
    WindowRule,
)
from compliance._time import (
    ONE_DAY,
    Interval,
    complement,
    day_ranges,
    holiday_names,
    intersect,
    local_date,
    local_dates,
    normalize,
    shrink_ends,
    start_of_day,
    subdivisions_of,
)
from compliance._types import CHANNEL_FAMILY, Code, LedgerEntry, Override


@dataclass
class Constraint:
    rule: SoftRule
    code: Code
    base: Callable[[datetime, datetime], list[Interval]]
    overrides: list[tuple[Interval, int | None]] = field(default_factory=list)
    debt_id: int | None = None
    # For threshold rules (caps, cooldowns): blocked before this instant, free after.
    not_before: datetime | None = None
    detail: str = ""

    def allowed(self, lo: datetime, hi: datetime) -> list[Interval]:
        base = self.base(lo, hi)
        if not self.overrides:
            return base
        extra = [(max(s, lo), min(e, hi)) for (s, e), _ in self.overrides]
        return normalize(base + extra)

    def override_at(self, t: datetime) -> tuple[bool, int | None]:
        """Whether an override covers ``t``, and its id."""
        for (s, e), oid in self.overrides:
            if s <= t < e:
                return True, oid
        return False, None


def _clip(intervals: Iterable[Interval], lo: datetime, hi: datetime) -> list[Interval]:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if s < hi and e > lo]


def _days_later(t: datetime, days: int, zones: tuple[str, ...]) -> datetime:
    """Start of the local day ``days`` after ``t``'s local date, latest over the zones."""
    return max(start_of_day(local_date(t, z) + timedelta(days=days), z) for z in zones)


def override_intervals(
    rule: SoftRule,
    overrides: tuple[Override, ...],
    debts: tuple[int, ...],
    zones: tuple[str, ...],
    debt_id: int | None = None,
) -> list[tuple[Interval, int | None]]:
    if not rule.overridable:
        return []
    out = []
    for o in overrides:
        if o.rule_ids and rule.id not in o.rule_ids:
            continue
        if o.debt_id is not None and (
            o.debt_id not in debts or (debt_id is not None and o.debt_id != debt_id)
        ):
            continue
        end = o.valid_until
        if rule.override_max_days:
            span = timedelta(days=rule.override_max_days)
            limit = min(start_of_day(local_date(o.valid_from, z) + span, z) for z in zones)
            end = min(end, limit)
        if o.valid_from < end:
            out.append(((o.valid_from, end), o.override_id))
    return out


def window(rule: WindowRule, zones: tuple[str, ...], margin: timedelta) -> Callable:
    def base(lo: datetime, hi: datetime) -> list[Interval]:
        acc: list[Interval] | None = None
        for z in zones:
            spans: list[Interval] = []
            for d in local_dates(lo - ONE_DAY, hi + ONE_DAY + margin, z):
                spans.extend(day_ranges(rule.weekly[d.weekday()], d, z))
            spans = normalize(spans)
            acc = spans if acc is None else intersect(acc, spans)
        return _clip(shrink_ends(normalize(acc or []), margin), lo, hi)

    return base


def holiday_dates(rule: HolidayRule, subdivisions: set[str], complete: bool, year: int) -> dict:
    supported = set(subdivisions_of(rule.country))
    subs: set[str | None] = {None}
    if complete or rule.unknown_region == "national_only":
        subs |= subdivisions & supported  # a region with no calendar of its own: national only
    else:
        subs |= supported
    names: dict[date, str] = {}
    for sub in sorted(subs, key=lambda s: s or ""):
        for d, name in holiday_names(rule.country, sub, year).items():
            names.setdefault(d, name)
    return names


def holiday(
    rule: HolidayRule, zones: tuple[str, ...], subdivisions: set[str], complete: bool
) -> Callable:
    def base(lo: datetime, hi: datetime) -> list[Interval]:
        blocked: list[Interval] = []
        cache: dict[int, dict] = {}
        for z in zones:
            for d in local_dates(lo - ONE_DAY, hi + ONE_DAY, z):
                if d.year not in cache:
                    cache[d.year] = holiday_dates(rule, subdivisions, complete, d.year)
                if d in cache[d.year]:
                    blocked.append((start_of_day(d, z), start_of_day(d + ONE_DAY, z)))
        return complement(normalize(blocked), lo, hi)

    return base


def threshold(not_before: datetime | None) -> Callable:
    def base(lo: datetime, hi: datetime) -> list[Interval]:
        start = lo if not_before is None else max(lo, not_before)
        return [(start, hi)] if start < hi else []

    return base


def _released(entry: LedgerEntry, released: frozenset[str]) -> bool:
    return bool(entry.outcomes) and all(
        o == "not_placed" or o in released for o, _ in entry.outcomes
    )


def cap_threshold(
    rule: CapRule, entries: Iterable[LedgerEntry], zones: tuple[str, ...]
) -> tuple[datetime | None, int]:
    """When the cap stops blocking (None: it does not block) and how many calls count now."""
    period = timedelta(days=rule.period_days)
    seen: set[str] = set()
    releases: list[datetime] = []
    for e in entries:
        if e.direction != "outbound" or e.attempt_id in seen:
            continue
        if e.channel not in rule.channels or e.number_kind not in rule.number_kinds:
            continue
        if _released(e, rule.released):
            continue
        seen.add(e.attempt_id)
        release = e.at + period
        if rule.basis == "consecutive_days":
            release = max(release, _days_later(e.at, rule.period_days, zones))
        releases.append(release)
    if len(releases) < rule.max_calls:
        return None, len(releases)
    releases.sort(reverse=True)
    return releases[rule.max_calls - 1], len(releases)


def contact_instant(entry: LedgerEntry, outcomes: frozenset[str]) -> datetime | None:
    times = [at for o, at in entry.outcomes if o in outcomes]
    return max([entry.at, *times]) if times else None


def cooldown_threshold(
    rule: CooldownRule | ChannelLockRule,
    entries: Iterable[LedgerEntry],
    zones: tuple[str, ...],
    channel_family: str | None = None,
) -> datetime | None:
    """End of the latest cooldown (contact day = day 1), or None when there is none."""
    end: datetime | None = None
    for e in entries:
        if isinstance(rule, CooldownRule) and e.channel not in rule.contact_channels:
            continue
        if channel_family is not None and CHANNEL_FAMILY.get(e.channel) == channel_family:
            continue
        at = contact_instant(e, rule.after)
        if at is None:
            continue
        until = _days_later(at, rule.days, zones)
        if end is None or until > end:
            end = until
    return end
