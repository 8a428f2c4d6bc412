"""``puente bench sim``: how many concurrent calls the simulated Asterisk carries on one core.

The simulator runs here; a separate process plays Puente (``bench._peers sim``): it originates
``--calls`` calls over AMI, every one answered by a simulated person, and holds each on its own
AudioSocket server, so every call carries real-time audio both ways (the worst case: in a real
campaign most calls ring, fail or wait in a queue without audio). Once every call is up, the
simulator's CPU is measured over ``--seconds``.

Fields: ``concurrent_calls`` (live channels), ``audio_streams`` (AudioSocket legs sending 20 ms
frames in real time), ``cpu_share`` of one core, and the peer's received frame rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import msgspec

from bench._common import CpuTimer, emit
from pbx.sim import CalleeModel, ModelFile, SimServerSettings, SimSettings
from pbx.sim import build as build_sim

GOAL_CALLS = 1000
GOAL_CPU_SHARE = 1.0


async def run(calls: int, seconds: float) -> dict[str, object]:
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._peers",
        "sim",
        str(calls),
        str(seconds + 5),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert peer.stdout is not None
    assert peer.stdin is not None
    audiosocket_port = int(await peer.stdout.readline())
    spec = msgspec.convert(
        {
            "outcomes": {"human": 1.0},
            "ring_s": {"dist": "uniform", "low": 0.5, "high": 2.0},
            "patience_s": {"dist": "fixed", "value": 3600.0},
        },
        ModelFile,
    )
    sim = build_sim(
        SimServerSettings(
            ami_port=0,
            username="bench",
            secret="bench",
            audiosocket=f"127.0.0.1:{audiosocket_port}",
        ),
        model=CalleeModel(spec),
        settings=SimSettings(trunk_capacity=calls + 10),
    )
    await sim.start()
    try:
        peer.stdin.write(f"{sim.ami_port}\n".encode())
        await peer.stdin.drain()
        async with asyncio.timeout(120):
            while sim.audio_streams < calls:  # noqa: ASYNC110 - waiting for the ramp
                await asyncio.sleep(0.1)
        with CpuTimer() as cpu:
            await asyncio.sleep(seconds)
        concurrent, streams = sim.core.live_channels, sim.audio_streams
        out, _ = await peer.communicate()
        stats = json.loads(out.decode().splitlines()[-1])
    finally:
        await sim.stop()
    return {
        "concurrent_calls": concurrent,
        "audio_streams": streams,
        "cpu_share": round(cpu.cpu_share, 3),
        "user_share": round(cpu.user_share, 3),
        "sys_share": round(cpu.sys_share, 3),
        "peer": stats,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench sim", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    stats = asyncio.run(run(args.calls, args.seconds))
    emit(
        "sim",
        calls=args.calls,
        **stats,
        goal_calls=GOAL_CALLS,
        goal_met=stats["concurrent_calls"] >= GOAL_CALLS  # type: ignore[operator]
        and stats["cpu_share"] < GOAL_CPU_SHARE,  # type: ignore[operator]
    )
    return 0
