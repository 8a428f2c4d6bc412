"""Candidate time zones from the address, the number and a stated zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from compliance import Contact, PhoneNumber, decide, load_rules, number_info
from compliance._zones import address_region, address_zones, candidate_zones


def zones(contact: Contact, e164: str, kind: str = "unknown") -> tuple[str, ...]:
    return candidate_zones(contact, number_info(e164), kind)


def test_spanish_mobile_spans_madrid_and_the_canaries() -> None:
    assert zones(Contact(), "+34612345678") == ("Atlantic/Canary", "Europe/Madrid")
    # a Madrid landline does not
    assert zones(Contact(), "+34912345678") == ("Europe/Madrid",)


def test_address_and_number_zones_are_united() -> None:
    # a Canarian address with a Madrid landline: both zones must allow the call
    c = Contact(country="ES", region="Canarias")
    assert zones(c, "+34912345678") == ("Atlantic/Canary", "Europe/Madrid")
    # the postal code settles the community when the region is missing (38xxx: Tenerife)
    assert address_region("ES", None, "38001") == "CN"
    assert address_zones("ES", None, "38001") == ("Atlantic/Canary",)


def test_stated_zone_overrides_everything() -> None:
    c = Contact(country="US", region="NY", stated_timezone="America/Los_Angeles")
    assert zones(c, "+12125551234") == ("America/Los_Angeles",)
    # an unusable stated zone gives no zone at all (the core denies NO_TIMEZONE): falling back
    # to the address and the number would trust them over what the debtor said
    c = Contact(country="US", region="NY", stated_timezone="Mars/Olympus")
    assert zones(c, "+12125551234") == ()


def test_a_mistyped_stated_zone_never_widens_what_is_allowed() -> None:
    c = Contact(stated_timezone="America/Los_Angles")  # typo of America/Los_Angeles
    assert zones(c, "+12125551234") == ()
    assert zones(Contact(stated_timezone="  "), "+12125551234") == ("America/New_York",)


def test_toll_free_numbers_use_the_address_only() -> None:
    assert number_info("+18005551234").kind == "toll_free"
    assert zones(Contact(country="US", region="CA"), "+18005551234") == ("America/Los_Angeles",)
    assert zones(Contact(), "+18005551234") == ()  # nothing usable: NO_TIMEZONE


def test_mexican_border_city_and_regions() -> None:
    assert zones(Contact(), "+526641234567") == ("America/Tijuana",)
    assert zones(Contact(country="MX", region="JAL"), "+523312345678") == ("America/Mexico_City",)
    assert address_zones("MX", "CDMX", None) == ("America/Mexico_City",)
    assert address_zones("MX", "MX-BCN", None) == ("America/Tijuana",)


def test_split_states_list_every_zone_unless_the_zip_settles_it() -> None:
    assert set(address_zones("US", "FL", None)) == {"America/New_York", "America/Chicago"}
    assert address_zones("US", "FL", "32501") == ("America/Chicago",)  # Pensacola
    assert address_zones("US", "FL", "33101") == ("America/New_York",)  # Miami
    assert address_zones("US", "TX", "79901") == ("America/Denver",)  # El Paso
    assert address_zones("US", "Massachusetts", None) == ("America/New_York",)


def test_country_without_region_gives_every_zone_of_the_country() -> None:
    us = address_zones("US", None, None)
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(us)
    assert address_zones("CO", None, None) == ("America/Bogota",)
    # A country with no table of its own: every zone it has (it was none, which left only
    # the number's: a Canadian address with a New York number got New York time alone).
    assert "Europe/Paris" in address_zones("FR", None, None)
    canada = set(address_zones("CA", "BC", "V6B 1A1"))
    assert {"America/Vancouver", "America/St_Johns", "America/Toronto"} <= canada
    assert address_zones("GT", None, None) == ("America/Guatemala",)


def test_an_address_in_a_country_without_a_table_narrows_the_window() -> None:
    # 12:05Z on Tuesday 10 June 2025: 08:05 in New York, 05:05 in Vancouver.
    contact = Contact(1, country="CA", region="BC", postal_code="V6B 1A1")
    when = datetime(2025, 6, 10, 12, 5, tzinfo=UTC)
    rules = load_rules(["us_federal"])
    d = decide(contact, 1, PhoneNumber("+12125550123"), "voice", when, rules=rules)
    assert "OUTSIDE_WINDOW" in d.codes


@pytest.mark.parametrize(
    "e164", ["+1999555123", "12125551234", "+", "", "+5716012345", "+34 612", "+999123456789"]
)
def test_invalid_numbers_are_invalid_not_errors(e164: str) -> None:
    assert number_info(e164).valid is False


def test_us_state_from_the_area_code() -> None:
    assert number_info("+16175551234").us_states == ("MA",)
    assert number_info("+12065550100").us_states == ("WA",)
    assert number_info("+12125551234").us_states == ("NY",)
