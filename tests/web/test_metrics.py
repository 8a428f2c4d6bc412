"""web/_metrics.py: names, buckets, the label guard, snapshots and the /metrics handler."""

from __future__ import annotations

import asyncio
import re
import uuid

import prometheus_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from web._metrics import (
    AMD_BUCKETS_S,
    MAX_VALUES_PER_LABEL,
    METRICS_APP_KEY,
    METRICS_KEY,
    ORIGINATE_BUCKETS_S,
    OTHER,
    REFUSED,
    CampaignSnapshot,
    LabelValueError,
    LinkSnapshot,
    MetricsSnapshot,
    PoolSnapshot,
    PuenteMetrics,
    amd_cause_label,
    check_label_value,
    metrics_handler,
    refresh_every,
)

EXPECTED = {
    "puente_calls_total": "counter",
    "puente_calls_in_flight": "gauge",
    "puente_answer_ratio": "gauge",
    "puente_abandonment_ratio": "gauge",
    "puente_abandonment_target_ratio": "gauge",
    "puente_agents": "gauge",
    "puente_dial_level_ratio": "gauge",
    "puente_dialing_held": "gauge",
    "puente_originate_latency_seconds": "histogram",
    "puente_amd_decision_seconds": "histogram",
    "puente_amd_verdicts_total": "counter",
    "puente_ivr_outcomes_total": "counter",
    "puente_compliance_decisions_total": "counter",
    "puente_connection_up": "gauge",
    "puente_connection_sessions": "gauge",
    "puente_connection_errors_total": "counter",
    "puente_db_pool_in_use_connections": "gauge",
    "puente_db_pool_size_connections": "gauge",
    "puente_db_pool_max_connections": "gauge",
    "puente_metrics_label_refusals_total": "counter",
    "puente_build_info": "gauge",
}


def text(m: PuenteMetrics) -> str:
    return m.render()[0].decode()


def sample(m: PuenteMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_render_has_help_and_type_for_every_metric() -> None:
    m = PuenteMetrics("0.1.0")
    body, content_type = m.render()
    out = body.decode()
    assert content_type.startswith("text/plain")
    for name, kind in EXPECTED.items():
        assert re.search(rf"^# HELP {name} \S", out, re.M), name
        assert re.search(rf"^# TYPE {name} {kind}$", out, re.M), name
    # Nothing else, and every name follows puente_<noun>_<unit>.
    declared = set(re.findall(r"^# TYPE (\S+) (\w+)$", out, re.M))
    own = {(n, k) for n, k in declared if not n.endswith("_created")}
    assert own == set(EXPECTED.items())
    for name, kind in EXPECTED.items():
        assert name.startswith("puente_")
        assert (kind == "counter") == name.endswith("_total")
        if kind == "histogram":
            assert name.endswith("_seconds")


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    m = PuenteMetrics()
    body, content_type = m.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_a_dedicated_registry() -> None:
    a, b = PuenteMetrics(), PuenteMetrics()  # no "Duplicated timeseries" between instances
    assert a.registry is not prometheus_client.REGISTRY
    assert "puente_calls_total" not in prometheus_client.generate_latest().decode()
    a.call_finished("demo-mx", "busy")
    assert sample(a, "puente_calls_total", campaign="demo-mx", result="busy") == 1
    assert sample(b, "puente_calls_total", campaign="demo-mx", result="busy") is None


@pytest.mark.parametrize(
    "value",
    [
        "+5215512345678",
        "5215512345678",
        "55 1234 5678",
        "55-1234-5678",
        "account-00012345678",
        str(uuid.uuid4()),
        uuid.uuid4().hex,
        "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61",
        "deadbeef00112233",
        "",
        "x" * 65,
        "person@example.net",
        "dos palabras",
        "ñandú",
        "demo-mx\n",  # ($ in a pattern also matches before a final newline: a broken line)
    ],
)
def test_label_guard_refuses_identifiers_and_junk(value: str) -> None:
    with pytest.raises(LabelValueError) as e:
        check_label_value(value)
    if value:
        assert value not in str(e.value)  # the message never repeats personal data


@pytest.mark.parametrize(
    "value",
    ["demo-mx", "OUTSIDE_WINDOW", "abandon-save", "HUMAN", "no_answer", "es", "agent",
     "camp.2026-q1", "PUENTE-OVERLOADED", "fastagi", "1d"],
)  # fmt: skip
def test_label_guard_accepts_bounded_tokens(value: str) -> None:
    assert check_label_value(value) == value


def test_refused_values_are_recorded_as_refused_and_counted_never_exported() -> None:
    m = PuenteMetrics()
    m.call_finished("+5215512345678", "busy")
    m.ivr_outcome("collections", str(uuid.uuid4()))
    assert sample(m, "puente_calls_total", campaign=REFUSED, result="busy") == 1
    assert (
        sample(m, "puente_metrics_label_refusals_total", metric="puente_calls_total",
               label="campaign") == 1
    )  # fmt: skip
    assert (
        sample(m, "puente_metrics_label_refusals_total", metric="puente_ivr_outcomes_total",
               label="outcome") == 1
    )  # fmt: skip
    out = text(m)
    assert "5215512345678" not in out
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", out)


def test_label_values_are_bounded_in_number() -> None:
    m = PuenteMetrics()
    for i in range(MAX_VALUES_PER_LABEL):
        m.ivr_outcome(f"flow{i}", "paid")
    m.ivr_outcome("one-too-many", "paid")
    m.ivr_outcome("flow7", "paid")  # already known: still counted under its name
    assert sample(m, "puente_ivr_outcomes_total", flow=OTHER, outcome="paid") == 1
    assert sample(m, "puente_ivr_outcomes_total", flow="flow7", outcome="paid") == 2


def test_histogram_buckets_fit_seconds() -> None:
    assert list(ORIGINATE_BUCKETS_S) == sorted(ORIGINATE_BUCKETS_S)
    assert (ORIGINATE_BUCKETS_S[0], ORIGINATE_BUCKETS_S[-1]) == (0.005, 5.0)
    assert list(AMD_BUCKETS_S) == sorted(AMD_BUCKETS_S)
    assert (AMD_BUCKETS_S[0], AMD_BUCKETS_S[-1]) == (0.25, 6.0)
    m = PuenteMetrics()
    m.originate_took(0.012)
    m.originate_took(-1)  # a clock step never makes a negative observation
    m.amd_verdict("HUMAN", "HUMAN-801-800", 1.9)
    out = text(m)
    les = re.findall(r'^puente_originate_latency_seconds_bucket\{le="([^"]+)"\}', out, re.M)
    assert les == [*(str(float(b)) for b in ORIGINATE_BUCKETS_S), "+Inf"]
    assert sample(m, "puente_originate_latency_seconds_bucket", le="0.005") == 1
    assert sample(m, "puente_originate_latency_seconds_bucket", le="0.025") == 2
    assert sample(m, "puente_amd_decision_seconds_bucket", verdict="HUMAN", le="1.5") == 0
    assert sample(m, "puente_amd_decision_seconds_bucket", verdict="HUMAN", le="2.0") == 1


def test_amd_causes_lose_their_numbers() -> None:
    assert amd_cause_label("HUMAN-801-800") == "HUMAN"
    assert amd_cause_label("BEEP-1234-1000") == "BEEP"
    assert amd_cause_label("TOOLONG-4000") == "TOOLONG"
    assert amd_cause_label("PUENTE-OVERLOADED") == "PUENTE-OVERLOADED"
    m = PuenteMetrics()
    m.amd_verdict("MACHINE", "LONGGREETING-2800-2800", 2.8)
    assert sample(m, "puente_amd_verdicts_total", verdict="MACHINE", cause="LONGGREETING") == 1


def test_compliance_decisions_by_reason() -> None:
    m = PuenteMetrics()
    m.compliance_decision(True)
    m.compliance_decision(False, ["OUTSIDE_WINDOW", "HOLIDAY"])
    assert sample(m, "puente_compliance_decisions_total", decision="allowed", reason="none") == 1
    for reason in ("OUTSIDE_WINDOW", "HOLIDAY"):
        assert sample(m, "puente_compliance_decisions_total", decision="denied", reason=reason) == 1


def _snapshot(*campaigns: CampaignSnapshot, ami_errors: int = 0) -> MetricsSnapshot:
    return MetricsSnapshot(
        campaigns=campaigns,
        links=(
            LinkSnapshot("ami", up=True, sessions=1, errors_total={"reconnect": ami_errors}),
            LinkSnapshot("fastagi", up=True, sessions=3, errors_total={"timeout": 0}),
            LinkSnapshot("audiosocket", up=False),
        ),
        pool=PoolSnapshot(in_use=3, size=5, max_size=20),
    )


def test_refresh_sets_state_and_forgets_what_is_gone() -> None:
    m = PuenteMetrics()
    mx = CampaignSnapshot(
        "demo-mx",
        answer_ratio={"today": 0.4, "legal": 0.35},
        abandonment_ratio={"today": 0.01, "legal": 0.02},
        abandonment_target_ratio=0.03,
        dial_level=2.5,
        agents={"ready": 3, "talking": 10},
        calls_in_flight=12,
        held="trunk_refusing",
    )
    co = CampaignSnapshot("demo-co", agents={"ready": 1})
    m.refresh(_snapshot(mx, co, ami_errors=2))
    assert sample(m, "puente_abandonment_ratio", campaign="demo-mx", window="legal") == 0.02
    assert sample(m, "puente_abandonment_target_ratio", campaign="demo-mx") == 0.03
    assert sample(m, "puente_answer_ratio", campaign="demo-mx", window="today") == 0.4
    assert sample(m, "puente_dial_level_ratio", campaign="demo-mx") == 2.5
    assert sample(m, "puente_agents", campaign="demo-mx", state="talking") == 10
    assert sample(m, "puente_calls_in_flight", campaign="demo-mx") == 12
    assert sample(m, "puente_dialing_held", campaign="demo-mx", reason="trunk_refusing") == 1
    assert sample(m, "puente_dialing_held", campaign="demo-co", reason="trunk_refusing") is None
    assert sample(m, "puente_connection_up", link="audiosocket") == 0
    assert sample(m, "puente_connection_sessions", link="fastagi") == 3
    assert sample(m, "puente_connection_errors_total", link="ami", kind="reconnect") == 2
    assert sample(m, "puente_connection_errors_total", link="fastagi", kind="timeout") == 0
    assert sample(m, "puente_db_pool_in_use_connections") == 3
    assert sample(m, "puente_db_pool_max_connections") == 20
    # demo-co stops, demo-mx's talking agents go to wrap-up; totals only ever go up.
    mx2 = CampaignSnapshot("demo-mx", agents={"ready": 5, "wrapup": 8})
    m.refresh(_snapshot(mx2, ami_errors=5))
    assert sample(m, "puente_agents", campaign="demo-co", state="ready") is None
    assert sample(m, "puente_agents", campaign="demo-mx", state="talking") is None
    assert sample(m, "puente_agents", campaign="demo-mx", state="wrapup") == 8
    assert sample(m, "puente_dial_level_ratio", campaign="demo-mx") is None
    # The trunk carries calls again: the held series goes.
    assert sample(m, "puente_dialing_held", campaign="demo-mx", reason="trunk_refusing") is None
    assert sample(m, "puente_connection_errors_total", link="ami", kind="reconnect") == 5
    # The AMI component restarted (its total began again): the counter still only goes up.
    m.refresh(_snapshot(mx2, ami_errors=1))
    assert sample(m, "puente_connection_errors_total", link="ami", kind="reconnect") == 6


def test_refresh_refuses_unknown_windows_and_identifying_states() -> None:
    m = PuenteMetrics()
    bad = CampaignSnapshot("demo-mx", answer_ratio={"forever": 1.0}, agents={"+5215512345678": 1})
    m.refresh(MetricsSnapshot(campaigns=(bad,)))
    assert sample(m, "puente_answer_ratio", campaign="demo-mx", window=REFUSED) == 1.0
    assert sample(m, "puente_agents", campaign="demo-mx", state=REFUSED) == 1
    assert "5215512345678" not in text(m)


async def _client(app: web.Application) -> TestClient:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_metrics_handler_serves_the_apps_registry() -> None:
    m = PuenteMetrics("0.1.0")
    m.call_finished("demo-mx", "agent")
    for key in (METRICS_KEY, METRICS_APP_KEY):
        app = web.Application()
        if key is METRICS_KEY:
            app[METRICS_KEY] = m
        else:
            with pytest.warns(UserWarning, match="AppKey"):  # the string key works too
                app[key] = m
        app.router.add_get("/metrics", metrics_handler)
        client = await _client(app)
        try:
            resp = await client.get("/metrics")
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            body = await resp.text()
            assert 'puente_calls_total{campaign="demo-mx",result="agent"} 1.0' in body
            resp = await client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        finally:
            await client.close()


async def test_metrics_handler_without_metrics_is_503() -> None:
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    client = await _client(app)
    try:
        resp = await client.get("/metrics")
        assert resp.status == 503
    finally:
        await client.close()


async def test_refresh_every_survives_a_bad_snapshot_and_stops_when_cancelled() -> None:
    m = PuenteMetrics()
    calls = 0

    def snapshot() -> MetricsSnapshot:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("pool closed")
        return MetricsSnapshot(pool=PoolSnapshot(in_use=1, size=2, max_size=4))

    task = asyncio.create_task(refresh_every(m, snapshot, every_s=0.01))
    for _ in range(200):
        if calls >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sample(m, "puente_db_pool_size_connections") == 2
