"""The schema subset: what it checks, how it names fields, and that it never crashes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web import Invalid
from web._app import CORE_ROUTES
from web._schema import CODE, DATE, DATE_TIME, ID, check_schema, from_text, validate

BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code"],
    "properties": {
        "code": CODE,
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "mode": {"type": "string", "enum": ["a", "b"]},
        "when": DATE_TIME,
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
        "nested": {
            "type": "object",
            "properties": {"deep": {"type": ["integer", "null"], "minimum": 0, "maximum": 5}},
        },
        "free": {"type": "object"},
    },
}


def _field(value) -> str | None:
    try:
        validate(BODY, value)
    except Invalid as e:
        return e.field
    return None


def test_fields_are_named() -> None:
    assert _field({"code": "ok"}) is None
    assert _field([]) == "body"
    assert _field({}) == "code"
    assert _field({"code": "bad code!"}) == "code"
    assert _field({"code": "ok", "n": 11}) == "n"
    assert _field({"code": "ok", "n": True}) == "n"  # a boolean is not an integer
    assert _field({"code": "ok", "n": 2.0}) == "n"
    assert _field({"code": "ok", "ratio": 1}) is None  # an integer is a number
    assert _field({"code": "ok", "mode": "c"}) == "mode"
    assert _field({"code": "ok", "when": "2026-01-01T10:00:00"}) == "when"  # no offset
    assert _field({"code": "ok", "when": "2026-01-01T10:00:00+01:00"}) is None
    assert _field({"code": "ok", "tags": ["a", "toolong"]}) == "tags[1]"
    assert _field({"code": "ok", "tags": ["a", "b", "c"]}) == "tags"
    assert _field({"code": "ok", "nested": {"deep": 9}}) == "nested.deep"
    assert _field({"code": "ok", "nested": {"deep": None}}) is None
    assert _field({"code": "ok", "free": {"x": ["\x00"]}}) == "free.x[0]"
    assert _field({"code": "ok", "free": {"x": math.inf}}) == "free.x"
    assert _field({"code": "ok", "extra": 1}) == "extra"
    assert _field({"code": "a\ud800"}) == "code"


def test_text_parameters_are_converted() -> None:
    assert from_text(ID, "42", "id") == 42
    assert from_text({"type": "boolean"}, "yes", "mine") is True
    for bad in ("", "4.2", "1e3", "99999999999999999999", "0", "-5"):
        with pytest.raises(Invalid) as e:
            from_text(ID, bad, "id")
        assert e.value.field == "id"


def test_unsupported_keywords_are_refused_at_declaration() -> None:
    for bad in (
        {"type": "string", "oneOf": []},
        {"type": "integer"},  # no range: PostgreSQL's would decide
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "string", "format": "email"},
        {"type": "object", "required": ["x"], "properties": {}},
        {"type": "nothing"},
    ):
        with pytest.raises(ValueError):
            check_schema(bad)
    for route in CORE_ROUTES:
        route.check()


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["2026-01-01", "2026-01-01T00:00:00Z", "+525512345678", "mx", "dnc"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_SCHEMAS = [r.body for r in CORE_ROUTES if r.body is not None and r.body.get("type") == "object"]


@settings(max_examples=300, deadline=None)
@given(
    value=_json,
    index=st.integers(min_value=0, max_value=len(_SCHEMAS) - 1),
    fields=st.dictionaries(st.text(max_size=3), _json, max_size=3),
)
def test_validation_only_ever_answers_invalid(value, index, fields) -> None:
    schema = _SCHEMAS[index]
    candidates = [value]
    if isinstance(value, dict):
        names = list(schema.get("properties", {}))
        candidates.append(
            {**value, **{names[i % len(names)]: v for i, v in enumerate(fields.values())}}
        )
    for candidate in candidates:
        failure = None
        try:
            validate(schema, candidate)
        except Invalid as e:
            failure = e
        if failure is not None:
            assert failure.status == 422
            assert failure.field


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59-14:00",  # the year 10000 in UTC
        "0001-01-01T00:00:00+14:00",  # the year 0 in UTC
        "9999-12-31T23:59:59+00:00",
        "0001-01-01T00:00:00+00:00",
        "1969-12-31T23:00:00+00:00",
        "2201-01-01T00:00:00Z",
    ],
)
def test_date_times_at_the_calendars_edges_are_refused_by_name(when: str) -> None:
    with pytest.raises(Invalid, match="1970-2200") as e:
        validate(BODY, {"code": "ok", "when": when})
    assert e.value.field == "when"


def test_dates_at_the_calendars_edges_are_refused_by_name() -> None:
    for bad in ("9999-12-31", "0001-01-01", "1969-12-31", "2201-01-01"):
        with pytest.raises(Invalid, match="1970-2200") as e:
            from_text(DATE, bad, "date")
        assert e.value.field == "date"
    assert from_text(DATE, "2200-12-31", "date") == "2200-12-31"
    assert _field({"code": "ok", "when": "1970-01-01T00:00:00Z"}) is None


def test_a_pattern_error_does_not_echo_the_value() -> None:
    from web._schema import E164

    with pytest.raises(Invalid, match="does not match") as e:
        validate(E164, "+52 55 1234 5678", "e164")
    assert "1234" not in str(e.value)
    assert "1234" not in str(e.value.to_dict())


def test_a_pattern_ends_at_the_end_of_the_value_as_json_schema_means_it() -> None:
    # JSON Schema patterns are ECMA 262: `$` is the end of the input. In Python's re, `$` also
    # matches before a final newline, so "acme\n" passed the code pattern and a number with a
    # newline passed E164 (on its way to an Asterisk header or a SQL lookup that then missed).
    from web._schema import E164

    for schema, value in ((CODE, "acme\n"), (E164, "+525512345678\n")):
        with pytest.raises(Invalid, match="does not match"):
            validate(schema, value, "x")
    validate(CODE, "acme", "x")  # (raises when refused)
    # `$` inside a class or escaped is a dollar sign; as an anchor inside a group, the end.
    dollars = {"type": "string", "pattern": r"^[$]\$(?:a|$)"}
    validate(dollars, "$$", "x")
    validate(dollars, "$$a", "x")
    with pytest.raises(Invalid):
        validate(dollars, "$$\n", "x")


def test_dates_times_uuids_and_numbers_are_written_plainly() -> None:
    # What Python's parsers also took: week dates, any separator, hours alone, other scripts'
    # digits, "12\n" for an id, "1_000" or " 1" for a number.
    from web._schema import UUID

    for schema, value in (
        (DATE, "2026-W01-1"),
        (DATE, "20260101"),
        (DATE_TIME, "2026-01-01x00:00Z"),
        (DATE_TIME, "2026-W05-3T10:00Z"),
        (DATE_TIME, "2026-01-01T10Z"),
        (DATE_TIME, "2026-01-01T10:00+05:30:15"),
        (DATE_TIME, "2026-01-01\n00:00Z"),
        (UUID, "12345678-1234-5678-1234-56781234567\uff18"),
    ):
        with pytest.raises(Invalid):
            validate(schema, value, "x")
    for value in ("2026-01-01T10:00Z", "2026-01-01T10:00:00.123456789+05:30", "2026-01-01 10:00Z"):
        validate(DATE_TIME, value, "x")
    validate(UUID, "12345678-1234-5678-1234-567812345678", "x")
    with pytest.raises(Invalid, match="expected an integer"):
        from_text(ID, "12\n", "id")
    number = {"type": "number", "minimum": 0, "maximum": 10000}
    for text in (" 1", "1_000", "\uff11", "nan", "1\n"):
        with pytest.raises(Invalid, match="expected a number"):
            from_text(number, text, "n")
    assert from_text(number, "1.5e2", "n") == 150.0
