"""Hypothesis properties of the pure core.

1. An allowed decision is inside every window rule in every candidate zone (checked by wall
   clock, independently of the interval code), dial margin included, and not on a holiday of
   any candidate subdivision (checked with the ``holidays`` package directly).
2. ``next_allowed_at`` is itself allowed, and no earlier instant is (minute grid, bounded).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from compliance import Contact, History, LedgerEntry, Override, PhoneNumber, decide, load_rules
from compliance._time import subdivisions_of
from compliance._zones import candidate_zones, holiday_subdivisions, number_info

SCENARIOS = [
    (("us_federal",), Contact(1, "US", "NY"), PhoneNumber("+12125551234", "landline")),
    (("us_federal", "us_ma"), Contact(1, "US", "MA"), PhoneNumber("+16175551234", "mobile")),
    (("us_federal", "us_wa"), Contact(1, "US", "WA"), PhoneNumber("+12065550100", "unknown")),
    (("us_federal", "us_fl"), Contact(1, "US", "FL"), PhoneNumber("+13055550100", "landline")),
    (("us_federal",), Contact(1, "US", "AZ"), PhoneNumber("+16025550100", "landline")),
    (("mx",), Contact(1, "MX", "BCN"), PhoneNumber("+526641234567")),
    (("mx", "mx_profeco"), Contact(1, "MX", "JAL"), PhoneNumber("+523312345678")),
    (("co",), Contact(1, "CO"), PhoneNumber("+573001234567", "mobile")),
    (("es",), Contact(1), PhoneNumber("+34612345678", "mobile")),
    (("es",), Contact(1, "ES", None, "38001"), PhoneNumber("+34912345678", "landline")),
    (("pe",), Contact(1, "PE"), PhoneNumber("+51912345678", "mobile")),
    (("cl",), Contact(1, "CL", "VS"), PhoneNumber("+56322123456", "landline")),
    (("cl", "es"), Contact(1, "CL", "MA"), PhoneNumber("+56222123456", "landline")),
    (("co",), Contact(1, stated_timezone="Pacific/Chatham"), PhoneNumber("+573001234567")),
]
RULES = {packs: load_rules(packs) for packs, _, _ in SCENARIOS}
OUTCOMES = [None, "busy", "voicemail", "no_answer", "conversation", "direct_contact", "not_placed"]

FIRST, LAST = datetime(2025, 1, 1), datetime(2027, 12, 31)
instants = st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC))


@st.composite
def near_edges(draw: st.DrawFn, scenario) -> datetime:
    """An instant within minutes of a window opening or closing in one candidate zone."""
    packs, contact, number = scenario
    windows = RULES[packs].windows
    zones = candidate_zones(contact, number_info(number.e164), number.kind)
    day = draw(st.dates(min_value=FIRST.date(), max_value=LAST.date()))
    rule = draw(st.sampled_from(windows))
    ranges = rule.weekly[day.weekday()] or ((0, 0),)
    minute = draw(st.sampled_from([m for r in ranges for m in r]))
    zone = ZoneInfo(draw(st.sampled_from(zones)))
    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
    return (local + timedelta(seconds=draw(st.integers(-720, 720)))).astimezone(UTC)


@st.composite
def scenario_and_now(draw: st.DrawFn):
    scenario = draw(st.sampled_from(SCENARIOS))
    now = draw(st.one_of(instants, near_edges(scenario)))
    return scenario, now


@st.composite
def histories(draw: st.DrawFn, now: datetime) -> History:
    entries = []
    for i in range(draw(st.one_of(st.just(0), st.integers(0, 9)))):
        back = timedelta(seconds=draw(st.integers(0, 12 * 86400)))
        outcome = draw(st.sampled_from(OUTCOMES))
        t = now - back
        outs = ((outcome, t + timedelta(minutes=2)),) if outcome else ()
        debts = draw(st.sampled_from([(1,), (2,), (1, 2)]))
        channel = draw(st.sampled_from(["voice", "voice", "autodialed_voice", "sms"]))
        for d in debts:
            entries.append(LedgerEntry(f"a{i}", d, t, channel=channel, outcomes=outs))
    overrides = []
    if draw(st.booleans()):
        start = now + timedelta(hours=draw(st.integers(-48, 48)))
        length = timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
        rules = draw(st.sampled_from([(), ("us_fed_hours",), ("co_hours",), ("us_fed_7_in_7",)]))
        overrides.append(Override(7, start, start + length, rules))
    return History(tuple(entries), overrides=tuple(overrides))


def _wall_ok(rule, t: datetime, margin: timedelta, zone: str) -> bool:
    a, b = t.astimezone(ZoneInfo(zone)), (t + margin).astimezone(ZoneInfo(zone))
    if a.date() != b.date():
        return False
    ma = a.hour * 60 + a.minute + (a.second + a.microsecond / 1e6) / 60
    mb = b.hour * 60 + b.minute + (b.second + b.microsecond / 1e6) / 60
    return any(s <= ma and mb < e for s, e in rule.weekly[a.weekday()])


def _holiday(rule, contact: Contact, t: datetime, zones: tuple[str, ...]) -> bool:
    subs, complete = holiday_subdivisions(rule.country, contact, zones)
    supported = set(subdivisions_of(rule.country))
    subs = subs & supported
    if not complete and rule.unknown_region == "all_subdivisions":
        subs = supported
    for z in zones:
        day = t.astimezone(ZoneInfo(z)).date()
        for sub in [None, *sorted(subs)]:
            if day in holidays.country_holidays(rule.country, subdiv=sub, years=day.year):
                return True
    return False


def _overridden(rule, history: History, t: datetime) -> bool:
    return rule.overridable and any(
        o.valid_from <= t < o.valid_until and (not o.rule_ids or rule.id in o.rule_ids)
        for o in history.overrides
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=scenario_and_now(),
    margin_s=st.sampled_from([0, 30, 90, 600]),
    data=st.data(),
)
def test_allowed_is_inside_every_window_and_off_holidays(case, margin_s, data) -> None:
    (packs, contact, number), now = case
    history = data.draw(histories(now))
    rules = RULES[packs]
    d = decide(contact, (1,), number, "voice", now, history, rules=rules, margin_s=margin_s)
    if not d.allowed:
        assert d.reasons
        event("denied")
        return
    event("allowed")
    assert d.next_allowed_at == now
    margin = timedelta(seconds=margin_s)
    for rule in rules.windows:
        if _overridden(rule, history, now):
            continue
        for z in d.timezones:
            assert _wall_ok(rule, now, margin, z), (rule.id, z, now)
    for rule in rules.holidays:
        if not _overridden(rule, history, now):
            assert not _holiday(rule, contact, now, d.timezones), (rule.id, now)


def _grid(now: datetime, nxt: datetime) -> list[datetime]:
    """Every minute from ``now`` to ``nxt`` when that is short; else a bounded sample that
    always includes the last hour and the last microsecond before ``nxt``."""
    span = nxt - now
    minutes = int(span.total_seconds() // 60)
    if minutes <= 240:
        points = [now + timedelta(minutes=i) for i in range(minutes + 1)]
    else:
        step = span / 180
        points = [now + step * i for i in range(180)]
        points += [nxt - timedelta(minutes=i) for i in range(1, 61)]
    points += [nxt - timedelta(seconds=1), nxt - timedelta(microseconds=1)]
    return [p for p in points if now <= p < nxt]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario_and_now(), margin_s=st.sampled_from([0, 90]), data=st.data())
def test_next_allowed_at_is_allowed_and_nothing_earlier_is(case, margin_s, data) -> None:
    (packs, contact, number), now = case
    history = data.draw(histories(now))
    rules = RULES[packs]

    def at(t: datetime):
        return decide(contact, (1, 2), number, "voice", t, history, rules=rules, margin_s=margin_s)

    d = at(now)
    if d.allowed or d.next_allowed_at is None:
        event("allowed" if d.allowed else "denied for good")
        return
    event("searched")
    nxt = d.next_allowed_at
    assert nxt > now
    assert at(nxt).allowed, (nxt, at(nxt).reasons)
    for t in _grid(now, nxt):
        assert not at(t).allowed, t
