"""Puente's Prometheus metrics, on a registry of their own, and the ``/metrics`` handler.

Standalone: nothing here imports the dialer, the PBX code or the rest of :mod:`web`. The service
records events as they happen (``call_finished``, ``originate_latency``, ``amd_verdict``,
``ivr_outcome``, ``compliance_decision``) and fills a :class:`MetricsSnapshot` of plain numbers
now and then (agents, ratios, dial level, link and pool state) for :meth:`PuenteMetrics.refresh`.
``/metrics`` renders the registry (:meth:`PuenteMetrics.render`, :func:`metrics_handler`).

Names are ``puente_<noun>_<unit>`` (``_total`` for counters, ``_seconds`` for durations,
``_ratio`` for 0..1 shares). Labels are bounded: campaign, result, reason, state, verdict, flow,
outcome, link, window; never a phone number, an account, a person or a call id. Every label
value goes through :func:`check_label_value`, which refuses what looks like one of those; a
refused value is recorded as ``_refused`` (and counted in
``puente_metrics_label_refusals_total``) so a bad value is visible, never a crash on a call path.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

log = logging.getLogger("puente.metrics")

#: Where :func:`metrics_handler` finds the :class:`PuenteMetrics`: ``app["puente_metrics"]``
#: (a plain string key) or, without aiohttp's NotAppKeyWarning, ``app[METRICS_KEY]``.
METRICS_APP_KEY = "puente_metrics"

#: The windows the answer and abandonment ratios are computed over: the local day, and the
#: campaign's legal window (``abandon_window_days``, 30 days for the FCC's 3 % rule).
WINDOWS = ("today", "legal")

#: Links to the PBX whose state is reported.
LINKS = ("ami", "fastagi", "audiosocket")

#: Originate latency (AMI Originate sent -> its Response): 5 ms to 5 s.
ORIGINATE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: AMD decision time (first audio frame -> verdict): 0.25 s to 6 s (the cap is ~4.5 s).
AMD_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)

#: Distinct values one label may take in one metric before new ones are recorded as
#: ``_other`` (and counted as refusals): a bug feeding ids in cannot explode the series count.
MAX_VALUES_PER_LABEL = 500

REFUSED = "_refused"
OTHER = "_other"


class LabelValueError(ValueError):
    """A label value that is not a bounded, non-identifying token."""


_ALLOWED = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
_SEPARATORS = re.compile(r"[\s().\-_/]")


def check_label_value(value: str) -> str:
    """``value`` if it may be a label value; else :class:`LabelValueError` saying why.

    Allowed: 1-64 characters of ``A-Z a-z 0-9 _ . -`` (campaign codes, reason codes, flow
    names, states). Refused: anything else, and anything that looks like an identifier of a
    person or a call even within those characters: a UUID, a run of 16+ hex digits with a digit
    in it, or 7+ digits once separators are removed (phone numbers, account numbers).
    """
    if not isinstance(value, str):
        raise LabelValueError(f"label value must be a string, got {type(value).__name__}")
    if not _ALLOWED.match(value):
        raise LabelValueError(
            f"label value {_shown(value)} is not 1-64 characters of A-Z a-z 0-9 _ . -"
        )
    if _UUID.search(value):
        raise LabelValueError(f"label value {_shown(value)} looks like a UUID (a call id?)")
    if any(any(c.isdigit() for c in run) for run in _HEX_RUN.findall(value)):
        raise LabelValueError(f"label value {_shown(value)} looks like an id or a hash")
    if re.search(r"\d{7,}", _SEPARATORS.sub("", value)):
        raise LabelValueError(f"label value {_shown(value)} looks like a phone or account number")
    return value


def _shown(value: object) -> str:
    """A refused value for a message: never the value itself (it may be personal data)."""
    text = str(value)
    return f"<{len(text)} characters>"


def amd_cause_label(cause: str) -> str:
    """An AMD cause as a bounded label: app_amd's numbers dropped (``HUMAN-801-800`` ->
    ``HUMAN``, ``BEEP-1234-1000`` -> ``BEEP``; ``PUENTE-OVERLOADED`` stays)."""
    parts = [p for p in cause.split("-") if p and not p.isdigit()]
    return "-".join(parts) or "UNKNOWN"


# -- the snapshot the service fills ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CampaignSnapshot:
    """One campaign as its runner sees it now. Ratios are 0..1; ``None``: not known yet."""

    campaign: str
    #: window ("today" | "legal") -> answered / dialed
    answer_ratio: Mapping[str, float] = field(default_factory=dict)
    #: window -> abandoned / live answers
    abandonment_ratio: Mapping[str, float] = field(default_factory=dict)
    #: the campaign's ``abandon_target`` (0.03 for 3 %)
    abandonment_target_ratio: float | None = None
    #: lines dialed per available agent (the pacer's latest decision)
    dial_level: float | None = None
    #: agent state (ready, paused, ringing, talking, wrapup, ...) -> agents
    agents: Mapping[str, int] = field(default_factory=dict)
    calls_in_flight: int = 0
    #: why the runner holds its dialing back on its own ("trunk_refusing": the trunk refused
    #: call after call; "trunk_full": its shared trunk's channels are all in use;
    #: "ivr_unavailable": agentless answers found no IVR); None: it does not
    held: str | None = None


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """A link to the PBX: the AMI client, the FastAGI server or the AudioSocket server."""

    link: str  # one of LINKS
    up: bool  # AMI logged in; a server listening
    sessions: int = 0  # live FastAGI sessions / AudioSocket calls (AMI: 0 or 1)
    #: kind ("error", "timeout", "reconnect", ...) -> count since the component started
    errors_total: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """The asyncpg pool: ``get_size() - get_idle_size()``, ``get_size()``, ``get_max_size()``."""

    in_use: int
    size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Plain numbers, filled by the service (the composition root) for :meth:`refresh`."""

    campaigns: tuple[CampaignSnapshot, ...] = ()
    links: tuple[LinkSnapshot, ...] = ()
    pool: PoolSnapshot | None = None


# -- the metrics ----------------------------------------------------------------------------------
class PuenteMetrics:
    """Every Puente metric, on a dedicated :class:`CollectorRegistry`."""

    def __init__(self, version: str = "", registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.calls = Counter(
            "puente_calls_total",
            "Dial attempts that reached their final disposition, by campaign and result "
            "(busy, no_answer, agent, machine, voicemail, abandoned, ...).",
            ["campaign", "result"],
            registry=r,
        )
        self.calls_in_flight = Gauge(
            "puente_calls_in_flight",
            "Dial attempts originated and not yet final, by campaign.",
            ["campaign"],
            registry=r,
        )
        self.answer_ratio = Gauge(
            "puente_answer_ratio",
            "Answered calls / dialed calls, by campaign and window (today, legal).",
            ["campaign", "window"],
            registry=r,
        )
        self.abandonment_ratio = Gauge(
            "puente_abandonment_ratio",
            "Abandoned calls / live answers, by campaign and window (today, legal: the "
            "campaign's abandon_window_days).",
            ["campaign", "window"],
            registry=r,
        )
        self.abandonment_target_ratio = Gauge(
            "puente_abandonment_target_ratio",
            "The campaign's abandonment ceiling (abandon_target), over its legal window.",
            ["campaign"],
            registry=r,
        )
        self.agents = Gauge(
            "puente_agents",
            "Agents of each campaign's queue, by state.",
            ["campaign", "state"],
            registry=r,
        )
        self.dial_level = Gauge(
            "puente_dial_level_ratio",
            "Lines dialed per available agent (the pacer's latest step), by campaign.",
            ["campaign"],
            registry=r,
        )
        self.dialing_held = Gauge(
            "puente_dialing_held",
            "1 while a campaign holds its dialing back on its own, by reason (trunk_refusing: "
            "its trunk refused call after call; trunk_full: its shared trunk's channels are all "
            "in use; ivr_unavailable: agentless answers found no IVR); no series otherwise.",
            ["campaign", "reason"],
            registry=r,
        )
        self.originate_latency = Histogram(
            "puente_originate_latency_seconds",
            "Time from sending an AMI Originate to Asterisk's Response.",
            buckets=ORIGINATE_BUCKETS_S,
            registry=r,
        )
        self.amd_decision = Histogram(
            "puente_amd_decision_seconds",
            "Time from a call's first audio frame to the AMD verdict, by verdict.",
            ["verdict"],
            buckets=AMD_BUCKETS_S,
            registry=r,
        )
        self.amd_verdicts = Counter(
            "puente_amd_verdicts_total",
            "AMD verdicts (HUMAN, MACHINE, NOTSURE, HANGUP) by cause (app_amd vocabulary, "
            "numbers dropped).",
            ["verdict", "cause"],
            registry=r,
        )
        self.ivr_outcomes = Counter(
            "puente_ivr_outcomes_total",
            "IVR sessions that ended, by flow and outcome.",
            ["flow", "outcome"],
            registry=r,
        )
        self.compliance_decisions = Counter(
            "puente_compliance_decisions_total",
            "Compliance decisions by decision (allowed, denied) and reason; a denial with "
            "several reasons counts once under each.",
            ["decision", "reason"],
            registry=r,
        )
        self.connection_up = Gauge(
            "puente_connection_up",
            "1 when the link is up (AMI logged in, FastAGI/AudioSocket listening), else 0.",
            ["link"],
            registry=r,
        )
        self.connection_sessions = Gauge(
            "puente_connection_sessions",
            "Live sessions on the link (FastAGI sessions, AudioSocket calls; AMI 0 or 1).",
            ["link"],
            registry=r,
        )
        self.connection_errors = Counter(
            "puente_connection_errors_total",
            "Errors on the links to the PBX, by link and kind (error, timeout, reconnect, ...).",
            ["link", "kind"],
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "puente_db_pool_in_use_connections",
            "Database pool connections checked out now.",
            registry=r,
        )
        self.db_pool_size = Gauge(
            "puente_db_pool_size_connections",
            "Database pool connections open now (in use and idle).",
            registry=r,
        )
        self.db_pool_max = Gauge(
            "puente_db_pool_max_connections",
            "Database pool size limit (database.max_connections).",
            registry=r,
        )
        self.label_refusals = Counter(
            "puente_metrics_label_refusals_total",
            "Label values refused by the guard (identifiers, too many distinct values), by "
            "metric (or refresh, for a snapshot's campaign and window) and label.",
            ["metric", "label"],
            registry=r,
        )
        self.build_info = Gauge(
            "puente_build_info",
            "Always 1; the running version as a label.",
            ["version"],
            registry=r,
        )
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._series: dict[str, set[tuple[str, ...]]] = {}
        self._errors_seen: dict[tuple[str, str], int] = {}
        self.build_info.labels(self._label("puente_build_info", "version", version or "0")).set(1)

    # -- events, recorded as they happen ---------------------------------------------------------
    def call_finished(self, campaign: str, result: str) -> None:
        self.calls.labels(
            self._label("puente_calls_total", "campaign", campaign),
            self._label("puente_calls_total", "result", result),
        ).inc()

    def originate_took(self, seconds: float) -> None:
        self.originate_latency.observe(max(0.0, seconds))

    def amd_verdict(self, verdict: str, cause: str, decision_s: float) -> None:
        v = self._label("puente_amd_verdicts_total", "verdict", verdict)
        c = self._label("puente_amd_verdicts_total", "cause", amd_cause_label(cause))
        self.amd_verdicts.labels(v, c).inc()
        self.amd_decision.labels(v).observe(max(0.0, decision_s))

    def ivr_outcome(self, flow: str, outcome: str) -> None:
        self.ivr_outcomes.labels(
            self._label("puente_ivr_outcomes_total", "flow", flow),
            self._label("puente_ivr_outcomes_total", "outcome", outcome),
        ).inc()

    def compliance_decision(self, allowed: bool, reasons: Iterable[str] = ()) -> None:
        decision = "allowed" if allowed else "denied"
        for reason in list(reasons) or ["none"]:
            self.compliance_decisions.labels(
                decision, self._label("puente_compliance_decisions_total", "reason", reason)
            ).inc()

    # -- state, from a snapshot ------------------------------------------------------------------
    def refresh(self, snapshot: MetricsSnapshot) -> None:
        """Set every state metric from ``snapshot``; series of campaigns, states or links that
        are gone are removed (a stopped campaign does not linger at its last value)."""
        now: dict[str, dict[tuple[str, ...], float]] = {
            "calls_in_flight": {},
            "answer_ratio": {},
            "abandonment_ratio": {},
            "abandonment_target_ratio": {},
            "agents": {},
            "dial_level": {},
            "dialing_held": {},
            "connection_up": {},
            "connection_sessions": {},
        }
        for c in snapshot.campaigns:
            camp = self._label("refresh", "campaign", c.campaign)
            now["calls_in_flight"][(camp,)] = c.calls_in_flight
            for window, ratio in c.answer_ratio.items():
                now["answer_ratio"][(camp, self._window(window))] = ratio
            for window, ratio in c.abandonment_ratio.items():
                now["abandonment_ratio"][(camp, self._window(window))] = ratio
            if c.abandonment_target_ratio is not None:
                now["abandonment_target_ratio"][(camp,)] = c.abandonment_target_ratio
            if c.dial_level is not None:
                now["dial_level"][(camp,)] = c.dial_level
            for state, n in c.agents.items():
                now["agents"][(camp, self._label("puente_agents", "state", state))] = n
            if c.held is not None:
                reason = self._label("puente_dialing_held", "reason", c.held)
                now["dialing_held"][(camp, reason)] = 1.0
        for link in snapshot.links:
            name = self._label("puente_connection_up", "link", link.link)
            now["connection_up"][(name,)] = 1.0 if link.up else 0.0
            now["connection_sessions"][(name,)] = link.sessions
            for kind, total in link.errors_total.items():
                kind = self._label("puente_connection_errors_total", "kind", kind)
                self._count_up(self.connection_errors, (name, kind), total)
        for attr, values in now.items():
            gauge: Gauge = getattr(self, attr)
            for labels, value in values.items():
                gauge.labels(*labels).set(value)
            for gone in self._series.get(attr, set()) - set(values):
                gauge.remove(*gone)
            self._series[attr] = set(values)
        if snapshot.pool is not None:
            self.db_pool_in_use.set(snapshot.pool.in_use)
            self.db_pool_size.set(snapshot.pool.size)
            self.db_pool_max.set(snapshot.pool.max_size)

    def _count_up(self, counter: Counter, labels: tuple[str, str], total: int) -> None:
        """Advance ``counter`` to a component's running total (a smaller total: it restarted)."""
        before = self._errors_seen.get(labels, 0)
        delta = total - before if total >= before else total
        if delta > 0:
            counter.labels(*labels).inc(delta)
        else:
            counter.labels(*labels)  # the series exists (at 0) from the first snapshot
        self._errors_seen[labels] = total

    # -- rendering ---------------------------------------------------------------------------------
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for a scraper's ``Accept`` header: (body, content type)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def names(self) -> set[str]:
        """Every sample name the registry can expose (``_total``, ``_bucket``... included)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",),
            "summary": ("", "_count", "_sum", "_created"),
        }
        out: set[str] = set()
        for family in self.registry.collect():
            for suffix in suffixes.get(family.type, ("",)):
                out.add(family.name + suffix)
        return out

    # -- label guard -------------------------------------------------------------------------------
    def _window(self, window: str) -> str:
        if window not in WINDOWS:
            return self._refuse("refresh", "window", f"window must be one of {WINDOWS}")
        return window

    def _label(self, metric: str, label: str, value: str) -> str:
        """``value`` checked (:func:`check_label_value`) and counted against the label's bound."""
        try:
            check_label_value(value)
        except LabelValueError as e:
            return self._refuse(metric, label, str(e))
        seen = self._seen.setdefault((metric, label), set())
        if value not in seen:
            if len(seen) >= MAX_VALUES_PER_LABEL:
                return self._refuse(
                    metric, label, f"more than {MAX_VALUES_PER_LABEL} distinct values", OTHER
                )
            seen.add(value)
        return value

    def _refuse(self, metric: str, label: str, why: str, value: str = REFUSED) -> str:
        self.label_refusals.labels(metric, label).inc()
        if (metric, label) not in self._warned:
            self._warned.add((metric, label))
            log.warning("metrics: %s label %r: %s; recorded as %s", metric, label, why, value)
        return value


# -- aiohttp --------------------------------------------------------------------------------------
METRICS_KEY = web.AppKey(METRICS_APP_KEY, PuenteMetrics)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: the registry of ``request.app[METRICS_KEY]`` (or
    ``request.app["puente_metrics"]``); 503 when the app has none.

    Register it as a public route (Prometheus does not log in); keep the port off the
    Internet or behind the reverse proxy's own access control.
    """
    metrics = request.app.get(METRICS_KEY) or request.app.get(METRICS_APP_KEY)
    if not isinstance(metrics, PuenteMetrics):
        raise web.HTTPServiceUnavailable(text="metrics are not enabled on this node\n")
    body, content_type = metrics.render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def refresh_every(
    metrics: PuenteMetrics, snapshot: Callable[[], MetricsSnapshot], every_s: float = 5.0
) -> None:
    """Refresh ``metrics`` from ``snapshot()`` every ``every_s`` until cancelled (a task in the
    service's TaskGroup). A failing snapshot is logged and retried at the next tick."""
    while True:
        try:
            metrics.refresh(snapshot())
        except Exception:
            log.exception("metrics: snapshot failed")
        await asyncio.sleep(every_s)
