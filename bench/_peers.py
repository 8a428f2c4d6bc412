"""The far ends of the loopback benchmarks, run in a separate process.

Each peer plays Asterisk's side so the process under measurement holds only Puente's side:

- ``ami REPEAT``: an AMI server (it prints its port) that accepts one login, then writes the
  recorded campaign's event stream REPEAT times as fast as the socket takes it, then
  ``BenchDone``.
- ``agi PORT SESSIONS SECONDS THINK_MS``: keeps SESSIONS FastAGI sessions open against Puente's
  server for SECONDS, answering every command after THINK_MS (a new session replaces each one
  that ends), and times the server's turnaround: from our answer to its next command.
- ``audiosocket PORT STREAMS SECONDS``: STREAMS AudioSocket calls, each sending a 320-byte audio
  frame every 20 ms in real time and reading what comes back.

``python -m bench._peers KIND ...`` prints one JSON line of its own counters when done.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from pbx.agi import CommandReader, encode_environment
from pbx.audiosocket import encode_audio_frame, encode_uuid_frame

LOAD_STREAM = "load/01-mixed-campaign.s2c.txt"


def recorded_events() -> list[bytes]:
    """The unsolicited events of the recorded campaign (each with its blank-line end)."""
    from bench._data import transcript

    raw = transcript(LOAD_STREAM)
    body = raw[raw.index(b"\r\n") + 2 :]
    return [
        block + b"\r\n\r\n"
        for block in body.split(b"\r\n\r\n")
        if block.startswith(b"Event:") and b"ActionID:" not in block
    ]


# -- AMI --------------------------------------------------------------------------------------
async def ami_server(repeat: int) -> dict[str, float]:
    stream = b"".join(recorded_events())
    done = asyncio.Event()
    stats: dict[str, float] = {}

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        aid = next(
            (ln.split(b": ", 1)[1] for ln in login.split(b"\r\n") if ln.startswith(b"ActionID")),
            b"1",
        )
        writer.write(
            b"Response: Success\r\nActionID: "
            + aid
            + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        t0 = time.perf_counter()
        for _ in range(repeat):
            writer.write(stream)
            await writer.drain()
        writer.write(b"Event: BenchDone\r\nPrivilege: system,all\r\n\r\n")
        await writer.drain()
        stats["write_s"] = time.perf_counter() - t0
        stats["bytes"] = len(stream) * repeat
        done.set()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()
    return stats


# -- FastAGI ----------------------------------------------------------------------------------
_ANSWER = b"200 result=0\n"
_GET_ANSWER = b"200 result=1 (ok)\n"


Answerer = Callable[[str], bytes]
# A session's script: (its environment block, what it answers to each command).
Script = Callable[[int], tuple[bytes, Answerer]]


def _plain_answer(command: str) -> bytes:
    return _GET_ANSWER if command.startswith("GET") else _ANSWER


class _AgiCaller(asyncio.Protocol):
    """One caller: answers each command after the think time, times the server's turnaround."""

    def __init__(self, gen: _AgiLoad, env: bytes, answer: Answerer) -> None:
        self.gen = gen
        self.env = env
        self.answer = answer
        self.reader = CommandReader()
        self.transport: asyncio.Transport | None = None
        self.answered_at = 0.0
        self.first = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.answered_at = time.perf_counter()
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        for command in self.reader.feed(data):
            self.gen.commands += 1
            if self.gen.measuring:
                (self.gen.first_turnaround if self.first else self.gen.turnaround).append(
                    now - self.answered_at
                )
            self.first = False
            answer = self.answer(command)
            if self.gen.think_s > 0:
                # Callers are not in lockstep: each think time is drawn around the mean.
                think = self.gen.think_s * self.gen.rng.uniform(0.5, 1.5)
                asyncio.get_running_loop().call_later(think, self._answer, answer)
            else:
                self._answer(answer)

    def _answer(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.answered_at = time.perf_counter()
            self.transport.write(answer)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.gen.sessions_done += 1
        self.gen.replace()


class _AgiLoad:
    def __init__(
        self, port: int, seconds: float, think_s: float, script: Script | None = None
    ) -> None:
        self.port = port
        self.deadline = time.monotonic() + seconds
        self.think_s = think_s
        self.script = script
        self.started = 0
        self.env = encode_environment(
            [
                ("agi_network", "yes"),
                ("agi_network_script", "bench"),
                ("agi_request", "agi://127.0.0.1/bench"),
                ("agi_channel", "PJSIP/trunk-00000001"),
                ("agi_language", "es"),
                ("agi_uniqueid", "1795335161.42"),
                ("agi_version", "22.10.1"),
                ("agi_callerid", "5550100"),
                ("agi_context", "puente-ivr"),
                ("agi_extension", "bench"),
                ("agi_priority", "1"),
            ]
        )
        self.commands = 0
        self.sessions_done = 0
        self.open = 0
        self.failed = 0
        self.measuring = False
        self.turnaround: list[float] = []
        self.first_turnaround: list[float] = []  # connect + environment to the first command
        self.rng = random.Random(20261126)
        self._tasks: set[asyncio.Task[None]] = set()

    def replace(self) -> None:
        self.open -= 1
        if time.monotonic() < self.deadline:
            task = asyncio.get_running_loop().create_task(self.connect())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        env, answer = self.script(self.started) if self.script else (self.env, _plain_answer)
        self.started += 1
        try:
            await loop.create_connection(
                lambda: _AgiCaller(self, env, answer), "127.0.0.1", self.port
            )
            self.open += 1
        except OSError:
            self.failed += 1


async def agi_load(
    port: int,
    sessions: int,
    seconds: float,
    think_ms: float,
    *,
    script: Script | None = None,
    warmup_s: float = 1.0,
    drain_s: float = 10.0,
) -> dict[str, Any]:
    """SESSIONS callers for SECONDS; ``script`` gives each session its environment and answers
    (default: one fixed environment, ``200 result=0`` or ``(ok)`` to everything)."""
    gen = _AgiLoad(port, seconds, think_ms / 1000, script)
    for i in range(0, sessions, 100):  # ramp in batches so the listen backlog keeps up
        await asyncio.gather(*(gen.connect() for _ in range(min(100, sessions - i))))
    await asyncio.sleep(min(warmup_s, seconds / 4))  # warm-up: every session is in its flow
    gen.measuring = True
    c0, d0, t0 = gen.commands, gen.sessions_done, time.perf_counter()
    await asyncio.sleep(max(0.0, gen.deadline - time.monotonic()))
    gen.measuring = False
    c1, d1, t1 = gen.commands, gen.sessions_done, time.perf_counter()
    for _ in range(int(drain_s / 0.05)):  # sessions still open finish their flow
        if gen.open <= 0:
            break
        await asyncio.sleep(0.05)
    ms = sorted(x * 1000 for x in gen.turnaround)
    first = sorted(x * 1000 for x in gen.first_turnaround)
    return {
        "commands_per_s": round((c1 - c0) / (t1 - t0)),
        "sessions_per_s": round((d1 - d0) / (t1 - t0), 1),
        "turnarounds": len(ms),
        "p50_ms": round(ms[len(ms) // 2], 3) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3) if ms else None,
        "max_ms": round(ms[-1], 3) if ms else None,
        "first_command_p50_ms": round(first[len(first) // 2], 3) if first else None,
        "first_command_p99_ms": round(first[int(len(first) * 0.99)], 3) if first else None,
        "sessions_done": gen.sessions_done,
        "connect_failures": gen.failed,
        "measured_s": round(t1 - t0, 2),
    }


# -- AudioSocket --------------------------------------------------------------------------------
async def audiosocket_load(port: int, streams: int, seconds: float) -> dict[str, float]:
    """Plain non-blocking sockets polled once per 20 ms tick: the cheapest way for one Python
    process to play 1,000 real-time callers, so that the peer keeps real time."""
    loop = asyncio.get_running_loop()
    socks: list[socket.socket] = []
    for _ in range(streams):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.send(encode_uuid_frame(uuid.uuid4()))
        socks.append(sock)
    frame = encode_audio_frame(b"\x10\x00" * 160)  # 20 ms of a low constant signal
    period = 0.02
    ticks = int(seconds / period)
    frames_out = bytes_in = late = dropped = 0
    alive = [True] * streams
    t0 = loop.time()
    next_tick = t0
    for _ in range(ticks):
        for i, sock in enumerate(socks):
            if not alive[i]:
                continue
            try:
                while chunk := sock.recv(65536):
                    bytes_in += len(chunk)
                    if len(chunk) < 65536:
                        break
                else:
                    alive[i] = False
                    dropped += 1
                    continue
            except BlockingIOError:
                pass
            except OSError:
                alive[i] = False
                dropped += 1
                continue
            try:
                sock.send(frame)
                frames_out += 1
            except OSError:
                pass
        next_tick += period
        delay = next_tick - loop.time()
        if delay < 0:
            late += 1
        await asyncio.sleep(max(0.0, delay))
    wall = loop.time() - t0
    for sock in socks:
        sock.close()
    return {
        "frames_out": frames_out,
        "frames_expected": ticks * streams,
        "wall_s": wall,
        "late_ticks": late,
        "bytes_in": bytes_in,
        "dropped": dropped,
    }


# -- Puente's side against the simulated Asterisk -------------------------------------------------
async def sim_load(calls: int, seconds: float) -> dict[str, Any]:
    """Originate CALLS calls over AMI and hold every answered one on our AudioSocket server.

    Prints our AudioSocket port, then reads the simulator's AMI port from stdin.
    """
    from pbx.ami import AmiClient, AmiSettings
    from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings

    frames = 0
    release = asyncio.Event()

    def count(_pcm: bytes) -> None:
        nonlocal frames
        frames += 1

    async def hold(call: AudioSocketCall) -> None:
        call.on_audio = count
        await release.wait()

    server = AudioSocketServer(
        hold,
        AudioSocketSettings(
            port=0, max_sessions=calls + 100, call_timeout_s=seconds + 300, idle_timeout_s=60
        ),
    )
    await server.start()
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    ami_port = int(await loop.run_in_executor(None, sys.stdin.readline))
    settings = AmiSettings(
        port=ami_port,
        username="bench",
        secret="bench",
        action_timeout_s=60,
        ping_interval_s=600,
        event_queue_size=10_000_000,
    )
    failed = 0
    async with AmiClient(settings) as client:
        await client.wait_connected(10)

        async def originate(i: int) -> None:
            nonlocal failed
            attempt = str(uuid.uuid4())
            handle = await client.originate(
                [
                    ("Channel", f"PJSIP/+1555{i:07d}@trunk"),
                    ("Context", "puente-outbound"),
                    ("Exten", "s"),
                    ("Priority", "1"),
                    ("Timeout", "30000"),
                    ("ChannelId", attempt),
                    ("Variable", [f"PUENTE_ATTEMPT={attempt}", "PUENTE_QUEUE=bench"]),
                ],
                action_id=attempt,
            )
            failed += not handle.response.ok

        for i in range(0, calls, 50):
            await asyncio.gather(*(originate(j) for j in range(i, min(calls, i + 50))))
        await asyncio.sleep(seconds)
        f0, t0 = frames, time.perf_counter()
        await asyncio.sleep(2.0)
        rate = (frames - f0) / (time.perf_counter() - t0)
        release.set()
    await server.stop(grace_s=1)
    return {
        "originated": calls,
        "originate_failures": failed,
        "answered": server.calls_total,
        "frames_received_per_s": round(rate),
    }


def main(argv: list[str]) -> int:
    # The peer is the measuring instrument: its own collector pauses would show up as the
    # server's latency, so it runs without the cyclic GC (it lives for seconds).
    gc.disable()
    kind = argv[0]
    if kind == "ami":
        stats = asyncio.run(ami_server(int(argv[1])))
    elif kind == "agi":
        stats = asyncio.run(agi_load(int(argv[1]), int(argv[2]), float(argv[3]), float(argv[4])))
    elif kind == "sim":
        stats = asyncio.run(sim_load(int(argv[1]), float(argv[2])))
    elif kind == "audiosocket":
        stats = asyncio.run(audiosocket_load(int(argv[1]), int(argv[2]), float(argv[3])))
    else:
        print(f"unknown peer {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
