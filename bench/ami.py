"""``puente bench ami``: AMI events parsed and dispatched per second, offline and on loopback.

Input: the event stream of the recorded campaign (``load/01-mixed-campaign``, Asterisk 22).

- ``offline_events_per_s``: small events (the recorded ``DeviceStateChange`` events, ~90 bytes)
  through the sans-I/O client protocol in 64 KiB reads, each dispatched to a handler by name.
- ``offline_mixed_events_per_s``: the same for every event of the campaign (mean ~370 bytes).
- ``loopback_events_per_s``: the campaign's stream written by a separate process over TCP on
  loopback, read by :class:`pbx.ami.AmiClient` and consumed from ``client.events()``.

Reference figures measured earlier on this kind of machine (same small-event stream): a
hand-written core 615k events/s, panoramisk 1.4 94k, pyst2 about 2.6k in real use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter

from bench._common import CpuTimer, emit
from bench._peers import recorded_events
from pbx.ami import AmiClient, AmiClientProtocol, AmiMessage, AmiSettings
from pbx.ami._protocol import Unsolicited

REFERENCE = {
    "reference_handwritten_core_events_per_s": 615_000,
    "reference_panoramisk_events_per_s": 94_000,
    "reference_pyst2_events_per_s": 2_600,
}
GOAL_EVENTS_PER_S = 500_000
READ = 65536


def _logged_in_protocol() -> AmiClientProtocol:
    proto = AmiClientProtocol()
    proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n")
    aid, _ = proto.send_action("Login", [("Username", "bench"), ("Secret", "x")])
    proto.receive_data(
        f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode()
    )
    proto.drain()
    return proto


def offline(events: list[bytes], min_s: float) -> tuple[float, int, float]:
    """Events/s through protocol + dispatch; returns (rate, events, mean bytes per event)."""
    stream = b"".join(events)
    reads = [stream[i : i + READ] for i in range(0, len(stream), READ)]
    seen: Counter[str] = Counter()

    def count(msg: AmiMessage) -> None:
        seen[msg.name] += 1

    handlers = {name: count for name in {e.split(b"\r\n", 1)[0][7:].decode() for e in events}}
    total = 0
    proto = _logged_in_protocol()
    t0 = time.perf_counter()
    while True:
        for data in reads:
            proto.receive_data(data)
            for ev in proto.drain():
                if type(ev) is Unsolicited:
                    msg = ev.message
                    handlers[msg.name](msg)
        total += len(events)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            break
    if sum(seen.values()) != total:
        raise SystemExit(f"bench ami: dispatched {sum(seen.values())} of {total} events")
    return total / elapsed, total, len(stream) / len(events)


async def loopback(repeat: int) -> dict[str, float]:
    peer = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
        [sys.executable, "-m", "bench._peers", "ami", str(repeat)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())
        settings = AmiSettings(port=port, username="bench", secret="bench", ping_interval_s=600)
        count = 0
        first = last = 0.0
        async with AmiClient(settings) as client:
            with CpuTimer() as cpu:
                async for item in client.events():
                    if not isinstance(item, AmiMessage):
                        raise SystemExit(f"bench ami: the client lost events: {item}")
                    if item.name == "BenchDone":
                        last = time.perf_counter()
                        break
                    if count == 0:
                        first = time.perf_counter()
                    count += 1
        peer_stats, _ = peer.communicate(timeout=30)
    finally:
        if peer.poll() is None:
            peer.kill()
    return {
        "loopback_events_per_s": round(count / (last - first)),
        "loopback_events": count,
        "loopback_client_cpu_share": round(cpu.cpu_share, 3),
        "peer": json.loads(peer_stats),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench ami", description=__doc__)
    parser.add_argument("--min-s", type=float, default=2.0, help="seconds per offline figure")
    parser.add_argument("--repeat", type=int, default=40, help="loopback: times the stream is sent")
    args = parser.parse_args(argv)
    events = recorded_events()
    small = [e for e in events if e.startswith(b"Event: DeviceStateChange\r\n")]
    small_rate, small_n, small_bytes = offline(small, args.min_s)
    mixed_rate, mixed_n, mixed_bytes = offline(events, args.min_s)
    loop = asyncio.run(loopback(args.repeat))
    loop_events = loop.pop("loopback_events")
    emit(
        "ami",
        offline_events_per_s=round(small_rate),
        offline_event_mean_bytes=round(small_bytes),
        offline_mixed_events_per_s=round(mixed_rate),
        offline_mixed_event_mean_bytes=round(mixed_bytes),
        **loop,
        loopback_event_mean_bytes=round(mixed_bytes),
        events_measured=small_n + mixed_n + loop_events,
        goal_offline_events_per_s=GOAL_EVENTS_PER_S,
        goal_met=small_rate >= GOAL_EVENTS_PER_S,
        **REFERENCE,
    )
    return 0
