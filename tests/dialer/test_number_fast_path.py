"""The import's fast path for plainly written numbers (``dialer.leads._fast_number``) gives
exactly what :func:`phonenumbers.parse` and :func:`phonenumbers.number_type` give: the same
E.164 number and the same type, over many generated numbers (valid and not, mobiles, fixed
lines, toll-free, premium rate, odd formats) of the countries our files carry and a few more;
and ``normalise_number`` gives the same answer (number, kind or reason) with it as without it.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from dialer import leads
from dialer.leads import Phone, _fast_number

REGIONS = ("MX", "CO", "ES", "US", "CL", "PE")
OTHERS = ("AR", "BR", "CA", "IT", "GB", "DE", "FR", "PR", "DO", "VE", "EC", "GT")
TYPES = (
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
)


def _reference(text: str, region: str | None) -> tuple[str, int] | None:
    """What the slow path reads: ``(E.164, type)`` of a valid number, else None."""
    try:
        num = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    if num.italian_leading_zero:
        return phonenumbers.format_number(num, PhoneNumberFormat.E164), kind
    return f"+{num.country_code}{num.national_number}", kind


def _normalise_slow(raw: str, region: str | None) -> Phone | str:
    """``normalise_number`` with the fast path off."""
    saved = leads._fast_number
    leads._fast_number = lambda text, region: None
    try:
        return leads.normalise_number.__wrapped__(raw, region)
    finally:
        leads._fast_number = saved


def _seeds(region: str) -> list[str]:
    """National significant numbers of every type the region has, from its metadata."""
    found = []
    for kind in TYPES:
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            found.append(phonenumbers.national_significant_number(example))
    return found


def _mutate(rng: random.Random, nsn: str) -> str:
    """A number near ``nsn``: its last digits changed, or one digit more or less."""
    digits = list(nsn)
    for i in rng.sample(range(len(digits)), k=min(len(digits), rng.randint(1, 6))):
        if i > 0 or rng.random() < 0.2:
            digits[i] = str(rng.randrange(10))
    x = rng.random()
    if x < 0.08:
        digits.append(str(rng.randrange(10)))
    elif x < 0.16 and len(digits) > 3:
        digits.pop()
    return "".join(digits)


def _spaced(rng: random.Random, digits: str) -> str:
    """``digits`` written as people write them: spaces, hyphens, dots, an area in parentheses."""
    style = rng.randrange(7)
    if style == 0 or len(digits) < 6:
        return digits
    if style == 1:
        return f"{digits[:2]} {digits[2:6]} {digits[6:]}"
    if style == 2:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if style == 3:
        return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"
    if style == 4:
        return "-".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    if style == 5:
        return f" {digits[:1]} ( {digits[1:4]} ) {digits[4:]}  "
    return f"{digits[:3]}  {digits[3:]}"


def _written(rng: random.Random, region: str, nsn: str) -> tuple[str, str | None]:
    """A way a file writes ``nsn`` of ``region``: national, with a national prefix, in E.164,
    international with spaces, with the IDD, with the calling code but no plus, Mexico's old
    prefixes; and the region the row gives (sometimes another one, or none)."""
    cc = str(phonenumbers.country_code_for_region(region))
    x = rng.randrange(12)
    row_region: str | None = region
    if rng.random() < 0.05:
        row_region = rng.choice((*REGIONS, *OTHERS, None, "XX"))
    if x == 0:
        return "+" + cc + nsn, None
    if x == 1:
        return "+" + cc + " " + _spaced(rng, nsn), None
    if x == 2:
        return "+" + _spaced(rng, cc + nsn), None
    if x == 3:
        return cc + nsn, row_region
    if x == 4:
        return rng.choice(("00", "011", "0011", "009")) + cc + nsn, row_region
    if x == 5:
        prefix = rng.choice(("0", "1", "01", "044", "045", "+52 1", "+521", "09", "0 ", "1 "))
        return prefix + _spaced(rng, nsn), row_region
    if x == 6:
        return "+" + cc + rng.choice(("1", "0", "")) + nsn, None
    return _spaced(rng, nsn), row_region


def _cases(seed: int, count: int) -> list[tuple[str, str | None]]:
    rng = random.Random(seed)
    seeds = {r: _seeds(r) for r in (*REGIONS, *OTHERS)}
    cases: list[tuple[str, str | None]] = []
    while len(cases) < count:
        region = rng.choice(REGIONS) if rng.random() < 0.8 else rng.choice(OTHERS)
        x = rng.random()
        if x < 0.75 and seeds[region]:
            nsn = _mutate(rng, rng.choice(seeds[region]))
        else:  # any digits at all, of any length
            nsn = "".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 16)))
        cases.append(_written(rng, region, nsn))
    return cases


ODD = [
    ("+52 33 1234 5678", None),
    ("+52 1 33 1234 5678", None),
    ("044 33 1234 5678", "MX"),
    ("01 33 1234 5678", "MX"),
    ("52 33 1234 5678", "MX"),
    ("0052 33 1234 5678", "MX"),
    ("(214) 555-0100", "US"),
    ("1 (214) 555-0100", "US"),
    ("+1 214 555 0100", None),
    ("+1 800 555 1234", None),
    ("+1 900 555 1234", None),
    ("+1 787 555 1234", None),  # Puerto Rico, under +1
    ("+1 809 555 1234", None),
    ("300 123 4567", "CO"),
    ("03 300 123 4567", "CO"),
    ("601 234 5678", "CO"),
    ("612 345 678", "ES"),
    ("901 123 456", "ES"),
    ("803 123 456", "ES"),
    ("9 6123 4567", "CL"),
    ("2 2123 4567", "CL"),
    ("912 345 678", "PE"),
    ("01 234 5678", "PE"),
    ("+39 06 1234 5678", None),  # Italian leading zero: the slow path
    ("+800 1234 5678", None),  # a non-geographic calling code
    ("+0 123 456", None),
    ("+999 123 456", None),
    ("12", "MX"),
    ("123", "MX"),
    ("1 2", "MX"),
    ("+12", None),
    ("+123", None),
    ("3312345678", None),
    ("3312345678", "XX"),
    ("33-1234-5678", "mx"),
    ("((33)) 1234..5678", "MX"),
    ("+(52) 33 1234 5678", None),
    ("+ 52 33 1234 5678", None),
    ("++52 33 1234 5678", None),
    ("+52 33 1234 5678 ext. 12", None),
    ("33 1234 5678 x12", "MX"),
    ("33 1234 5678#", "MX"),
    ("tel:+52-33-1234-5678", None),
    ("+52 33 1234 5678;ext=1", None),
    ("".join(chr(0xFF10 + int(d)) for d in "3312345678"), "MX"),  # full-width digits
    ("1800 FLOWERS", "US"),
    ("5" * 40, "MX"),
    ("+" + "5" * 20, None),
    (" " * 260 + "3312345678", "MX"),
]


@pytest.mark.parametrize(("text", "region"), ODD)
def test_odd_numbers_read_alike(text: str, region: str | None) -> None:
    stripped = text.strip()
    fast = _fast_number(stripped, region)
    if fast is not None:
        assert fast == _reference(stripped, region)
    assert leads.normalise_number.__wrapped__(text, region) == _normalise_slow(text, region)


def test_fast_path_equals_phonenumbers_over_generated_numbers() -> None:
    cases = _cases(seed=20261127, count=60_000)
    taken = 0
    taken_by_region: dict[str | None, int] = {}
    for raw, region in cases:
        text = raw.strip()
        if not text:
            continue
        fast = _fast_number(text, region)
        if fast is None:
            continue
        taken += 1
        taken_by_region[region] = taken_by_region.get(region, 0) + 1
        assert fast == _reference(text, region), (raw, region)
    # The fast path is the common case, not a corner: most plainly written numbers take it.
    assert taken > len(cases) // 5, taken
    for region in (*REGIONS, None):
        assert taken_by_region.get(region, 0) > 200, (region, taken_by_region)


def test_normalise_number_answers_alike_with_and_without_the_fast_path() -> None:
    kinds: dict[str, int] = {}
    for raw, region in _cases(seed=7, count=25_000):
        found = leads.normalise_number.__wrapped__(raw, region)
        assert found == _normalise_slow(raw, region), (raw, region)
        key = found.kind if isinstance(found, Phone) else found.split(" (")[0]
        kinds[key] = kinds.get(key, 0) + 1
    # valid and invalid, of several kinds, were compared
    for key in ("mobile", "landline", "unknown", "toll_free", "not a valid number for its country"):
        assert kinds.get(key, 0) > 50, kinds


def test_fast_path_reads_the_usual_lead_file_numbers() -> None:
    assert _fast_number("33 1234 5678", "MX") == (
        "+523312345678",
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    assert _fast_number("+52 55 1234 5678", None) is not None
    assert _fast_number("300 123 4567", "CO") == ("+573001234567", PhoneNumberType.MOBILE)
    assert _fast_number("612345678", "ES") == ("+34612345678", PhoneNumberType.MOBILE)
    assert _fast_number("(214) 555-0100", "US") is not None
