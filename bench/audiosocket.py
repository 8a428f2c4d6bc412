"""``puente bench audiosocket``: 1,000 concurrent real-time AudioSocket streams in, silence out.

The server runs here with a handler that takes every frame on the fast path (``on_audio``,
as the AMD detector does) and sends nothing of its own, so the shared ticker sends each call
only its keep-alive (a frame of silence every ``keepalive_interval_ms``, 500 ms by default).
A separate process plays Asterisk for every call: the UUID frame, then a 320-byte audio frame
every 20 ms in real time.

``server_cpu_share`` is this process's CPU seconds per wall second over the streaming part
(1.0 = one core). Goal: < 0.40. The peer's own counters say whether it kept real time
(``peer.late_ticks``) and how much came back (``silence_frames_per_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench._common import CpuTimer, emit
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from puente.heap import settle_heap

GOAL_CPU_SHARE = 0.40


async def run(streams: int, seconds: float) -> dict[str, object]:
    frames = 0
    started = asyncio.Event()

    def count(_pcm: bytes) -> None:
        nonlocal frames
        frames += 1

    async def handler(call: AudioSocketCall) -> None:
        call.on_audio = count
        if len(server.calls) >= streams:
            started.set()
        await call.wait_closed()

    settings = AudioSocketSettings(
        port=0, max_sessions=streams + 100, call_timeout_s=seconds + 60, idle_timeout_s=30
    )
    server = AudioSocketServer(handler, settings)
    await server.start()
    settle_heap()  # as the service does once started (puente.heap)
    try:
        peer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._peers",
            "audiosocket",
            str(server.port),
            str(streams),
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        communicate = asyncio.ensure_future(peer.communicate())
        async with asyncio.timeout(30):
            await started.wait()
        f0 = frames
        with CpuTimer() as cpu:
            await asyncio.sleep(seconds * 0.8)  # the steady part: every stream is up
        f1 = frames
        out, _ = await communicate
        if peer.returncode != 0:
            raise SystemExit(f"bench audiosocket: the stream generator failed ({peer.returncode})")
        stats = json.loads(out)
    finally:
        await server.stop(grace_s=1)
    return {
        "server_cpu_share": round(cpu.cpu_share, 3),
        "server_user_share": round(cpu.user_share, 3),
        "server_sys_share": round(cpu.sys_share, 3),
        "frames_in_per_s": round((f1 - f0) / cpu.wall_s),
        "silence_frames_per_s": round(stats["bytes_in"] / 323 / stats["wall_s"]),
        "peer": stats,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench audiosocket", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    stats = asyncio.run(run(args.streams, args.seconds))
    emit(
        "audiosocket",
        streams=args.streams,
        seconds=args.seconds,
        **stats,
        goal_cpu_share=GOAL_CPU_SHARE,
        goal_met=stats["server_cpu_share"] < GOAL_CPU_SHARE,  # type: ignore[operator]
    )
    return 0
