"""``ComplianceGate``: the asyncpg adapter around the pure core.

One decision is one transaction on one connection:

1. ``compliance_snapshot`` takes the person's advisory lock and returns the address, the
   number, blocks, consents, overrides and the ledger window in one round trip (a reservation
   first locks its attempt id, so that an id reused for another person is a duplicate too:
   migration 0003), then the number's (shared); in READ COMMITTED only, so that the ledger is
   read after the locks (migration 0021). A block, a withdrawn consent or a number leaving
   'active' takes the person's or the number's lock too (0021's triggers), so it is either in
   the snapshot or committed after the reservation;
2. :func:`compliance._core.decide` decides (pure);
3. one statement stores the decision with its reasons and, when allowed, reserves the attempt
   (one ledger row per debt of the call);
4. commit releases the lock.

Any failure (database down, timeout, a bad row, a bug) is a denial with
``COMPLIANCE_UNAVAILABLE``: the gate never allows by default and never raises past itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from compliance._core import CORE_PACK, decide, effective_kind, instant_problem
from compliance._exceptions import ComplianceUnavailable, PackError, UnknownAttempt
from compliance._packs import load_rules
from compliance._rules import RuleSet
from compliance._settings import ComplianceSettings
from compliance._types import (
    CONTACT_OUTCOMES,
    LEDGER_CHANNELS,
    OUTCOMES,
    Block,
    Code,
    Consent,
    Contact,
    Decision,
    History,
    LedgerEntry,
    Override,
    PhoneNumber,
    Reason,
)
from db.audit import audit

log = logging.getLogger(__name__)

# The snapshot reads the ledger after taking the person's lock, which only READ COMMITTED
# makes safe (a REPEATABLE READ snapshot would be older than the lock): the gate's own
# transactions say so whatever the server's default, and the snapshot refuses any other level
# (migration 0021), so a caller's transaction in another level is a denial.
_READ_COMMITTED: dict[str, Any] = {"isolation": "read_committed"}
_SNAPSHOT = "SELECT * FROM compliance_snapshot($1, $2, $3, $4, $5, $6, $7)"
_RECORD = """
WITH d AS (
    INSERT INTO compliance_decisions (decided_at, person_id, debt_ids, phone_id, e164, channel,
        packs, campaign, attempt_id, allowed, reserved, next_allowed_at, timezones, margin_s,
        override_ids, reasons)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb)
    RETURNING id
), a AS (
    INSERT INTO compliance_attempts (attempt_id, person_id, debt_id, phone_id, e164, number_kind,
        channel, campaign, packs, decision_id, reserved_at)
    SELECT $9, $2, x, $4, $5, $17, $6, $8, $7, d.id, $1
    FROM d, unnest($3::bigint[]) AS x
    WHERE $11
)
SELECT id FROM d
"""
# Batches: one snapshot per request in one statement (locks taken in the order given, which
# the gate sorts by person), then every decision and reservation in one statement. Decision
# ids are drawn from the identity's sequence up front so each reservation finds its decision.
_SNAPSHOT_MANY = """
SELECT r.idx, s.*
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::uuid[])
     WITH ORDINALITY AS r(person, debts, phone_id, e164, attempt, idx)
CROSS JOIN LATERAL compliance_snapshot(
    r.person, string_to_array(r.debts, ',')::bigint[], r.phone_id, r.e164, $6, $7, r.attempt
) AS s
ORDER BY r.idx
"""
_RECORD_MANY = """
WITH input AS (
    SELECT t.*, nextval(pg_get_serial_sequence('compliance_decisions', 'id')) AS decision_id
    FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
                $8::uuid[], $9::boolean[], $10::timestamptz[], $11::text[], $12::text[],
                $13::text[], $14::text[])
         WITH ORDINALITY AS t(person, debts, phone_id, e164, channel, campaign, attempt, allowed,
                              next_allowed_at, timezones, overrides, reasons, number_kind, idx)
), d AS (
    INSERT INTO compliance_decisions (id, decided_at, person_id, debt_ids, phone_id, e164,
        channel, packs, campaign, attempt_id, allowed, reserved, next_allowed_at, timezones,
        margin_s, override_ids, reasons)
    OVERRIDING SYSTEM VALUE
    SELECT decision_id, $1, person, string_to_array(debts, ',')::bigint[], phone_id, e164,
        channel, $15::text[], campaign, attempt, allowed, allowed, next_allowed_at,
        string_to_array(timezones, ','), $16, string_to_array(overrides, ',')::bigint[],
        reasons::jsonb
    FROM input
), a AS (
    INSERT INTO compliance_attempts (attempt_id, person_id, debt_id, phone_id, e164,
        number_kind, channel, campaign, packs, decision_id, reserved_at)
    SELECT attempt, person, x, phone_id, e164, number_kind, channel, campaign, $15::text[],
        decision_id, $1
    FROM input, unnest(string_to_array(debts, ',')::bigint[]) AS x
    WHERE allowed
)
SELECT idx, decision_id FROM input ORDER BY idx
"""
_OUTCOME = "SELECT compliance_record_outcome($1, $2, $3)"
_DECISIONS = """
SELECT id, decided_at, recorded_at, debt_ids, phone_id, e164, channel, packs, campaign,
       attempt_id, allowed, reserved, next_allowed_at, timezones, margin_s, override_ids, reasons
FROM compliance_decisions WHERE person_id = $1 ORDER BY decided_at DESC, id DESC LIMIT $2
"""


def _core(code: Code, rule_id: str, message: str) -> Reason:
    return Reason(rule_id, CORE_PACK, code, "Puente policy: no decision, no dial", message)


def unavailable(now: datetime, message: str, packs: Sequence[str] = ()) -> Decision:
    """A denial because compliance could not decide (fail closed)."""
    reason = _core(Code.COMPLIANCE_UNAVAILABLE, "core_unavailable", message)
    return Decision(False, (reason,), None, now, packs=tuple(packs))


def _deny(decision: Decision, extra: list[Reason]) -> Decision:
    if not extra:
        return decision
    return dataclasses.replace(
        decision,
        allowed=False,
        reasons=(*extra, *decision.reasons),
        next_allowed_at=None,
        overrides_used=(),
    )


def history_from_row(row: asyncpg.Record) -> History:
    entries = tuple(
        LedgerEntry(
            attempt_id=str(a["attempt_id"]),
            debt_id=a["debt_id"],
            at=a["reserved_at"],
            channel=a["channel"],
            number_kind=a["number_kind"],
            direction=a["direction"],
            outcomes=tuple(zip(a["outcomes"] or (), a["outcome_ats"] or (), strict=True)),
        )
        for a in row["attempts"] or ()
    )
    blocks = tuple(
        Block(
            kind=b["kind"],
            e164=b["e164"],
            person_id=b["person_id"],
            debt_id=b["debt_id"],
            channel=b["channel"],
            effective_at=b["effective_at"],
            revoked_at=b["revoked_at"],
        )
        for b in row["blocks"] or ()
    )
    consents = tuple(
        Consent(c["e164"], c["channel"], c["granted"], c["recorded_at"], c["source"])
        for c in row["consents"] or ()
    )
    overrides = tuple(
        Override(
            override_id=o["id"],
            valid_from=o["valid_from"],
            valid_until=o["valid_until"],
            rule_ids=tuple(o["rule_ids"] or ()),
            debt_id=o["debt_id"],
            reason=o["reason"],
        )
        for o in row["overrides"] or ()
    )
    return History(entries, blocks, consents, overrides)


@dataclass(frozen=True)
class DialRequest:
    """One dial a pacer wants to place: for :meth:`ComplianceGate.check_and_reserve_many`."""

    person_id: int
    debt_ids: tuple[int, ...]
    phone: str | int  # E.164, or a phone_numbers.id
    attempt_id: uuid.UUID | str
    channel: str = "voice"
    campaign: str | None = None


def _csv(values: Iterable[object]) -> str:
    return ",".join(str(v) for v in values)


class ComplianceGate:
    """Check every dial against the rules and reserve it in the ledger, atomically."""

    def __init__(self, pool: asyncpg.Pool, settings: ComplianceSettings | None = None) -> None:
        self._pool = pool
        self._settings = settings or ComplianceSettings()
        self._rules: dict[tuple[str, ...], RuleSet] = {}

    def rules(self, packs: Iterable[str] | RuleSet) -> RuleSet:
        """The compiled packs (cached); :class:`PackError` when one is unknown or malformed."""
        if isinstance(packs, RuleSet):
            return packs
        key = tuple(packs)
        found = self._rules.get(key)
        if found is None:
            found = load_rules(key, self._settings.pack_dir)
            self._rules[key] = found
        return found

    async def check_and_reserve(
        self,
        *,
        person_id: int,
        debt_ids: Iterable[int],
        phone: str | int,
        channel: str,
        packs: Iterable[str] | RuleSet,
        now: datetime,
        attempt_id: uuid.UUID | str,
        margin_s: float | None = None,
        campaign: str | None = None,
    ) -> Decision:
        """Decide one dial and, when allowed, reserve it; every decision is stored.

        ``phone`` is an E.164 string or a ``phone_numbers.id``. Never raises: a failure is a
        denial with ``COMPLIANCE_UNAVAILABLE``.
        """
        return await self._run(
            person_id, debt_ids, phone, channel, packs, now, margin_s, attempt_id, campaign, True
        )

    async def check_and_reserve_many(
        self,
        requests: Sequence[DialRequest],
        *,
        packs: Iterable[str] | RuleSet,
        now: datetime,
        margin_s: float | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> list[Decision]:
        """Decide a pacer tick's dials in as few transactions as the persons allow.

        The same guarantees as :meth:`check_and_reserve` for each request, in a fraction of the
        round trips: a round holds each person once (a second dial for someone waits for the
        next round, so it sees the first one's reservation), takes the locks in person order
        (two batches never wait for each other in a cycle), and stores every decision and
        reservation of the round in one statement. Decisions come back in request order. A
        failure denies the whole round with ``COMPLIANCE_UNAVAILABLE``; never raises.

        Given ``conn`` (in a transaction), each round is a savepoint of the caller's
        transaction: the reservations commit or vanish with what the caller writes alongside
        (a dialer's claim and intents), so a crash between them leaves nothing behind.
        """
        names: tuple[str, ...] = ()
        try:
            rules = self.rules(packs)
            names = rules.names
        except PackError as e:
            log.error("compliance: rule packs refused: %s", e)
            return [unavailable(now, f"rule packs could not be loaded: {e}")] * len(requests)
        try:
            bad_instant = instant_problem(now)
        except TypeError:  # a naive datetime
            bad_instant = _core(Code.BAD_REQUEST, "core_request", "now must be an aware datetime")
        if bad_instant is not None:
            return [Decision(False, (bad_instant,), None, now, packs=names)] * len(requests)
        margin = self._settings.margin_s if margin_s is None else margin_s
        out: list[Decision | None] = [None] * len(requests)
        pending = []
        for i, r in enumerate(requests):
            try:
                uuid.UUID(str(r.attempt_id))
                int(r.person_id)
                [int(d) for d in r.debt_ids]
            except (TypeError, ValueError) as e:
                reason = _core(Code.BAD_REQUEST, "core_request", f"bad request: {e}")
                out[i] = Decision(False, (reason,), None, now, packs=names)
                continue
            pending.append(i)
        while pending:
            seen: set[int] = set()
            this_round: list[int] = []
            later: list[int] = []
            for i in pending:
                person = requests[i].person_id
                (later if person in seen else this_round).append(i)
                seen.add(person)
            pending = later
            this_round.sort(key=lambda i: (requests[i].person_id, i))
            try:
                batch = [requests[i] for i in this_round]
                async with asyncio.timeout(self._settings.timeout_s):
                    if conn is not None:
                        async with conn.transaction():  # a savepoint
                            decided = await self._round(conn, rules, batch, now, margin)
                    else:
                        async with self._pool.acquire() as own, own.transaction(**_READ_COMMITTED):
                            decided = await self._round(own, rules, batch, now, margin)
            except Exception as e:  # fail closed; CancelledError is not an Exception
                log.warning(
                    "compliance unavailable for a batch of %d: %s: %s",
                    len(this_round),
                    type(e).__name__,
                    e,
                )
                message = f"compliance check failed: {type(e).__name__}"
                decided = [unavailable(now, message, names) for _ in this_round]
            for i, decision in zip(this_round, decided, strict=True):
                out[i] = decision
        return [d for d in out if d is not None]

    async def _round(
        self,
        conn: asyncpg.Connection,
        rules: RuleSet,
        batch: list[DialRequest],
        now: datetime,
        margin_s: float,
    ) -> list[Decision]:
        since = now - timedelta(days=rules.lookback_days)
        debts = [tuple(sorted({int(d) for d in r.debt_ids})) for r in batch]
        attempts = [uuid.UUID(str(r.attempt_id)) for r in batch]
        rows = await conn.fetch(
            _SNAPSHOT_MANY,
            [int(r.person_id) for r in batch],
            [_csv(d) for d in debts],
            [r.phone if isinstance(r.phone, int) else None for r in batch],
            [r.phone if isinstance(r.phone, str) else None for r in batch],
            attempts,
            since,
            now,
        )
        if len(rows) != len(batch):
            raise ComplianceUnavailable(f"snapshot returned {len(rows)} rows for {len(batch)}")
        decisions: list[Decision] = []
        kinds: list[str] = []
        seen_attempts: set[uuid.UUID] = set()
        for r, d, attempt, row in zip(batch, debts, attempts, rows, strict=True):
            e164 = r.phone if isinstance(r.phone, str) else None
            decision, kind = self._decide_snapshot(
                row, rules, int(r.person_id), d, e164, r.channel, now, margin_s, attempt, True,
                None,
            )  # fmt: skip
            if attempt in seen_attempts:  # the same id twice in one round
                message = f"attempt {attempt} is already in this batch; use a fresh id"
                reason = _core(Code.DUPLICATE_ATTEMPT, "core_request", message)
                decision = _deny(decision, [reason])
            seen_attempts.add(attempt)
            decisions.append(decision)
            kinds.append(kind)
        ids = await conn.fetch(
            _RECORD_MANY,
            now,
            [int(r.person_id) for r in batch],
            [_csv(d) for d in debts],
            [row["phone_id"] for row in rows],
            [row["e164"] or (r.phone if isinstance(r.phone, str) else None)
             for r, row in zip(batch, rows, strict=True)],
            [r.channel if r.channel in LEDGER_CHANNELS else "voice" for r in batch],
            [r.campaign for r in batch],
            attempts,
            [d.allowed for d in decisions],
            [d.next_allowed_at for d in decisions],
            [_csv(d.timezones) for d in decisions],
            [_csv(d.overrides_used) for d in decisions],
            [json.dumps([x.to_dict() for x in d.reasons], ensure_ascii=False) for d in decisions],
            kinds,
            list(rules.names),
            round(margin_s),
        )  # fmt: skip
        return [
            dataclasses.replace(
                d, reserved=d.allowed, decision_id=row["decision_id"], attempt_id=str(a)
            )
            for d, a, row in zip(decisions, attempts, ids, strict=True)
        ]

    async def check(
        self,
        *,
        person_id: int,
        debt_ids: Iterable[int],
        phone: str | int,
        channel: str,
        packs: Iterable[str] | RuleSet,
        now: datetime,
        margin_s: float | None = None,
        contact: Contact | None = None,
    ) -> Decision:
        """What-if: decide with the ledger's history but reserve and store nothing.

        ``contact`` replaces the stored address (e.g. an address typed at the CLI).
        """
        return await self._run(
            person_id, debt_ids, phone, channel, packs, now, margin_s, None, None, False, contact
        )

    async def recheck(
        self,
        conn: asyncpg.Connection,
        *,
        attempt_id: uuid.UUID | str,
        person_id: int,
        debt_ids: Iterable[int],
        phone_id: int,
        e164: str | None,
        channel: str,
        packs: Iterable[str] | RuleSet,
        now: datetime,
        margin_s: float | None = None,
    ) -> Decision:
        """The decision on a dial already reserved (``attempt_id``), taken again at ``now``
        with the ledger as it is, the reservation itself left out (the dial *is* it, not one
        more call): a preview offer the agent starts minutes after it was reserved. Runs on
        ``conn`` in the caller's READ COMMITTED transaction; stores and reserves nothing.
        Raises on a database error (the caller retries: no dial without a decision)."""
        rules = self.rules(packs)
        debts = tuple(debt_ids)
        since = now - timedelta(days=rules.lookback_days)
        row = await conn.fetchrow(
            _SNAPSHOT, person_id, list(debts), phone_id, None, since, now, None
        )
        if row is not None:
            own = str(attempt_id)
            row = dict(row)
            row["attempts"] = [a for a in row["attempts"] or () if str(a["attempt_id"]) != own]
        margin = self._settings.margin_s if margin_s is None else margin_s
        decision, _kind = self._decide_snapshot(
            row, rules, person_id, debts, e164, channel, now, margin, None, False, None,
        )  # fmt: skip
        return decision

    async def _run(
        self,
        person_id: int,
        debt_ids: Iterable[int],
        phone: str | int,
        channel: str,
        packs: Iterable[str] | RuleSet,
        now: datetime,
        margin_s: float | None,
        attempt_id: uuid.UUID | str | None,
        campaign: str | None,
        reserve: bool,
        contact: Contact | None = None,
    ) -> Decision:
        names: tuple[str, ...] = ()
        try:
            rules = self.rules(packs)
            names = rules.names
            debts = tuple(sorted({int(d) for d in debt_ids}))
            bad_instant = instant_problem(now)
            if bad_instant is not None:
                return Decision(False, (bad_instant,), None, now, packs=names)
            margin = self._settings.margin_s if margin_s is None else margin_s
            attempt = uuid.UUID(str(attempt_id)) if attempt_id is not None else None
            async with asyncio.timeout(self._settings.timeout_s):
                async with self._pool.acquire() as conn, conn.transaction(**_READ_COMMITTED):
                    return await self._in_transaction(
                        conn, rules, int(person_id), debts, phone, channel, now, margin,
                        attempt, campaign, reserve, contact,
                    )  # fmt: skip
        except PackError as e:
            log.error("compliance: rule packs refused: %s", e)
            return unavailable(now, f"rule packs could not be loaded: {e}", names)
        except Exception as e:  # fail closed; CancelledError is not an Exception
            log.warning(
                "compliance unavailable (person %s, attempt %s): %s: %s",
                person_id,
                attempt_id,
                type(e).__name__,
                e,
            )
            return unavailable(now, f"compliance check failed: {type(e).__name__}", names)

    async def _in_transaction(
        self,
        conn: asyncpg.Connection,
        rules: RuleSet,
        person_id: int,
        debts: tuple[int, ...],
        phone: str | int,
        channel: str,
        now: datetime,
        margin_s: float,
        attempt: uuid.UUID | None,
        campaign: str | None,
        reserve: bool,
        contact_override: Contact | None,
    ) -> Decision:
        phone_id = phone if isinstance(phone, int) else None
        e164 = phone if isinstance(phone, str) else None
        since = now - timedelta(days=rules.lookback_days)
        row = await conn.fetchrow(
            _SNAPSHOT, person_id, list(debts), phone_id, e164, since, now, attempt
        )
        decision, number_kind = self._decide_snapshot(
            row, rules, person_id, debts, e164, channel, now, margin_s, attempt, reserve,
            contact_override,
        )  # fmt: skip
        if not reserve:
            return decision
        reserved = decision.allowed
        reasons = json.dumps([r.to_dict() for r in decision.reasons], ensure_ascii=False)
        decision_id = await conn.fetchval(
            _RECORD,
            now,
            person_id,
            list(debts),
            row["phone_id"] if row is not None else None,
            (row["e164"] if row is not None else None) or e164,
            channel if channel in LEDGER_CHANNELS else "voice",
            list(decision.packs),
            campaign,
            attempt,
            decision.allowed,
            reserved,
            decision.next_allowed_at,
            list(decision.timezones),
            round(margin_s),
            list(decision.overrides_used),
            reasons,
            number_kind,
        )
        return dataclasses.replace(
            decision,
            reserved=reserved,
            decision_id=decision_id,
            attempt_id=str(attempt) if attempt else None,
        )

    @staticmethod
    def _decide_snapshot(
        row: asyncpg.Record | None,
        rules: RuleSet,
        person_id: int,
        debts: tuple[int, ...],
        e164: str | None,
        channel: str,
        now: datetime,
        margin_s: float,
        attempt: uuid.UUID | None,
        reserve: bool,
        contact_override: Contact | None,
    ) -> tuple[Decision, str]:
        """The decision for one snapshot row (pure) and the kind of number to record."""
        if row is None or not row["person_found"]:
            decision = Decision(
                False,
                (_core(Code.UNKNOWN_PERSON, "core_request", f"no person {person_id}"),),
                None,
                now,
                packs=rules.names,
                debt_ids=debts,
            )
        else:
            contact = contact_override or Contact(
                person_id=person_id,
                country=row["country"],
                region=row["region"],
                postal_code=row["postal_code"],
                stated_timezone=row["stated_timezone"],
            )
            number = PhoneNumber(
                e164=row["e164"] or e164 or "",
                kind=row["phone_kind"] or "unknown",
                phone_id=row["phone_id"],
                status=row["phone_status"] or "active",
            )
            history = history_from_row(row)
            decision = decide(
                contact, debts, number, channel, now, history, rules=rules, margin_s=margin_s
            )
            extra: list[Reason] = []
            missing = sorted(set(debts) - set(row["debts_found"] or ()))
            if missing:
                message = f"debts {missing} are not this person's"
                extra.append(_core(Code.UNKNOWN_DEBT, "core_request", message))
            if row["phone_id"] is None:
                extra.append(
                    _core(
                        Code.UNKNOWN_NUMBER,
                        "core_request",
                        "the number is not on file for this person",
                    )
                )
            if reserve and row["attempt_exists"]:
                extra.append(
                    _core(
                        Code.DUPLICATE_ATTEMPT,
                        "core_request",
                        f"attempt {attempt} is already in the ledger; use a fresh id",
                    )
                )
            if reserve and attempt is None:
                extra.append(_core(Code.BAD_REQUEST, "core_request", "an attempt id is required"))
            decision = _deny(decision, extra)
        number_kind = "unknown"
        if row is not None and row["person_found"]:
            number_kind = effective_kind(
                PhoneNumber(row["e164"] or e164 or "", kind=row["phone_kind"] or "unknown")
            )
        return decision, number_kind

    async def record_outcome(
        self,
        attempt_id: uuid.UUID | str,
        outcome: str,
        at: datetime,
        *,
        conn: asyncpg.Connection | None = None,
    ) -> bool:
        """Record what became of a reserved attempt; True if new, False if already recorded.

        Busy / not-in-service release the count where the pack says so; a conversation starts
        cooldowns. Given ``conn``, it is written in that connection's transaction, so a caller
        can make the outcome and its own records one atomic step. Raises
        :class:`UnknownAttempt` or :class:`ComplianceUnavailable`.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
        aid = uuid.UUID(str(attempt_id))
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                if conn is not None:
                    status = await conn.fetchval(_OUTCOME, aid, outcome, at)
                else:
                    async with self._pool.acquire() as own:
                        status = await own.fetchval(_OUTCOME, aid, outcome, at)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise ComplianceUnavailable(f"cannot record outcome: {type(e).__name__}: {e}") from e
        if status == "unknown":
            raise UnknownAttempt(f"attempt {attempt_id} was never reserved")
        return status == "recorded"

    async def record_contact(
        self,
        *,
        person_id: int,
        debt_ids: Iterable[int],
        outcome: str,
        at: datetime,
        channel: str = "voice",
        direction: str = "inbound",
        contact_id: uuid.UUID | str | None = None,
    ) -> str:
        """Record a contact that was not a reserved call (e.g. the debtor called in): it starts
        cooldowns and channel locks; an inbound contact never counts toward call caps."""
        if outcome not in CONTACT_OUTCOMES:
            raise ValueError(f"a contact is one of {CONTACT_OUTCOMES}, not {outcome!r}")
        if channel not in LEDGER_CHANNELS or direction not in ("inbound", "outbound"):
            raise ValueError(f"bad channel {channel!r} or direction {direction!r}")
        cid = uuid.UUID(str(contact_id)) if contact_id else uuid.uuid4()
        debts = sorted({int(d) for d in debt_ids})
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(compliance_lock_key($1))", person_id
                    )
                    await conn.execute(
                        """INSERT INTO compliance_attempts (attempt_id, person_id, debt_id,
                               number_kind, channel, direction, reserved_at)
                           SELECT $1, $2, x, 'unknown', $3, $4, $5 FROM unnest($6::bigint[]) x""",
                        cid, person_id, channel, direction, at, debts,
                    )  # fmt: skip
                    await conn.execute(
                        """INSERT INTO compliance_outcomes (attempt_id, person_id, outcome, at)
                           VALUES ($1, $2, $3, $4)""",
                        cid, person_id, outcome, at,
                    )  # fmt: skip
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise ComplianceUnavailable(f"cannot record contact: {type(e).__name__}: {e}") from e
        return str(cid)

    async def grant_override(
        self,
        *,
        person_id: int,
        valid_from: datetime,
        valid_until: datetime,
        reason: str,
        granted_by: str,
        rule_ids: Sequence[str] = (),
        debt_id: int | None = None,
    ) -> int:
        """Waive soft rules for a person (or one debt) for a while; audited. Hard blocks stay."""
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                async with self._pool.acquire() as conn, conn.transaction():
                    oid = await conn.fetchval(
                        """INSERT INTO compliance_overrides (person_id, debt_id, rule_ids,
                               valid_from, valid_until, reason, granted_by)
                           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
                        person_id, debt_id, list(rule_ids), valid_from, valid_until, reason,
                        granted_by,
                    )  # fmt: skip
                    await audit(
                        conn, granted_by, "compliance.override", f"person:{person_id}",
                        {"override_id": oid, "rule_ids": list(rule_ids), "debt_id": debt_id,
                         "valid_from": valid_from.isoformat(),
                         "valid_until": valid_until.isoformat(), "reason": reason},
                    )  # fmt: skip
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise ComplianceUnavailable(f"cannot grant override: {type(e).__name__}: {e}") from e
        return int(oid)

    async def decisions(self, person_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Stored decisions for a person, newest first (for audits)."""
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                async with self._pool.acquire() as conn:
                    rows = await conn.fetch(_DECISIONS, person_id, limit)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise ComplianceUnavailable(f"cannot read decisions: {type(e).__name__}: {e}") from e
        out = []
        for r in rows:
            item = dict(r)
            reasons = item["reasons"]
            item["reasons"] = json.loads(reasons) if isinstance(reasons, str) else reasons
            item["attempt_id"] = str(item["attempt_id"]) if item["attempt_id"] else None
            out.append(item)
        return out
