"""``puente bench agi``: 1,000 concurrent FastAGI sessions against Puente's server on loopback.

The server runs here with a flow of 20 commands per session (GET VARIABLE, STREAM FILE, SET
VARIABLE, GET DATA); a separate process plays Asterisk for every session (``bench._peers``),
answers each command and times the server's turnaround, from writing an answer to reading the
next command (what Asterisk waits for).

Runs, one JSON line each, by the callers' think time (how long Asterisk takes to answer each
command; in a real IVR a prompt or a wait for keys takes seconds):

- ``think_ms=0`` (``saturated``): answers at once, the server is busy all the time:
  ``commands_per_s`` is the ceiling and the turnaround is mostly queueing behind the other
  999 sessions.
- ``think_ms=100`` and ``400``: far busier than any IVR (10k and 2.5k commands/s).
- ``think_ms=1000`` (``realistic``): one command per caller per second, still busier than
  prompts that last seconds. The goal (p99 < 5 ms) is judged here; the other lines show where
  the server stops meeting it and why (collector pauses once tens of thousands of objects are
  live: see ``gc_pause_max_ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench._common import CpuTimer, GcPauses, emit
from pbx.agi import AgiServer, AgiSession, AgiSettings
from puente.heap import settle_heap

GOAL_P99_MS = 5.0


async def flow(session: AgiSession) -> None:
    for _ in range(5):
        await session.get_variable("PUENTE_ATTEMPT")
        await session.stream_file("puente/es/saludo", "0123456789*#")
        await session.set_variable("PUENTE_STEP", "auth")
        await session.get_data("puente/es/ingrese-documento", 5000, 10)


async def run(sessions: int, seconds: float, think_ms: float) -> dict[str, object]:
    server = AgiServer({"bench": flow}, AgiSettings(port=0, max_sessions=sessions + 100))
    await server.start()
    settle_heap()  # as the service does once started (puente.heap)
    try:
        with CpuTimer() as cpu, GcPauses() as pauses:
            peer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench._peers",
                "agi",
                str(server.port),
                str(sessions),
                str(seconds),
                str(think_ms),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await peer.communicate()
        if peer.returncode != 0:
            raise SystemExit(f"bench agi: the load generator failed ({peer.returncode})")
        stats = json.loads(out)
    finally:
        await server.stop(grace_s=1)
    return {
        **stats,
        "server_cpu_share": round(cpu.cpu_share, 3),
        "server_errors": server.errors_total + server.timeouts_total,
        **pauses.figures(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench agi", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0, help="per run")
    parser.add_argument(
        "--think-ms",
        type=float,
        nargs="+",
        default=[0.0, 100.0, 400.0, 1000.0],
        help="think times to run (the last is the realistic one the goal is judged on)",
    )
    args = parser.parse_args(argv)
    for i, think in enumerate(args.think_ms):
        realistic = i == len(args.think_ms) - 1
        mode = "saturated" if think == 0 else "realistic" if realistic else "busy"
        stats = asyncio.run(run(args.sessions, args.seconds, think))
        emit(
            "agi",
            mode=mode,
            sessions=args.sessions,
            think_ms=think,
            **stats,
            goal_p99_ms=GOAL_P99_MS,
            goal_met=(stats["p99_ms"] or 1e9) < GOAL_P99_MS if realistic else None,
        )
    return 0
