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
``language``                  ``es`` (default) or ``en``
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType

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
_CODE = re.compile(r"^[A-Za-z]{2}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_INTEGER = re.compile(r"[+-]?[0-9]+")
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
    language: str
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
    try:
        num = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as e:
        if not text.startswith("+") and not region:
            return "national number without a country (use --default-region or country)"
        return f"not a phone number ({e._msg})"
    # number_type() is UNKNOWN exactly when is_valid_number() is false; one call does both.
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.UNKNOWN:
        return "not a valid number for its country"
    if num.italian_leading_zero:  # +39 06...: the zero is part of the number
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    else:
        e164 = f"+{num.country_code}{num.national_number}"
    return Phone(e164, _KINDS.get(kind, "unknown"))


@functools.lru_cache(maxsize=1024)
def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _cents(text: str) -> int | str:
    """``1234.50``, ``1,234.50``, ``1.234,50`` or ``1234,50``: cents, or what is wrong."""
    t = text.strip().replace(" ", "")
    last_comma, last_dot = t.rfind(","), t.rfind(".")
    # the comma is the decimal mark when it comes last
    t = t.replace(".", "").replace(",", ".") if last_comma > last_dot else t.replace(",", "")
    try:
        value = Decimal(t)
    except InvalidOperation:
        return f"not an amount >= 0: {text!r}"
    if not value.is_finite() or value < 0:
        return f"not an amount >= 0: {text!r}"
    # (checked before the product: 1e999999 would overflow the decimal context)
    if value.adjusted() > 16 or (cents := int((value * 100).to_integral_value())) > (
        MAX_BALANCE_CENTS
    ):
        return f"too large: {text[:40]!r} (at most {MAX_BALANCE_CENTS // 100:,})"
    return cents


def parse_row(
    row: int, values: Mapping[str, str], default_region: str | None
) -> tuple[LeadRow | None, list[RowProblem]]:
    """One CSV row: the lead, or None and why; plus the problems it loaded despite."""
    problems: list[RowProblem] = []

    def get(name: str) -> str:
        return (values.get(name) or "").strip()

    def reject(column: str, problem: str) -> tuple[None, list[RowProblem]]:
        return None, [*problems, RowProblem(row, column, problem, True)]

    for name in ("account_ref", "full_name"):
        if not get(name):
            return reject(name, "required")
    for name, longest in MAX_LENGTH.items():
        if len(get(name)) > longest:
            return reject(name, f"longer than {longest} characters ({len(get(name)):,})")
    balance = _cents(get("balance")) if get("balance") else "required"
    if isinstance(balance, str):
        return reject("balance", balance)
    country = get("country").upper() or None
    if country is not None and not _CODE.match(country):
        return reject("country", f"not an ISO 3166 alpha-2 code: {country!r}")
    language = (get("language") or "es").lower()
    if language not in ("es", "en"):
        return reject("language", f"must be es or en, not {language!r}")
    tz = get("timezone") or None
    if tz is not None and not _zone_ok(tz):
        return reject("timezone", f"not an IANA time zone: {tz!r}")
    dob = None
    if get("date_of_birth"):
        try:
            dob = date.fromisoformat(get("date_of_birth"))
        except ValueError:
            return reject("date_of_birth", f"not YYYY-MM-DD: {get('date_of_birth')!r}")
    currency = get("currency").upper() or None
    if currency is not None and not _CURRENCY.match(currency):
        return reject("currency", f"not an ISO 4217 code: {currency!r}")
    ints = {}
    for name, lowest, highest in (
        ("days_past_due", 0, MAX_DAYS_PAST_DUE),
        ("priority", -_INT4_MAX, _INT4_MAX),
    ):
        text = get(name) or "0"
        if not _INTEGER.fullmatch(text):
            return reject(name, f"not an integer: {text[:40]!r}")
        value = int(text)
        if value < lowest:
            return reject(name, f"must be >= {lowest:,}, not {text[:40]}")
        if value > highest:
            return reject(name, f"must be <= {highest:,}, not {text[:40]}")
        ints[name] = value
    region = default_region or country
    phones: list[Phone] = []
    for column in PHONE_COLUMNS:
        raw = get(column)
        if not raw:
            continue
        found = normalise_number(raw, region)
        if isinstance(found, str):
            problems.append(RowProblem(row, column, found, False))
        elif all(p.e164 != found.e164 for p in phones):
            phones.append(found)
    if not phones:
        if not get("phone"):
            return reject("phone", "required")
        return None, [RowProblem(p.row, p.column, p.problem, True) for p in problems] or [
            RowProblem(row, "phone", "no usable number", True)
        ]
    lead = LeadRow(
        row=row,
        external_ref=get("external_ref") or get("account_ref"),
        full_name=get("full_name"),
        account_ref=get("account_ref"),
        balance_cents=balance,
        currency=currency,
        days_past_due=ints["days_past_due"],
        priority=ints["priority"],
        phones=tuple(phones),
        country=country,
        region=get("region").upper() or None,
        postal_code=get("postal_code") or None,
        city=get("city") or None,
        address_line=get("address_line") or None,
        language=language,
        timezone=tz,
        date_of_birth=dob,
    )
    return lead, problems


def read_rows(
    lines: Iterable[str], mapping: Mapping[str, str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, values by our column names)``; row 1 is the header, data from row 2."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty (no header row)") from None
    except csv.Error as e:
        raise LeadFileError(f"the header row is not readable as CSV: {e}") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    mapping = dict(mapping or {})
    unknown_targets = set(mapping) - set(COLUMNS)
    if unknown_targets:
        raise LeadFileError(f"mapping: unknown columns {sorted(unknown_targets)}")
    source_of = {ours: mapping.get(ours, ours) for ours in COLUMNS}
    index = {h: i for i, h in enumerate(header)}
    missing = [
        f"{ours} (header {src!r})" if src != ours else ours
        for ours, src in source_of.items()
        if ours in REQUIRED and src not in index
    ]
    if missing:
        raise LeadFileError(f"missing required columns: {', '.join(missing)}")
    take = [(ours, index[src]) for ours, src in source_of.items() if src in index]
    width = len(header)
    n = 1
    while True:
        n += 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # e.g. a field over the csv module's limit; the next row is read
            yield n, {"__error__": f"not readable as CSV: {e}"}
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != width:
            yield n, {"__error__": f"{len(fields)} fields, the header has {width}"}
            continue
        if "\x00" in "".join(fields):  # PostgreSQL's text refuses it: it would fail the batch
            yield n, {"__error__": "a NUL character (not text)"}
            continue
        yield n, {ours: fields[i] for ours, i in take}
