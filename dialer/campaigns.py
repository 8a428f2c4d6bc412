"""A campaign as the dialer runs it: its row, validated, its retry schedule (pure parsing),
and the periodic rescore of its leads' priorities.

The row's JSON columns are checked when loaded, and a bad value is named: a campaign whose
retry schedule says ``{"busy": "soon"}`` does not start, and its runner keeps the last good
settings and says why on its status.

``retry_schedule`` maps a final disposition to the delay before its lead is tried again, in
seconds or as ``"15m"``, ``"2h"``, ``"1d"``; ``null`` ends the lead (no retry). Two more keys:
``max_attempts`` (dials per lead, then the lead ends) and ``default`` (any disposition not
listed). Whatever the schedule says, compliance still decides each dial.

``settings.priority`` weighs what makes a lead worth calling first; given, the pacer
recomputes each ready lead's ``priority`` from its debt and history every minute
(:func:`rescore`, :data:`PRIORITY_SQL`): ``balance`` per unit of log(1 + balance),
``days_past_due`` per 30 days (at most 24), ``broken_promises`` per broken promise on the
debt, ``days_since_contact`` per day since the last live contact (at most 60; never contacted
counts 60), ``best_hour`` per unit of how much better than the campaign's the live-answer rate
is at the debtor's local hour now (bounded to [-1, 1], so at most ``best_hour`` points either
way; 0, the default, leaves it out). Without weights the imported priority stands.

The learned best hour, step by step (when ``best_hour`` is not 0, and in the paced modes,
whose pacer takes each hour's answer odds from the same shape: ``HourlyOdds`` in
:mod:`dialer.pacing`):

1. **Zones.** Each debtor's primary zone (:func:`primary_zone`: the compliance engine's
   candidate zones for the address and the first active number; among several, the address's
   main zone, then the number's) is resolved in Python, where the compliance code lives, and
   kept in ``person_zones`` (migration 0004), a batch of unresolved persons per rescore;
   triggers drop a person's row when the address, the stated zone or the numbers change. With
   the zone in SQL, PostgreSQL computes local hours itself (``AT TIME ZONE``) for every lead
   and attempt, and no per-lead data travels to Python. Without a usable zone a lead gets no
   adjustment.
2. **Counts.** One query (:data:`HOUR_COUNTS_SQL`) counts the campaign's final outbound
   attempts of the last 14 days by the debtor's local hour when dialed: every attempt that
   left Asterisk is a dial (not ``failed``, not ``lost``: fate unknown), and
   :data:`LIVE_DISPOSITIONS` (a person answered: an agent took it, nobody was free, or they
   hung up before the queue) are the answers.
3. **Learning** (pure: :func:`answer_rate_by_hour`, :func:`hour_lift`): each hour's rate is
   smoothed toward the campaign's overall rate ``p``, ``(answers + k p) / (dials + k)`` with
   ``k = 20``, so an hour with few dials stays near ``p``; its lift is ``(rate - p) / p``,
   bounded to [-1, 1].
4. The 24 hours are written to ``campaign_answer_hours`` (which also shows people what was
   learned); :data:`PRIORITY_SQL` reads the campaign's 24 lifts once (an array) and each
   lead's zone by its key, and takes the lift of the lead's local hour now. A table rather
   than an array parameter: PRIORITY_SQL keeps one parameter per weight, and whichever node
   rescores uses the last hours learned.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from compliance import Contact, candidate_zones, number_info
from compliance._zones import NumberInfo, address_region, address_zones
from dialer.trunks import TRUNK_NAME

# Every final disposition an attempt can end with (the unanswered ones, then the answered
# ones) and the delay before its lead is tried again by default.
DEFAULT_RETRY_S: Mapping[str, int | None] = {
    "busy": 15 * 60,
    "no_answer": 2 * 3600,
    "rejected": 4 * 3600,
    "unreachable": 4 * 3600,
    "congestion": 10 * 60,
    "failed": 10 * 60,
    "trunk_refused": 10 * 60,  # the trunk's provider refused it (never routed): like failed
    "unallocated": 0,  # the number is marked disconnected; the person's next number now
    # Answered by a tone (AMD's AMDCAUSE, dialer/outcomes.py); a SIT of congestion (NC, RO) is
    # ``congestion``.
    "intercept": 0,  # a SIT said not in service: marked disconnected; the next number now
    "fax": 0,  # the number is marked fax (never dialed again for voice); the next number now
    "sit_other": 4 * 3600,  # like unreachable (a second in a row: as intercept, next number)
    "machine": 4 * 3600,
    "voicemail": 24 * 3600,  # a message was left: give them a day to call back
    "abandoned": 3600,
    "hangup": 3600,
    "lost": 3600,
    "skipped": 3600,  # preview: the agent passed on it (not dialed)
    "agent": None,  # an agent spoke to them: the agent's disposition decides what follows
}
MODES = ("preview", "progressive", "predictive", "agentless")
#: The modes whose lines the pacer opens on answer odds (with each hour's odds: the hours'
#: shape is learnt for them whatever the priority weights).
PACED_MODES = frozenset({"predictive", "agentless"})
#: The ``wrapuptime`` of the campaign queue in ``asterisk_conf/queues.conf``.
DEFAULT_QUEUE_WRAPUP_S = 5.0
PRIORITY_WEIGHTS = (
    "balance",
    "days_past_due",
    "broken_promises",
    "days_since_contact",
    "best_hour",
)
# Recompute the campaign's ready leads' priority from the weights ($2..$6) at time $7.
PRIORITY_SQL = """
UPDATE leads l SET priority = s.priority
FROM (
    SELECT l.id, round(
          $2 * ln(1 + d.balance_cents / 100.0)
        + $3 * least(d.days_past_due, 720) / 30.0
        + $4 * (SELECT count(*) FROM promises p WHERE p.debt_id = d.id AND p.status = 'broken')
        + $5 * coalesce(least(extract(epoch FROM $7 - (
                  SELECT max(o.at) FROM compliance_outcomes o
                  WHERE o.person_id = l.person_id
                    AND o.outcome IN ('conversation', 'direct_contact'))) / 86400, 60), 60)
        + CASE WHEN $6::float8 = 0 THEN 0 ELSE ($6::float8 * coalesce(
              -- the campaign's 24 lifts (read once), at the lead's local hour now
              (SELECT array_agg(h.lift ORDER BY h.hour) FROM campaign_answer_hours h
               WHERE h.campaign_id = $1)[1 + extract(hour FROM $7 AT TIME ZONE (
                  SELECT z.zone FROM person_zones z WHERE z.person_id = l.person_id))::int],
              0))::numeric END
    )::int AS priority
    FROM leads l JOIN debts d ON d.id = l.debt_id
    WHERE l.campaign_id = $1 AND l.state = 'ready'
) s
-- Only the leads whose priority changes are written: every ready lead was rewritten every
-- minute (a new row version and new entries in the two indexes priority is in), 3.5 s and
-- 11 MB of dead rows a minute at 100,000 leads.
WHERE l.id = s.id AND l.priority IS DISTINCT FROM s.priority
"""
# The learned best hour (see the module's docstring).
BEST_HOUR_DAYS = 14
BEST_HOUR_PRIOR_K = 20.0
# A person answered: an agent took the call, no agent was free in time, or they hung up
# before either (AMD did not say machine).
LIVE_DISPOSITIONS = ("agent", "abandoned", "hangup")
# Never dialed (refused by Asterisk, or by the trunk's provider) or fate unknown: not counted as
# dials.
NOT_DIALED = ("failed", "trunk_refused", "lost")
ZONES_PER_RESCORE = 5000
# Dials and live answers by the debtor's local hour: campaign $1, finalized in [$2, $3).
HOUR_COUNTS_SQL = """
SELECT extract(hour FROM coalesce(a.originated_at, a.finalized_at) AT TIME ZONE z.zone)::int
           AS hour,
       count(*)::int AS dials,
       (count(*) FILTER (WHERE a.disposition = ANY($4::text[])))::int AS answers
FROM call_attempts a
JOIN person_zones z ON z.person_id = a.person_id
WHERE a.campaign_id = $1 AND a.state = 'final' AND a.finalized_at >= $2 AND a.finalized_at < $3
  AND a.direction = 'outbound' AND a.disposition <> ALL($5::text[]) AND z.zone IS NOT NULL
GROUP BY 1
"""
# Persons of the campaign's ready leads and of its attempts since $3 without a resolved zone.
_UNRESOLVED = """
SELECT p.id, p.country, p.region, p.postal_code, p.stated_timezone, n.e164, n.kind
FROM persons p
LEFT JOIN LATERAL (
    SELECT n.e164, n.kind FROM phone_numbers n
    WHERE n.person_id = p.id AND n.status = 'active' ORDER BY n.id LIMIT 1
) n ON true
WHERE p.id IN (SELECT l.person_id FROM leads l WHERE l.campaign_id = $1 AND l.state = 'ready'
               UNION
               SELECT a.person_id FROM call_attempts a
               WHERE a.campaign_id = $1 AND a.state = 'final' AND a.finalized_at >= $3)
  AND NOT EXISTS (SELECT 1 FROM person_zones z WHERE z.person_id = p.id)
ORDER BY p.id
LIMIT $2
"""
# Only zones PostgreSQL knows are kept (AT TIME ZONE must never fail a rescore). An address
# changed while its person was being resolved may keep the old zone until its next change:
# it only ever weighs a priority.
_RESOLVED = """
INSERT INTO person_zones (person_id, zone, resolved_at)
SELECT t.p, CASE WHEN t.z IN (SELECT name FROM pg_timezone_names) THEN t.z END, $3
FROM unnest($1::bigint[], $2::text[]) AS t(p, z)
ORDER BY t.p
ON CONFLICT (person_id) DO UPDATE SET zone = EXCLUDED.zone, resolved_at = EXCLUDED.resolved_at
"""
_LEARNED = """
INSERT INTO campaign_answer_hours (campaign_id, hour, dials, answers, rate, lift, learned_at)
SELECT $1, t.h, t.d, t.a, t.r, t.l, $7
FROM unnest($2::smallint[], $3::int[], $4::int[], $5::float8[], $6::float8[]) AS t(h, d, a, r, l)
ON CONFLICT (campaign_id, hour) DO UPDATE
SET dials = EXCLUDED.dials, answers = EXCLUDED.answers, rate = EXCLUDED.rate,
    lift = EXCLUDED.lift, learned_at = EXCLUDED.learned_at
"""
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: (ASCII digits, and few: \d also takes other scripts' digits, and int() refuses past 4,300)
_DURATION = re.compile(r"^\s*([0-9]{1,12})\s*([smhd]?)\s*\Z")

#: The languages of the prompts and messages (debtor-facing: Spanish first).
LANGUAGES = ("es", "en")


#: The longest retry delay: a lead not to be called for over a year should be cancelled.
MAX_RETRY_S = 366 * 86400
#: Priority weights are relative; past this a weight is a mistake (and 10**400 overflows).
MAX_PRIORITY_WEIGHT = 1e6
#: The most lines one campaign may hold open: past it a number is a typo, and an agentless
#: campaign (no agents to pace by) would claim and dial that many leads at once.
MAX_LINES = 10_000
#: ``caller_id`` goes to the Originate's ``CallerID`` header: one line of printable text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: ``queue_name``: a queue of queues.conf, as the API takes it; never an agent's own preview
#: queue (``preview-<agent>``). It goes to the Originate's variables and to QueueAdd.
_QUEUE = re.compile(r"^(?!preview-)[A-Za-z0-9_.-]{1,64}\Z")
#: ``ring_timeout_s``: what the table allows (a dial Asterisk gives up on before 5 s is no dial).
RING_TIMEOUT_RANGE_S = (5, 120)
#: ``abandon_window_days``: at least a day, at most ten years (the table's and the API's).
MAX_ABANDON_WINDOW_DAYS = 3650
#: Campaigns under a United States pack (``us_*``) take the abandonment safe harbor of the TSR
#: and the FCC: at most 3 % of the calls answered by a person, measured over the campaign or
#: each successive 30-day period (a longer window dilutes a bad month), and an unanswered call
#: rings at least 15 seconds or four rings. 16 CFR 310.4(b)(4)(i)-(ii); 47 CFR 64.1200(a)(6)
#: and (a)(7).
US_SAFE_HARBOR_CITATION = "16 CFR 310.4(b)(4); 47 CFR 64.1200(a)(6)-(7)"
US_MAX_ABANDON_TARGET = 0.03
US_MAX_ABANDON_WINDOW_DAYS = 30
US_MIN_RING_TIMEOUT_S = 15


class CampaignError(ValueError):
    """A campaign that cannot run as written; the message names the campaign and the field."""


def check_agentless_flow(
    code: str, mode: str, flow: str | None, scripts: frozenset[str] | None
) -> None:
    """:class:`CampaignError` when an agentless campaign's flow is no script of ``scripts``
    (the IVR's; None: no IVR here, nothing to check). Its answered calls would reach FastAGI
    with no such script, and the dialplan would hang up on the person in silence."""
    if mode == "agentless" and scripts is not None and flow not in scripts:
        raise CampaignError(
            f"campaign {code!r}: agentless_flow {str(flow)[:60]!r} is no IVR script this "
            f"service answers (known: {', '.join(sorted(scripts)) or 'none'})"
        )


def _short(value: Any) -> str:
    """``repr(value)``, cut short: an error message names a bad value, it does not echo 1 MB."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _seconds(value: Any, where: str) -> int | None:
    if value is None:
        return None
    seconds = None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m[1]) * _UNITS[m[2] or "s"]
    if seconds is None:
        raise CampaignError(
            f"{where}: expected seconds or a duration like '15m', got {_short(value)}"
        )
    if seconds > MAX_RETRY_S:
        raise CampaignError(
            f"{where}: at most 366 days ({MAX_RETRY_S} s), got {_short(value)}; to stop "
            "calling after it, use null (no retry)"
        )
    return seconds


@dataclass(frozen=True)
class RetrySchedule:
    delays_s: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_RETRY_S))
    max_attempts: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str = "retry_schedule") -> RetrySchedule:
        if not isinstance(raw, Mapping):
            raise CampaignError(f"{where}: expected an object, got {type(raw).__name__}")
        delays = dict(DEFAULT_RETRY_S)
        max_attempts = None
        default = raw.get("default", ...)
        if default is not ...:
            d = _seconds(default, f"{where}.default")
            delays = {k: (d if k != "agent" else v) for k, v in delays.items()}
        for key, value in raw.items():
            if key == "default":
                continue
            if key == "max_attempts":
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                    raise CampaignError(f"{where}.max_attempts: expected an integer from 1 to "
                                        f"1000, got {_short(value)}")  # fmt: skip
                max_attempts = value
            elif key in delays:
                delays[key] = _seconds(value, f"{where}.{key}")
            else:
                raise CampaignError(
                    f"{where}: unknown key {_short(key)}; expected one of "
                    f"{', '.join((*DEFAULT_RETRY_S, 'default', 'max_attempts'))}"
                )
        return cls(delays, max_attempts)

    def retry_after_s(self, disposition: str, attempts: int) -> int | None:
        """Seconds until the lead is tried again after ``disposition``; None ends the lead."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return None
        return self.delays_s.get(disposition, self.delays_s.get("failed"))


@dataclass(frozen=True)
class Campaign:
    id: int
    code: str
    mode: str
    queue: str
    trunk: str
    caller_id: str | None
    packs: tuple[str, ...]
    ring_timeout_s: int
    abandon_target: float
    agentless_flow: str | None
    language: str = "es"
    voicemail: str = ""  # sound files for Playback() ('&'-joined); "" = no message
    max_lines: int = 200
    state: str = "running"
    abandon_window_days: int = 30
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    # Weights in PRIORITY_WEIGHTS order; None: the imported priority stands.
    priority_weights: tuple[float, ...] | None = None
    voicemail_number: str = ""  # digits said after the message (the creditor's call-back line)
    voicemail_problem: str | None = None  # why machines get no message though one was asked
    # The queue's ``wrapuptime`` in queues.conf. Asterisk does not report it: a member added
    # by QueueAdd says ``Wrapuptime: 0`` (it has none of its own) and gets the queue's. The
    # pacer needs it to know when an agent whose call ended is free again.
    queue_wrapup_s: float = DEFAULT_QUEUE_WRAPUP_S
    # The voicemail message and its call-back digits by language, for a debtor whose language
    # is not the campaign's: ((language, sound files, digits), ...).
    voicemail_by_language: tuple[tuple[str, str, str], ...] = ()
    #: Seconds the calling window must still be open after a dial (the table's
    #: ``window_margin_s``).
    window_margin_s: int = 90

    def voicemail_for(self, language: str) -> tuple[str, str]:
        """The message (sound files) and call-back digits to leave for a debtor who speaks
        ``language`` (the campaign's own when it has none in that language)."""
        for lang, files, digits in self.voicemail_by_language:
            if lang == language:
                return files, digits
        return self.voicemail, self.voicemail_number

    @property
    def best_hour_weight(self) -> float:
        """The ``best_hour`` priority weight (0: the learned best hour is not used)."""
        if self.priority_weights is None:
            return 0.0
        return self.priority_weights[PRIORITY_WEIGHTS.index("best_hour")]

    @property
    def learns_hours(self) -> bool:
        """Whether the rescore learns the answer rate's shape over the debtor's local hours:
        for the ``best_hour`` weight, and for the pacer's answer odds in a paced mode."""
        return self.best_hour_weight != 0 or self.mode in PACED_MODES

    @property
    def margin_s(self) -> int:
        """The gate's margin for this campaign's dials: its own, and never less than the time
        a dial may ring (a phone may ring until ``ring_timeout_s`` after the dial, and must
        not past the window's end)."""
        return max(self.window_margin_s, self.ring_timeout_s)

    @property
    def channel(self) -> str:
        """The compliance channel of its dials: an agentless call plays recorded prompts."""
        return "prerecorded" if self.mode == "agentless" else "autodialed_voice"

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Campaign:
        code = r["code"]
        where = f"campaign {code!r}"
        settings = _json(r["settings"], f"{where}: settings")
        trunk = r["trunk"]
        if not isinstance(trunk, str) or not TRUNK_NAME.fullmatch(trunk):
            raise CampaignError(
                f"{where}: trunk must be an Asterisk channel technology and endpoint like "
                f"'PJSIP/trunk' (letters, digits and _ . : + = ~ -), got {_short(trunk)}"
            )
        caller_id = r["caller_id"]
        if caller_id is not None and (
            not isinstance(caller_id, str) or _CONTROL.search(caller_id) or len(caller_id) > 64
        ):
            raise CampaignError(
                f"{where}: caller_id must be one line of at most 64 printable characters, "
                f"like '\"Name\" <+15550100000>', got {_short(caller_id)}"
            )
        if r["mode"] not in MODES:
            raise CampaignError(f"{where}: mode {r['mode']!r} is not one of {MODES}")
        queue = r["queue_name"]
        if not isinstance(queue, str) or not _QUEUE.match(queue):
            raise CampaignError(
                f"{where}: queue_name must be a queue of queues.conf (letters, digits and _ . -, "
                f"at most 64, not an agent's preview-* queue), got {_short(queue)}"
            )
        ring_timeout_s, abandon_target, window_days = _pacing_fields(r, where)
        if r["mode"] == "agentless" and not r["agentless_flow"]:
            raise CampaignError(f"{where}: an agentless campaign needs agentless_flow")
        known = {"language", "voicemail", "max_lines", "priority", "queue_wrapup_s"}
        if unknown := sorted(set(settings) - known):
            raise CampaignError(f"{where}: settings has unknown keys {unknown}; "
                                f"expected {sorted(known)}")  # fmt: skip
        language = settings.get("language", "es")
        if language not in LANGUAGES:
            raise CampaignError(f"{where}: settings.language must be 'es' or 'en'")
        max_lines = settings.get("max_lines", 200)
        if (
            not isinstance(max_lines, int)
            or isinstance(max_lines, bool)
            or not 0 <= max_lines <= MAX_LINES
        ):
            raise CampaignError(
                f"{where}: settings.max_lines must be an integer from 0 to {MAX_LINES}, "
                f"got {_short(max_lines)}"
            )
        wrapup = settings.get("queue_wrapup_s", DEFAULT_QUEUE_WRAPUP_S)
        if (
            not isinstance(wrapup, int | float)
            or isinstance(wrapup, bool)
            or not 0 <= wrapup <= 3600
        ):
            raise CampaignError(
                f"{where}: settings.queue_wrapup_s must be seconds from 0 to 3600 (the "
                f"queue's wrapuptime in queues.conf), got {_short(wrapup)}"
            )
        # (absent or null: no weights; false, 0 or [] are mistakes, not "none")
        weights = settings.get("priority")
        weights = {} if weights is None else weights
        if not isinstance(weights, dict) or not all(
            k in PRIORITY_WEIGHTS
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            and abs(v) <= MAX_PRIORITY_WEIGHT  # (false for NaN; exact for any int)
            for k, v in weights.items()
        ):
            raise CampaignError(
                f"{where}: settings.priority must map some of {', '.join(PRIORITY_WEIGHTS)} "
                f"to numbers from -{MAX_PRIORITY_WEIGHT:,.0f} to {MAX_PRIORITY_WEIGHT:,.0f}, "
                f"got {_short(weights)}"
            )
        retry = RetrySchedule.parse(
            _json(r["retry_schedule"], f"{where}: retry_schedule"), f"{where}: retry_schedule"
        )
        raw_voicemail = settings.get("voicemail", "limited")
        voicemail, number, no_message = _voicemail(raw_voicemail, language, r, where)
        by_language = tuple(
            (lang, files, digits)
            for lang in LANGUAGES
            if lang != language
            for files, digits, _ in (_voicemail(raw_voicemail, lang, r, where),)
            if files  # (none in that language: the campaign's own is left)
        )
        return cls(
            r["id"], code, r["mode"], r["queue_name"], r["trunk"], r["caller_id"],
            tuple(r["compliance_packs"]), ring_timeout_s, abandon_target,
            r["agentless_flow"], language, voicemail, max_lines,
            r["state"], window_days, retry,
            tuple(float(weights.get(k, 0.0)) for k in PRIORITY_WEIGHTS) if weights else None,
            number, no_message, float(wrapup), by_language,
            int(r.get("window_margin_s", 90)),
        )  # fmt: skip

    @classmethod
    async def load(cls, pool: asyncpg.Pool, code: str) -> Campaign:
        r = await pool.fetchrow(CAMPAIGN_SQL + " WHERE c.code = $1", code)
        if r is None:
            raise LookupError(f"unknown campaign {code!r}")
        return cls.from_row(r)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pacing_fields(r: Mapping[str, Any], where: str) -> tuple[int, float, int]:
    """``ring_timeout_s``, ``abandon_target`` and ``abandon_window_days``, checked: in range,
    and within the US safe harbor under a ``us_*`` pack. A target the pacer cannot use (NaN,
    negative, over 1) or a window of no days would pace on nothing or on a lie."""
    ring, target, days = r["ring_timeout_s"], r["abandon_target"], r["abandon_window_days"]
    low, high = RING_TIMEOUT_RANGE_S
    if not _integer(ring) or not low <= ring <= high:
        raise CampaignError(
            f"{where}: ring_timeout_s must be whole seconds from {low} to {high}, "
            f"got {_short(ring)}"
        )
    if isinstance(target, bool) or not isinstance(target, int | float | Decimal):
        raise CampaignError(f"{where}: abandon_target must be a number, got {_short(target)}")
    rate = float(target)
    if not 0.0 <= rate <= 1.0:  # (false for NaN)
        raise CampaignError(
            f"{where}: abandon_target must be a fraction of live answers from 0 to 1 (0.03 "
            f"for 3 %), got {_short(target)}"
        )
    if not _integer(days) or not 1 <= days <= MAX_ABANDON_WINDOW_DAYS:
        raise CampaignError(
            f"{where}: abandon_window_days must be whole days from 1 to "
            f"{MAX_ABANDON_WINDOW_DAYS}, got {_short(days)}"
        )
    us = sorted(p for p in r["compliance_packs"] if str(p).startswith("us_"))
    if us:
        under = f"under {', '.join(us)} (safe harbor, {US_SAFE_HARBOR_CITATION})"
        if rate > US_MAX_ABANDON_TARGET:
            raise CampaignError(
                f"{where}: abandon_target must be at most {US_MAX_ABANDON_TARGET} {under}, "
                f"got {_short(target)}"
            )
        if days > US_MAX_ABANDON_WINDOW_DAYS:
            raise CampaignError(
                f"{where}: abandon_window_days must be at most {US_MAX_ABANDON_WINDOW_DAYS} "
                f"{under}: the rate is measured over each 30-day period, got {days}"
            )
        if ring < US_MIN_RING_TIMEOUT_S:
            raise CampaignError(
                f"{where}: ring_timeout_s must be at least {US_MIN_RING_TIMEOUT_S} {under}: "
                f"an unanswered call rings 15 seconds or four rings, got {ring}"
            )
    return ring, rate, days


# A campaign row with what its voicemail message needs from the creditor.
CAMPAIGN_SQL = (
    "SELECT c.*, cr.code AS creditor_code, cr.callback_number AS creditor_number,"
    " cr.contact_name AS creditor_contact"
    " FROM campaigns c LEFT JOIN creditors cr ON cr.id = c.creditor_id"
)
# A sound file for Playback(): Asterisk's sound names, or a path; never a way out of a
# directory (``..``), which would play any file Asterisk can read.
_SOUND = re.compile(r"^(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9_./-]{1,200}\Z")


def company_prompt(creditor_code: str | None) -> str:
    """The prompt that says who calls: the creditor's recorded business name
    (``company_<code>``), or the generic one when the creditor is not known."""
    return f"company_{creditor_code.lower()}" if creditor_code else "company_generic"


def contact_prompt(creditor_code: str) -> str:
    """The prompt that says the creditor's contact person (``creditors.contact_name``)."""
    return f"contact_{creditor_code.lower()}"


def _voicemail(
    raw: Any, language: str, r: Mapping[str, Any], where: str
) -> tuple[str, str, str | None]:
    """``settings.voicemail``: ``"limited"`` (the default) is the Reg F limited-content message
    (12 CFR 1006.2(j)): who calls, by a business name that does not say debt collection (the
    creditor's ``company_<code>`` prompt), whom to ask for (``contact_<code>``: the creditor's
    ``contact_name``), a request to call back and the number; no debt details. ``""``: no
    message (hang up on machines). A sound file, or one per language (``{"es": ..., "en":
    ...}``): the campaign's own recording.

    Returns the sound files, the digits of the call-back number, and why the limited message
    cannot be left (then machines get no message: a message missing one of its elements is
    not a limited-content message, and may be a communication about the debt)."""
    if isinstance(raw, dict):
        for key in raw:
            if key not in LANGUAGES:
                raise CampaignError(
                    f"{where}: settings.voicemail: {_short(key)} is not a language of the"
                    f" service ({', '.join(LANGUAGES)})"
                )
        raw = raw.get(language, "")
    if not isinstance(raw, str) or (raw and raw != "limited" and not _SOUND.match(raw)):
        raise CampaignError(
            f"{where}: settings.voicemail must be 'limited', '', a sound file name or one per"
            f" language, got {_short(raw)}"
        )
    if raw != "limited":
        return raw, "", None
    code = r.get("creditor_code")
    number = "".join(ch for ch in (r.get("creditor_number") or "") if "0" <= ch <= "9")
    if not code:
        return "", "", "no voicemail message: the campaign has no creditor to name"
    if not (r.get("creditor_contact") or "").strip():
        return "", "", f"no voicemail message: creditor {code!r} has no contact_name"
    if not number:
        return "", "", f"no voicemail message: creditor {code!r} has no callback_number"
    files = (
        "voicemail_limited",
        company_prompt(code),
        "voicemail_ask_for",
        contact_prompt(code),
        "voicemail_callback",
    )
    return "&".join(f"puente/{language}/{f}" for f in files), number, None


def _json(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as e:
            raise CampaignError(f"{where}: not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise CampaignError(f"{where}: expected a JSON object")
    return raw


# -- the learned best hour (pure) ------------------------------------------------------------
def answer_rate_by_hour(
    counts: Mapping[int, tuple[int, int]], prior_k: float = BEST_HOUR_PRIOR_K
) -> dict[int, float]:
    """Each local hour's (0-23) live-answer rate from ``counts`` (hour -> (answers, dials)),
    smoothed toward the overall rate ``p``: ``(answers + k p) / (dials + k)``.

    Every hour is in the result (an hour never dialed has ``p``); empty when nothing was
    dialed (there is no rate to learn).
    """
    if not prior_k > 0:
        raise ValueError(f"prior_k must be > 0, got {prior_k!r}")
    for hour, (answers, dials) in counts.items():
        if not 0 <= hour <= 23 or not 0 <= answers <= dials:
            raise ValueError(f"bad count for hour {hour!r}: {answers!r} answers, {dials!r} dials")
    p = overall_answer_rate(counts)
    if p is None:
        return {}
    return {
        h: (counts.get(h, (0, 0))[0] + prior_k * p) / (counts.get(h, (0, 0))[1] + prior_k)
        for h in range(24)
    }


def overall_answer_rate(counts: Mapping[int, tuple[int, int]]) -> float | None:
    """All answers over all dials; None when nothing was dialed."""
    dials = sum(d for _, d in counts.values())
    return sum(a for a, _ in counts.values()) / dials if dials else None


def hour_lift(rate: float, overall: float) -> float:
    """How much better (or worse) an hour answers than the campaign: ``(rate - overall) /
    overall``, bounded to [-1, 1]; 0 when the campaign never had an answer."""
    if overall <= 0:
        return 0.0
    return max(-1.0, min(1.0, (rate - overall) / overall))


def primary_zone(contact: Contact, e164: str | None, number_kind: str = "unknown") -> str | None:
    """The zone a debtor most likely is in, from the zones compliance would consider for this
    address and number (:func:`compliance.candidate_zones`): the only one; among several, the
    address's main zone when it names its region (or its country has one zone), then the
    number's first zone, then the first; None when there is none."""
    info = number_info(e164) if e164 else NumberInfo(e164="", valid=False)
    kind = number_kind if number_kind != "unknown" else info.kind
    zones = candidate_zones(contact, info, kind)
    if len(zones) <= 1:
        return zones[0] if zones else None
    address = address_zones(contact.country, contact.region, contact.postal_code)
    named = address_region(contact.country, contact.region, contact.postal_code) is not None
    preferred = (address[:1] if named or len(address) == 1 else ()) + info.zones
    return next((z for z in preferred if z in zones), zones[0])


# -- the rescore (database) --------------------------------------------------------------------
async def rescore(pool: asyncpg.Pool, campaign: Campaign, now: datetime) -> None:
    """Learn the hours when the campaign uses them (:attr:`Campaign.learns_hours`: the
    ``best_hour`` weight, or the pacer's hour odds), then recompute the ready leads'
    priorities when the campaign has weights."""
    weights = campaign.priority_weights
    if weights is None and not campaign.learns_hours:
        return
    async with pool.acquire() as conn:  # (jit is off on Puente's connections: db/pool.py)
        if campaign.learns_hours:
            await learn_best_hours(conn, campaign.id, now)
        if weights is not None:
            await conn.execute(PRIORITY_SQL, campaign.id, *weights, now)


async def learn_best_hours(
    conn: asyncpg.Connection,
    campaign_id: int,
    now: datetime,
    *,
    days: int = BEST_HOUR_DAYS,
    prior_k: float = BEST_HOUR_PRIOR_K,
) -> dict[int, float]:
    """Resolve a batch of zones, count, learn and store the campaign's 24 hours; their lifts
    (empty when nothing was dialed: every lead then gets no adjustment)."""
    since = now - timedelta(days=days)
    await resolve_zones(conn, campaign_id, since, now)
    counts = {
        r["hour"]: (r["answers"], r["dials"])
        for r in await conn.fetch(
            HOUR_COUNTS_SQL, campaign_id, since, now, list(LIVE_DISPOSITIONS), list(NOT_DIALED)
        )
    }
    rates = answer_rate_by_hour(counts, prior_k)
    overall = overall_answer_rate(counts)
    if not rates or overall is None:
        await conn.execute("DELETE FROM campaign_answer_hours WHERE campaign_id = $1", campaign_id)
        return {}
    hours = list(range(24))
    lifts = {h: hour_lift(rates[h], overall) for h in hours}
    await conn.execute(
        _LEARNED,
        campaign_id,
        hours,
        [counts.get(h, (0, 0))[1] for h in hours],
        [counts.get(h, (0, 0))[0] for h in hours],
        [rates[h] for h in hours],
        [lifts[h] for h in hours],
        now,
    )
    return lifts


async def resolve_zones(
    conn: asyncpg.Connection,
    campaign_id: int,
    since: datetime,
    now: datetime,
    limit: int = ZONES_PER_RESCORE,
) -> int:
    """Resolve up to ``limit`` of the campaign's persons without a zone; how many."""
    rows = await conn.fetch(_UNRESOLVED, campaign_id, limit, since)
    if not rows:
        return 0
    zones = await asyncio.to_thread(_zones_of, rows)  # phone number parsing: off the loop
    await conn.execute(_RESOLVED, [r["id"] for r in rows], zones, now)
    return len(rows)


def _zones_of(rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    return [
        primary_zone(
            Contact(r["id"], r["country"], r["region"], r["postal_code"], r["stated_timezone"]),
            r["e164"],
            r["kind"] or "unknown",
        )
        for r in rows
    ]
