"""Rule packs: strict schema, validation, compilation, discovery.

A pack is one YAML file per jurisdiction in ``compliance/packs`` (``<name>.yaml``): every
parameter next to its citation. The schema is closed (an unknown field is an error) and every
error is a :class:`PackError` naming the file, the field and the problem. An unknown pack name
is a :class:`PackError` too: a campaign whose rules cannot be loaded must not dial.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Literal

import holidays
import msgspec

from compliance._exceptions import PackError
from compliance._rules import (
    BlockRule,
    CapRule,
    ChannelLockRule,
    ConsentRule,
    CooldownRule,
    HolidayRule,
    Pack,
    Rule,
    RuleSet,
    WindowRule,
)
from compliance._types import (
    CALL_CHANNELS,
    NUMBER_KINDS,
    ContactOutcome,
    NumberKind,
    Outcome,
)
from compliance._types import LedgerChannel as Channel
from puente.strict_yaml import StrictYamlError, load_strict

PACK_DIR = Path(__file__).resolve().parent / "packs"

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Per = Literal["person_debt", "person"]

_ALL_KINDS = list(NUMBER_KINDS)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?\Z")
_RANGE = re.compile(r"^([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})\Z")


class _Spec(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind"):
    id: str
    citation: str
    summary: str


class _SoftSpec(_Spec):
    overridable: bool = False
    override_citation: str = ""
    override_max_days: int | None = None


class HoursSpec(msgspec.Struct, forbid_unknown_fields=True):
    mon: list[str] = []
    tue: list[str] = []
    wed: list[str] = []
    thu: list[str] = []
    fri: list[str] = []
    sat: list[str] = []
    sun: list[str] = []


class CallingWindowSpec(_SoftSpec, tag="calling_window"):
    hours: HoursSpec = msgspec.field(default_factory=HoursSpec)


class HolidayBlockSpec(_SoftSpec, tag="holiday_block"):
    country: str = ""
    unknown_region: Literal["all_subdivisions", "national_only"] = "all_subdivisions"


class FrequencyCapSpec(_SoftSpec, tag="frequency_cap"):
    max_calls: int = 0
    period_days: int = 0
    basis: Literal["consecutive_days", "rolling"] = "consecutive_days"
    per: Per = "person_debt"
    channels: list[Channel] = msgspec.field(default_factory=lambda: list(CALL_CHANNELS))
    number_kinds: list[NumberKind] = msgspec.field(default_factory=lambda: list(_ALL_KINDS))


class CooldownSpec(_SoftSpec, tag="cooldown"):
    after: list[ContactOutcome] = []
    days: int = 0
    per: Per = "person_debt"
    contact_channels: list[Channel] = msgspec.field(default_factory=lambda: list(CALL_CHANNELS))


class ChannelLockSpec(_SoftSpec, tag="channel_lock"):
    after: list[ContactOutcome] = []
    days: int = 0
    per: Per = "person"


class ConsentSpec(_Spec, tag="consent_required"):
    channels: list[Channel] = []
    number_kinds: list[NumberKind] = []


class ContactBlockSpec(_Spec, tag="contact_block"):
    blocks: list[Literal["cease", "dnc"]] = []


RuleSpec = (
    CallingWindowSpec
    | HolidayBlockSpec
    | FrequencyCapSpec
    | CooldownSpec
    | ChannelLockSpec
    | ConsentSpec
    | ContactBlockSpec
)


class CountingSpec(msgspec.Struct, forbid_unknown_fields=True):
    released_outcomes: list[Outcome] = []
    citation: str = ""


class PackSpec(msgspec.Struct, forbid_unknown_fields=True):
    pack: str
    title: str
    jurisdiction: str
    rules: list[RuleSpec]
    default: bool = True
    counting: CountingSpec = msgspec.field(default_factory=CountingSpec)
    notes: str = ""


_AT = re.compile(r"^(?P<problem>.*?) - at `\$(?P<path>[^`]*)`(?: in `\$(?P<outer>[^`]*)`)?$")
_FIELD_IN_PROBLEM = re.compile(r"(?:unknown|required) field `([^`]+)`")


def _split_validation(message: str) -> tuple[str, str]:
    """msgspec says ``Expected `int`, got `str` - at `$.rules[0].n```: (field, problem)."""
    m = _AT.match(message)
    if not m:
        field_m = _FIELD_IN_PROBLEM.search(message)
        return (field_m.group(1) if field_m else ""), message
    problem, path = m.group("problem"), m.group("path")
    if m.group("outer") is not None:  # "- at `key` in `$.rules[0].hours`"
        path = m.group("outer")
        problem = f"{problem} (a key)"
    path = path.lstrip(".")
    field_m = _FIELD_IN_PROBLEM.search(problem)
    if field_m:
        path = f"{path}.{field_m.group(1)}" if path else field_m.group(1)
    return path, problem


#: What a pack's text may not hold: NUL (PostgreSQL's jsonb refuses it, so every decision
#: citing the rule would fail, and deny) and other control characters but tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _text_ok(text: str, file: str, field: str) -> None:
    if _CONTROL.search(text):
        raise PackError(file, field, "a control character (such as NUL) in the text")


def _minutes(text: str, what: str, file: str, field: str) -> int:
    hh, mm = int(text[:2]), int(text[3:])
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise PackError(file, field, f"bad {what} time {text!r} (HH:MM, 00:00..24:00)")
    return hh * 60 + mm


def _compile_hours(spec: CallingWindowSpec, file: str, base: str) -> tuple:
    weekly: list[tuple[tuple[int, int], ...]] = []
    for day in WEEKDAYS:
        ranges: list[tuple[int, int]] = []
        for i, text in enumerate(getattr(spec.hours, day)):
            field = f"{base}.hours.{day}[{i}]"
            m = _RANGE.match(text)
            if not m:
                raise PackError(file, field, f"bad time range {text!r}; expected 'HH:MM-HH:MM'")
            start = _minutes(text[:5], "start", file, field)
            end = _minutes(text[6:], "end", file, field)
            if start >= end:
                raise PackError(file, field, f"range {text!r} ends before it starts")
            ranges.append((start, end))
        ranges.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(ranges):
            if s2 < e1:
                raise PackError(file, f"{base}.hours.{day}", "overlapping time ranges")
        weekly.append(tuple(ranges))
    if not any(weekly):
        raise PackError(file, f"{base}.hours", "a calling window must allow some time")
    return tuple(weekly)


def _soft_kwargs(spec: _SoftSpec, file: str, base: str) -> dict:
    if spec.override_max_days is not None:
        _positive(spec.override_max_days, file, f"{base}.override_max_days")
    if spec.overridable and not spec.override_citation.strip():
        raise PackError(
            file, f"{base}.override_citation", "an overridable rule must cite why it may be waived"
        )
    return {
        "overridable": spec.overridable,
        "override_citation": spec.override_citation,
        "override_max_days": spec.override_max_days,
    }


def _positive(value: int, file: str, field: str, upper: int = 366) -> int:
    if not 1 <= value <= upper:
        raise PackError(file, field, f"must be between 1 and {upper}, got {value}")
    return value


def _nonempty(values: list, file: str, field: str) -> frozenset:
    if not values:
        raise PackError(file, field, "must not be empty")
    return frozenset(values)


def _compile_rule(spec: RuleSpec, pack: PackSpec, file: str, base: str) -> Rule:
    common = {"id": spec.id, "pack": pack.pack, "citation": spec.citation, "summary": spec.summary}
    if isinstance(spec, CallingWindowSpec):
        weekly = _compile_hours(spec, file, base)
        return WindowRule(**common, **_soft_kwargs(spec, file, base), weekly=weekly)
    if isinstance(spec, HolidayBlockSpec):
        country = spec.country.upper()
        if country not in holidays.list_supported_countries():
            raise PackError(file, f"{base}.country", f"no holiday calendar for {spec.country!r}")
        return HolidayRule(
            **common,
            **_soft_kwargs(spec, file, base),
            country=country,
            unknown_region=spec.unknown_region,
        )
    if isinstance(spec, FrequencyCapSpec):
        return CapRule(
            **common,
            **_soft_kwargs(spec, file, base),
            max_calls=_positive(spec.max_calls, file, f"{base}.max_calls", 1000),
            period_days=_positive(spec.period_days, file, f"{base}.period_days"),
            basis=spec.basis,
            per=spec.per,
            channels=_nonempty(spec.channels, file, f"{base}.channels"),
            number_kinds=_nonempty(spec.number_kinds, file, f"{base}.number_kinds"),
            released=frozenset(pack.counting.released_outcomes),
        )
    if isinstance(spec, CooldownSpec):
        return CooldownRule(
            **common,
            **_soft_kwargs(spec, file, base),
            after=_nonempty(spec.after, file, f"{base}.after"),
            days=_positive(spec.days, file, f"{base}.days"),
            per=spec.per,
            contact_channels=_nonempty(spec.contact_channels, file, f"{base}.contact_channels"),
        )
    if isinstance(spec, ChannelLockSpec):
        return ChannelLockRule(
            **common,
            **_soft_kwargs(spec, file, base),
            after=_nonempty(spec.after, file, f"{base}.after"),
            days=_positive(spec.days, file, f"{base}.days"),
            per=spec.per,
        )
    if isinstance(spec, ConsentSpec):
        return ConsentRule(
            **common,
            channels=_nonempty(spec.channels, file, f"{base}.channels"),
            number_kinds=_nonempty(spec.number_kinds, file, f"{base}.number_kinds"),
        )
    return BlockRule(**common, blocks=_nonempty(spec.blocks, file, f"{base}.blocks"))


def parse_pack(text: str, file: str, expected_name: str | None = None) -> Pack:
    """Validate and compile one pack's YAML text; ``file`` names it in errors."""
    try:
        raw = load_strict(text)
    except StrictYamlError as e:
        raise PackError(file, e.path, e.problem) from e
    if not isinstance(raw, dict):
        raise PackError(file, "", "a pack must be a mapping")
    try:
        spec = msgspec.convert(raw, PackSpec)
    except msgspec.ValidationError as e:
        field, problem = _split_validation(str(e))
        raise PackError(file, field, problem) from e
    if not _NAME.match(spec.pack):
        raise PackError(file, "pack", f"bad pack name {spec.pack!r} (lower-case, digits, _)")
    if expected_name is not None and spec.pack != expected_name:
        raise PackError(file, "pack", f"pack {spec.pack!r} must live in {spec.pack}.yaml")
    if not _JURISDICTION.match(spec.jurisdiction):
        raise PackError(file, "jurisdiction", f"bad jurisdiction {spec.jurisdiction!r}")
    if not spec.rules:
        raise PackError(file, "rules", "a pack must have at least one rule")
    for name in ("title", "notes"):
        _text_ok(getattr(spec, name), file, name)
    _text_ok(spec.counting.citation, file, "counting.citation")
    if spec.counting.released_outcomes and not spec.counting.citation.strip():
        raise PackError(file, "counting.citation", "released outcomes need a citation")
    if {"conversation", "direct_contact"} & set(spec.counting.released_outcomes):
        raise PackError(file, "counting.released_outcomes", "a contact always counts")
    seen: set[str] = set()
    rules: list[Rule] = []
    for i, rule_spec in enumerate(spec.rules):
        base = f"rules[{i}]"
        if not _NAME.match(rule_spec.id):
            raise PackError(file, f"{base}.id", f"bad rule id {rule_spec.id!r}")
        if rule_spec.id in seen:
            raise PackError(file, f"{base}.id", f"duplicate rule id {rule_spec.id!r}")
        seen.add(rule_spec.id)
        for name in ("citation", "summary"):
            if not getattr(rule_spec, name).strip():
                raise PackError(file, f"{base}.{name}", "must not be empty")
        for name in ("citation", "summary", "override_citation"):
            _text_ok(getattr(rule_spec, name, ""), file, f"{base}.{name}")
        rules.append(_compile_rule(rule_spec, spec, file, base))
    return Pack(
        name=spec.pack,
        title=spec.title,
        jurisdiction=spec.jurisdiction,
        default=spec.default,
        released=frozenset(spec.counting.released_outcomes),
        counting_citation=spec.counting.citation,
        notes=spec.notes,
        rules=tuple(rules),
        file=file,
    )


def available_packs(pack_dir: Path | None = None) -> dict[str, Path]:
    """Pack name -> file, for every ``*.yaml`` in ``pack_dir``.

    :class:`PackError` when the directory is missing, unreadable or holds no pack: a mistyped
    directory must not look like a valid set of no rules.
    """
    directory = pack_dir or PACK_DIR
    try:
        if not directory.is_dir():
            raise PackError(str(directory), "pack_dir", "no such pack directory")
        found = {p.stem: p for p in sorted(directory.glob("*.yaml"))}
    except OSError as e:
        raise PackError(str(directory), "pack_dir", f"cannot read the pack directory: {e}") from e
    if not found:
        raise PackError(str(directory), "pack_dir", "no rule packs (*.yaml) in the pack directory")
    return found


@functools.lru_cache(maxsize=256)
def _load_file(path: Path, _mtime_ns: int, _size: int) -> Pack:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PackError(str(path), "", f"cannot read: {e}") from e
    except UnicodeDecodeError as e:
        raise PackError(
            str(path), "", f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        ) from e
    return parse_pack(text, str(path), expected_name=path.stem)


def load_pack_file(path: Path) -> Pack:
    """Load one pack file (cached while the file is unchanged)."""
    try:
        st = path.stat()
    except OSError as e:
        raise PackError(str(path), "", f"cannot read: {e}") from e
    return _load_file(path.resolve(), st.st_mtime_ns, st.st_size)


def load_rules(names: tuple[str, ...] | list[str], pack_dir: Path | None = None) -> RuleSet:
    """The :class:`RuleSet` of the named packs; :class:`PackError` if any is unknown or bad."""
    if not names:
        raise PackError("<campaign>", "packs", "no rule pack named: refusing to dial without rules")
    found = available_packs(pack_dir)
    packs: list[Pack] = []
    for name in dict.fromkeys(names):
        if name not in found:
            known = ", ".join(found) or "none"
            raise PackError(f"{name}.yaml", "pack", f"unknown pack {name!r} (known: {known})")
        packs.append(load_pack_file(found[name]))
    owner: dict[str, str] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id in owner:
                raise PackError(
                    pack.file, "rules", f"rule id {rule.id!r} is also used by pack {owner[rule.id]}"
                )
            owner[rule.id] = pack.name
    return RuleSet.of(tuple(packs))


def default_pack_names(
    countries: set[str], regions: set[tuple[str, str]], pack_dir: Path | None = None
) -> list[str]:
    """Packs that apply by default: every ``default: true`` pack whose jurisdiction is one of
    ``countries`` (e.g. ``US``) or one of ``regions`` (e.g. ``("US", "MA")`` -> ``US-MA``)."""
    wanted = {c.upper() for c in countries} | {f"{c}-{r}".upper() for c, r in regions}
    out = []
    for name, path in available_packs(pack_dir).items():
        pack = load_pack_file(path)
        if pack.default and pack.jurisdiction in wanted:
            out.append(name)
    return out
