"""A campaign as the dialer runs it: its row, validated, and its retry schedule (pure parsing).

The row's JSON columns are checked when loaded, and a bad value is named: a campaign whose
retry schedule says ``{"busy": "soon"}`` does not start, and its runner keeps the last good
settings and says why on its status.

``retry_schedule`` maps a final disposition to the delay before its lead is tried again, in
seconds or as ``"15m"``, ``"2h"``, ``"1d"``; ``null`` ends the lead (no retry). Two more keys:
``max_attempts`` (dials per lead, then the lead ends) and ``default`` (any disposition not
listed). Whatever the schedule says, compliance still decides each dial.

``settings.priority`` weighs what makes a lead worth calling first; given, the pacer
recomputes each ready lead's ``priority`` from its debt and history (:data:`PRIORITY_SQL`):
``balance`` per unit of log(1 + balance), ``days_past_due`` per 30 days (at most 24),
``broken_promises`` per broken promise on the debt, ``days_since_contact`` per day since the
last live contact (at most 60; never contacted counts 60). Without it the imported priority
stands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Every final disposition an attempt can end with (the unanswered ones, then the answered
# ones) and the delay before its lead is tried again by default.
DEFAULT_RETRY_S: Mapping[str, int | None] = {
    "busy": 15 * 60,
    "no_answer": 2 * 3600,
    "rejected": 4 * 3600,
    "unreachable": 4 * 3600,
    "congestion": 10 * 60,
    "failed": 10 * 60,
    "unallocated": 0,  # the number is marked disconnected; the person's next number now
    "machine": 4 * 3600,
    "voicemail": 24 * 3600,  # a message was left: give them a day to call back
    "abandoned": 3600,
    "hangup": 3600,
    "lost": 3600,
    "agent": None,  # an agent spoke to them: the agent's disposition decides what follows
}
MODES = ("preview", "progressive", "predictive", "agentless")
PRIORITY_WEIGHTS = ("balance", "days_past_due", "broken_promises", "days_since_contact")
# Recompute the campaign's ready leads' priority from the weights ($2..$5) at time $6.
PRIORITY_SQL = """
UPDATE leads l SET priority = round(
      $2 * ln(1 + d.balance_cents / 100.0)
    + $3 * least(d.days_past_due, 720) / 30.0
    + $4 * (SELECT count(*) FROM promises p WHERE p.debt_id = d.id AND p.status = 'broken')
    + $5 * coalesce(least(extract(epoch FROM $6 - (
              SELECT max(o.at) FROM compliance_outcomes o
              WHERE o.person_id = l.person_id
                AND o.outcome IN ('conversation', 'direct_contact'))) / 86400, 60), 60)
)::int
FROM debts d
WHERE l.campaign_id = $1 AND l.state = 'ready' AND d.id = l.debt_id
"""
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


class CampaignError(ValueError):
    """A campaign that cannot run as written; the message names the campaign and the field."""


def _seconds(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CampaignError(f"{where}: expected seconds or a duration like '15m', got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return int(m[1]) * _UNITS[m[2] or "s"]
    raise CampaignError(f"{where}: expected seconds or a duration like '15m', got {value!r}")


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
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise CampaignError(f"{where}.max_attempts: expected an integer >= 1, "
                                        f"got {value!r}")  # fmt: skip
                max_attempts = value
            elif key in delays:
                delays[key] = _seconds(value, f"{where}.{key}")
            else:
                raise CampaignError(
                    f"{where}: unknown key {key!r}; expected one of "
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
    voicemail: str = ""
    max_lines: int = 200
    state: str = "running"
    abandon_window_days: int = 30
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    # Weights in PRIORITY_WEIGHTS order; None: the imported priority stands.
    priority_weights: tuple[float, ...] | None = None

    @property
    def channel(self) -> str:
        """The compliance channel of its dials: an agentless call plays recorded prompts."""
        return "prerecorded" if self.mode == "agentless" else "autodialed_voice"

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Campaign:
        code = r["code"]
        where = f"campaign {code!r}"
        settings = _json(r["settings"], f"{where}: settings")
        if r["mode"] not in MODES:
            raise CampaignError(f"{where}: mode {r['mode']!r} is not one of {MODES}")
        if r["mode"] == "agentless" and not r["agentless_flow"]:
            raise CampaignError(f"{where}: an agentless campaign needs agentless_flow")
        known = {"language", "voicemail", "max_lines", "priority"}
        if unknown := sorted(set(settings) - known):
            raise CampaignError(f"{where}: settings has unknown keys {unknown}; "
                                f"expected {sorted(known)}")  # fmt: skip
        language = settings.get("language", "es")
        if language not in ("es", "en"):
            raise CampaignError(f"{where}: settings.language must be 'es' or 'en'")
        max_lines = settings.get("max_lines", 200)
        if not isinstance(max_lines, int) or isinstance(max_lines, bool) or max_lines < 0:
            raise CampaignError(f"{where}: settings.max_lines must be an integer >= 0")
        weights = settings.get("priority") or {}
        if not isinstance(weights, dict) or not all(
            k in PRIORITY_WEIGHTS and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in weights.items()
        ):
            raise CampaignError(
                f"{where}: settings.priority must map some of {', '.join(PRIORITY_WEIGHTS)} "
                f"to numbers, got {weights!r}"
            )
        retry = RetrySchedule.parse(
            _json(r["retry_schedule"], f"{where}: retry_schedule"), f"{where}: retry_schedule"
        )
        return cls(
            r["id"], code, r["mode"], r["queue_name"], r["trunk"], r["caller_id"],
            tuple(r["compliance_packs"]), r["ring_timeout_s"], float(r["abandon_target"]),
            r["agentless_flow"], language, str(settings.get("voicemail", "")), max_lines,
            r["state"], r["abandon_window_days"], retry,
            tuple(float(weights.get(k, 0.0)) for k in PRIORITY_WEIGHTS) if weights else None,
        )  # fmt: skip

    @classmethod
    async def load(cls, pool: asyncpg.Pool, code: str) -> Campaign:
        r = await pool.fetchrow("SELECT * FROM campaigns WHERE code = $1", code)
        if r is None:
            raise LookupError(f"unknown campaign {code!r}")
        return cls.from_row(r)


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
