"""Small conversions the API handlers share: jsonb columns, dates, zones, days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from web._exceptions import Invalid
from web._schema import MAX_YEAR, MIN_YEAR, Schema


def valid_e164(number: str) -> str | None:
    """``number`` as E.164 if it is a valid phone number for its country code (written with
    its ``+``: there is no region to read a national number in); None otherwise."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


TZ = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$", "description": "IANA zone"}


def jsonb(value: Any) -> Any:
    """A jsonb column's value as Python (asyncpg gives text unless a codec is set)."""
    return json.loads(value) if isinstance(value, str) else value


def parse_time(text: str) -> datetime:
    """A validated ``date-time`` string (see :mod:`web._schema`) as an aware datetime."""
    return datetime.fromisoformat(text)


def parse_date(text: str) -> date:
    return date.fromisoformat(text)


def zone(name: str | None, field: str = "tz") -> ZoneInfo:
    """The IANA zone ``name`` (UTC when None); :class:`Invalid` naming ``field`` if unknown."""
    if name is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"{field}: unknown time zone {name[:64]!r}", field) from None


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of a local calendar day, in UTC (23 or 25 hours on DST days).

    :class:`Invalid` naming ``date`` for a day outside the years ``MIN_YEAR``-``MAX_YEAR``
    (the calendar's edges overflow once a day or an offset is added).
    """
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise Invalid(f"date: {day.isoformat()} is not in the years {MIN_YEAR}-{MAX_YEAR}", "date")
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def object_schema(
    properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    """An object schema refusing unknown fields."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out
