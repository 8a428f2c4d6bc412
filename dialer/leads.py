"""Lead files: CSV rows in, normalised persons, debts and numbers out (pure, streaming).

Columns (header names; ``--mapping FILE.yaml`` maps these names to a file's own headers):

==================  ========  ==============================================================
column              required  meaning
==================  ========  ==============================================================
``account_ref``     yes       the creditor's account number of the debt (unique per creditor;
                              at most 128 characters)
``balance``         yes       amount owed, e.g. ``1234.50`` (``,`` as decimal mark accepted;
                              below 92,233,720,368,547,758.08)
``full_name``       yes       the debtor's name (at most 200 characters)
``external_ref``              the creditor's id of the person; rows sharing it are one person
                              (several debts, all their numbers); default: ``account_ref``;
                              at most 128 characters
``phone``           yes       a number; ``phone2`` .. ``phone5`` more of them; E.164 or
                              national (``--default-region``, else the row's ``country``)
``country``                   ISO 3166-1 alpha-2 of the address (``MX``)
``region``                    ISO 3166-2 subdivision (``JAL``, ``TX``)
``postal_code``, ``city``, ``address_line``
``language``                  ``es`` (default for a new person) or ``en``; empty keeps a
                              known person's
``timezone``                  an IANA zone the debtor stated (overrides every other zone)
``date_of_birth``             ``YYYY-MM-DD``
``currency``                  ISO 4217 (default: the creditor's)
``days_past_due``             an integer from 0 to 36,500
``priority``                  an integer (32-bit); higher is called first
==================  ========  ==============================================================

A row with a problem is rejected whole with its row number, the column and the reason; a
number that cannot be used is dropped from a row that has another usable one, and reported.
Values are checked against what the database takes (integer ranges, key lengths, NUL
characters, rows the csv module cannot read), so that a bad value costs its row, never the
batch of good rows around it. Region, postal code, city and address are capped at 10, 20, 100
and 500 characters.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberType,
)

from puente.numerals import ISO_DATE

try:  # (phonenumbers' own steps, for _fast_number; without them every number takes parse())
    from phonenumbers.phonenumberutil import (
        _MAX_INPUT_STRING_LENGTH,
        _MAX_LENGTH_FOR_NSN,
        REGION_CODE_FOR_NON_GEO_ENTITY,
        ValidationResult,
        _test_number_length,
    )
except ImportError:  # pragma: no cover - a phonenumbers that moved them
    _FAST_NUMBERS = False
else:
    _FAST_NUMBERS = True

COLUMNS = (
    "account_ref",
    "balance",
    "full_name",
    "external_ref",
    "phone",
    "phone2",
    "phone3",
    "phone4",
    "phone5",
    "country",
    "region",
    "postal_code",
    "city",
    "address_line",
    "language",
    "timezone",
    "date_of_birth",
    "currency",
    "days_past_due",
    "priority",
)
REQUIRED = ("account_ref", "balance", "full_name", "phone")
PHONE_COLUMNS = ("phone", "phone2", "phone3", "phone4", "phone5")
_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "unknown",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
}
#: Numbers that are no debtor's line, refused with the row's reason: a premium-rate or
#: shared-cost number charges the caller (calling one is how toll fraud is paid), a pager
#: or a voicemail access number reaches nobody to talk to.
_NOT_A_LINE = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number (the caller pays; never a debtor's line)",
    PhoneNumberType.SHARED_COST: "a shared-cost number (the caller pays; never a debtor's line)",
    PhoneNumberType.PAGER: "a pager number (nobody to talk to)",
    PhoneNumberType.VOICEMAIL: "a voicemail access number (nobody to talk to)",
}
_CODE = re.compile(r"[A-Za-z]{2}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
#: A date of birth outside these years is a mistake in the file (0001-01-01, 9999-12-31).
MIN_BIRTH_YEAR, MAX_BIRTH_YEAR = 1900, 2100
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: An amount once its thousands are gone: ASCII digits, at most one decimal point.
_PLAIN_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: An amount whose thousands are grouped, by the group separator: ``1,234,567.5``, ``1.234,50``.
_GROUPED = {
    ",": re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"),
    ".": re.compile(r"[+-]?[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]*)?"),
}
#: PostgreSQL's ``integer`` and ``bigint``: a value past them would fail its whole batch, so the
#: row is rejected instead.
_INT4_MAX = 2**31 - 1
MAX_BALANCE_CENTS = 2**63 - 1
#: A century: a larger ``days_past_due`` is a mistake in the file.
MAX_DAYS_PAST_DUE = 36_500
#: The longest value each text column takes. ``account_ref`` and ``external_ref`` are keys of
#: unique indexes (a btree entry holds at most about 2.7 kB: a longer one would fail its
#: batch); the others are far above any real name or address.
MAX_LENGTH = {
    "account_ref": 128,
    "external_ref": 128,
    "full_name": 200,
    "region": 10,
    "postal_code": 20,
    "city": 100,
    "address_line": 500,
}


class LeadFileError(Exception):
    """The file as a whole cannot be read (headers, mapping): nothing is imported."""


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    kind: str


@dataclass(frozen=True, slots=True)
class LeadRow:
    row: int
    external_ref: str
    full_name: str
    account_ref: str
    balance_cents: int
    currency: str | None
    days_past_due: int
    priority: int
    phones: tuple[Phone, ...]
    country: str | None
    region: str | None
    postal_code: str | None
    city: str | None
    address_line: str | None
    language: str | None
    timezone: str | None
    date_of_birth: date | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    column: str
    problem: str
    rejected: bool  # False: the row loaded without this value


@functools.lru_cache(maxsize=200_000)
def normalise_number(raw: str, region: str | None) -> Phone | str:
    """An E.164 number and its kind, or the reason it cannot be dialed."""
    text = raw.strip()
    if not text:
        return "empty"
    fast = _fast_number(text, region)
    if fast is not None:
        e164, kind = fast
        if kind in _NOT_A_LINE:
            return _NOT_A_LINE[kind]
        return Phone(e164, _KINDS.get(kind, "unknown"))
    try:
        num = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as e:
        if not text.startswith("+") and not region:
            return "national number without a country (use --default-region or country)"
        return f"not a phone number ({e._msg})"
    # number_type() is UNKNOWN exactly when is_valid_number() is false; one call does both.
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.UNKNOWN and num.country_code == 52:
        num, kind = _mexican_legacy(num)
    if kind == PhoneNumberType.UNKNOWN:
        return "not a valid number for its country"
    if kind in _NOT_A_LINE:
        return _NOT_A_LINE[kind]
    if num.italian_leading_zero:  # +39 06...: the zero is part of the number
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    else:
        e164 = f"+{num.country_code}{num.national_number}"
    return Phone(e164, _KINDS.get(kind, "unknown"))


#: What :func:`_fast_number` reads: ASCII digits spaced by `` ().-``, a ``+`` only first. No
#: letters (no extension, no vanity number, no ``tel:``), no other plus or punctuation.
_SIMPLE_NUMBER = re.compile(r"\+?[0-9 ().\-]+")
_PUNCTUATION = str.maketrans("", "", "+ ().-")
#: parse() keeps a number without its national prefix unless its length is then one of these.
_NATIONAL_PREFIX_KEPT_IF = (
    (
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    )
    if _FAST_NUMBERS
    else ()
)


class _Plan(NamedTuple):
    """One region's (or calling code's) metadata with its patterns compiled once: what
    :func:`phonenumbers.parse` and :func:`phonenumbers.number_type` read, in their order."""

    metadata: PhoneMetadata
    country_code: int
    country_code_text: str
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    transform_rule: str | None
    general: re.Pattern[str] | None  # _match_national_number against general_desc
    general_lengths: tuple[int, ...]
    leading_digits: re.Pattern[str] | None
    #: (type, pattern, possible lengths) from premium rate to voicemail, as _number_type_helper
    #: tries them; then fixed line and mobile.
    special: tuple[tuple[int, re.Pattern[str] | None, tuple[int, ...]], ...]
    fixed: tuple[re.Pattern[str] | None, tuple[int, ...]] | None
    mobile: tuple[re.Pattern[str] | None, tuple[int, ...]] | None
    same_mobile_and_fixed: bool


def _pattern(text: str | None) -> re.Pattern[str] | None:
    """A pattern phonenumbers ignores when empty (national number, national prefix)."""
    return re.compile(text) if text else None


def _pattern_if_set(text: str | None) -> re.Pattern[str] | None:
    """A pattern phonenumbers uses whenever it is not None (IDD, leading digits)."""
    return re.compile(text) if text is not None else None


def _desc(desc: PhoneNumberDesc | None) -> tuple[re.Pattern[str] | None, tuple[int, ...]] | None:
    if desc is None:
        return None
    return _pattern(desc.national_number_pattern), tuple(desc.possible_length)


_SPECIAL_TYPES = (
    (PhoneNumberType.PREMIUM_RATE, "premium_rate"),
    (PhoneNumberType.TOLL_FREE, "toll_free"),
    (PhoneNumberType.SHARED_COST, "shared_cost"),
    (PhoneNumberType.VOIP, "voip"),
    (PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    (PhoneNumberType.PAGER, "pager"),
    (PhoneNumberType.UAN, "uan"),
    (PhoneNumberType.VOICEMAIL, "voicemail"),
)


@functools.cache  # (one per region phonenumbers knows: about 250)
def _plan(region: str) -> _Plan | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    special = []
    for kind, name in _SPECIAL_TYPES:
        desc = _desc(getattr(metadata, name))
        if desc is not None:
            special.append((kind, *desc))
    general = metadata.general_desc
    return _Plan(
        metadata=metadata,
        country_code=metadata.country_code,
        country_code_text=str(metadata.country_code),
        idd=_pattern_if_set(metadata.international_prefix),
        national_prefix=_pattern(metadata.national_prefix_for_parsing),
        transform_rule=metadata.national_prefix_transform_rule,
        general=_pattern(general.national_number_pattern) if general is not None else None,
        general_lengths=tuple(general.possible_length) if general is not None else (),
        leading_digits=_pattern_if_set(metadata.leading_digits),
        special=tuple(special),
        fixed=_desc(metadata.fixed_line),
        mobile=_desc(metadata.mobile),
        same_mobile_and_fixed=bool(metadata.same_mobile_and_fixed_line_pattern),
    )


def _matches(number: str, desc: tuple[re.Pattern[str] | None, tuple[int, ...]] | None) -> bool:
    """phonenumbers' ``_is_number_matching_desc``."""
    if desc is None:
        return False
    pattern, lengths = desc
    if lengths and len(number) not in lengths:
        return False
    return pattern is not None and pattern.fullmatch(number) is not None


def _type(nsn: str, plan: _Plan) -> int:
    """phonenumbers' ``_number_type_helper``."""
    if not _matches(nsn, (plan.general, plan.general_lengths)):
        return PhoneNumberType.UNKNOWN
    for kind, pattern, lengths in plan.special:
        if _matches(nsn, (pattern, lengths)):
            return kind
    if _matches(nsn, plan.fixed):
        if plan.same_mobile_and_fixed or _matches(nsn, plan.mobile):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not plan.same_mobile_and_fixed and _matches(nsn, plan.mobile):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _general(number: str, plan: _Plan) -> bool:
    """phonenumbers' ``_match_national_number`` against the general description."""
    return plan.general is not None and plan.general.fullmatch(number) is not None


def _strip_national_prefix(number: str, plan: _Plan) -> str:
    """phonenumbers' ``_maybe_strip_national_prefix_carrier_code`` (the number it returns)."""
    prefix = plan.national_prefix
    if not number or prefix is None:
        return number
    found = prefix.match(number)
    if not found:
        return number
    viable = _general(number, plan)
    groups = found.groups()
    rule = plan.transform_rule
    if not rule or groups[len(groups) - 1] is None:
        rest = number[found.end() :]
    else:
        rest = prefix.sub(rule, number, count=1)
    if viable and not _general(rest, plan):
        return number
    return rest


def _fast_number(text: str, region: str | None) -> tuple[str, int] | None:
    """``(E.164, number type)`` of a plainly written number (``+52 33 1234 5678``,
    ``(214) 555-0100``, ``3001234567``) exactly as :func:`phonenumbers.parse` and
    :func:`phonenumbers.number_type` give it, with their own metadata and steps, compiled once;
    None for anything else, which those functions then read (unusual text, numbers that are
    not valid, an international prefix, the region's calling code written without ``+``,
    leading zeros). ``tests/dialer/test_number_fast_path.py`` compares the two."""
    if (
        not _FAST_NUMBERS
        or len(text) > _MAX_INPUT_STRING_LENGTH
        or not _SIMPLE_NUMBER.fullmatch(text)
    ):
        return None
    digits = text.translate(_PUNCTUATION)
    if not 3 <= len(digits) <= _MAX_LENGTH_FOR_NSN:
        return None
    if text[0] == "+":
        # parse(text, None): the calling code is the first 1 to 3 digits that are one, and the
        # number is read with its main region's metadata.
        if digits[0] == "0":
            return None
        for size in (1, 2, 3):
            code = int(digits[:size])
            if code in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return None
        main = COUNTRY_CODE_TO_REGION_CODE[code][0]
        if main == REGION_CODE_FOR_NON_GEO_ENTITY:
            return None
        plan = _plan(main)
        national = digits[size:]
    else:
        if region not in SUPPORTED_REGIONS:  # (None too: parse() refuses the number)
            return None
        plan = _plan(region)
        if plan is None:
            return None
        if (plan.idd is not None and plan.idd.match(digits)) or digits.startswith(
            plan.country_code_text
        ):
            return None  # an international prefix, or the region's calling code: parse() decides
        code = plan.country_code
        national = digits
    if plan is None or len(national) < 2:
        return None
    stripped = _strip_national_prefix(national, plan)
    if stripped is not national and (
        _test_number_length(stripped, plan.metadata) not in _NATIONAL_PREFIX_KEPT_IF
    ):
        national = stripped
    if not 2 <= len(national) <= _MAX_LENGTH_FOR_NSN or national[0] == "0":
        return None  # (leading zeros: Italian numbers, read by parse())
    # number_type(): the region of the calling code the number belongs to.
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    if len(regions) == 1:
        plan = _plan(regions[0])
    else:
        for candidate in regions:
            plan = _plan(candidate.upper())
            if plan is None:
                continue
            if plan.leading_digits is not None:
                if plan.leading_digits.match(national):
                    break
            elif _type(national, plan) != PhoneNumberType.UNKNOWN:
                break
        else:
            return None
    if plan is None:
        return None
    kind = _type(national, plan)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    return f"+{code}{national}", kind


#: Mexico's dialing prefixes before 2019-08-03, when every number became 10 digits (IFT's
#: plan): ``+52 1`` before a mobile from abroad, ``044``/``045`` before a mobile, ``01`` before
#: long distance. Collections files still carry them; the 10 digits after are the number.
_MX_LEGACY = ((11, "1"), (13, "044"), (13, "045"), (12, "01"))


def _mexican_legacy(
    num: phonenumbers.PhoneNumber,
) -> tuple[phonenumbers.PhoneNumber, int]:
    """A +52 number that is not valid as written, read without its legacy prefix: the number
    and its kind if that is a valid number (else as it was, UNKNOWN)."""
    nsn = phonenumbers.national_significant_number(num)
    for length, prefix in _MX_LEGACY:
        if len(nsn) == length and nsn.startswith(prefix):
            bare = phonenumbers.parse("+52" + nsn[len(prefix) :], None)
            kind = phonenumbers.number_type(bare)
            if kind != PhoneNumberType.UNKNOWN:
                return bare, kind
    return num, PhoneNumberType.UNKNOWN


@functools.lru_cache(maxsize=1024)
def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _cents(text: str) -> int | str:
    """``1234.50``, ``1,234.50``, ``1.234,50``, ``1234,50`` or ``1 234,50``: cents, or what is
    wrong. A lone ``.`` or ``,`` is the decimal mark; with both, the last one is; a mark that
    repeats groups thousands. More than two decimals is refused, not rounded: ``1.234`` is
    1234 in Spain and 1.234 in Mexico, and either guess is a debt a thousand times wrong."""
    t = text.strip()
    for space in (" ", "\u00a0", "\u202f"):  # thousands spaced (also no-break spaces)
        t = t.replace(space, "")
    commas, dots = t.count(","), t.count(".")
    if (commas and dots) or commas > 1 or dots > 1:
        if commas and dots:
            mark = "," if t.rfind(",") > t.rfind(".") else "."
        else:
            mark = "." if commas else ","  # the repeated one groups thousands
        group = "." if mark == "," else ","
        if not _GROUPED[group].fullmatch(t):
            return f"not an amount (thousands grouped by 3, one decimal mark): {text[:40]!r}"
        t = t.replace(group, "").replace(mark, ".")
    else:
        t = t.replace(",", ".")
    if not _PLAIN_AMOUNT.fullmatch(t):  # (Decimal() also takes 1e5, 1_000, NaN and other digits)
        return f"not an amount >= 0: {text[:40]!r}"
    try:
        value = Decimal(t)
    except InvalidOperation:
        return f"not an amount >= 0: {text[:40]!r}"
    if not value.is_finite() or value < 0:
        return f"not an amount >= 0: {text[:40]!r}"
    # (checked before the product: 1e999999 would overflow the decimal context)
    if value.adjusted() > 16 or (cents := int((value * 100).to_integral_value())) > (
        MAX_BALANCE_CENTS
    ):
        return f"too large: {text[:40]!r} (at most {MAX_BALANCE_CENTS // 100:,})"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:  # 1.230 too: 1230 in Spain
        return f"more than 2 decimals: {text[:40]!r} (thousands? write 1234, 1,234.00 or 1.234,00)"
    return cents


def parse_row(
    row: int, values: Mapping[str, str], default_region: str | None
) -> tuple[LeadRow | None, list[RowProblem]]:
    """One CSV row: the lead, or None and why; plus the problems it loaded despite."""
    problems: list[RowProblem] = []
    # Every value stripped once (a row is read about thirty times below).
    stripped = {k: v.strip() for k, v in values.items() if v}
    get = stripped.get

    def reject(column: str, problem: str) -> tuple[None, list[RowProblem]]:
        return None, [*problems, RowProblem(row, column, problem, True)]

    for name in ("account_ref", "full_name"):
        if not get(name, ""):
            return reject(name, "required")
    for name, longest in MAX_LENGTH.items():
        if len(get(name, "")) > longest:
            return reject(name, f"longer than {longest} characters ({len(get(name, '')):,})")
    balance = _cents(get("balance", "")) if get("balance", "") else "required"
    if isinstance(balance, str):
        return reject("balance", balance)
    # (Checked before upper(): "ß".upper() is "SS", South Sudan, whose numbers a Spanish file's
    # would then become.)
    country = get("country", "") or None
    if country is not None and not _CODE.fullmatch(country):
        return reject("country", f"not an ISO 3166 alpha-2 code: {country[:40]!r}")
    country = country.upper() if country is not None else None
    language = get("language", "").lower() or None  # None: "es" for a new person, else kept
    if language is not None and language not in ("es", "en"):
        return reject("language", f"must be es or en, not {language!r}")
    tz = get("timezone", "") or None
    if tz is not None and not _zone_ok(tz):
        return reject("timezone", f"not an IANA time zone: {tz!r}")
    dob = None
    if text := get("date_of_birth", ""):
        # (fromisoformat() alone also takes 19800101 and 1980-W01-1)
        try:
            dob = date.fromisoformat(text) if ISO_DATE.fullmatch(text) else None
        except ValueError:
            dob = None
        if dob is None:
            return reject("date_of_birth", f"not YYYY-MM-DD: {text[:40]!r}")
        if not MIN_BIRTH_YEAR <= dob.year <= MAX_BIRTH_YEAR:
            return reject("date_of_birth", f"not a year of birth: {text[:40]!r}")
    currency = get("currency", "") or None
    if currency is not None and not _CURRENCY.fullmatch(currency):
        return reject("currency", f"not an ISO 4217 code: {currency[:40]!r}")
    currency = currency.upper() if currency is not None else None
    ints = {}
    for name, lowest, highest in (
        ("days_past_due", 0, MAX_DAYS_PAST_DUE),
        ("priority", -_INT4_MAX, _INT4_MAX),
    ):
        text = get(name, "") or "0"
        if not _INTEGER.fullmatch(text):
            return reject(name, f"not an integer: {text[:40]!r}")
        # (past 4,300 digits int() raises; past 18 the value is out of range anyway)
        value = (
            int(text)
            if len(text.lstrip("+-").lstrip("0")) <= 18
            else (-(10**19) if text.startswith("-") else 10**19)
        )
        if value < lowest:
            return reject(name, f"must be >= {lowest:,}, not {text[:40]}")
        if value > highest:
            return reject(name, f"must be <= {highest:,}, not {text[:40]}")
        ints[name] = value
    region = default_region or country
    phones: list[Phone] = []
    for column in PHONE_COLUMNS:
        raw = get(column, "")
        if not raw:
            continue
        found = normalise_number(raw, region)
        if isinstance(found, str):
            problems.append(RowProblem(row, column, found, False))
        elif all(p.e164 != found.e164 for p in phones):
            phones.append(found)
    if not phones:
        if not get("phone", ""):
            return reject("phone", "required")
        return None, [RowProblem(p.row, p.column, p.problem, True) for p in problems] or [
            RowProblem(row, "phone", "no usable number", True)
        ]
    lead = LeadRow(
        row=row,
        external_ref=get("external_ref", "") or get("account_ref", ""),
        full_name=get("full_name", ""),
        account_ref=get("account_ref", ""),
        balance_cents=balance,
        currency=currency,
        days_past_due=ints["days_past_due"],
        priority=ints["priority"],
        phones=tuple(phones),
        country=country,
        region=get("region", "").upper() or None,
        postal_code=get("postal_code", "") or None,
        city=get("city", "") or None,
        address_line=get("address_line", "") or None,
        language=language,
        timezone=tz,
        date_of_birth=dob,
    )
    return lead, problems


#: Characters a header or row has where the file had bytes that are not UTF-8 (the file is
#: decoded with ``surrogateescape``: such a row costs itself, not the import).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
#: What a one-column header split by something other than commas was split by.
_OTHER_SEPARATORS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


def _lines(start: int, end: int) -> str:
    if end <= start:
        return ""
    return f' (the row runs over lines {start:,} to {end:,}: a quote (") not closed?)'


class _Lines:
    """The file's lines for the csv reader, keeping those of the row being read (:attr:`row`)
    so that they can be read again (:attr:`again`, last first)."""

    __slots__ = ("_source", "again", "row")

    def __init__(self, lines: Iterable[str]) -> None:
        self._source = iter(lines)
        self.again: list[str] = []
        self.row: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else next(self._source)
        self.row.append(line)
        return line


def _quote_not_closed(message: str, start: int, end: int) -> str:
    if message.startswith("',' expected after"):
        where = f"is closed only on line {end:,}, followed by text"
    elif message.startswith("field larger"):
        where = f"is not closed within {csv.field_size_limit():,} characters"
    else:
        where = "is never closed"
    return (
        f'not readable as CSV: a quote (") in this row (line {start:,}) {where}: the row is '
        "left out, and the lines after it are read as rows"
    )


def _unreadable(message: str, start: int, end: int) -> str:
    """What :mod:`csv` said of a row, for a person with the file in front of them."""
    if message == "unexpected end of data":
        message = 'a quote (") in this row is never closed'
    elif message.startswith("',' expected after"):
        message = (
            'text after the closing quote (") of a field (a quote inside a quoted field is '
            'written twice: "")'
        )
    elif message.startswith("field larger than field limit"):
        message = f"a field longer than {csv.field_size_limit():,} characters"
    return f"not readable as CSV: {message}{_lines(start, end)}"


def _not_utf8(fields: list[str], header: list[str]) -> str:
    """Where a row has bytes that are not UTF-8 (never the value: it may be a number)."""
    for i, field in enumerate(fields):
        if found := _NOT_UTF8.search(field):
            byte = found.group().encode("utf-8", "surrogateescape")[0]
            return (
                f"not UTF-8 text: the byte 0x{byte:02X} in column {header[i][:40]!r} (Latin-1 "
                "or Windows-1252?): save the file as UTF-8"
            )
    return "not UTF-8 text"  # pragma: no cover - only called for a row that has such a byte


def _shown(header: list[str]) -> str:
    names = ", ".join(repr(h[:40]) for h in header[:15])
    return names + (f" and {len(header) - 15} more" if len(header) > 15 else "")


def read_rows(
    lines: Iterable[str], mapping: Mapping[str, str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, values by our column names)``, read as they are asked for; rows count
    as a spreadsheet shows them (the header is row 1 after any blank rows before it, a field
    with line breaks inside quotes is one row). A row that cannot be used whole (unreadable
    CSV, the wrong number of fields, a NUL, bytes that were not UTF-8) comes as
    ``{"__error__": reason}``; :class:`LeadFileError` when the header cannot be used."""
    source = _Lines(lines)
    reader = csv.reader(source, strict=True)  # strict: a quote never closed is an error
    header: list[str] = []
    n = 0
    while not any(h.strip() for h in header):  # blank rows before the header
        n += 1
        try:
            header = next(reader)
        except StopIteration:
            raise LeadFileError("the file is empty (no header row)") from None
        except csv.Error as e:
            raise LeadFileError(f"the header row is not readable as CSV: {e}") from None
    header = [h.strip().lstrip("\ufeff").strip() for h in header]
    if any(_NOT_UTF8.search(h) for h in header):
        raise LeadFileError("the header row is not UTF-8 text: save the file as UTF-8")
    if any("\x00" in h for h in header):
        raise LeadFileError("the header row has NUL characters (UTF-16?): save it as UTF-8")
    mapping = {ours: src.strip() for ours, src in (mapping or {}).items()}
    unknown_targets = set(mapping) - set(COLUMNS)
    if unknown_targets:
        raise LeadFileError(f"mapping: unknown columns {sorted(unknown_targets)}")
    source_of = {ours: mapping.get(ours, ours) for ours in COLUMNS}
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        index.setdefault(h, i)
    if len(header) == 1:
        for separator, name in _OTHER_SEPARATORS.items():
            if separator in header[0]:
                raise LeadFileError(
                    f"the header is one column, {header[0][:60]!r}: the file is separated by "
                    f"{name}, not commas; save it as CSV with commas"
                )
    missing = [
        f"{ours} (header {src!r})" if src != ours else ours
        for ours, src in source_of.items()
        if ours in REQUIRED and src not in index
    ]
    if missing:
        raise LeadFileError(
            f"missing required columns: {', '.join(missing)} (the file's header: {_shown(header)})"
        )
    absent = [f"{ours}: {src!r}" for ours, src in mapping.items() if src not in index]
    if absent:
        raise LeadFileError(
            f"mapping: no such column in the file: {', '.join(absent)} (the file's header: "
            f"{_shown(header)})"
        )
    take = [(ours, index[src]) for ours, src in source_of.items() if src in index]
    twice = sorted({header[i] for _, i in take if header.count(header[i]) > 1})
    if twice:
        raise LeadFileError(
            f"the header has {', '.join(map(repr, twice))} more than once: which column to "
            "use is unclear (rename or remove one)"
        )
    width = len(header)
    again = 0  # lines read twice (reader.line_num counts them twice)
    while True:
        n += 1
        start = reader.line_num - again + 1
        source.row.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # e.g. a field over the csv module's limit; the next row is read
            end, message = reader.line_num - again, str(e)
            if len(source.row) > 1 and (
                message == "unexpected end of data"
                or message.startswith("',' expected after")
                or (message.startswith("field larger") and "".join(source.row).count('"') % 2)
            ):
                # A quote opened in this row swallowed the lines after it (till the end of the
                # file, a quote further on, or the csv module's limit): a quote typed by
                # mistake, most likely. The row is left out; those lines are read again, as
                # the rows they are.
                lines_after = source.row[1:]
                source.again.extend(reversed(lines_after))
                again += len(lines_after)
                yield n, {"__error__": _quote_not_closed(message, start, end)}
            else:
                yield n, {"__error__": _unreadable(message, start, end)}
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != width:
            yield (
                n,
                {
                    "__error__": f"{len(fields)} fields, the header has {width}"
                    + _lines(start, reader.line_num - again)
                },
            )
            continue
        text = "".join(fields)
        if "\x00" in text:  # PostgreSQL's text refuses it: it would fail the batch
            yield n, {"__error__": "a NUL character (not text)"}
            continue
        if not text.isascii() and _NOT_UTF8.search(text):  # (isascii is a flag: free)
            yield n, {"__error__": _not_utf8(fields, header)}
            continue
        yield n, {ours: fields[i] for ours, i in take}
