"""Calendar edges of the pure core at exact instants: DST days, window edges and the margin,
zone resolution of split area codes and regions, and the holiday calendars of the packs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from compliance import Contact, PhoneNumber, decide, load_rules, number_info
from compliance._constraints import holiday
from compliance._time import day_ranges
from compliance._zones import address_zones, zone


def at(text: str) -> datetime:
    """An instant written in UTC without the offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


US = timedelta(microseconds=1)


def check(packs, contact, e164, now, margin=90):
    return decide(
        contact,
        (1,),
        PhoneNumber(e164),
        "voice",
        at(now) if isinstance(now, str) else now,
        rules=load_rules(packs),
        margin_s=margin,
    )


def allowed(packs, contact, e164, now, margin=90) -> bool:
    return check(packs, contact, e164, now, margin).allowed


NY = Contact(1, "US", "NY")
NY_NUMBER = "+12125551234"
LA = Contact(1, "US", "CA")
LA_NUMBER = "+12135551234"


# -- 1. DST days: the window in true local wall time ----------------------------------------------
@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        # spring forward (08:00 and 21:00 are both EDT, -04)
        ("2026-03-08T12:00", "2026-03-09T01:00"),
        ("2027-03-14T12:00", "2027-03-15T01:00"),
        # fall back: 08:00 is already EST (-05)
        ("2026-11-01T13:00", "2026-11-02T02:00"),
        ("2027-11-07T13:00", "2027-11-08T02:00"),
        # the days before the change
        ("2026-03-07T13:00", "2026-03-08T02:00"),
        ("2026-10-31T12:00", "2026-11-01T01:00"),
    ],
)
def test_us_window_edges_on_dst_days_new_york(opening: str, closing: str) -> None:
    o, c = at(opening), at(closing)
    assert not allowed(["us_federal"], NY, NY_NUMBER, o - US)
    assert allowed(["us_federal"], NY, NY_NUMBER, o)  # 08:00:00 local is inside
    d = check(["us_federal"], NY, NY_NUMBER, o - timedelta(hours=1))
    assert d.next_allowed_at == o
    # 21:00 is outside; with a 90 s margin the last start is 20:58:29.999999
    last = c - timedelta(seconds=90) - US
    assert allowed(["us_federal"], NY, NY_NUMBER, last)
    assert not allowed(["us_federal"], NY, NY_NUMBER, last + US)
    assert allowed(["us_federal"], NY, NY_NUMBER, c - US, margin=0)
    assert not allowed(["us_federal"], NY, NY_NUMBER, c, margin=0)


def test_us_fall_back_day_pacific() -> None:
    # Los Angeles on 2026-11-01: 08:00 PST = 16:00Z, 21:00 PST = 05:00Z
    assert not allowed(["us_federal"], LA, LA_NUMBER, at("2026-11-01T15:59:59"))
    assert allowed(["us_federal"], LA, LA_NUMBER, at("2026-11-01T16:00"))
    assert allowed(["us_federal"], LA, LA_NUMBER, at("2026-11-02T04:59:59"), margin=0)
    assert not allowed(["us_federal"], LA, LA_NUMBER, at("2026-11-02T05:00"), margin=0)


# Phoenix has no DST: 08:00 MST = 15:00Z on both sides of the US changes
@pytest.mark.parametrize("day", ["2026-03-07", "2026-03-09", "2026-11-01", "2026-11-02"])
def test_arizona_without_dst(day: str) -> None:
    phx = Contact(1, stated_timezone="America/Phoenix")
    assert not allowed(["us_federal"], phx, "+16025551234", at(day + "T14:59:59"))
    assert allowed(["us_federal"], phx, "+16025551234", at(day + "T15:00"))


def test_nonexistent_and_repeated_local_times_are_read_on_the_safe_side() -> None:
    ny = "America/New_York"
    # 02:30 does not exist on 2026-03-08: a range opening then opens at the later reading
    # (03:30 EDT, 07:30Z) and one closing then closes at the earlier (01:30 EST, 06:30Z).
    assert day_ranges(((150, 240),), date(2026, 3, 8), ny) == (
        (at("2026-03-08T07:30"), at("2026-03-08T08:00")),
    )
    assert day_ranges(((60, 150),), date(2026, 3, 8), ny) == (
        (at("2026-03-08T06:00"), at("2026-03-08T06:30")),
    )
    # 01:30 happens twice on 2026-11-01 (05:30Z EDT, 06:30Z EST): open at the later reading,
    # close at the earlier one.
    assert day_ranges(((90, 180),), date(2026, 11, 1), ny) == (
        (at("2026-11-01T06:30"), at("2026-11-01T08:00")),
    )
    assert day_ranges(((0, 90),), date(2026, 11, 1), ny) == (
        (at("2026-11-01T04:00"), at("2026-11-01T05:30")),
    )


def test_a_dial_needs_the_window_in_every_candidate_zone_across_dst() -> None:
    # +1 605: South Dakota, Central and Mountain. 08:00 MDT = 14:00Z, 21:00 CDT = 02:00Z.
    sd = Contact(1)
    assert not allowed(["us_federal"], sd, "+16055551234", at("2026-06-01T13:59:59"))
    assert allowed(["us_federal"], sd, "+16055551234", at("2026-06-01T14:00"))
    assert not allowed(["us_federal"], sd, "+16055551234", at("2026-06-02T02:00"), margin=0)
    assert allowed(["us_federal"], sd, "+16055551234", at("2026-06-02T01:59:59"), margin=0)
    # Tijuana follows US DST, Mexico City has none since 2022: a Tijuana number of a debtor
    # living in Mexico City needs 07:00 PDT (14:00Z) to 22:00 CST (04:00Z) in July...
    tj = Contact(1, "MX", "CMX")
    assert not allowed(["mx"], tj, "+526641234567", at("2026-07-01T13:59:59"))
    assert allowed(["mx"], tj, "+526641234567", at("2026-07-01T14:00"))
    assert not allowed(["mx"], tj, "+526641234567", at("2026-07-02T04:00"), margin=0)
    # ... and 07:00 PST (15:00Z) to 22:00 CST (04:00Z) in January
    assert not allowed(["mx"], tj, "+526641234567", at("2026-01-14T14:59:59"))
    assert allowed(["mx"], tj, "+526641234567", at("2026-01-14T15:00"))
    # Quintana Roo is on -05 all year: 07:00 = 12:00Z
    qr = Contact(1, "MX", "ROO")
    assert not allowed(["mx"], qr, "+529981234567", at("2026-01-14T11:59:59"))
    assert allowed(["mx"], qr, "+529981234567", at("2026-01-14T12:00"))
    assert allowed(["mx"], qr, "+529981234567", at("2026-07-01T12:00"))


CL = Contact(1, "CL", "RM")
CL_NUMBER = "+56222123456"


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        # 2027: Santiago leaves -03 on Sunday 4 April (Saturday 24:00 -> 23:00) and returns to
        # it on Sunday 5 September (Saturday 24:00 -> Sunday 01:00).
        ("2027-04-03T10:59:59", False),  # Saturday 07:59:59 -03
        ("2027-04-03T11:00", True),  # Saturday 08:00 -03
        ("2027-04-05T11:30", False),  # Monday 07:30 -04
        ("2027-04-05T12:00", True),  # Monday 08:00 -04
        ("2027-04-05T23:59:59", True),  # 19:59:59 -04, margin 0
        ("2027-04-06T00:00", False),  # 20:00 -04
        ("2027-09-04T11:59:59", False),  # Saturday 07:59:59 -04
        ("2027-09-04T12:00", True),
        ("2027-09-06T10:59:59", False),  # Monday 07:59:59 -03
        ("2027-09-06T11:00", True),
        ("2027-09-06T23:00", False),  # 20:00 -03
    ],
)
def test_chile_dst_changes_2027(now: str, ok: bool) -> None:
    assert allowed(["cl"], CL, CL_NUMBER, at(now), margin=0) is ok


@pytest.mark.parametrize(
    ("contact", "e164", "opening"),
    [
        # Friday before the spring change (CET) and Monday after it (CEST), Madrid: 09:00
        (Contact(1, "ES", "MD"), "+34912345678", "2026-03-27T08:00"),
        (Contact(1, "ES", "MD"), "+34912345678", "2026-03-30T07:00"),
        (Contact(1, "ES", "MD"), "+34912345678", "2026-10-26T08:00"),  # after the autumn one
        # the Canaries are an hour behind on both sides of the change
        (Contact(1, "ES", "CN"), "+34928123456", "2026-03-27T09:00"),
        (Contact(1, "ES", "CN"), "+34928123456", "2026-03-30T08:00"),
        (Contact(1, "ES", "CN"), "+34928123456", "2026-10-26T09:00"),
        # a mobile may be in either: the later opening
        (Contact(1), "+34612345678", "2026-03-30T08:00"),
    ],
)
def test_spain_dst_changes(contact: Contact, e164: str, opening: str) -> None:
    o = at(opening)
    assert not allowed(["es"], contact, e164, o - US)
    assert allowed(["es"], contact, e164, o)


# -- 4. window edges and the margin ----------------------------------------------------------
def test_the_margin_only_shortens_the_window_and_never_moves_the_opening() -> None:
    # 08:00:00 EDT on a Tuesday is allowed with any margin (the call starts after it); the margin
    # is taken before the close: 3600 s means no start after 20:00 EDT.
    opening = at("2026-03-10T12:00")
    for margin in (0, 90, 3600):
        assert allowed(["us_federal"], NY, NY_NUMBER, opening, margin=margin)
        assert not allowed(["us_federal"], NY, NY_NUMBER, opening - US, margin=margin)
    assert allowed(["us_federal"], NY, NY_NUMBER, at("2026-03-10T23:59:59"), margin=3600)
    d = check(["us_federal"], NY, NY_NUMBER, at("2026-03-11T00:00"), margin=3600)
    assert not d.allowed
    assert d.next_allowed_at == at("2026-03-11T12:00")


# -- 2. zone resolution ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+18505551234", {"America/New_York", "America/Chicago"}),  # Panhandle
        ("+18504321234", {"America/New_York", "America/Chicago"}),  # a Pensacola exchange
        ("+14485551234", {"America/New_York", "America/Chicago"}),  # 850's overlay
        ("+12704431234", {"America/New_York", "America/Chicago"}),  # western Kentucky
        ("+13645551234", {"America/New_York", "America/Chicago"}),  # 270's overlay
        ("+18124241234", {"America/New_York", "America/Chicago"}),  # southern Indiana
        ("+19305551234", {"America/New_York", "America/Chicago"}),  # 812's overlay
        ("+19068631234", {"America/New_York", "America/Chicago"}),  # Upper Peninsula
        ("+14238671234", {"America/New_York", "America/Chicago"}),  # East Tennessee
        ("+13086321234", {"America/Chicago", "America/Denver"}),  # western Nebraska
        ("+17858991234", {"America/Chicago", "America/Denver"}),  # northern Kansas
        ("+16203841234", {"America/Chicago", "America/Denver"}),  # southern Kansas
        ("+15418891234", {"America/Los_Angeles", "America/Denver"}),  # Oregon (Malheur)
        ("+14585551234", {"America/Los_Angeles", "America/Denver"}),  # 541's overlay
        ("+19288711234", {"America/Phoenix", "America/Denver"}),  # Navajo Nation keeps DST
        ("+16055551234", {"America/Denver", "America/North_Dakota/Center"}),
        ("+12085551234", {"America/Boise", "America/Los_Angeles"}),
    ],
)
def test_a_split_area_code_gives_every_zone_of_the_area_code(e164: str, expected: set) -> None:
    assert expected <= set(number_info(e164).zones)


def test_a_panhandle_number_is_not_called_before_08_00_central() -> None:
    # 12:30Z on Monday 1 June 2026 is 08:30 EDT but 07:30 CDT (Pensacola)
    d = check(["us_federal"], Contact(1), "+18505551234", at("2026-06-01T12:30"))
    assert d.codes == ("OUTSIDE_WINDOW",)
    assert d.next_allowed_at == at("2026-06-01T13:00")


def test_single_zone_area_codes_stay_single() -> None:
    assert number_info("+12125551234").zones == ("America/New_York",)
    assert number_info("+12055551234").zones == ("America/Chicago",)
    assert number_info("+19155551234").zones == ("America/Denver",)


def test_toll_free_and_non_geographic_numbers_never_narrow_the_zones() -> None:
    assert number_info("+18005551234").kind == "toll_free"
    assert zone("America/Chicago") is not None
    d = check(["us_federal"], Contact(1), "+18005551234", at("2026-06-01T15:00"))
    assert d.codes == ("NO_TIMEZONE",)
    # a Spanish 901 (shared cost) number may be in Madrid or the Canaries
    assert set(number_info("+34901123456").zones) == {"Europe/Madrid", "Atlantic/Canary"}


def test_florida_zip_codes_of_gulf_county_straddle_the_line() -> None:
    assert address_zones("US", "FL", "32401") == ("America/Chicago",)  # Panama City
    assert address_zones("US", "FL", "32501") == ("America/Chicago",)  # Pensacola
    assert set(address_zones("US", "FL", "32456")) == {"America/Chicago", "America/New_York"}
    # a debtor in Port St. Joe (Eastern) with an Alabama (Central) mobile: 20:30 CDT is
    # 21:30 in Port St. Joe
    d = check(["us_federal"], Contact(1, "US", "FL", "32456"), "+12055551234", "2026-06-02T01:30")
    assert d.codes == ("OUTSIDE_WINDOW",)


def test_texas_zip_798_serves_central_time_towns_too() -> None:
    assert address_zones("US", "TX", "79901") == ("America/Denver",)  # El Paso
    assert set(address_zones("US", "TX", "79830")) == {"America/Chicago", "America/Denver"}
    # Alpine (Central) with an El Paso (Mountain) number at 20:30 MDT = 21:30 CDT
    d = check(["us_federal"], Contact(1, "US", "TX", "79830"), "+19155551234", "2026-06-02T02:30")
    assert d.codes == ("OUTSIDE_WINDOW",)


def test_chihuahua_numbers_are_on_minus_six_since_2022() -> None:
    assert number_info("+526141234567").zones == ("America/Chihuahua",)
    assert "America/Ciudad_Juarez" in number_info("+526361234567").zones
    assert number_info("+526561234567").zones == ("America/Ciudad_Juarez",)
    assert number_info("+526261234567").zones == ("America/Ojinaga",)
    # 04:30Z on 2 June 2026 is 22:30 in Chihuahua (21:30 by the library's stale Mazatlan)
    d = check(["mx"], Contact(1), "+526141234567", at("2026-06-02T04:30"))
    assert d.codes == ("OUTSIDE_WINDOW",)
    assert allowed(["mx"], Contact(1), "+526141234567", at("2026-06-02T13:00"))  # 07:00 -06


def test_matamoros_numbers_follow_us_dst() -> None:
    assert "America/Matamoros" in number_info("+528681234567").zones
    # 03:30Z on 1 July 2026: 21:30 in Mexico City, 22:30 CDT in Matamoros
    d = check(["mx"], Contact(1), "+528681234567", at("2026-07-01T03:30"))
    assert d.codes == ("OUTSIDE_WINDOW",)


@pytest.mark.parametrize(
    ("e164", "where"),
    [("+56612212345", "America/Punta_Arenas"), ("+56672212345", "America/Coyhaique")],
)
def test_magallanes_and_aysen_numbers_keep_minus_three_in_winter(e164: str, where: str) -> None:
    assert number_info(e164).zones in ((where,), ("Etc/GMT+3",))
    # 23:30Z on Tuesday 2 June 2026: 19:30 in Santiago (-04), 20:30 at -03
    d = check(["cl"], Contact(1), e164, at("2026-06-02T23:30"), margin=0)
    assert d.codes == ("OUTSIDE_WINDOW",)
    assert check(["cl"], Contact(1), CL_NUMBER, at("2026-06-02T23:30"), margin=0).allowed


def test_aysen_addresses_and_chilean_mobiles() -> None:
    assert address_zones("CL", "AI", None) in (("America/Coyhaique",), ("Etc/GMT+3",))
    assert zone("America/Coyhaique") is not None  # tzdata 2025b or later on this host
    every = {"America/Santiago", "America/Punta_Arenas", "America/Coyhaique", "Pacific/Easter"}
    assert set(number_info("+56961234567").zones) == every
    assert set(address_zones("CL", None, None)) == every


def test_valparaiso_landlines_may_be_on_easter_island() -> None:
    # Rapa Nui's landlines are in Valparaíso's area code 32: Santiago time alone let a call
    # ring at 06:30 on the island. 12:30Z on Wednesday 10 June 2026: 08:30 in Santiago (-04),
    # 06:30 on Easter Island (-06).
    assert set(number_info("+56322100123").zones) == {"America/Santiago", "Pacific/Easter"}
    d = check(["cl"], Contact(1), "+56322100123", at("2026-06-10T12:30"), margin=0)
    assert d.codes == ("OUTSIDE_WINDOW",)


# -- 3. holidays ----------------------------------------------------------------------------------
def names(country: str, year: int, subdiv: str | None = None) -> set[date]:
    return set(holidays.country_holidays(country, subdiv=subdiv, years=year))


def d(text: str) -> date:
    return date.fromisoformat(text)


COLOMBIA = {
    # Ley 51 de 1983 (Emiliani): Reyes, San José, San Pedro, Asunción, Raza, Todos los Santos,
    # Cartagena move to the next Monday; Ascensión (+43), Corpus (+64), Sagrado Corazón (+71)
    # are the Mondays after Easter + 39/60/68; Ley 2578 de 2026: Chiquinquirá (9 July) moves too.
    2026: ["01-01", "01-12", "03-23", "04-02", "04-03", "05-01", "05-18", "06-08", "06-15",
           "06-29", "07-13", "07-20", "08-07", "08-17", "10-12", "11-02", "11-16", "12-08",
           "12-25"],
    2027: ["01-01", "01-11", "03-22", "03-25", "03-26", "05-01", "05-10", "05-31", "06-07",
           "07-05", "07-12", "07-20", "08-07", "08-16", "10-18", "11-01", "11-15", "12-08",
           "12-25"],
}  # fmt: skip
MEXICO = {
    # Ley Federal del Trabajo, art. 74 (rest days), without election days
    2026: ["01-01", "02-02", "03-16", "05-01", "09-16", "11-16", "12-25"],
    2027: ["01-01", "02-01", "03-15", "05-01", "09-16", "11-15", "12-25"],
}
CHILE = {
    2026: ["01-01", "04-03", "04-04", "05-01", "05-21", "06-21", "06-29", "07-16", "08-15",
           "09-18", "09-19", "10-12", "10-31", "11-01", "12-08", "12-25"],
    2027: ["01-01", "03-26", "03-27", "05-01", "05-21", "06-21", "06-28", "07-16", "08-15",
           "09-17", "09-18", "09-19", "10-11", "10-31", "11-01", "12-08", "12-25"],
}  # fmt: skip
PERU = {
    2026: ["01-01", "04-02", "04-03", "04-05", "05-01", "06-07", "06-29", "07-23", "07-28",
           "07-29", "08-06", "08-30", "10-08", "11-01", "12-08", "12-09", "12-25"],
    2027: ["01-01", "03-25", "03-26", "03-28", "05-01", "06-07", "06-29", "07-23", "07-28",
           "07-29", "08-06", "08-30", "10-08", "11-01", "12-08", "12-09", "12-25"],
}  # fmt: skip
SPAIN_NATIONAL_2026 = ["01-01", "01-06", "04-03", "05-01", "08-15", "10-12", "12-08", "12-25"]


@pytest.mark.parametrize(
    ("country", "table"), [("CO", COLOMBIA), ("MX", MEXICO), ("CL", CHILE), ("PE", PERU)]
)
@pytest.mark.parametrize("year", [2026, 2027])
def test_national_holidays(country: str, table: dict, year: int) -> None:
    assert names(country, year) == {d(f"{year}-{md}") for md in table[year]}


def test_spanish_national_holidays_2026_and_the_inauguration_day_of_mexico() -> None:
    assert names("ES", 2026) == {d(f"2026-{md}") for md in SPAIN_NATIONAL_2026}
    assert d("2030-10-01") in names("MX", 2030)  # LFT art. 74, VIII (every six years)
    assert d("2026-10-01") not in names("MX", 2026)


def test_a_holiday_is_the_debtors_local_date_in_every_zone() -> None:
    rule = load_rules(["es"]).holidays[0]
    both = ("Atlantic/Canary", "Europe/Madrid")
    allowed_set = holiday(rule, both, set(), False)(at("2026-01-05T00:00"), at("2026-01-08T00:00"))
    # 6 January: from Madrid's midnight (23:00Z on the 5th) to the Canaries' (00:00Z on the 7th)
    assert allowed_set == [
        (at("2026-01-05T00:00"), at("2026-01-05T23:00")),
        (at("2026-01-07T00:00"), at("2026-01-08T00:00")),
    ]
    co = load_rules(["co"]).holidays[0]
    bogota = holiday(co, ("America/Bogota",), set(), True)(
        at("2026-03-23T00:00"), at("2026-03-25T00:00")
    )
    assert bogota == [(at("2026-03-23T00:00"), at("2026-03-23T05:00")),
                      (at("2026-03-24T05:00"), at("2026-03-25T00:00"))]  # fmt: skip
