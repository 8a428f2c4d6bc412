"""Where the debtor may be: candidate time zones from the address and the number.

- The address gives zones from the most precise level known: postal-code prefix, region, or
  the whole country (every zone of it: conservative).
- The number gives every zone ``phonenumbers.timezone`` lists for it; toll-free numbers give
  none (they say nothing about where the phone is).
- A zone the debtor stated replaces all of them; a stated zone that is not a zone here gives
  none (the caller denies: it must never widen what is allowed).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers import timezone as pn_timezone

from compliance._types import Contact
from compliance._zone_data import (
    ES_ALIASES,
    ES_PROVINCE_COMMUNITY,
    MX_ALIASES,
    POSTAL_ZONES,
    REGION_ZONES,
    SINGLE_ZONE_COUNTRIES,
    US_STATE_NAMES,
    ZONE_SUBDIVISIONS,
)

_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.VOIP: "voip",
}


@dataclass(frozen=True, slots=True)
class NumberInfo:
    e164: str
    valid: bool
    kind: str = "unknown"
    region: str | None = None  # ISO country of the numbering plan
    zones: tuple[str, ...] = ()
    us_states: tuple[str, ...] = ()  # for NANP numbers, the state the area code belongs to


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    """The zone named ``name``, or None when it is not an IANA zone here."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def _us_state(description: str) -> str | None:
    text = description.strip()
    if not text:
        return None
    if "," in text:  # "New York, NY"
        code = text.rsplit(",", 1)[1].strip().upper()
        if len(code) == 2 and code.isalpha():
            return code
    return US_STATE_NAMES.get(text.lower())


@functools.lru_cache(maxsize=65536)
def number_info(e164: str) -> NumberInfo:
    """Parse ``e164`` once; invalid or unparseable numbers give ``valid=False``, never raise."""
    if not isinstance(e164, str) or not e164.startswith("+") or len(e164) > 20:
        return NumberInfo(e164=str(e164), valid=False)
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return NumberInfo(e164=e164, valid=False)
    if not phonenumbers.is_valid_number(num):
        return NumberInfo(e164=e164, valid=False)
    kind = _KINDS.get(phonenumbers.number_type(num), "unknown")
    region = phonenumbers.region_code_for_number(num)
    zones = tuple(
        z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown" and zone(z)
    )
    states: tuple[str, ...] = ()
    if region == "US" and kind != "toll_free":
        state = _us_state(geocoder.description_for_number(num, "en"))
        states = (state,) if state else ()
    return NumberInfo(
        e164=e164, valid=True, kind=kind, region=region, zones=zones, us_states=states
    )


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip().lower()


def normalize_region(country: str | None, region: str | None) -> str | None:
    """ISO 3166-2 code without the country prefix (``MX-JAL``/``jal`` -> ``JAL``), or None."""
    if not country or not region:
        return None
    country = country.upper()
    text = region.strip()
    if text.upper().startswith(country + "-"):
        text = text[len(country) + 1 :]
    upper = text.upper()
    if country == "MX":
        upper = MX_ALIASES.get(upper.replace(".", ""), upper)
    elif country == "ES":
        upper = ES_ALIASES.get(_fold(text), upper)
    elif country == "US":
        upper = US_STATE_NAMES.get(_fold(text), upper)
    table = REGION_ZONES.get(country)
    if table is not None and upper not in table:
        return None
    return upper or None


def address_region(country: str | None, region: str | None, postal: str | None) -> str | None:
    """The region of an address, from the region field or, in Spain, the postal code."""
    code = normalize_region(country, region)
    if code is None and country and country.upper() == "ES" and postal:
        digits = postal.strip()
        if len(digits) == 5 and digits.isdigit():
            code = ES_PROVINCE_COMMUNITY.get(digits[:2])
    return code


@functools.lru_cache(maxsize=4096)
def address_zones(country: str | None, region: str | None, postal: str | None) -> tuple[str, ...]:
    """Zones an address may be in (empty when the country is unknown or has no table)."""
    if not country:
        return ()
    country = country.upper()
    if country in SINGLE_ZONE_COUNTRIES:
        return (SINGLE_ZONE_COUNTRIES[country],)
    table = REGION_ZONES.get(country)
    if table is None:
        return ()
    code = address_region(country, region, postal)
    if code is None:
        return tuple(sorted({z for zones in table.values() for z in zones}))
    narrowing = POSTAL_ZONES.get(country, {}).get(code)
    if narrowing is not None and postal:
        default, prefixes = narrowing
        digits = postal.strip()
        for prefix, zone_name in prefixes.items():
            if digits.startswith(prefix):
                return (zone_name,)
        if digits[:3].isdigit():
            return (default,)
    return table[code]


def candidate_zones(contact: Contact, info: NumberInfo, number_kind: str) -> tuple[str, ...]:
    """Every zone the debtor may be in now (sorted); empty when none is usable.

    A stated zone that does not exist gives none: falling back to the address and the number
    would trust them over what the debtor said (fail closed).
    """
    stated = contact.stated_timezone
    if stated is not None and stated.strip():
        return (stated,) if zone(stated) else ()
    found = set(address_zones(contact.country, contact.region, contact.postal_code))
    if info.valid and number_kind != "toll_free" and info.kind != "toll_free":
        found.update(info.zones)
    return tuple(sorted(z for z in found if zone(z)))


def holiday_subdivisions(
    country: str, contact: Contact, zones: tuple[str, ...]
) -> tuple[set[str], bool]:
    """Subdivisions of ``country`` the debtor may be in, and whether that set is complete.

    Incomplete (False) when the address does not name one: the caller then decides whether a
    holiday anywhere in the country blocks.
    """
    found: set[str] = set()
    known = False
    if contact.country and contact.country.upper() == country:
        code = address_region(country, contact.region, contact.postal_code)
        if code is not None:
            found.add(code)
            known = True
    for z in zones:
        found.update(ZONE_SUBDIVISIONS.get((country, z), ()))
    return found, known
