"""A small JSON Schema subset: what the API's routes declare, checked here, and published as is
in the OpenAPI document (so the document and the checks cannot disagree).

Keywords: ``type`` (one or a list: object, array, string, integer, number, boolean, null),
``properties``, ``required``, ``additionalProperties`` (false only), ``enum``, ``minimum``,
``maximum``, ``minLength``, ``maxLength``, ``pattern`` (searched, so anchor it), ``format``
(``date``, ``date-time`` with an offset, both in the years 1970-2200; ``uuid``), ``items``,
``minItems``, ``maxItems``; and the annotations ``description``, ``default``, ``examples``. A
schema using anything else is refused when the route is declared (:func:`check_schema`), never
silently ignored.

Every string must be valid Unicode without NUL (PostgreSQL stores neither), and every number
finite. Errors name the field: ``settings.max_lines``, ``debt_ids[2]``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from compliance import MAX_YEAR, MIN_YEAR
from puente.numerals import ISO_DATE, NUMBER
from web._exceptions import Invalid

Schema = Mapping[str, Any]

_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "enum", "minimum", "maximum",
    "minLength", "maxLength", "pattern", "format", "items", "minItems", "maxItems",
    "description", "default", "examples",
}  # fmt: skip
_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
_FORMATS = {"date", "date-time", "uuid"}
INT64_MAX = 2**63 - 1
# Dates and times outside the compliance engine's years (MIN_YEAR-MAX_YEAR) are refused:
# nothing Puente records or reports lies there, and the calendar's edges (0001, 9999) overflow
# as soon as a day or an offset is added.

# Reusable pieces of the route table.
ID = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
CODE = {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"}
UUID = {"type": "string", "format": "uuid", "maxLength": 36}
E164 = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$"}
DATE = {"type": "string", "format": "date", "maxLength": 10}
DATE_TIME = {"type": "string", "format": "date-time", "maxLength": 40}


def check_schema(schema: Schema, where: str = "schema") -> None:
    """Raise ``ValueError`` when ``schema`` uses something :func:`validate` does not check."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where}: a schema is a mapping")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{where}: unsupported keywords {sorted(unknown)}")
    types = _types(schema)
    if not types or not types <= _TYPES:
        raise ValueError(f"{where}: type must be some of {sorted(_TYPES)}")
    if schema.get("additionalProperties", False) is not False:
        raise ValueError(f"{where}: additionalProperties may only be false")
    if "integer" in types and not {"minimum", "maximum"} <= set(schema):
        raise ValueError(f"{where}: an integer needs minimum and maximum (PostgreSQL's range)")
    if "format" in schema and schema["format"] not in _FORMATS:
        raise ValueError(f"{where}: format must be one of {sorted(_FORMATS)}")
    if "pattern" in schema:
        re.compile(schema["pattern"])
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.{name}")
    missing = set(schema.get("required", ())) - set(schema.get("properties") or {})
    if missing:
        raise ValueError(f"{where}: required names undeclared properties {sorted(missing)}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}[]")


def _types(schema: Schema) -> set[str]:
    t = schema.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _join(where: str, name: str) -> str:
    label = name if name and name.isprintable() and len(name) <= 64 else repr(name)[:66]
    return f"{where}.{label}" if where else label


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as JSON Schema means it (ECMA 262, no flags): ``$`` is the end of the input.
    Python's ``$`` also matches before a final newline ("acme\\n" would pass ``^[a-z]+$``), so
    each ``$`` anchor (not escaped, not in a class) is compiled as ``\\Z``."""
    out: list[str] = []
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            out.append(r"\Z")
            continue
        out.append(ch)
    return re.compile("".join(out))


def _string_ok(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON)
        return False
    return True


def _format_problem(fmt: str, value: str) -> str | None:
    """Why ``value`` is not a ``fmt`` (what was expected), or None when it is one."""
    years = f"in the years {MIN_YEAR}-{MAX_YEAR}"
    try:
        if fmt == "date":
            if not ISO_DATE.fullmatch(value):  # (puente.numerals)
                return "a date YYYY-MM-DD"
            day = date.fromisoformat(value)
            return None if MIN_YEAR <= day.year <= MAX_YEAR else f"a date {years}"
        if fmt == "date-time":
            # RFC 3339 (fromisoformat() also takes any separator, week dates, hours alone)
            if not _DATE_TIME.fullmatch(value):
                return "an ISO 8601 time with a UTC offset"
            at = datetime.fromisoformat(value)
            if at.tzinfo is None or at.utcoffset() is None:
                return "an ISO 8601 time with a UTC offset"
            try:
                utc = at.astimezone(UTC)
            except OverflowError:  # 9999-12-31T23:59-14:00 is in the year 10000 in UTC
                return f"an ISO 8601 time {years}"
            if not (MIN_YEAR <= at.year <= MAX_YEAR and MIN_YEAR <= utc.year <= MAX_YEAR):
                return f"an ISO 8601 time {years}"
            return None
        if fmt == "uuid":
            if not _UUID.fullmatch(value):  # (uuid.UUID() also takes other scripts' digits)
                return "a UUID"
            uuid.UUID(value)
            return None
    except (ValueError, OverflowError):
        return {
            "date": "a date YYYY-MM-DD",
            "date-time": "an ISO 8601 time with a UTC offset",
            "uuid": "a UUID",
        }[fmt]
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(schema: Schema, value: Any, where: str = "") -> None:
    """Raise :class:`web.Invalid` naming the first value of ``value`` that ``schema`` refuses."""
    field = where or "body"
    types = _types(schema)
    actual = _type_of(value)
    if types and actual not in types and not (actual == "integer" and "number" in types):
        raise Invalid(f"{field}: expected {' or '.join(sorted(types))}, got {actual}", field)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise Invalid(f"{field}: must be one of {choices}, got {_show(value)}", field)
    if actual in ("integer", "number"):
        if actual == "number" and not math.isfinite(value):
            raise Invalid(f"{field}: must be a finite number", field)
        if "minimum" in schema and value < schema["minimum"]:
            raise Invalid(f"{field}: must be >= {schema['minimum']}, got {value}", field)
        if "maximum" in schema and value > schema["maximum"]:
            raise Invalid(f"{field}: must be <= {schema['maximum']}, got {_show(value)}", field)
    elif actual == "string":
        if not _string_ok(value):
            raise Invalid(f"{field}: text with NUL or invalid Unicode", field)
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise Invalid(f"{field}: at most {schema['maxLength']} characters", field)
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise Invalid(f"{field}: at least {schema['minLength']} characters", field)
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            # (not the value: a number with spaces in it is still somebody's phone number)
            raise Invalid(f"{field}: does not match {schema['pattern']}", field)
        expected = _format_problem(schema["format"], value) if "format" in schema else None
        if expected is not None:
            raise Invalid(f"{field}: expected {expected}, got {_show(value)}", field)
    elif actual == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise Invalid(f"{field}: at most {schema['maxItems']} items", field)
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise Invalid(f"{field}: at least {schema['minItems']} items", field)
        if "items" in schema:
            for i, item in enumerate(value):
                validate(schema["items"], item, f"{where}[{i}]" if where else f"[{i}]")
    elif actual == "object":
        _validate_object(schema, value, where)


def _validate_object(schema: Schema, value: dict[str, Any], where: str) -> None:
    properties = schema.get("properties") or {}
    for key in value:
        if not isinstance(key, str) or not _string_ok(key):
            raise Invalid(f"{where or 'body'}: a key with NUL or invalid Unicode", where or "body")
    for name in schema.get("required", ()):
        if name not in value:
            raise Invalid(f"{_join(where, name)}: required", _join(where, name))
    if schema.get("additionalProperties", True) is False:
        for key in value:
            if key not in properties:
                known = ", ".join(properties)
                raise Invalid(
                    f"{_join(where, key)}: unknown field (known: {known})", _join(where, key)
                )
    for name, sub in properties.items():
        if name in value:
            validate(sub, value[name], _join(where, name))
    # Free-form objects still carry only storable text.
    if not properties:
        _storable(value, where)


def _storable(value: Any, where: str) -> None:
    """Every string and key inside a free-form value is valid Unicode without NUL, every number
    finite (PostgreSQL's jsonb refuses the others)."""
    if isinstance(value, str):
        if not _string_ok(value):
            raise Invalid(f"{where or 'body'}: text with NUL or invalid Unicode", where or "body")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{where or 'body'}: must be a finite number", where or "body")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _storable(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _string_ok(key):
                raise Invalid(f"{where or 'body'}: a key with NUL or invalid Unicode",
                              where or "body")  # fmt: skip
            _storable(item, _join(where, key))


_INT = re.compile(r"[+-]?[0-9]{1,19}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def from_text(schema: Schema, text: str, field: str) -> Any:
    """A query or path parameter (text) converted to its schema's type, then validated."""
    types = _types(schema)
    value: Any = text
    if "integer" in types:
        if not _INT.fullmatch(text):
            raise Invalid(f"{field}: expected an integer, got {_show(text)}", field)
        value = int(text)
    elif "number" in types:
        if not NUMBER.fullmatch(text):  # (puente.numerals)
            raise Invalid(f"{field}: expected a number, got {_show(text)}", field)
        value = float(text)
    elif "boolean" in types:
        lowered = text.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise Invalid(f"{field}: expected true or false, got {_show(text)}", field)
        value = lowered in _TRUE
    validate(schema, value, field)
    return value
