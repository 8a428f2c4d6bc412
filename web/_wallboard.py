"""The supervisor wallboard's figures: per campaign, from the database and the live runners.

From the database (a few queries per refresh, today in UTC, from midnight to midnight, and over
each campaign's legal window): dials, live answers (a person: ``agent``, ``abandoned`` or
``hangup``), the live-answer rate, abandonment today and over the window against the target,
AMD outcomes (machines and people), compliance denials by reason, promises and their amounts.
From the runners (this node's memory, no query): agents by state, lines in flight, the dial
level (lines per working agent) and why a campaign is not dialing.

The window's counts are today's (fresh every refresh) plus those before today's midnight. With
a :class:`WindowHistory` (the shared board's), the part before midnight is kept up to its
``max_age_s`` (300 s) and recomputed when the date changes: that part may be up to that old (its
start not moved on since, attempts before midnight written since not yet counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dialer.campaigns import LIVE_DISPOSITIONS

# Answers AMD found no person on: machines, and a fax or a special information tone (a SIT of
# congestion ends ``congestion``, with the unanswered dials).
MACHINE = ("machine", "voicemail", "fax", "intercept", "sit_other")

# Each query reads only the rows it shows, also under the generic plan a prepared statement
# caches after a few executions (made without the parameters' values), by the indexes of
# db/migrations/0013_recent_rows.sql. Their time ranges are closed, at tomorrow's midnight ($4
# here, $2 below; today's for _HISTORY): a generic plan guesses an open "created_at >= $1" at a
# third of the table (and chose hash joins of whole tables, parallel workers, JIT compilation),
# a closed range at a sliver.
#
# Today's attempts per campaign: a LATERAL aggregate, a nested loop over the campaigns by
# call_attempts_campaign_created_idx (a join hashed all of call_attempts).
_CAMPAIGNS = """
SELECT c.code, c.mode, c.state, c.abandon_target::float8 AS abandon_target,
       c.abandon_window_days, a.dials_today, a.live_today, a.abandoned_today, a.machines_today
FROM campaigns c
CROSS JOIN LATERAL (
    SELECT count(*) AS dials_today,
           count(*) FILTER (WHERE a.disposition = ANY($2) OR a.abandoned) AS live_today,
           count(*) FILTER (WHERE a.abandoned) AS abandoned_today,
           count(*) FILTER (WHERE a.disposition = ANY($3)) AS machines_today
    FROM call_attempts a
    WHERE a.campaign_id = c.id AND a.created_at >= $1 AND a.created_at < $4
) a
WHERE c.state <> 'draft'
ORDER BY c.code
"""
# The window's attempts before today per campaign, from its start ($2 less its days) to today's
# midnight ($3), the same way (abandon_window_days >= 1: the range is never empty).
_HISTORY = """
SELECT c.code, c.abandon_window_days, h.live, h.abandoned
FROM campaigns c
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.disposition = ANY($1) OR a.abandoned) AS live,
           count(*) FILTER (WHERE a.abandoned) AS abandoned
    FROM call_attempts a
    WHERE a.campaign_id = c.id
      AND a.created_at >= $2::timestamptz - c.abandon_window_days * interval '1 day'
      AND a.created_at < $3
) h
WHERE c.state <> 'draft'
"""
# By compliance_decisions_denied_idx.
_DENIALS = """
SELECT d.campaign, r->>'code' AS code, count(*) AS n
FROM compliance_decisions d, jsonb_array_elements(d.reasons) r
WHERE d.decided_at >= $1 AND d.decided_at < $2 AND NOT d.allowed AND d.campaign IS NOT NULL
GROUP BY 1, 2
"""
# By promises_created_idx; each promise's campaign by its attempt's key, in a subquery (a join
# hashed all of call_attempts).
_PROMISES = """
SELECT coalesce((SELECT c.code FROM campaigns c
                 WHERE c.id = (SELECT a.campaign_id FROM call_attempts a
                               WHERE a.id = p.attempt_id)), 'inbound') AS campaign,
       count(*) AS n, sum(p.total_cents) AS cents
FROM promises p
WHERE p.created_at >= $1 AND p.created_at < $2
GROUP BY 1
"""

LiveView = Callable[[], Mapping[str, Mapping[str, Any]]]
# Per campaign: (abandon_window_days, live, abandoned) before today's midnight.
History = dict[str, tuple[int, int, int]]


async def _history(conn: asyncpg.Connection, now: datetime, midnight: datetime) -> History:
    rows = await conn.fetch(_HISTORY, list(LIVE_DISPOSITIONS), now, midnight)
    return {r["code"]: (r["abandon_window_days"], r["live"], r["abandoned"]) for r in rows}


class WindowHistory:
    """The windows' counts before today, kept ``max_age_s`` (by ``monotonic``) for the date they
    were read on; read again when older, on another date, or when a campaign is missing or its
    window's length changed. One per shared board: not for concurrent calls (it does not lock)."""

    def __init__(
        self, max_age_s: float = 300.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._midnight: datetime | None = None
        self._at = float("-inf")
        self._counts: History = {}
        self.computed = 0

    async def get(
        self,
        conn: asyncpg.Connection,
        now: datetime,
        midnight: datetime,
        windows: Mapping[str, int],
    ) -> History:
        """The counts, for campaigns whose window is ``windows`` (code to days)."""
        if (
            midnight != self._midnight
            or self._monotonic() - self._at >= self.max_age_s
            or any(self._counts.get(code, (None,))[0] != days for code, days in windows.items())
        ):
            self._counts = await _history(conn, now, midnight)
            self._midnight = midnight
            self._at = self._monotonic()
            self.computed += 1
        return self._counts


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


async def wallboard(
    pool: asyncpg.Pool,
    now: datetime,
    live: LiveView | None = None,
    history: WindowHistory | None = None,
) -> dict[str, Any]:
    """The board: ``{"at": ..., "campaigns": [...]}`` (JSON-ready). Without ``history``, the
    window's part before today is read too, every call."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = midnight + timedelta(days=1)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            _CAMPAIGNS, midnight, list(LIVE_DISPOSITIONS), list(MACHINE), tomorrow
        )
        if history is None:
            before = await _history(conn, now, midnight)
        else:
            windows = {r["code"]: r["abandon_window_days"] for r in rows}
            before = await history.get(conn, now, midnight, windows)
        denials = await conn.fetch(_DENIALS, midnight, tomorrow)
        promises = await conn.fetch(_PROMISES, midnight, tomorrow)
    by_reason: dict[str, dict[str, int]] = {}
    for d in denials:
        by_reason.setdefault(d["campaign"], {})[d["code"]] = d["n"]
    promised = {p["campaign"]: (p["n"], p["cents"] or 0) for p in promises}
    runners = live() if live is not None else {}
    out = []
    for r in rows:
        code = r["code"]
        run = runners.get(code, {})
        agents = run.get("agents", {})
        n_promised, cents = promised.get(code, (0, 0))
        _, live_before, abandoned_before = before.get(code, (0, 0, 0))
        live_window = live_before + r["live_today"]
        abandoned_window = abandoned_before + r["abandoned_today"]
        out.append(
            {
                "campaign": code,
                "mode": r["mode"],
                "state": r["state"],
                "agents": agents,
                "in_flight": run.get("in_flight", 0),
                "dial_level": dial_level(agents, run.get("in_flight", 0)),
                "why": run.get("why", ""),
                "dials_today": r["dials_today"],
                "live_answer_rate_today": _ratio(r["live_today"], r["dials_today"]),
                "abandon_rate_today": _ratio(r["abandoned_today"], r["live_today"]),
                "abandon_rate_window": _ratio(abandoned_window, live_window),
                "abandon_window_days": r["abandon_window_days"],
                "abandon_target": r["abandon_target"],
                "amd_today": {"machine": r["machines_today"], "person": r["live_today"]},
                "denials_today": by_reason.get(code, {}),
                "promises_today": n_promised,
                "promised_cents_today": int(cents),
            }
        )
    if "inbound" in promised:
        n, cents = promised["inbound"]
        out.append({"campaign": "inbound", "promises_today": n, "promised_cents_today": int(cents)})
    return {"type": "wallboard", "at": now.isoformat(), "campaigns": out}


def dial_level(agents: Mapping[str, int], in_flight: int) -> float | None:
    """Lines per working agent (free, on a call or in wrap-up; paused ones do not count)."""
    working = agents.get("free", 0) + agents.get("busy", 0) + agents.get("wrapup", 0)
    return _ratio(in_flight, working)


def runner_view(runners: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The live part from this node's campaign runners (their agent boards and calls)."""
    now = time.monotonic()
    view: dict[str, dict[str, Any]] = {}
    for code, runner in runners.items():
        counts = {"free": 0, "busy": 0, "wrapup": 0, "paused": 0}
        for agent in runner.board.agents.values():
            counts[agent.status(now)] += 1
        view[code] = {"agents": counts, "in_flight": len(runner.calls), "why": runner.why}
    return view
