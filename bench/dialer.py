"""``puente bench dialer``: the dialing service under 500 concurrent calls.

The simulated Asterisk runs in a separate process (``puente sim``: ``--agents`` agents, a
model where people answer after ringing and talk for a minute). This process runs what the
service runs for a campaign: the campaign runner (pacing, selection, compliance gate and
ledger on the real database, AMI Originates, event tracking, result writing) with the
AudioSocket and FastAGI servers. Once the calls in flight reach ``--calls``, it measures over
``--seconds`` (if the ramp does not reach ``--calls`` within ``--ramp-s``, it measures what
it reached and says so), with the calls in flight sampled every 0.5 s (their mean is the
load: at least 98 % of ``--calls`` for the goal to count as met):

- ``cpu_share``: this process's CPU seconds per wall second (goal < 0.50);
- ``free_to_originate_p99_ms``: from an agent becoming free (the first such queue event not
  yet answered) to the Originate written for it, the first of the pacing step that event woke
  (goal < 50 ms); a step that decides to open no line answers the event too;
- ``free_to_step_originate_p99_ms``: the same to the step's other Originates, the pacer's
  extra lines, sent one after another (no goal; shown so the first figure hides nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench._common import CpuTimer, emit, percentile
from bench._db import fresh_database, server_url
from compliance import ComplianceGate
from db import DatabaseSettings, create_pool
from dialer.campaigns import Campaign
from dialer.importer import import_leads
from dialer.runner import CampaignRunner
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from puente.heap import settle_heap

NOON = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Mexico City
GOAL_CPU = 0.50
GOAL_P99_MS = 50.0
MODEL = {
    "seed": 3,
    "outcomes": {"human": 0.35, "machine": 0.15, "busy": 0.1, "no_answer": 0.4},
    "ring_s": {"dist": "uniform", "low": 3.0, "high": 12.0},
    "fail_after_s": {"dist": "fixed", "value": 1.0},
    "talk_s": {"dist": "uniform", "low": 20.0, "high": 40.0},
    "patience_s": {"dist": "fixed", "value": 600.0},
}


async def hand_back(call: AudioSocketCall) -> None:
    await call.hangup()


async def run(
    url: str, calls: int, agents: int, seconds: float, leads: int, ramp_s: float
) -> dict[str, object]:
    async with fresh_database(url, "dialer") as db_url:
        pool = await create_pool(
            db_url, DatabaseSettings(url=db_url, min_connections=4, max_connections=12)
        )
        tmp = Path(tempfile.mkdtemp(prefix="puente-bench-dialer-"))
        cred = await pool.fetchval(
            """INSERT INTO creditors (code, name, public_name, callback_number, contact_name)
               VALUES ('b', 'B', 'B', '+525500000000', 'Ana Ruiz') RETURNING id"""
        )
        await pool.execute(
            """INSERT INTO campaigns (code, name, creditor_id, mode, compliance_packs,
                                      queue_name, ring_timeout_s, settings, state)
               VALUES ('bench', 'Bench', $1, 'predictive', '{mx}', 'collections', 25,
                       $2::jsonb, 'running')""",
            cred,
            json.dumps({"max_lines": calls, "queue_wrapup_s": 0}),  # --calls; the sim: no wrap-up
        )
        f = tmp / "leads.csv"
        f.write_text(
            "external_ref,full_name,account_ref,balance,phone,country\n"
            + "".join(f"p{i},P,a{i},10,+5255{10_000_000 + i},MX\n" for i in range(leads)),
            encoding="utf-8",
        )
        await import_leads(pool, f, "bench")
        audio = AudioSocketServer(hand_back, AudioSocketSettings(port=0, max_sessions=5000))
        agi = AgiServer({}, AgiSettings(port=0, max_sessions=5000))
        await audio.start()
        await agi.start()
        model = tmp / "model.yaml"
        model.write_text(yaml.safe_dump(MODEL), encoding="utf-8")
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "puente", "--log-level", "ERROR", "sim", "--ami-port", "0",
            "--secret", "bench", "--agents", str(agents), "--queue", "collections",
            "--model", str(model), "--trunk-capacity", str(calls * 4),
            "--audiosocket", f"127.0.0.1:{audio.port}", "--agi", f"127.0.0.1:{agi.port}",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert sim.stdout is not None
        line = (await sim.stdout.readline()).decode()
        ami_port = int(line.rsplit(":", 1)[1])
        client = AmiClient(  # as the service makes it (puente/wiring.py): subscribers only
            AmiSettings(port=ami_port, username="puente", secret="bench", ping_interval_s=60),
            queue_events=False,
        )
        t0 = time.monotonic()
        runner = CampaignRunner(
            pool, ComplianceGate(pool), client, await Campaign.load(pool, "bench"), node="b",
            pbx="sim", clock=lambda: NOON + timedelta(seconds=time.monotonic() - t0),
        )  # fmt: skip
        peak = 0
        try:
            async with asyncio.TaskGroup() as tg:
                await runner.start(tg)
                client.start()
                settle_heap()  # as the service does once started (puente.heap)
                ramp_end = time.monotonic() + ramp_s
                while len(runner.calls) < calls and time.monotonic() < ramp_end:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                runner.free_to_originate_s.clear()
                runner.free_to_step_originate_s.clear()
                with CpuTimer() as cpu:
                    end = time.monotonic() + seconds
                    samples = []
                    while time.monotonic() < end:
                        samples.append(len(runner.calls))
                        await asyncio.sleep(0.5)
                peak = max(samples)
                latencies = [x * 1000 for x in runner.free_to_originate_s]
                step = [x * 1000 for x in runner.free_to_step_originate_s]
                await runner.abort()
        finally:
            await client.close()
            sim.terminate()
            await sim.wait()
            await audio.stop(grace_s=0.5)
            await agi.stop(grace_s=0.5)
            pool.terminate()
    return {
        "concurrent_calls_min": min(samples),
        "concurrent_calls_p5": percentile(samples, 5),
        "concurrent_calls_mean": round(sum(samples) / len(samples), 1),
        "concurrent_calls_peak": peak,
        "agents": agents,
        "cpu_share": round(cpu.cpu_share, 3),
        "free_to_originate_p50_ms": round(percentile(latencies, 50), 2),
        "free_to_originate_p99_ms": round(percentile(latencies, 99), 2),
        "free_events_measured": len(latencies),
        # The same step's other Originates (the pacer's extra lines, sent one after another).
        "free_to_step_originate_p99_ms": round(percentile(step, 99), 2) if step else None,
        "step_originates_measured": len(step),
        "dials": runner.stats.dials,
        "finals": runner.stats.finals,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench dialer", description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--agents", type=int, default=450)
    parser.add_argument("--ramp-s", type=float, default=90.0, help="at most, to reach --calls")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--leads", type=int, default=30000)
    args = parser.parse_args(argv)
    with server_url() as url:
        stats = asyncio.run(
            run(url, args.calls, args.agents, args.seconds, args.leads, args.ramp_s)
        )
    emit(
        "dialer",
        calls=args.calls,
        **stats,
        goal_cpu_share=GOAL_CPU,
        goal_free_to_originate_p99_ms=GOAL_P99_MS,
        # The load is the time-average of the calls in flight (sampled every 0.5 s): a call
        # that ends is replaced only when the pacer next opens lines, so single samples dip.
        goal_met=stats["concurrent_calls_mean"] >= 0.98 * args.calls  # type: ignore[operator]
        and stats["cpu_share"] < GOAL_CPU  # type: ignore[operator]
        and stats["free_to_originate_p99_ms"] < GOAL_P99_MS,  # type: ignore[operator]
    )
    return 0
