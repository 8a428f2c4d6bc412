"""Where the debtor may be: candidate time zones from the address and the number.

- The address gives zones from the most precise level known: postal-code prefix, region, or
  the whole country (every zone of it: conservative).
- The number gives every zone ``phonenumbers.timezone`` lists for it, corrected where that
  data is older than the zones (``NUMBER_PREFIX_ZONES``); a NANP number also gets every zone of
  its area code (the library's map is per exchange, a mobile of a split area code may be on
  either side of the line) and of the area code an overlay overlays. Toll-free numbers give none
  (they say nothing about where the phone is).
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
from phonenumbers.tzdata import TIMEZONE_DATA

from compliance._types import Contact
from compliance._zone_data import (
    ES_ALIASES,
    ES_PROVINCE_COMMUNITY,
    MX_ALIASES,
    NANP_OVERLAYS,
    NUMBER_PREFIX_ZONES,
    POSTAL_ZONES,
    REGION_ZONES,
    SINGLE_ZONE_COUNTRIES,
    US_STATE_NAMES,
    ZONE_FALLBACKS,
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


def _usable(names: tuple[str, ...] | list[str] | set[str]) -> tuple[str, ...]:
    """The zones of ``names`` that exist here (a missing newer zone by its fallback), sorted."""
    out = set()
    for name in names:
        if name == "Etc/Unknown":
            continue
        if zone(name):
            out.add(name)
        elif name in ZONE_FALLBACKS and zone(ZONE_FALLBACKS[name]):
            out.add(ZONE_FALLBACKS[name])
    return tuple(sorted(out))


@functools.lru_cache(maxsize=2048)
def _area_code_zones(prefix: str) -> frozenset[str]:
    """Every zone the library lists for any exchange under ``prefix`` (``1`` + area code)."""
    found: set[str] = set()
    for key, names in TIMEZONE_DATA.items():
        if key.startswith(prefix):
            found.update(names)
    return frozenset(found)


def _number_zones(num: phonenumbers.PhoneNumber, e164: str) -> tuple[str, ...]:
    digits = e164[1:]
    for length in range(len(digits), 0, -1):
        fixed = NUMBER_PREFIX_ZONES.get(digits[:length])
        if fixed is not None:
            return _usable(fixed)
    found = set(pn_timezone.time_zones_for_number(num))
    if num.country_code == 1:
        npa = str(num.national_number)[:3]
        found |= _area_code_zones("1" + npa)
        if npa in NANP_OVERLAYS:
            found |= _area_code_zones("1" + NANP_OVERLAYS[npa])
    return _usable(found)


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
    zones = _number_zones(num, e164)
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


@functools.lru_cache(maxsize=256)
def _country_zones(country: str) -> tuple[str, ...]:
    """Every zone of ``country`` (ISO 3166 alpha-2): tzdata's ``zone1970.tab`` where this host
    has it, else every zone the numbering library gives the country's calling code (more than
    the country's, never fewer: the side that dials less)."""
    from zoneinfo import TZPATH

    found: set[str] = set()
    for directory in TZPATH:
        try:
            with open(f"{directory}/zone1970.tab", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("#"):
                        continue
                    fields = line.rstrip("\n").split("\t")
                    if len(fields) >= 3 and country in fields[0].split(","):
                        found.add(fields[2])
        except OSError:
            continue
        break
    if not found:
        code = phonenumbers.country_code_for_region(country)
        if code:
            found = set(_area_code_zones(str(code)))
    return _usable(found)


@functools.lru_cache(maxsize=4096)
def address_zones(country: str | None, region: str | None, postal: str | None) -> tuple[str, ...]:
    """Zones an address may be in (empty when the country is unknown)."""
    if not country:
        return ()
    country = country.upper()
    if country in SINGLE_ZONE_COUNTRIES:
        return _usable((SINGLE_ZONE_COUNTRIES[country],))
    table = REGION_ZONES.get(country)
    if table is None:
        # A country with no table of its own: every zone it has (an address there says the
        # debtor may be in any of them; none would leave only the number's, which may be in
        # another country altogether).
        return _country_zones(country)
    code = address_region(country, region, postal)
    if code is None:
        return _usable({z for zones in table.values() for z in zones})
    narrowing = POSTAL_ZONES.get(country, {}).get(code)
    if narrowing is not None and postal:
        default, prefixes = narrowing
        digits = postal.strip()
        for prefix in sorted(prefixes, key=len, reverse=True):  # the longest prefix wins
            if digits.startswith(prefix):
                return _usable(prefixes[prefix])
        if digits[:3].isdigit():
            return _usable((default,))
    return _usable(table[code])


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
