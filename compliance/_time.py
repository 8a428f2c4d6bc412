"""Exact local-time arithmetic (zoneinfo) and half-open UTC interval sets.

An interval is ``(start, end)`` with ``start <= t < end``; a set is a sorted list of disjoint,
non-adjacent intervals. Local wall times that do not exist (spring forward) or exist twice
(fall back) are mapped conservatively: a window opens at the later and closes at the earlier of
the two readings.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta

import holidays

from compliance._zones import zone

Interval = tuple[datetime, datetime]
FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)
ONE_DAY = timedelta(days=1)


def local_date(t: datetime, zone_name: str) -> date:
    return t.astimezone(zone(zone_name)).date()


@functools.lru_cache(maxsize=65536)
def start_of_day(d: date, zone_name: str) -> datetime:
    """The earliest instant whose local date in ``zone_name`` is ``d`` (UTC)."""
    tz = zone(zone_name)
    best: datetime | None = None
    for fold in (0, 1):
        u = datetime.combine(d, time(0), tzinfo=tz).replace(fold=fold).astimezone(UTC)
        if u.astimezone(tz).date() == d and (best is None or u < best):
            best = u
    if best is None:  # a day that starts after a gap: step forward to the first instant of d
        u = datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC)
        while u.astimezone(tz).date() < d:
            u += timedelta(minutes=15)
        best = u
    return best


def _wall_to_utc(d: date, minutes: int, zone_name: str, opening: bool) -> datetime:
    if minutes >= 1440:
        return start_of_day(d + ONE_DAY, zone_name)
    tz = zone(zone_name)
    wall = datetime.combine(d, time(minutes // 60, minutes % 60), tzinfo=tz)
    a = wall.replace(fold=0).astimezone(UTC)
    b = wall.replace(fold=1).astimezone(UTC)
    return max(a, b) if opening else min(a, b)


@functools.lru_cache(maxsize=65536)
def day_ranges(
    ranges: tuple[tuple[int, int], ...], d: date, zone_name: str
) -> tuple[Interval, ...]:
    """The UTC intervals of local ``ranges`` (minutes) on local date ``d``."""
    out = []
    for start, end in ranges:
        s = _wall_to_utc(d, start, zone_name, opening=True)
        e = _wall_to_utc(d, end, zone_name, opening=False)
        if s < e:
            out.append((s, e))
    return tuple(out)


def local_dates(lo: datetime, hi: datetime, zone_name: str) -> list[date]:
    """Every local date in ``zone_name`` that overlaps ``[lo, hi)``."""
    first, last = local_date(lo, zone_name), local_date(hi, zone_name)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@functools.lru_cache(maxsize=4096)
def holiday_names(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """Public holidays of ``country`` (national, plus ``subdivision``'s) in ``year``."""
    cal = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return dict(cal.items())


@functools.lru_cache(maxsize=256)
def subdivisions_of(country: str) -> tuple[str, ...]:
    subs = holidays.country_holidays(country).subdivisions
    return tuple(s for s in subs if len(s) <= 3 and s.isupper())


# -- interval sets -------------------------------------------------------------------------------
def normalize(intervals: list[Interval]) -> list[Interval]:
    """Sort and merge overlapping or touching intervals; drop empty ones."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[0] < i[1]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def complement(a: list[Interval], lo: datetime, hi: datetime) -> list[Interval]:
    out: list[Interval] = []
    cursor = lo
    for s, e in a:
        if s > cursor:
            out.append((cursor, min(s, hi)))
        cursor = max(cursor, e)
        if cursor >= hi:
            break
    if cursor < hi:
        out.append((cursor, hi))
    return [(s, e) for s, e in out if s < e]


def shrink_ends(a: list[Interval], margin: timedelta) -> list[Interval]:
    """Each interval loses ``margin`` at its end: a dial must fit before the window closes."""
    return [(s, e - margin) for s, e in a if e - margin > s]


def contains(a: list[Interval], t: datetime) -> bool:
    return any(s <= t < e for s, e in a)


def first_at_or_after(a: list[Interval], t: datetime) -> datetime | None:
    for s, e in a:
        if t < e:
            return max(s, t)
    return None
