"""The collections flow's actions: the database side of the IVR (asyncpg), one method per name.

Each action gets its arguments (already resolved from the call's data) and the call, and
returns ``(result, updates)``: a result the flow branches on and data for the next prompts. An
exception is the ``error`` result (the flow's ``on_error``: an apology and an agent). Every
write is one transaction: a promise is stored whole or not at all.

Card digits reach :meth:`CollectionsActions.charge_card` through ``call.secrets`` only, go to
the gateway and nowhere else (not the data, not a log line, not a row).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from compliance import ComplianceGate
from db.audit import audit
from dialer.callbacks import PACKS_BY_COUNTRY, allowed_times, schedule_callback
from dialer.campaigns import company_prompt
from ivr import plans
from ivr._charge import charge
from ivr._exceptions import PlanError, PolicyError
from ivr._promises import insert_promise, lock_debt
from ivr.payments import (
    PaymentGateway,
)

log = logging.getLogger(__name__)

# Every action of the shipped flows and the results it may return ("error" is implicit).
ACTIONS: dict[str, tuple[str, ...]] = {
    "inbound_lookup": ("ok",),
    "load_attempt": ("ok", "missing"),
    "find_account": ("ok", "locked"),
    "verify_identity": ("ok", "retry", "locked"),
    "load_offers": ("ok", "nothing_due"),
    "choose_offer": ("ok", "invalid", "unavailable"),
    "check_promise": ("ok", "invalid"),
    # exists: the debt has an active promise (its code is read back); changed: the debt was
    # paid or its balance moved since the call read it; unknown: a payment on it has an
    # outcome nobody knows yet (a gateway that did not answer): nothing new is written.
    "store_promise": ("ok", "invalid", "exists", "changed", "unknown"),
    "charge_card": (
        "approved",
        "declined",
        "invalid_card",
        "unavailable",
        "unknown",
        "changed",
        "exists",
    ),
    "offer_callback": ("ok", "none"),
    "schedule_callback": ("ok", "taken"),
}
# The disclosure prompt by the debtor's country, unless the creditor's policy names one.
DISCLOSURES = {"US": "disclosure_us", "MX": "disclosure_mx"}
MAX_SESSION_FAILURES = 3


@dataclass
class Call:
    """What an action may know about the call it serves."""

    session_id: uuid.UUID
    data: dict[str, Any]
    secrets: dict[str, str]
    language: str
    caller: str | None  # the caller id (E.164 when known); never logged in full
    now: datetime
    attempt_id: uuid.UUID | None = None
    writes: list[str] = field(default_factory=list)  # what was written (for the simulator)
    debt: tuple[asyncpg.Record, plans.CreditorPolicy] | None = None  # the verified debt


Action = Callable[[Mapping[str, str], Call], Awaitable[tuple[str, dict[str, Any]]]]


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _digits(s: str | None) -> str:
    return "".join(c for c in (s or "") if "0" <= c <= "9")


class CollectionsActions:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        gateway: PaymentGateway,
        gate: ComplianceGate | None = None,
        gateway_timeout_s: float = 20.0,
    ) -> None:
        self.pool = pool
        self.gateway = gateway
        self.gate = gate
        self.gateway_timeout_s = gateway_timeout_s

    def get(self, name: str) -> Action:
        if name not in ACTIONS:
            raise KeyError(name)
        return getattr(self, name)  # type: ignore[no-any-return]

    # -- who is calling ----------------------------------------------------------------------
    async def inbound_lookup(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        """The dialed number picks the creditor (its published call-back number)."""
        dialed = _digits(args.get("dialed"))
        if not dialed:
            return "ok", {}
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id AS creditor_id, code, callback_number FROM creditors"
                " WHERE regexp_replace(callback_number, '[^0-9]', '', 'g') = $1"
                " ORDER BY id LIMIT 1",
                dialed,
            )
        return "ok", _creditor(row) if row is not None else {}

    async def load_attempt(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        """An outbound call: who we called (still to be verified before any debt talk).

        Without its attempt row (it should not happen), the campaign's creditor still gives
        the business name and call-back number every outbound message owes whoever answered
        (TSR 16 CFR 310.4(b)(4)(iii)); ``missing`` only when neither is known."""
        attempt = _uuid(args.get("attempt"))
        row = None
        async with self.pool.acquire() as conn:
            if attempt is not None:
                row = await conn.fetchrow(
                    "SELECT a.debt_id, d.creditor_id, c.code, c.callback_number, p.language,"
                    " n.e164 FROM call_attempts a JOIN debts d ON d.id = a.debt_id"
                    " JOIN creditors c ON c.id = d.creditor_id"
                    " JOIN persons p ON p.id = a.person_id"
                    " LEFT JOIN phone_numbers n ON n.id = a.phone_id WHERE a.id = $1",
                    attempt,
                )
            if row is None and (campaign := args.get("campaign") or ""):
                creditor = await conn.fetchrow(
                    "SELECT c.id AS creditor_id, c.code, c.callback_number FROM campaigns k"
                    " JOIN creditors c ON c.id = k.creditor_id WHERE k.code = $1",
                    campaign,
                )
                if creditor is not None:
                    return "ok", _creditor(creditor)
        if row is None:
            return "missing", {"company": company_prompt(None), "callback_number": ""}
        out = _creditor(row)
        out["expected_debt_id"] = row["debt_id"]
        out["_language"] = row["language"]
        out["_caller"] = row["e164"]  # the number we dialed (a callback goes to it)
        return "ok", out

    # -- identify and verify -----------------------------------------------------------------
    async def find_account(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        """Which second factor to ask. Whether an account exists is not revealed: an unknown
        one is asked the factor its creditor's accounts are asked, and a locked one hears it is
        locked only after the right factor (:meth:`verify_identity`). (So ``locked`` is no
        longer a result here; flows written for it still load.)"""
        account = args.get("account", "")
        creditor = call.data.get("creditor_id")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT d.id, c.policy, c.code FROM debts d"
                " JOIN creditors c ON c.id = d.creditor_id"
                " WHERE d.account_ref = $1 AND ($2::bigint IS NULL OR d.creditor_id = $2)"
                " LIMIT 2",
                account,
                creditor,
            )
            if len(rows) != 1:  # unknown, or ambiguous across creditors: fail at the factor
                # (the number dialed names the creditor: its accounts' factor is asked)
                c = None
                if creditor is not None:
                    c = await conn.fetchrow(
                        "SELECT policy, code FROM creditors WHERE id = $1", creditor
                    )
                if c is not None:
                    factor = _policy(c).second_factor
                else:  # no creditor known: the factor most accounts are asked
                    factor = await _usual_factor(conn)
                return "ok", {"candidate_debt_id": None, "second_factor": factor}
        row = rows[0]
        policy = _policy(row)
        return "ok", {"candidate_debt_id": row["id"], "second_factor": policy.second_factor}

    async def verify_identity(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        debt_id = call.data.get("candidate_debt_id")
        factor = args.get("factor", "")
        row = None
        if debt_id is not None:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT d.id, d.person_id, d.creditor_id, d.ivr_locked_until, c.policy,"
                    " c.code, c.callback_number, p.date_of_birth, p.postal_code, p.id_last4,"
                    " p.country FROM debts d JOIN creditors c ON c.id = d.creditor_id"
                    " JOIN persons p ON p.id = d.person_id WHERE d.id = $1",
                    debt_id,
                )
        policy = _policy(row) if row is not None else None
        if row is not None and policy is not None and _factor_ok(row, policy, factor):
            async with self.pool.acquire() as conn, conn.transaction():
                # Under the debt's lock, as failures are counted (:meth:`_verify_failed`): a
                # right guess among many at once passes only if no lockout came before it.
                until = await conn.fetchval(
                    "SELECT ivr_locked_until FROM debts WHERE id = $1 FOR UPDATE", row["id"]
                )
                if until is not None and until > call.now:
                    return "locked", {}
                await conn.execute(
                    "UPDATE ivr_sessions SET verified = true, person_id = $2, debt_id = $3,"
                    " updated_at = now() WHERE id = $1",
                    call.session_id,
                    row["person_id"],
                    row["id"],
                )
            country = (row["country"] or "").strip().upper()
            call.writes.append("ivr_sessions: verified")
            return "ok", {
                **_creditor(row),
                "verified": True,
                "debt_id": row["id"],
                "person_id": row["person_id"],
                "country": country,
                "disclosure": policy.disclosure or DISCLOSURES.get(country, "disclosure_generic"),
            }
        return await self._verify_failed(call, debt_id, policy)

    async def _verify_failed(
        self, call: Call, debt_id: int | None, policy: plans.CreditorPolicy | None
    ) -> tuple[str, dict]:
        async with self.pool.acquire() as conn, conn.transaction():
            if debt_id is not None:  # serialise the count with other calls on this debt
                await conn.execute("SELECT 1 FROM debts WHERE id = $1 FOR UPDATE", debt_id)
            # A failure: logged, and counted towards the account's lockout.
            await conn.execute(
                "INSERT INTO ivr_auth_failures (debt_id, session_id, at) VALUES ($1, $2, $3)",
                debt_id,
                call.session_id,
                call.now,
            )
            call.writes.append("ivr_auth_failures: 1 row")
            session_failures = int(call.data.get("verify_failures", 0)) + 1
            log.warning("ivr %s: identity check failed (%d)", call.session_id, session_failures)
            if debt_id is not None and policy is not None:
                since = call.now - timedelta(minutes=policy.lockout_minutes)
                count = await conn.fetchval(
                    "SELECT count(*) FROM ivr_auth_failures WHERE debt_id = $1 AND at > $2",
                    debt_id,
                    since,
                )
                if count >= policy.max_verify_failures:
                    # Locked in silence: the caller hears it only after the right factor
                    # (:meth:`verify_identity`), as an unknown account, which no failure locks,
                    # sounds the same: "locked" now would say the account exists.
                    until = call.now + timedelta(minutes=policy.lockout_minutes)
                    locked = await conn.fetchval(  # (once: not again while it holds)
                        "UPDATE debts SET ivr_locked_until = $2 WHERE id = $1"
                        " AND (ivr_locked_until IS NULL OR ivr_locked_until <= $3) RETURNING 1",
                        debt_id,
                        until,
                        call.now,
                    )
                    if locked:
                        await audit(
                            conn, "ivr", "ivr.lockout", f"debt:{debt_id}",
                            {"failures": count, "until": until.isoformat()},
                        )  # fmt: skip
                        call.writes.append("debts: self-service locked")
                        log.warning(
                            "ivr %s: self-service locked for debt %s", call.session_id, debt_id
                        )
        if session_failures >= MAX_SESSION_FAILURES:
            return "locked", {"verify_failures": session_failures}
        return "retry", {"verify_failures": session_failures}

    # -- balance and options ----------------------------------------------------------------
    async def _debt(self, call: Call) -> tuple[asyncpg.Record, plans.CreditorPolicy]:
        """The verified debt and its creditor's policy, read once per call (a payment of this
        call drops the copy)."""
        if not call.data.get("verified"):
            raise PermissionError("the caller is not verified")
        if call.debt is None:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT d.id, d.balance_cents, d.currency, d.status, c.policy, c.code"
                    " FROM debts d JOIN creditors c ON c.id = d.creditor_id WHERE d.id = $1",
                    call.data["debt_id"],
                )
            call.debt = (row, _policy(row))
        return call.debt

    async def load_offers(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        row, _ = await self._debt(call)
        if row["balance_cents"] <= 0 or row["status"] in ("paid", "closed"):
            return "nothing_due", {}
        return "ok", {"balance_cents": row["balance_cents"], "currency": row["currency"]}

    async def choose_offer(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        row, policy = await self._debt(call)
        balance, today = row["balance_cents"], _local_today(call)
        kind = args.get("kind")
        try:
            if kind == "full":
                offer = plans.full_payment(balance, policy, today)
            elif kind == "settlement":
                offer = plans.settlement(balance, policy, today)
            elif kind == "plan_range":
                most = plans.max_plan_months(balance, policy)
                if policy.instalments is None or most is None:
                    return "unavailable", {}
                return "ok", {
                    "plan_min_months": policy.instalments.min_months,
                    "plan_max_months": most,
                }
            elif kind == "plan":
                months = int(args.get("months") or 0)
                if policy.instalments is None:
                    return "unavailable", {}
                offer = plans.instalment_plan(balance, months, policy, today)
            else:
                raise ValueError(f"unknown offer kind {kind!r}")
        except PlanError as e:
            log.info("ivr %s: offer %s refused: %s", call.session_id, kind, e)
            return ("unavailable" if "does not offer" in str(e) else "invalid"), {}
        return "ok", _offer_data(offer)

    async def check_promise(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        row, policy = await self._debt(call)
        today = _local_today(call)
        try:
            due = _spoken_date(args.get("date", ""), call.language, today)
            amount = int(args.get("units") or 0) * 100
            plans.check_promise(amount, due, row["balance_cents"], policy, today)
        except (ValueError, PlanError) as e:
            log.info("ivr %s: promise refused: %s", call.session_id, e)
            return "invalid", {}
        offer = {
            "kind": "custom",
            "total_cents": amount,
            "instalments": [{"due": due.isoformat(), "amount_cents": amount}],
        }
        return "ok", {
            "offer": offer,
            "offer_kind": "custom",
            "offer_total_cents": amount,
            "offer_first_due": due.isoformat(),
        }

    async def store_promise(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        row, policy = await self._debt(call)
        offer = call.data.get("offer")
        if not isinstance(offer, dict):
            return "invalid", {}
        instalments = offer["instalments"]
        total = int(offer["total_cents"])
        if offer["kind"] == "custom":
            try:
                plans.check_promise(
                    total,
                    date.fromisoformat(instalments[0]["due"]),
                    row["balance_cents"],
                    policy,
                    _local_today(call),
                )
            except PlanError:
                return "invalid", {}
        async with self.pool.acquire() as conn, conn.transaction():
            # Under the debt's lock: another call on this debt may have promised or paid since
            # this one read the balance (one active promise per debt, as for the agents).
            now = await lock_debt(conn, row["id"])
            if now.active_promise_code is not None:
                return "exists", {"confirmation": now.active_promise_code}
            if now.payment_unknown:
                return "unknown", {}
            if now.changed_since(row):
                call.debt = None  # read it again
                return "changed", {}
            code = await insert_promise(
                conn,
                debt_id=row["id"],
                attempt_id=call.attempt_id,
                session_id=call.session_id,
                kind=offer["kind"],
                instalments=instalments,
                total_cents=total,
            )
        call.writes.append(f"promises: {offer['kind']}, {len(instalments)} instalment(s), {total}")
        return "ok", {"confirmation": code}

    # -- payment by card ---------------------------------------------------------------------
    async def charge_card(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        try:
            row, _ = await self._debt(call)
            result = await charge(self.pool, self.gateway, self.gateway_timeout_s, call, row)
            if result[0] in ("approved", "changed"):
                call.debt = None  # the balance changed: read it again
            return result
        finally:
            call.secrets.clear()  # whatever happened, the digits are gone

    # -- callback ----------------------------------------------------------------------------
    async def offer_callback(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        """The next two times (10:00 and 17:00 local, next days) compliance would allow."""
        person_id, debt_id = call.data.get("person_id"), call.data.get("debt_id")
        if self.gate is None or person_id is None or not call.caller:
            return "none", {}
        packs = PACKS_BY_COUNTRY.get(str(call.data.get("country", "")))
        if not packs:
            return "none", {}
        slots = await allowed_times(
            self.gate, person_id=person_id, debt_id=debt_id, phone=call.caller, packs=packs,
            now=call.now,
        )  # fmt: skip
        if not slots:
            return "none", {}
        out: dict[str, Any] = {"callback_slots": [s.isoformat() for s, _ in slots]}
        for i, (_, local) in enumerate(slots, start=1):
            out[f"slot{i}_date"] = local.date().isoformat()
            out[f"slot{i}_hour"] = local.hour
        return "ok", out

    async def schedule_callback(self, args: Mapping[str, str], call: Call) -> tuple[str, dict]:
        slots = call.data.get("callback_slots") or []
        index = int(args.get("slot") or 0) - 1
        if not 0 <= index < len(slots):
            return "taken", {}
        due = datetime.fromisoformat(slots[index])
        async with self.pool.acquire() as conn, conn.transaction():
            phone_id = await conn.fetchval(
                "SELECT id FROM phone_numbers WHERE person_id = $1 AND e164 = $2",
                call.data["person_id"],
                call.caller,
            )
            # The debt's latest lead: made due again at the callback's time if it had ended
            # (an inbound caller's debt has often been worked already), else nothing would
            # ever dial the callback the person was promised.
            lead_id = await conn.fetchval(
                "SELECT id FROM leads WHERE debt_id = $1 ORDER BY id DESC LIMIT 1",
                call.data["debt_id"],
            )
            await schedule_callback(
                conn,
                debt_id=call.data["debt_id"],
                person_id=call.data["person_id"],
                phone_id=phone_id,
                due_at=due,
                source="ivr",
                requested_by=f"ivr:{call.session_id}",
                lead_id=lead_id,
            )
        call.writes.append(f"callbacks: due {due.isoformat()}")
        return "ok", {"callback_at": due.isoformat()}


def _creditor(row: asyncpg.Record) -> dict[str, Any]:
    """What the prompts need of a creditor row (``creditor_id``, ``code``, ``callback_number``):
    its recorded business name and the digits of its call-back number."""
    return {
        "creditor_id": row["creditor_id"],
        "company": company_prompt(row["code"]),
        "callback_number": _digits(row["callback_number"]),
    }


async def _usual_factor(conn: asyncpg.Connection) -> str:
    """The second factor most accounts are asked (their creditors' policies'), for an account
    that is not known when no creditor is: asked anything else, a caller would learn which
    accounts exist from the question (everywhere one factor is used, nothing at all)."""
    counts: dict[str, int] = {}
    for r in await conn.fetch(
        "SELECT c.code, c.policy, count(d.id) AS debts FROM creditors c"
        " LEFT JOIN debts d ON d.creditor_id = c.id GROUP BY c.id"
    ):
        try:
            factor = _policy(r).second_factor
        except PolicyError:
            continue
        counts[factor] = counts.get(factor, 0) + r["debts"]
    # (ties, and no creditor at all: the date of birth, then the name order, for a stable one)
    return max(sorted(counts), key=lambda f: (counts[f], f == "dob"), default="dob")


def _policy(row: asyncpg.Record) -> plans.CreditorPolicy:
    raw = row["policy"]
    data = json.loads(raw) if isinstance(raw, str) else (raw or {})
    try:
        return plans.CreditorPolicy.from_json(data, creditor=row["code"])
    except PolicyError:
        log.error("creditor %r has an invalid policy; self-service refused", row["code"])
        raise


def _factor_ok(row: asyncpg.Record, policy: plans.CreditorPolicy, factor: str) -> bool:
    if policy.second_factor == "dob":
        dob = row["date_of_birth"]
        return dob is not None and factor == dob.strftime("%Y%m%d")
    if policy.second_factor == "postal_code":
        digits = _digits(row["postal_code"])  # (none: nothing the caller keys can match)
        return bool(digits) and factor == digits
    return row["id_last4"] is not None and factor == row["id_last4"]


def _local_today(call: Call) -> date:
    return call.now.date()


def _spoken_date(keys: str, language: str, today: date) -> date:
    """Four keys: day and month in Spanish (DDMM), month and day in English (MMDD)."""
    if len(keys) != 4 or not keys.isdigit():
        raise ValueError("a date is four digits")
    a, b = int(keys[:2]), int(keys[2:])
    day, month = (a, b) if language == "es" else (b, a)
    candidate = date(today.year, month, day)
    if candidate < today:
        candidate = date(today.year + 1, month, day)
    return candidate


def _offer_data(offer: plans.Offer) -> dict[str, Any]:
    first = offer.instalments[0]
    return {
        "offer": offer.to_json(),
        "offer_kind": offer.kind,
        "offer_total_cents": offer.total_cents,
        "offer_months": offer.months,
        "offer_instalment_cents": first.amount_cents,
        "offer_first_due": first.due.isoformat(),
    }
