"""What every IVR write on a debt shares: the debt's lock, its state as read under the lock, and
the promise insert with a fresh confirmation code.

Every write about a debt (a promise, a card payment's intent and its result) first locks the
debt's row (``FOR UPDATE``), in the write's own transaction: two calls about one debt at once
are serialised there, so each sees what the other committed. Under the lock the call checks what
it read earlier in the call (the balance its offer was built on) and the rules that span calls:
one active promise per debt (as the agents' API, ``web/_promises.py``), and no new charge while a
payment on the debt has an outcome nobody knows (``pending``: a gateway that did not answer in
time, a crash between the charge and its record).
"""

from __future__ import annotations

import json
import secrets as _random
import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg

from ivr import plans

CODE_DRAWS = 5  # a confirmation code already taken: draw again, at most this many times


@dataclass(frozen=True)
class DebtNow:
    """The debt as it is under its lock: what the call read earlier may be stale."""

    balance_cents: int
    status: str
    active_promise_code: str | None  # the confirmation code of its active promise, if any
    payment_unknown: bool  # a payment on it is pending (outcome not known)

    def changed_since(self, row: asyncpg.Record) -> bool:
        """The balance or the state the call's offers were built on is no longer so."""
        return self.status in ("paid", "closed") or self.balance_cents != row["balance_cents"]


async def lock_debt(
    conn: asyncpg.Connection, debt_id: int, *, except_key: str | None = None
) -> DebtNow:
    """Lock the debt's row for this transaction and read what the IVR's rules need.

    ``except_key``: a pending payment with this idempotency key is the call's own step tried
    again (its outcome is asked of the gateway with the same key), not another payment."""
    # The lock first, then the reads, in one round trip (migration 0023): in READ COMMITTED a
    # statement's subqueries see its own snapshot, taken before it waited for the lock; the
    # function's next statement sees what the call that held it committed.
    row = await conn.fetchrow("SELECT * FROM debt_lock_and_read($1, $2)", debt_id, except_key)
    if row is None:
        raise LookupError(f"debt {debt_id} is gone")
    return DebtNow(row["balance_cents"], row["status"], row["active_code"], row["unknown"])


async def insert_promise(
    conn: asyncpg.Connection,
    *,
    debt_id: int,
    attempt_id: uuid.UUID | None,
    session_id: uuid.UUID,
    kind: str,
    instalments: list[dict],
    total_cents: int,
) -> str:
    """Insert an active promise and mark the debt ``promised``; its confirmation code.

    Run it in a transaction holding the debt's lock (:func:`lock_debt`). A code already taken
    costs another draw, never the promise (one statement a draw: no savepoint)."""
    for _ in range(CODE_DRAWS):
        code = plans.confirmation_code(_random.randbelow(10**7))
        inserted = await conn.fetchval(
            "WITH p AS (INSERT INTO promises (debt_id, attempt_id, source, plan, total_cents,"
            " confirmation_code, ivr_session_id, kind, first_due, last_due)"
            " VALUES ($1, $2, 'ivr', $3::jsonb, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (confirmation_code) DO NOTHING RETURNING debt_id),"
            " d AS (UPDATE debts SET status = 'promised'"
            " WHERE id = (SELECT debt_id FROM p) AND status = 'open')"
            " SELECT count(*) FROM p",
            debt_id,
            attempt_id,
            json.dumps(instalments),
            total_cents,
            code,
            session_id,
            kind,
            date.fromisoformat(instalments[0]["due"]),
            date.fromisoformat(instalments[-1]["due"]),
        )
        if inserted:
            return code
    raise RuntimeError(f"no free confirmation code after {CODE_DRAWS} draws")
