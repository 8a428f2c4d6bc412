"""Table tests of the pure core: DST days, zones, holidays, Reg F counting, hard blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from compliance import (
    Block,
    Consent,
    Contact,
    History,
    LedgerEntry,
    Override,
    PhoneNumber,
    decide,
    load_rules,
)


def at(text: str) -> datetime:
    """An instant written in UTC without the offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NO_HISTORY = History()


def check(packs, contact, number, now, history=NO_HISTORY, debts=(1,), channel="voice", margin=90):
    return decide(
        contact,
        debts,
        number if isinstance(number, PhoneNumber) else PhoneNumber(number),
        channel,
        at(now) if isinstance(now, str) else now,
        history,
        rules=load_rules(packs),
        margin_s=margin,
    )


NY = Contact(1, "US", "NY")
NY_NUMBER = PhoneNumber("+12125551234", kind="landline")


# -- DST days -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "allowed", "next_at"),
    [
        ("2026-03-07T12:30", False, "2026-03-07T13:00"),  # Sat 07:30 EST -> 08:00 EST
        ("2026-03-08T06:30", False, "2026-03-08T12:00"),  # Sun 01:30 EST -> 08:00 EDT, not 13:00
        ("2026-03-08T11:59", False, "2026-03-08T12:00"),  # 07:59 EDT
        ("2026-03-08T12:00", True, "2026-03-08T12:00"),  # 08:00 EDT
        ("2026-03-09T00:58", True, "2026-03-09T00:58"),  # 20:58 EDT: 90 s still fit
        ("2026-03-09T00:59", False, "2026-03-09T12:00"),  # 20:59 EDT: the dial would end late
    ],
)
def test_us_spring_forward(now: str, allowed: bool, next_at: str) -> None:
    d = check(["us_federal"], NY, NY_NUMBER, now)
    assert d.allowed is allowed, d.reasons
    assert d.next_allowed_at == at(next_at)
    assert d.timezones == ("America/New_York",)
    if not allowed:
        assert d.codes == ("OUTSIDE_WINDOW",)


def test_window_end_margin_is_exact() -> None:
    # 21:00 EDT is 01:00Z; with a 90 s margin the last allowed start is 20:58:29.999999 EDT
    last = at("2026-03-10T00:58:29.999999")
    assert check(["us_federal"], NY, NY_NUMBER, last).allowed
    assert not check(["us_federal"], NY, NY_NUMBER, last + timedelta(microseconds=1)).allowed
    assert check(["us_federal"], NY, NY_NUMBER, "2026-03-10T00:59:59", margin=0).allowed


CL = Contact(1, "CL", "RM")
CL_NUMBER = PhoneNumber("+56222123456", kind="landline")


def test_chile_autumn_change_after_easter_holidays() -> None:
    # Good Friday 2026-04-03 and Holy Saturday are holidays, Sunday is closed; on Monday 6 April
    # Santiago is back on -04, so 08:00 is 12:00Z (it was 11:00Z the week before).
    d = check(["cl"], CL, CL_NUMBER, "2026-04-03T15:00")
    assert d.codes == ("HOLIDAY",)
    assert d.next_allowed_at == at("2026-04-06T12:00")
    assert check(["cl"], CL, CL_NUMBER, "2026-04-02T11:00").allowed  # Thursday 08:00 -03


def test_chile_spring_change() -> None:
    # Saturday 5 Sept 19:59 -04 leaves no room; Sunday 6 (clocks go 24:00 -> 01:00) is closed;
    # Monday 7 opens at 08:00 -03 = 11:00Z.
    d = check(["cl"], CL, CL_NUMBER, "2026-09-05T23:59")
    assert d.codes == ("OUTSIDE_WINDOW",)
    assert d.next_allowed_at == at("2026-09-07T11:00")
    assert not check(["cl"], CL, CL_NUMBER, "2026-09-07T10:59").allowed
    assert check(["cl"], CL, CL_NUMBER, "2026-09-07T11:00").allowed


@pytest.mark.parametrize(
    ("number", "now", "allowed", "next_at"),
    [
        ("+526641234567", "2026-03-10T13:30", False, "2026-03-10T14:00"),  # Tijuana PDT
        ("+526641234567", "2026-03-05T14:30", False, "2026-03-05T15:00"),  # Tijuana PST
        ("+523312345678", "2026-03-10T13:30", True, "2026-03-10T13:30"),  # Guadalajara, no DST
        ("+523312345678", "2026-03-05T12:30", False, "2026-03-05T13:00"),
    ],
)
def test_mexico_border_follows_us_dst_while_the_rest_does_not(number, now, allowed, next_at):
    d = check(["mx"], Contact(1), number, now)
    assert d.allowed is allowed
    assert d.next_allowed_at == at(next_at)


def test_spanish_mobile_at_0830_madrid_is_denied() -> None:
    # 08:30 in Madrid is 07:30 in the Canaries: the mobile may be in either.
    d = check(["es"], Contact(1), "+34612345678", "2026-03-10T07:30")
    assert d.codes == ("OUTSIDE_WINDOW",)
    assert d.timezones == ("Atlantic/Canary", "Europe/Madrid")
    assert d.next_allowed_at == at("2026-03-10T09:00")  # 10:00 Madrid, 09:00 Canarias
    # a Madrid landline of a debtor living in Madrid could be called at 08:30 + 1 h
    assert check(["es"], Contact(1, "ES", "MD"), "+34912345678", "2026-03-10T08:00").allowed


def test_spanish_regional_holiday_of_the_canaries() -> None:
    # 30 May is the Day of the Canary Islands (a Saturday in 2026: use 2025, a Friday).
    canarian = Contact(1, "ES", None, "35001")
    d = check(["es"], canarian, "+34928123456", "2025-05-30T12:00")
    assert d.codes == ("HOLIDAY",)
    assert check(["es"], Contact(1, "ES", "MD"), "+34912345678", "2025-05-30T12:00").allowed


def test_colombian_holiday_moved_to_monday() -> None:
    co = Contact(1, "CO")
    # Saint Joseph (19 March, a Thursday in 2026) is observed on Monday 23 March (Ley Emiliani)
    assert check(["co"], co, "+573001234567", "2026-03-19T15:00").allowed
    d = check(["co"], co, "+573001234567", "2026-03-23T15:00")
    assert d.codes == ("HOLIDAY",)
    assert d.next_allowed_at == at("2026-03-24T12:00")  # Tuesday 07:00 Bogotá


def test_colombian_saturday_and_sunday_hours() -> None:
    co = Contact(1, "CO")
    assert check(["co"], co, "+573001234567", "2026-03-14T19:58").allowed  # Sat 14:58
    d = check(["co"], co, "+573001234567", "2026-03-14T19:59")  # 14:59 + 90 s > 15:00
    assert d.next_allowed_at == at("2026-03-16T12:00")  # Sunday closed; Monday 07:00


# -- Reg F counting -------------------------------------------------------------------------------
T0 = at("2026-03-09T14:00")  # Monday 10:00 EDT


def calls(n: int, debts=(1,), start=T0, step=timedelta(hours=1), outcome=None, kind="landline"):
    out = []
    for i in range(n):
        outcomes = ((outcome, start + step * i),) if outcome else ()
        out += [
            LedgerEntry(f"a{start.isoformat()}{i}", d, start + step * i, number_kind=kind,
                        outcomes=outcomes)
            for d in debts
        ]  # fmt: skip
    return out


def test_reg_f_eighth_call_in_seven_days_is_denied() -> None:
    now = T0 + timedelta(hours=8)
    d = check(["us_federal"], NY, NY_NUMBER, now, History(tuple(calls(7))))
    assert d.codes == ("CAP_REACHED",)
    # the first call (Mon 10:00 EDT) leaves the window at max(+168 h, next Monday 00:00 EDT)
    assert d.reasons[0].until == T0 + timedelta(days=7)
    assert d.next_allowed_at == T0 + timedelta(days=7)
    assert check(["us_federal"], NY, NY_NUMBER, now, History(tuple(calls(6)))).allowed


def test_reg_f_counts_unanswered_voicemail_and_abandoned_but_not_busy() -> None:
    now = T0 + timedelta(hours=8)
    for outcome in ("no_answer", "voicemail", "abandoned", "machine"):
        h = History(tuple(calls(6) + calls(1, start=T0 + timedelta(hours=7), outcome=outcome)))
        assert not check(["us_federal"], NY, NY_NUMBER, now, h).allowed, outcome
    for outcome in ("busy", "not_in_service", "not_placed"):
        h = History(tuple(calls(6) + calls(1, start=T0 + timedelta(hours=7), outcome=outcome)))
        assert check(["us_federal"], NY, NY_NUMBER, now, h).allowed, outcome


def test_release_is_a_pack_parameter_massachusetts_counts_busy() -> None:
    ma = Contact(1, "US", "MA")
    number = PhoneNumber("+16175551234", kind="mobile")
    h = History(tuple(calls(2, outcome="busy", kind="mobile")))
    now = T0 + timedelta(hours=3)
    assert check(["us_federal"], ma, number, now, h).allowed
    d = check(["us_federal", "us_ma"], ma, number, now, h)
    assert d.codes == ("CAP_REACHED",)
    assert d.reasons[0].rule_id == "us_ma_personal_7d"


def test_a_call_about_several_debts_counts_for_each() -> None:
    h = History(tuple(calls(7, debts=(1, 2))))
    now = T0 + timedelta(hours=8)
    assert not check(["us_federal"], NY, NY_NUMBER, now, h, debts=(1,)).allowed
    assert not check(["us_federal"], NY, NY_NUMBER, now, h, debts=(2,)).allowed
    assert check(["us_federal"], NY, NY_NUMBER, now, h, debts=(3,)).allowed
    d = check(["us_federal"], NY, NY_NUMBER, now, h, debts=(1, 2, 3))
    assert [r.debt_id for r in d.reasons] == [1, 2]


def test_conversation_cooldown_counts_local_days_with_the_conversation_day_as_day_1() -> None:
    # Conversation on Monday 9 March at 23:30 EDT (an inbound call): 03:30Z on the 10th.
    conv = at("2026-03-10T03:30")
    h = History((LedgerEntry("in1", 1, conv, direction="inbound",
                             outcomes=(("conversation", conv),)),))  # fmt: skip
    d = check(["us_federal"], NY, NY_NUMBER, "2026-03-15T20:00", h)  # Sunday 16:00 EDT
    assert d.codes == ("COOLDOWN",)
    assert d.reasons[0].until == at("2026-03-16T04:00")  # Monday 16 March 00:00 EDT = day 8
    assert d.next_allowed_at == at("2026-03-16T12:00")  # ...and the window opens at 08:00
    # a UTC-day reading would wait until the 17th; the local reading allows Monday 08:00
    assert check(["us_federal"], NY, NY_NUMBER, "2026-03-16T12:00", h).allowed
    # the conversation was about debt 1 only
    assert check(["us_federal"], NY, NY_NUMBER, "2026-03-15T20:00", h, debts=(2,)).allowed


def test_an_inbound_conversation_is_not_a_placed_call() -> None:
    wa = Contact(1, "US", "WA")
    number = PhoneNumber("+12065550100", kind="landline")
    conv = T0 + timedelta(hours=3)
    inbound = LedgerEntry("in1", 1, conv, direction="inbound", outcomes=(("conversation", conv),))
    h = History((*calls(2, debts=(1,)), inbound))
    assert check(["us_wa"], wa, number, T0 + timedelta(hours=4), h).allowed
    h = History((*calls(3, debts=(1,)), inbound))
    assert not check(["us_wa"], wa, number, T0 + timedelta(hours=4), h).allowed


def test_per_person_cap_counts_each_call_once() -> None:
    wa = Contact(1, "US", "WA")
    number = PhoneNumber("+12065550100", kind="landline")
    now = T0 + timedelta(hours=5)
    two_calls_two_debts = History(tuple(calls(2, debts=(1, 2), start=T0 + timedelta(hours=3))))
    assert check(["us_wa"], wa, number, now, two_calls_two_debts, debts=(3,)).allowed
    three = History(tuple(calls(3, debts=(1, 2))))
    d = check(["us_wa"], wa, number, now, three, debts=(3,))
    assert d.codes == ("CAP_REACHED",)
    assert d.reasons[0].debt_id is None


def test_chile_one_call_a_week_per_person() -> None:
    h = History(tuple(calls(1, debts=(7,), start=at("2026-03-09T13:00"))))  # Mon 10:00 -03
    d = check(["cl"], CL, CL_NUMBER, "2026-03-13T15:00", h)
    assert d.codes == ("CAP_REACHED",)
    assert d.next_allowed_at == at("2026-03-16T13:00")  # 168 h later, a Monday 10:00


def test_colombia_once_a_day_and_one_channel_a_week() -> None:
    co = Contact(1, "CO")
    contact_at = at("2026-03-10T15:00")  # Tuesday 10:00 Bogotá
    h = History((LedgerEntry("c1", 1, contact_at, outcomes=(("direct_contact", contact_at),)),))
    d = check(["co"], co, "+573001234567", "2026-03-10T20:00", h, debts=(2,))
    assert d.codes == ("COOLDOWN",)
    assert d.next_allowed_at == at("2026-03-11T12:00")  # Wednesday 07:00
    sms = History((LedgerEntry("s1", 1, contact_at, channel="sms",
                               outcomes=(("direct_contact", contact_at),)),))  # fmt: skip
    d = check(["co"], co, "+573001234567", "2026-03-12T15:00", sms)
    assert d.codes == ("CHANNEL_LOCKED",)
    assert d.next_allowed_at == at("2026-03-17T12:00")  # day 8 after Tuesday is Tuesday 17th


# -- hard blocks ----------------------------------------------------------------------------------
NOW_OK = "2026-03-10T15:00"


@pytest.mark.parametrize(
    ("block", "code", "debts", "blocked"),
    [
        (Block("cease", person_id=1), "CEASE", (1,), True),
        (Block("cease", person_id=1, debt_id=2), "CEASE", (1,), False),
        (Block("cease", person_id=1, debt_id=2), "CEASE", (1, 2), True),
        (Block("dnc", e164="+12125551234"), "DNC", (1,), True),
        (Block("dnc", e164="+12125559999"), "DNC", (1,), False),
        (Block("dnc", person_id=9), "DNC", (1,), False),
        (Block("cease", person_id=1, revoked_at=at("2026-03-01T00:00")), "CEASE", (1,), False),
        (Block("dnc", e164="+12125551234", channel="sms"), "DNC", (1,), False),
        # A number not on file named with the person or a debt (a debtor calling in from
        # another phone): the person or the debt is blocked on every number, not only that one.
        (Block("cease", e164="+13125550999", person_id=1, debt_id=1), "CEASE", (1,), True),
        (Block("cease", e164="+13125550999", person_id=1), "CEASE", (1,), True),
        (Block("cease", e164="+13125550999", person_id=1, debt_id=2), "CEASE", (1,), False),
    ],
)
def test_cease_and_dnc(block: Block, code: str, debts: tuple, blocked: bool) -> None:
    d = check(["us_federal"], NY, NY_NUMBER, NOW_OK, History(blocks=(block,)), debts=debts)
    assert d.allowed is not blocked
    if blocked:
        assert d.codes == (code,)
        assert d.next_allowed_at is None


def test_blocks_apply_even_without_a_block_rule_in_the_packs() -> None:
    d = check(["mx"], Contact(1), "+523312345678", "2026-03-10T18:00",
              History(blocks=(Block("cease", person_id=1),)))  # fmt: skip
    assert d.codes == ("CEASE",)
    assert d.reasons[0].pack == "core"


def test_autodialed_call_to_a_mobile_needs_consent() -> None:
    mobile = PhoneNumber("+12125551234", kind="mobile")
    assert check(["us_federal"], NY, mobile, NOW_OK, channel="voice").allowed
    d = check(["us_federal"], NY, mobile, NOW_OK, channel="autodialed_voice")
    assert d.codes == ("NO_CONSENT",)
    assert d.next_allowed_at is None
    granted = Consent("+12125551234", "autodialed_voice", True, at("2026-01-01T00:00"), "form")
    h = History(consents=(granted,))
    assert check(["us_federal"], NY, mobile, NOW_OK, h, channel="autodialed_voice").allowed
    assert not check(["us_federal"], NY, mobile, NOW_OK, h, channel="prerecorded").allowed
    withdrawn = Consent("+12125551234", "autodialed_voice", False, at("2026-02-01T00:00"), "call")
    h = History(consents=(granted, withdrawn))
    assert not check(["us_federal"], NY, mobile, NOW_OK, h, channel="autodialed_voice").allowed
    # A withdrawal counts once recorded, whatever its date (a few seconds ahead: two clocks),
    # and wins a tie with a grant; a grant dated ahead counts from its date.
    ahead = Consent("+12125551234", "autodialed_voice", False, at("2026-03-10T15:00:02"), "call")
    h = History(consents=(granted, ahead))
    assert not check(["us_federal"], NY, mobile, NOW_OK, h, channel="autodialed_voice").allowed
    same = at("2026-02-01T00:00")
    for order in ((True, False), (False, True)):
        tie = tuple(Consent("+12125551234", "autodialed_voice", g, same, "x") for g in order)
        h = History(consents=tie)
        assert not check(["us_federal"], NY, mobile, NOW_OK, h, channel="autodialed_voice").allowed
    later = Consent("+12125551234", "autodialed_voice", True, at("2026-03-11T00:00"), "form")
    h = History(consents=(later,))
    assert not check(["us_federal"], NY, mobile, NOW_OK, h, channel="autodialed_voice").allowed
    # a landline is not a mobile under 227(b)(1)(A)(iii)
    assert check(["us_federal"], NY, NY_NUMBER, NOW_OK, channel="autodialed_voice").allowed


def test_invalid_number_and_no_timezone_deny_and_never_raise() -> None:
    for bad in ("+1999555123", "not a number", "", "+"):
        d = check(["us_federal"], NY, bad, NOW_OK)
        assert d.codes == ("INVALID_NUMBER",)
        assert d.next_allowed_at is None
    d = check(["us_federal"], Contact(1), "+18005551234", NOW_OK)  # toll-free, no address
    assert d.codes == ("NO_TIMEZONE",)
    assert d.next_allowed_at is None
    for status in ("disconnected", "fax"):
        d = check(["us_federal"], NY, PhoneNumber("+12125551234", status=status), NOW_OK)
        assert d.codes == ("INVALID_NUMBER",)
        assert f"marked {status}" in d.reasons[0].message


# -- overrides ------------------------------------------------------------------------------------
def override(rule_ids=(), start="2026-03-10T00:00", end="2026-03-20T00:00"):
    return Override(42, at(start), at(end), tuple(rule_ids), None, "callback requested")


def test_override_lifts_a_soft_window_when_the_pack_allows_it() -> None:
    late = "2026-03-10T02:30"  # 22:30 EDT
    assert not check(["us_federal"], NY, NY_NUMBER, late).allowed
    d = check(["us_federal"], NY, NY_NUMBER, late, History(overrides=(override(),)))
    assert d.allowed
    assert d.overrides_used == (42,)
    # a rule-specific override only lifts that rule
    d = check(["us_federal"], NY, NY_NUMBER, late,
              History(overrides=(override(["us_fed_7_in_7"]),)))  # fmt: skip
    assert d.codes == ("OUTSIDE_WINDOW",)
    # Spain's reference window is not overridable
    d = check(["es"], Contact(1, "ES", "MD"), "+34912345678", "2026-03-10T21:00",
              History(overrides=(override(),)))  # fmt: skip
    assert d.codes == ("OUTSIDE_WINDOW",)


def test_reg_f_consent_override_lasts_seven_local_days_at_most() -> None:
    # 7 calls on Monday 9 March from 10:00 EDT; consent given that day (day 1), override valid
    # on paper until the 20th. The cap alone blocks until the 16th at 14:00Z.
    h = History(tuple(calls(7)), overrides=(override(start="2026-03-09T12:00"),))
    d = check(["us_federal"], NY, NY_NUMBER, "2026-03-09T23:00", h)
    assert d.allowed
    assert d.overrides_used == (42,)
    assert check(["us_federal"], NY, NY_NUMBER, "2026-03-15T23:00", h).allowed  # Sunday, day 7
    d = check(["us_federal"], NY, NY_NUMBER, "2026-03-16T13:00", h)  # Monday 09:00 EDT, day 8
    assert d.codes == ("CAP_REACHED",)
    assert d.next_allowed_at == at("2026-03-16T14:00")
    without = History(tuple(calls(7)))
    assert check(["us_federal"], NY, NY_NUMBER, "2026-03-15T23:00", without).codes == (
        "CAP_REACHED",
    )


@pytest.mark.parametrize(
    ("history", "number", "contact", "channel", "code"),
    [
        (History(blocks=(Block("cease", person_id=1),)), NY_NUMBER, NY, "voice", "CEASE"),
        (History(blocks=(Block("dnc", e164="+12125551234"),)), NY_NUMBER, NY, "voice", "DNC"),
        (History(), PhoneNumber("+12125551234", kind="mobile"), NY, "prerecorded", "NO_CONSENT"),
        (History(), PhoneNumber("+1999555123"), NY, "voice", "INVALID_NUMBER"),
        (History(), PhoneNumber("+18005551234"), Contact(1), "voice", "NO_TIMEZONE"),
    ],
)
def test_override_can_never_bypass_a_hard_block(history, number, contact, channel, code) -> None:
    h = History(history.entries, history.blocks, history.consents, (override(),))
    d = check(["us_federal"], contact, number, NOW_OK, h, channel=channel)
    assert not d.allowed
    assert code in d.codes
    assert d.next_allowed_at is None
    assert d.overrides_used == ()


def test_an_unknown_stated_zone_is_a_hard_denial_not_the_numbers_zone() -> None:
    # 13:30Z is 09:30 in New York (allowed) but 05:30 in Los Angeles: a typo of the stated zone
    # must not fall back to the number's zone and allow the dial
    assert check(["us_federal"], Contact(1), NY_NUMBER, "2026-03-10T13:30").allowed
    for stated in ("America/Los_Angles", "Mars/Olympus", "../etc/passwd"):
        d = check(["us_federal"], Contact(1, stated_timezone=stated), NY_NUMBER, "2026-03-10T13:30")
        assert not d.allowed
        assert d.codes == ("NO_TIMEZONE",)
        assert repr(stated) in d.reasons[0].message
        assert d.next_allowed_at is None
    d = check(
        ["us_federal"],
        Contact(1, stated_timezone="America/Los_Angeles"),
        NY_NUMBER,
        "2026-03-10T13:30",
    )
    assert d.codes == ("OUTSIDE_WINDOW",)


@pytest.mark.parametrize(
    "now",
    [
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+12:00",
        "1969-12-31T23:59:59+00:00",
        "2201-01-01T00:00:00+00:00",
    ],
)
def test_an_instant_outside_the_supported_years_is_denied_not_raised(now: str) -> None:
    d = check(["us_federal"], NY, NY_NUMBER, datetime.fromisoformat(now))
    assert not d.allowed
    assert d.codes == ("BAD_REQUEST",)
    assert "outside the supported years 1970-2200" in d.reasons[0].message
    assert d.to_dict()["at"]  # serialisable (iso_utc does not overflow)


def test_iso_utc_keeps_the_offset_of_an_instant_with_no_utc_reading() -> None:
    from compliance._types import iso_utc

    assert iso_utc(datetime.fromisoformat("9999-12-31T23:59:59-14:00")) == (
        "9999-12-31T23:59:59-14:00"
    )
    assert iso_utc(datetime.fromisoformat("2026-03-10T09:30:00-04:00")) == "2026-03-10T13:30:00Z"


def test_the_first_and_last_supported_years_decide() -> None:
    for now in ("1970-01-01T15:00:00+00:00", "2200-12-31T15:00:00+00:00"):
        d = check(["us_federal"], NY, NY_NUMBER, datetime.fromisoformat(now))
        assert "BAD_REQUEST" not in d.codes
