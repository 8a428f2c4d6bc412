"""The pure decision: may this number be dialled for these debts now, and if not, when?

``decide`` takes plain data (the debtor, the debts, the number, the channel, ``now``, what the
ledger knows) and the compiled rules; it never reads the clock or a database.

Hard blocks (invalid number, no usable time zone, cease, do-not-call, missing consent) deny with
``next_allowed_at = None`` and no override can lift them. Soft rules (windows, holidays, caps,
cooldowns, channel locks) deny until the first instant at which every one of them allows the
dial; that instant is found by intersecting their allowed sets (jumping between window
openings, cap expiries and cooldown ends), never by scanning minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from compliance._constraints import (
    Constraint,
    cap_threshold,
    cooldown_threshold,
    holiday,
    override_intervals,
    threshold,
    window,
)
from compliance._rules import BlockRule, RuleSet
from compliance._time import first_at_or_after, intersect
from compliance._types import (
    CALL_CHANNELS,
    CHANNEL_FAMILY,
    EMPTY_HISTORY,
    MAX_INSTANT,
    MAX_YEAR,
    MIN_INSTANT,
    MIN_YEAR,
    Code,
    Contact,
    Decision,
    History,
    LedgerEntry,
    PhoneNumber,
    Reason,
    iso_utc,
)
from compliance._zones import candidate_zones, holiday_subdivisions, number_info, zone
from puente.redact import mask_number

CORE_PACK = "core"
_CORE_CITATION = "Puente policy: no decision, no dial (fail closed)"
_HORIZONS_DAYS = (1, 8, 40, 400)
MAX_MARGIN_S = 3600


def _core_reason(code: Code, rule_id: str, message: str, citation: str = _CORE_CITATION) -> Reason:
    return Reason(rule_id=rule_id, pack=CORE_PACK, code=code, citation=citation, message=message)


def instant_problem(now: datetime) -> Reason | None:
    """A BAD_REQUEST reason when ``now`` is outside the years the engine decides for."""
    if MIN_INSTANT <= now < MAX_INSTANT:
        return None
    return _core_reason(
        Code.BAD_REQUEST,
        "core_request",
        f"instant {iso_utc(now)} is outside the supported years {MIN_YEAR}-{MAX_YEAR}",
    )


def stated_zone_problem(contact: Contact) -> Reason | None:
    """A NO_TIMEZONE reason when the debtor stated a zone that does not exist here.

    Fail closed: the stated zone would have replaced every other candidate, so ignoring it
    could allow a dial at a forbidden hour where the debtor really is (a typo of
    ``America/Los_Angeles`` must not fall back to the number's New York).
    """
    stated = contact.stated_timezone
    if stated is None or not stated.strip() or zone(stated) is not None:
        return None
    return _core_reason(
        Code.NO_TIMEZONE,
        "core_timezone",
        f"stated time zone {stated!r} is not a known IANA time zone; correct it to dial",
    )


def _block_reasons(
    rules: RuleSet,
    contact: Contact,
    debts: tuple[int, ...],
    number: PhoneNumber,
    channel: str,
    now: datetime,
    history: History,
) -> list[Reason]:
    family = CHANNEL_FAMILY[channel]
    out: list[Reason] = []
    seen: set[tuple[str, str]] = set()
    for b in history.blocks:
        if b.revoked_at is not None and b.revoked_at <= now:
            continue  # a block not yet effective is honoured at once (conservative)
        if b.channel != "all" and CHANNEL_FAMILY.get(b.channel, b.channel) != family:
            continue
        # A block may name a number and a person (or debt) at once: a debtor who calls from a
        # number not on file and asks to stop about a debt. It holds for each of them: the
        # number, and the person or debt on whatever number they are called.
        if b.e164 is not None and b.e164 == number.e164:
            scope = f"number {mask_number(b.e164)}"
            on_number = True
        elif (
            b.person_id is not None
            and b.person_id == contact.person_id
            and (b.debt_id is None or b.debt_id in debts)
        ):
            scope = f"debt {b.debt_id}" if b.debt_id is not None else "person"
            on_number = False
        else:
            continue
        if (b.kind, scope) in seen:
            continue
        seen.add((b.kind, scope))
        code = Code.CEASE if b.kind == "cease" else Code.DNC
        rule: BlockRule | None = next((r for r in rules.blocks if b.kind in r.blocks), None)
        what = "cease-communication request" if b.kind == "cease" else "do-not-call entry"
        message = f"{what} on {scope}: no contact, and no override can lift it"
        if rule is None:
            reason = _core_reason(code, "core_contact_block", message)
            out.append(dataclasses.replace(reason, on_number=on_number) if on_number else reason)
        else:
            out.append(
                Reason(rule.id, rule.pack, code, rule.citation, message, on_number=on_number)
            )
    return out


def _consent_reasons(
    rules: RuleSet, number: PhoneNumber, kind: str, channel: str, now: datetime, history: History
) -> list[Reason]:
    out = []
    for rule in rules.consents:
        if channel not in rule.channels or kind not in rule.number_kinds:
            continue
        # The latest consent by its date; a withdrawal counts once recorded, whatever its date
        # (a grant only from its date), and wins a tie with a grant: if in doubt, no consent.
        latest = None
        for c in history.consents:
            if c.e164 != number.e164 or c.channel != channel or (c.granted and c.recorded_at > now):
                continue
            if (
                latest is None
                or c.recorded_at > latest.recorded_at
                or (c.recorded_at == latest.recorded_at and not c.granted)
            ):
                latest = c
        if latest is None or not latest.granted:
            state = "withdrawn" if latest is not None else "not on record"
            out.append(
                Reason(
                    rule.id,
                    rule.pack,
                    Code.NO_CONSENT,
                    rule.citation,
                    f"{rule.summary}: consent for {channel} to this {kind} number is {state}",
                )
            )
    return out


def _constraints(
    rules: RuleSet,
    contact: Contact,
    debts: tuple[int, ...],
    kind: str,
    channel: str,
    zones: tuple[str, ...],
    margin: timedelta,
    history: History,
) -> list[Constraint]:
    ovs = history.overrides
    out: list[Constraint] = []
    for w in rules.windows:
        out.append(
            Constraint(
                w,
                Code.OUTSIDE_WINDOW,
                window(w, zones, margin),
                override_intervals(w, ovs, debts, zones),
                detail=f"{w.summary} (in every candidate zone: {', '.join(zones)}; "
                f"{int(margin.total_seconds())} s margin before closing)",
            )
        )
    for h in rules.holidays:
        subs, complete = holiday_subdivisions(h.country, contact, zones)
        out.append(
            Constraint(
                h,
                Code.HOLIDAY,
                holiday(h, zones, subs, complete),
                override_intervals(h, ovs, debts, zones),
                detail=h.summary,
            )
        )
    entries = history.entries
    for cap in rules.caps:
        if channel not in cap.channels or kind not in cap.number_kinds:
            continue
        scopes: Iterable[int | None] = debts if cap.per == "person_debt" else (None,)
        for debt in scopes:
            mine = entries if debt is None else [e for e in entries if e.debt_id == debt]
            until, counted = cap_threshold(cap, mine, zones)
            scope = f"debt {debt}" if debt is not None else "the person"
            out.append(
                Constraint(
                    cap,
                    Code.CAP_REACHED,
                    threshold(until),
                    override_intervals(cap, ovs, debts, zones, debt),
                    debt_id=debt,
                    not_before=until,
                    detail=f"{cap.summary}: {counted} counted call(s) for {scope} in the period",
                )
            )
    for cd in rules.cooldowns:
        scopes = debts if cd.per == "person_debt" else (None,)
        for debt in scopes:
            mine = entries if debt is None else [e for e in entries if e.debt_id == debt]
            until = cooldown_threshold(cd, mine, zones)
            out.append(
                Constraint(
                    cd,
                    Code.COOLDOWN,
                    threshold(until),
                    override_intervals(cd, ovs, debts, zones, debt),
                    debt_id=debt,
                    not_before=until,
                    detail=cd.summary,
                )
            )
    for lock in rules.channel_locks:
        until = cooldown_threshold(lock, entries, zones, CHANNEL_FAMILY[channel])
        out.append(
            Constraint(
                lock,
                Code.CHANNEL_LOCKED,
                threshold(until),
                override_intervals(lock, ovs, debts, zones),
                not_before=until,
                detail=f"{lock.summary} (this call's channel family: {CHANNEL_FAMILY[channel]})",
            )
        )
    return out


def _search(constraints: list[Constraint], now: datetime) -> datetime | None:
    """The first instant >= now allowed by every constraint, or None within ~400 days."""
    lo = now
    for c in constraints:
        if c.not_before is not None and not c.overrides and c.not_before > lo:
            lo = c.not_before
    for days in _HORIZONS_DAYS:
        hi = lo + timedelta(days=days)
        acc = [(lo, hi)]
        for c in constraints:
            acc = intersect(acc, c.allowed(lo, hi))
            if not acc:
                break
        t = first_at_or_after(acc, lo)
        if t is not None:
            return t
    return None


def decide(
    contact: Contact,
    debts: int | Iterable[int],
    number: PhoneNumber,
    channel: str,
    now: datetime,
    history: History = EMPTY_HISTORY,
    *,
    rules: RuleSet,
    margin_s: float = 90,
) -> Decision:
    """Decide one dial. Pure: the same arguments always give the same decision."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    debt_ids = (debts,) if isinstance(debts, int) else tuple(sorted(set(debts)))
    packs = rules.names
    hard: list[Reason] = []
    if not debt_ids:
        hard.append(_core_reason(Code.BAD_REQUEST, "core_request", "a call must be about a debt"))
    if channel not in CALL_CHANNELS:
        hard.append(_core_reason(Code.BAD_REQUEST, "core_request", f"unknown channel {channel!r}"))
        channel = "voice"
    if not 0 <= margin_s <= MAX_MARGIN_S:
        hard.append(
            _core_reason(Code.BAD_REQUEST, "core_request", f"margin_s {margin_s} out of range")
        )
        margin_s = 0
    info = number_info(number.e164)
    # (a fax line: AMD heard a fax answer it; no person is ever on it)
    if not info.valid or number.status in ("invalid", "disconnected", "fax"):
        why = "not a valid number" if not info.valid else f"marked {number.status}"
        hard.append(
            _core_reason(Code.INVALID_NUMBER, "core_number", f"{mask_number(number.e164)}: {why}")
        )
    elif number.status == "wrong_party":
        hard.append(
            _core_reason(
                Code.WRONG_PARTY,
                "core_number",
                f"{mask_number(number.e164)} reaches someone other than the debtor",
            )
        )
    kind = number.kind if number.kind != "unknown" else info.kind
    bad_instant = instant_problem(now)
    if bad_instant is not None:
        hard.append(bad_instant)
    bad_zone = stated_zone_problem(contact)
    zones = candidate_zones(contact, info, kind) if info.valid and bad_instant is None else ()
    if bad_zone is not None:
        hard.append(bad_zone)
    elif info.valid and bad_instant is None and not zones:
        hard.append(
            _core_reason(
                Code.NO_TIMEZONE,
                "core_timezone",
                "no usable time zone from the address, the number or a stated zone",
            )
        )
    hard += _block_reasons(rules, contact, debt_ids, number, channel, now, history)
    hard += _consent_reasons(rules, number, kind, channel, now, history)

    soft: list[Reason] = []
    used: set[int] = set()
    constraints: list[Constraint] = []
    if zones:
        margin = timedelta(seconds=margin_s)
        constraints = _constraints(rules, contact, debt_ids, kind, channel, zones, margin, history)
        hi = now + timedelta(days=_HORIZONS_DAYS[0])
        for c in constraints:
            allowed = c.allowed(now, hi)
            if allowed and allowed[0][0] == now:
                if c.overrides:
                    base = c.base(now, hi)
                    if not (base and base[0][0] == now):
                        covered, oid = c.override_at(now)
                        if covered and oid is not None:
                            used.add(oid)
                continue
            until = c.not_before if c.not_before is not None else _search([c], now)
            soft.append(
                Reason(
                    c.rule.id,
                    c.rule.pack,
                    c.code,
                    c.rule.citation,
                    c.detail + (f"; this rule allows again at {iso_utc(until)}" if until else ""),
                    debt_id=c.debt_id,
                    until=until,
                )
            )
    reasons = tuple(hard + soft)
    if hard:
        next_at = None
    elif soft:
        next_at = _search(constraints, now)
    else:
        next_at = now
    return Decision(
        allowed=not reasons,
        reasons=reasons,
        next_allowed_at=next_at,
        now=now,
        timezones=zones,
        packs=packs,
        overrides_used=tuple(sorted(used)) if not reasons else (),
        debt_ids=debt_ids,
    )


def ledger_entries_for_call(
    attempt_id: str,
    debts: tuple[int, ...],
    now: datetime,
    channel: str,
    number_kind: str,
) -> tuple[LedgerEntry, ...]:
    """The rows a reservation adds: one per debt of the call (a call counts for each debt)."""
    return tuple(
        LedgerEntry(attempt_id, d, now, channel=channel, number_kind=number_kind) for d in debts
    )


def effective_kind(number: PhoneNumber) -> str:
    """The number type to record and to match rules on (stored, else from the numbering plan)."""
    return number.kind if number.kind != "unknown" else number_info(number.e164).kind
