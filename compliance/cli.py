"""``puente compliance``: check a dial, audit decisions, list and validate rule packs.

- ``check --phone E164 --at ISO8601 [--address k=v,...] [--debt ID] [--packs a,b] [--margin-s N]``
  prints the decision as JSON (exit 0 allowed, 1 denied, 2 usage/pack error). Without
  ``--debt`` it needs no database (empty history); with it, the ledger's history is used but
  nothing is reserved or stored.
- ``audit --person ID [--json]`` prints the stored decisions with their reasons.
- ``packs [--json]`` lists the packs, their rules and citations.
- ``validate [FILE ...]`` validates pack files (all shipped packs by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compliance._core import MAX_MARGIN_S, _core_reason, decide
from compliance._exceptions import ComplianceError, PackError
from compliance._packs import (
    PACK_DIR,
    available_packs,
    default_pack_names,
    load_pack_file,
    load_rules,
    parse_pack,
)
from compliance._rules import (
    BlockRule,
    CapRule,
    ChannelLockRule,
    ConsentRule,
    CooldownRule,
    HolidayRule,
    Rule,
    WindowRule,
)
from compliance._types import (
    CALL_CHANNELS,
    MAX_YEAR,
    MIN_YEAR,
    Code,
    Contact,
    Decision,
    PhoneNumber,
    iso_utc,
)
from compliance._zones import address_region, number_info, zone
from puente.redact import mask_number

_ADDRESS_KEYS = {
    "country": "country",
    "region": "region",
    "state": "region",
    "postal_code": "postal_code",
    "postal": "postal_code",
    "zip": "postal_code",
    "tz": "stated_timezone",
    "timezone": "stated_timezone",
    "stated_timezone": "stated_timezone",
}
_KIND_NAMES = {
    WindowRule: "calling_window",
    HolidayRule: "holiday_block",
    CapRule: "frequency_cap",
    CooldownRule: "cooldown",
    ChannelLockRule: "channel_lock",
    ConsentRule: "consent_required",
    BlockRule: "contact_block",
}


class _UsageError(Exception):
    pass


_INT64_MAX = 2**63 - 1


def _db_id(text: str) -> int:
    """argparse type: a database id (a positive PostgreSQL bigint)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= _INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text} is not an id (1 to {_INT64_MAX})")
    return value


def _limit(text: str) -> int:
    """argparse type: how many rows to show (1-10000)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 10000")
    return value


def _margin_s(text: str) -> float:
    """argparse type: seconds a dial needs, a finite number from 0 to MAX_MARGIN_S."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if not 0 <= value <= MAX_MARGIN_S:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and {MAX_MARGIN_S} seconds")
    return value


def _parse_at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise _UsageError(f"--at {text!r} is not ISO 8601") from e
    if at.tzinfo is None:
        raise _UsageError(f"--at {text!r} needs a UTC offset or Z")
    try:  # (the year in UTC counts: 2200-12-31T23:00-05:00 is in 2201)
        utc_year = at.astimezone(UTC).year
    except OverflowError:
        utc_year = at.year + (1 if at.year > MIN_YEAR else -1)
    if not (MIN_YEAR <= at.year <= MAX_YEAR and MIN_YEAR <= utc_year <= MAX_YEAR):
        raise _UsageError(f"--at {text!r} is outside the supported years {MIN_YEAR}-{MAX_YEAR}")
    return at


def parse_address(text: str | None) -> Contact:
    """``country=MX,region=JAL,postal_code=44100`` (also ``tz=`` for a stated zone)."""
    fields: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        name = _ADDRESS_KEYS.get(key.strip().lower())
        if not sep or name is None:
            keys = "country=, region=, postal_code=, tz="
            raise _UsageError(f"--address: bad item {part!r} ({keys})")
        fields[name] = value.strip()
    if "country" in fields:
        fields["country"] = fields["country"].upper()
    stated = fields.get("stated_timezone")
    if stated is not None and zone(stated) is None:
        raise _UsageError(f"--address tz: unknown time zone {stated!r}")
    return Contact(**fields)


def _packs_for(args: argparse.Namespace, contact: Contact, phone: str) -> list[str]:
    if args.packs:
        return [p.strip() for p in args.packs.split(",") if p.strip()]
    info = number_info(phone)
    countries: set[str] = set()
    regions: set[tuple[str, str]] = set()
    if info.region:
        countries.add(info.region)
        regions.update((info.region, s) for s in info.us_states)
    if contact.country:
        countries.add(contact.country)
        code = address_region(contact.country, contact.region, contact.postal_code)
        if code:
            regions.add((contact.country, code))
    names = default_pack_names(countries, regions)
    if not names:
        raise _UsageError(
            f"no rule pack applies to {', '.join(sorted(countries)) or 'an unknown country'}; "
            "name them with --packs"
        )
    return names


def _print_decision(decision: Decision, phone: str, margin_s: float, pure: bool) -> int:
    out = decision.to_dict()
    if pure:  # no debt was named: the placeholder debt is not worth showing
        out["debt_ids"] = []
    out["number"] = mask_number(phone)
    out["margin_s"] = margin_s
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0 if decision.allowed else 1


async def _check_with_ledger(
    args: argparse.Namespace, packs: list[str], contact: Contact | None
) -> Decision:
    import asyncpg

    from compliance._gate import ComplianceGate
    from puente.database import database_url

    async with database_url() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2, timeout=10)
        try:
            person_id = await pool.fetchval("SELECT person_id FROM debts WHERE id = $1", args.debt)
            if person_id is None:
                raise _UsageError(f"no debt {args.debt}")
            gate = ComplianceGate(pool)
            return await gate.check(
                person_id=person_id,
                debt_ids=[args.debt],
                phone=args.phone,
                channel=args.channel,
                packs=packs,
                now=_parse_at(args.at),
                margin_s=args.margin_s,
                contact=contact,
            )
        finally:
            await pool.close()


def cmd_check(args: argparse.Namespace) -> int:
    try:
        at = _parse_at(args.at)
        contact = parse_address(args.address)
        if not args.packs and not contact.country and not number_info(args.phone).valid:
            # No country to take packs from, and the number itself is unusable: deny, as the
            # gate would, rather than refuse the request.
            reason = _core_reason(
                Code.INVALID_NUMBER, "core_number", f"{mask_number(args.phone)}: not a valid number"
            )
            decision = Decision(False, (reason,), None, at)
            return _print_decision(decision, args.phone, args.margin_s, True)
        packs = _packs_for(args, contact, args.phone)
        rules = load_rules(packs)
        if args.debt is None:
            decision = decide(
                contact,
                (0,),
                PhoneNumber(args.phone),
                args.channel,
                at,
                rules=rules,
                margin_s=args.margin_s,
            )
        else:
            override = contact if args.address else None
            decision = asyncio.run(_check_with_ledger(args, packs, override))
    except (_UsageError, ComplianceError) as e:
        print(f"puente compliance check: {e}", file=sys.stderr)
        return 2
    return _print_decision(decision, args.phone, args.margin_s, args.debt is None)


async def _audit_rows(person_id: int, limit: int) -> list[dict[str, Any]]:
    import asyncpg

    from compliance._gate import ComplianceGate
    from puente.database import database_url

    async with database_url() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2, timeout=10)
        try:
            rows = await ComplianceGate(pool).decisions(person_id, limit)
            if not rows and not await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM persons WHERE id = $1)", person_id
            ):
                raise ComplianceError(f"no person {person_id}")
            return rows
        finally:
            await pool.close()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        out[k] = iso_utc(v) if isinstance(v, datetime) else v
    out["e164"] = mask_number(row.get("e164"))
    return out


def cmd_audit(args: argparse.Namespace) -> int:
    try:
        rows = asyncio.run(_audit_rows(args.person, args.limit))
    except ComplianceError as e:
        print(f"puente compliance audit: {e}", file=sys.stderr)
        return 2
    if args.json:
        for row in reversed(rows):
            print(json.dumps(_jsonable(row), ensure_ascii=False))
        return 0
    if not rows:
        print(f"no decisions stored for person {args.person}")
        return 0
    for row in reversed(rows):
        verdict = "RESERVED" if row["reserved"] else ("ALLOWED" if row["allowed"] else "DENIED")
        nxt = iso_utc(row["next_allowed_at"]) if row["next_allowed_at"] else "-"
        print(
            f"{iso_utc(row['decided_at'])}  #{row['id']}  {verdict:<8} {row['channel']:<16} "
            f"{mask_number(row['e164'])}  debts={row['debt_ids']}  packs={','.join(row['packs'])}"
            f"  next={nxt}  attempt={row['attempt_id'] or '-'}"
        )
        for r in row["reasons"]:
            print(f"    {r['code']:<22} {r['pack']}/{r['rule_id']}: {r['message']}")
            print(f"    {'':<22} [{r['citation']}]")
    return 0


def _rule_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.id,
        "kind": _KIND_NAMES[type(rule)],
        "summary": rule.summary,
        "citation": rule.citation,
    }
    if getattr(rule, "overridable", False):
        out["overridable"] = rule.override_citation  # type: ignore[attr-defined]
    return out


def cmd_packs(args: argparse.Namespace) -> int:
    try:
        packs = [load_pack_file(p) for p in available_packs(args.pack_dir).values()]
    except PackError as e:
        print(f"puente compliance packs: {e}", file=sys.stderr)
        return 2
    if args.json:
        for p in packs:
            record = {
                "pack": p.name,
                "title": p.title,
                "jurisdiction": p.jurisdiction,
                "default": p.default,
                "released_outcomes": sorted(p.released),
                "counting_citation": p.counting_citation,
                "rules": [_rule_dict(r) for r in p.rules],
            }
            print(json.dumps(record, ensure_ascii=False))
        return 0
    for p in packs:
        flag = "" if p.default else "  (not applied by default)"
        print(f"{p.name} [{p.jurisdiction}] {p.title}{flag}")
        if p.released:
            print(f"  released outcomes: {', '.join(sorted(p.released))}  [{p.counting_citation}]")
        for r in p.rules:
            d = _rule_dict(r)
            soft = "  (overridable)" if "overridable" in d else ""
            print(f"  - {r.id} ({d['kind']}){soft}: {r.summary}")
            print(f"      [{r.citation}]")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        files = [Path(f) for f in args.files] or list(available_packs(args.pack_dir).values())
    except PackError as e:
        print(f"puente compliance validate: {e}", file=sys.stderr)
        return 2
    bad = 0
    for path in files:
        try:
            pack = parse_pack(path.read_text(encoding="utf-8"), str(path), expected_name=path.stem)
        except PackError as e:
            bad += 1
            print(f"INVALID {e}")
        except OSError as e:
            bad += 1
            print(f"INVALID {path}: cannot read: {e}")
        except UnicodeDecodeError as e:
            bad += 1
            byte = f"0x{e.object[e.start]:02x}"
            print(f"INVALID {path}: not UTF-8 text (byte {byte} at offset {e.start})")
        else:
            print(f"ok      {path} ({pack.name}: {len(pack.rules)} rules)")
    return 1 if bad else 0


def register(subparsers: Any) -> None:
    """Add ``compliance`` and its actions to a ``puente`` argparse subparsers object."""
    p = subparsers.add_parser(
        "compliance",
        help="check dials against jurisdiction rules; audit decisions; rule packs",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    sub = p.add_subparsers(dest="compliance_action", metavar="ACTION", required=True)

    c = sub.add_parser("check", help="decide one dial (JSON); exit 0 allowed, 1 denied")
    c.add_argument("--phone", required=True, help="E.164 number, e.g. +523312345678")
    c.add_argument("--at", required=True, help="ISO 8601 instant with offset: 2026-03-10T15:00Z")
    c.add_argument("--address", help="country=MX,region=JAL,postal_code=44100[,tz=Zone/Name]")
    c.add_argument("--debt", type=_db_id, help="debt id: use the ledger's history (read only)")
    c.add_argument("--packs", help="comma-separated pack names (default: by country and state)")
    c.add_argument("--margin-s", type=_margin_s, default=90.0, help="seconds a dial needs (90)")
    c.add_argument("--channel", default="voice", choices=CALL_CHANNELS)
    c.set_defaults(func=cmd_check)

    a = sub.add_parser("audit", help="stored decisions of a person, with reasons")
    a.add_argument("--person", type=_db_id, required=True)
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a.add_argument("--limit", type=_limit, default=200)
    a.set_defaults(func=cmd_audit)

    k = sub.add_parser("packs", help="list rule packs, their rules and citations")
    k.add_argument("--json", action="store_true")
    k.add_argument("--pack-dir", type=Path, default=None, help=f"default {PACK_DIR}")
    k.set_defaults(func=cmd_packs)

    v = sub.add_parser("validate", help="validate rule pack files")
    v.add_argument("files", nargs="*", help="pack files (default: every shipped pack)")
    v.add_argument("--pack-dir", type=Path, default=None)
    v.set_defaults(func=cmd_validate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``puente compliance ARGV`` (for tests and ``python -m compliance.cli``)."""
    parser = argparse.ArgumentParser(prog="puente")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compliance", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
