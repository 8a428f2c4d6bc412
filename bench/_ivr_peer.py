"""The Asterisk side of ``puente bench ivr``: many scripted callers through the real flow.

Run as ``python -m bench._ivr_peer PORT SESSIONS SECONDS THINK_MS ACCOUNTS_JSON``. Keeps
SESSIONS FastAGI sessions open (a finished one is replaced by a new caller until SECONDS have
passed); each caller is the simulator's scripted caller (:class:`pbx.sim._agi_caller.AgiResponder`)
entering an account, a date of birth and a pay-in-full promise. Answers every command after the
think time and times Puente's turnaround: from writing an answer to reading the next command.
Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys
import time
from typing import Any

from pbx.agi import CommandReader, encode_environment
from pbx.sim._agi_caller import AgiResponder


class _Caller(asyncio.Protocol):
    def __init__(self, load: _Load, account: tuple[str, str, str]) -> None:
        self.load = load
        number, dialed, acct = account
        self.responder = AgiResponder(keys=["", f"{acct}#", "19800101#", "1", "2"])
        self.env = encode_environment(
            [
                ("agi_network", "yes"),
                ("agi_network_script", "inbound"),
                ("agi_request", "agi://127.0.0.1/inbound"),
                ("agi_channel", "PJSIP/trunk-00000001"),
                ("agi_language", "en"),
                ("agi_uniqueid", f"1795335161.{random.randrange(10**6)}"),
                ("agi_version", "22.10.1"),
                ("agi_callerid", number),
                ("agi_dnid", dialed),
                ("agi_context", "puente-inbound"),
                ("agi_extension", dialed),
                ("agi_priority", "3"),
                ("agi_arg_1", dialed),
            ]
        )
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
            load = self.load
            load.commands += 1
            if load.measuring:
                (load.first if self.first else load.turnaround).append(now - self.answered_at)
            self.first = False
            answer = self.responder.respond(command).text.encode()
            if load.think_s > 0:
                delay = load.think_s * load.rng.uniform(0.5, 1.5)
                asyncio.get_running_loop().call_later(delay, self._answer, answer)
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
        self.load.done(self)


class _Load:
    def __init__(
        self, port: int, seconds: float, think_s: float, accounts: list[tuple[str, str, str]]
    ) -> None:
        self.port = port
        self.deadline = time.monotonic() + seconds
        self.think_s = think_s
        self.accounts = accounts
        self.rng = random.Random(20261126)
        self.commands = 0
        self.sessions_done = 0
        self.sessions_started = 0
        self.open = 0
        self.failed = 0
        self.measuring = False
        self.turnaround: list[float] = []
        self.first: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def done(self, caller: _Caller) -> None:
        self.open -= 1
        self.sessions_done += 1
        if time.monotonic() < self.deadline:
            task = asyncio.get_running_loop().create_task(self.connect())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def connect(self) -> None:
        account = self.accounts[self.sessions_started % len(self.accounts)]
        self.sessions_started += 1
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Caller(self, account), "127.0.0.1", self.port)
            self.open += 1
        except OSError:
            self.failed += 1


async def ivr_load(
    port: int, sessions: int, seconds: float, think_ms: float, accounts: list[Any]
) -> dict[str, Any]:
    load = _Load(port, seconds, think_ms / 1000, [tuple(a) for a in accounts])
    for i in range(0, sessions, 100):
        await asyncio.gather(*(load.connect() for _ in range(min(100, sessions - i))))
    await asyncio.sleep(min(2.0, seconds / 4))
    load.measuring = True
    c0, d0, t0 = load.commands, load.sessions_done, time.perf_counter()
    await asyncio.sleep(max(0.0, load.deadline - time.monotonic()))
    load.measuring = False
    c1, d1, t1 = load.commands, load.sessions_done, time.perf_counter()
    for _ in range(400):
        if load.open <= 0:
            break
        await asyncio.sleep(0.05)
    ms = sorted(x * 1000 for x in load.turnaround)
    first = sorted(x * 1000 for x in load.first)

    def pct(v: list[float], q: float) -> float | None:
        return round(v[min(len(v) - 1, int(len(v) * q))], 3) if v else None

    return {
        "commands_per_s": round((c1 - c0) / (t1 - t0)),
        "sessions_per_s": round((d1 - d0) / (t1 - t0), 1),
        "turnarounds": len(ms),
        "p50_ms": pct(ms, 0.5),
        "p99_ms": pct(ms, 0.99),
        "max_ms": round(ms[-1], 3) if ms else None,
        "first_command_p99_ms": pct(first, 0.99),
        "sessions_done": load.sessions_done,
        "connect_failures": load.failed,
        "measured_s": round(t1 - t0, 2),
    }


def main(argv: list[str]) -> int:
    gc.disable()  # the instrument's own pauses would read as Puente's latency
    port, sessions, seconds, think_ms = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    accounts = json.loads(sys.stdin.read())
    stats = asyncio.run(ivr_load(port, sessions, seconds, think_ms, accounts))
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
