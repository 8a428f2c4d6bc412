"""The daily report: per campaign and local day, what the dialer did and what it brought.

One row per campaign (all campaigns, or the one named) for the calendar day ``day`` in zone
``tz`` (UTC by default; a DST day has 23 or 25 hours). Columns:

- ``attempts``: call attempts created that day;
- ``contacts``: those a person answered (dispositions ``agent``, ``abandoned``, ``hangup``:
  :data:`dialer.campaigns.LIVE_DISPOSITIONS`);
- ``right_party_contacts``: those where the debtor was identified: an IVR session of the
  attempt passed identity verification (``ivr_sessions.verified``), or the agent's
  disposition is a right-party code (:data:`web._agents.RIGHT_PARTY_CODES`: the agent spoke
  with the debtor). Each attempt counts once;
- ``promises``, ``promised_cents``: promises created that day on the campaign's calls
  (``promises.attempt_id``); promises made without a call are not any campaign's;
- ``payments``, ``paid_cents``: approved payments created that day, attributed through their
  IVR session's call or their promise's call;
- ``abandoned``, ``abandon_rate``: abandoned calls, and over contacts;
- ``compliance_denials``: compliance decisions denied that day for the campaign (a lead
  denied at several ticks counts at each);
- ``currency``: the creditor's (amounts are in its cents).

Served as ``GET /api/v1/reports/daily.csv`` and printed by ``puente reports daily``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from dialer.campaigns import LIVE_DISPOSITIONS
from web._agents import RIGHT_PARTY_CODES
from web._api import ApiCall, ApiRoute
from web._campaigns import MANAGERS
from web._exceptions import NotFound
from web._schema import CODE, DATE
from web._values import TZ, day_bounds, parse_date, zone

_DAILY = """
WITH c AS (
    SELECT c.id, c.code, cr.currency FROM campaigns c
    LEFT JOIN creditors cr ON cr.id = c.creditor_id
    WHERE $3::text IS NULL OR c.code = $3
), att AS (
    SELECT ca.campaign_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE ca.disposition = ANY($4::text[]) OR ca.abandoned) AS contacts,
           count(*) FILTER (WHERE
               EXISTS (SELECT 1 FROM dispositions d
                       WHERE d.attempt_id = ca.id AND d.code = ANY($5::text[]))
               OR EXISTS (SELECT 1 FROM ivr_sessions s
                          WHERE s.attempt_id = ca.id AND s.verified)) AS rpc,
           count(*) FILTER (WHERE ca.abandoned) AS abandoned
    FROM call_attempts ca
    WHERE ca.campaign_id IN (SELECT id FROM c) AND ca.created_at >= $1 AND ca.created_at < $2
    GROUP BY 1
), pr AS (
    SELECT ca.campaign_id, count(*) AS promises, sum(p.total_cents) AS promised_cents
    FROM promises p JOIN call_attempts ca ON ca.id = p.attempt_id
    WHERE ca.campaign_id IN (SELECT id FROM c) AND p.created_at >= $1 AND p.created_at < $2
    GROUP BY 1
), pay AS (
    SELECT ca.campaign_id, count(*) AS payments, sum(pm.amount_cents) AS paid_cents
    FROM payments pm
    LEFT JOIN ivr_sessions s ON s.id = pm.ivr_session_id
    LEFT JOIN promises p ON p.id = pm.promise_id
    JOIN call_attempts ca ON ca.id = coalesce(s.attempt_id, p.attempt_id)
    WHERE pm.status = 'approved' AND pm.created_at >= $1 AND pm.created_at < $2
      AND ca.campaign_id IN (SELECT id FROM c)
    GROUP BY 1
), den AS (
    SELECT cd.campaign, count(*) AS denials FROM compliance_decisions cd
    WHERE NOT cd.allowed AND cd.decided_at >= $1 AND cd.decided_at < $2
      AND cd.campaign IN (SELECT code FROM c)
    GROUP BY 1
)
SELECT c.code, c.currency,
       coalesce(att.attempts, 0) AS attempts, coalesce(att.contacts, 0) AS contacts,
       coalesce(att.rpc, 0) AS rpc, coalesce(pr.promises, 0) AS promises,
       coalesce(pr.promised_cents, 0) AS promised_cents, coalesce(pay.payments, 0) AS payments,
       coalesce(pay.paid_cents, 0) AS paid_cents, coalesce(att.abandoned, 0) AS abandoned,
       coalesce(den.denials, 0) AS denials
FROM c
LEFT JOIN att ON att.campaign_id = c.id
LEFT JOIN pr ON pr.campaign_id = c.id
LEFT JOIN pay ON pay.campaign_id = c.id
LEFT JOIN den ON den.campaign = c.code
ORDER BY c.code
"""


@dataclass(frozen=True)
class DailyRow:
    date: str
    campaign: str
    attempts: int
    contacts: int
    right_party_contacts: int
    promises: int
    promised_cents: int
    payments: int
    paid_cents: int
    abandoned: int
    abandon_rate: str
    compliance_denials: int
    currency: str


COLUMNS = tuple(f.name for f in fields(DailyRow))


class UnknownCampaign(LookupError):
    pass


async def daily_report(
    pool: asyncpg.Pool | asyncpg.Connection, day: date, campaign: str | None = None,
    tz: str | None = None,
) -> list[DailyRow]:  # fmt: skip
    """The day's rows; :class:`UnknownCampaign` when ``campaign`` names none."""
    start, end = day_bounds(day, zone(tz))
    rows = await pool.fetch(
        _DAILY, start, end, campaign, list(LIVE_DISPOSITIONS), list(RIGHT_PARTY_CODES)
    )
    if campaign is not None and not rows:
        raise UnknownCampaign(f"no campaign {campaign!r}")
    return [_row(day, r) for r in rows]


def _row(day: date, r: asyncpg.Record) -> DailyRow:
    return DailyRow(
        day.isoformat(), r["code"], r["attempts"], r["contacts"], r["rpc"], r["promises"],
        int(r["promised_cents"]), r["payments"], int(r["paid_cents"]), r["abandoned"],
        f"{r['abandoned'] / r['contacts']:.4f}" if r["contacts"] else "0.0000",
        r["denials"], (r["currency"] or "").strip(),
    )  # fmt: skip


def to_csv(rows: list[DailyRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(astuple(row))
    return out.getvalue()


async def daily_csv(call: ApiCall) -> Any:
    day = parse_date(call.query["date"])
    try:
        rows = await daily_report(call.pool, day, call.query.get("campaign"), call.query.get("tz"))
    except UnknownCampaign as e:
        raise NotFound(str(e), "campaign") from None
    name = f"puente-daily-{call.query.get('campaign', 'all')}-{day.isoformat()}.csv"
    return web.Response(
        text=to_csv(rows),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


ROUTES = [
    ApiRoute("GET", "/reports/daily.csv", daily_csv,
             "Daily report per campaign (attempts, contacts, right-party contacts, promises, "
             "payments, abandonment, compliance denials)", "reports", MANAGERS,
             query={"date": DATE, "campaign": CODE, "tz": TZ}, required_query=("date",),
             response="CSV, one row per campaign", response_type="text/csv"),
]  # fmt: skip
