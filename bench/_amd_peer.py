"""Asterisk's side of ``puente bench amd --server``, in a process of its own.

``python -m bench._amd_peer PORT STREAMS SECONDS`` serves a minimal AMI (it prints its port,
waits for Puente's login, answers ``Setvar`` with ``Success`` / ``Variable Set`` as Asterisk
22 does, and announces every call with ``Newchannel`` / ``Hangup``), then keeps STREAMS calls
on Puente's AudioSocket server at PORT for SECONDS: each call sends its UUID frame, then the
audio of one of the benchmark's synthetic calls (people and answering machines, see
:func:`bench.amd.synthetic_calls`) in real time, one 320-byte frame every 20 ms, and reads what
comes back (one ``epoll`` call per tick says which calls have something: Puente writes only a
keep-alive now and then). When Puente ends a call (its verdict is set: 0x00 and close), a new
call takes its place at once, so STREAMS calls are always under analysis. What Puente sees is
the same whichever way the peer finds its readable sockets: the same frames at the same times.

It prints one JSON line of its counters when done: frames sent against the real-time
schedule, late ticks, calls completed and the verdicts Puente set (``AMDSTATUS`` values).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import select
import socket
import sys
import time
import uuid
from typing import Any

from pbx.audiosocket import encode_audio_frame, encode_uuid_frame

_BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_SILENCE = encode_audio_frame(bytes(320))


class _Ami:
    """A minimal AMI server: Login, Ping, Setvar, Logoff; events written on demand."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.logged_in = asyncio.Event()
        self.verdicts: collections.Counter[str] = collections.Counter()
        self.setvars = 0

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_BANNER)
        buf = b""
        while data := await reader.read(65536):
            buf += data
            *blocks, buf = buf.split(b"\r\n\r\n")
            out = []
            for block in blocks:
                f = dict(
                    line.split(": ", 1) for line in block.decode().split("\r\n") if ": " in line
                )
                action = f.get("Action", "").lower()
                aid = f.get("ActionID", "")
                if action == "login":
                    out.append(f"Response: Success\r\nActionID: {aid}\r\n")
                    out.append("Message: Authentication accepted\r\n\r\n")
                    self.writer = writer
                    self.logged_in.set()
                elif action == "setvar":
                    self.setvars += 1
                    if f.get("Variable") == "AMDSTATUS":
                        self.verdicts[f.get("Value", "")] += 1
                    out.append(f"Response: Success\r\nActionID: {aid}\r\n")
                    out.append("Message: Variable Set\r\n\r\n")
                elif action == "logoff":  # Goodbye, then Asterisk closes the connection
                    out.append(f"Response: Goodbye\r\nActionID: {aid}\r\n")
                    out.append("Message: Thanks for all the fish.\r\n\r\n")
                    self.writer = None
                    writer.write("".join(out).encode())
                    writer.close()
                    return
                else:
                    out.append(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n")
            writer.write("".join(out).encode())
        self.writer = None

    def event(self, name: str, channel: str, uid: str, *extra: str) -> None:
        if self.writer is not None:
            self.writer.write(
                (
                    f"Event: {name}\r\nPrivilege: call,all\r\nChannel: {channel}\r\n"
                    f"ChannelState: 6\r\nChannelStateDesc: Up\r\nUniqueid: {uid}\r\n"
                    f"Linkedid: {uid}\r\n{''.join(extra)}\r\n"
                ).encode()
            )


class _Call:
    __slots__ = ("channel", "frames", "pos", "sock", "uid")

    def __init__(self, sock: socket.socket, uid: str, channel: str, frames: list[bytes]) -> None:
        self.sock = sock
        self.uid = uid
        self.channel = channel
        self.frames = frames
        self.pos = 0


async def amd_load(port: int, streams: int, seconds: float) -> dict[str, Any]:
    from bench.amd import synthetic_calls  # numpy: only in this process's start-up

    audio = [
        [encode_audio_frame(pcm[i : i + 160].tobytes()) for i in range(0, len(pcm) - 159, 160)]
        for pcm in synthetic_calls(40, seed=7)
    ]
    ami = _Ami()
    server = await asyncio.start_server(ami.on_client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await ami.logged_in.wait()
    loop = asyncio.get_running_loop()
    seq = 0

    address = ("127.0.0.1", port)
    # Which sockets have something to read (Puente's keep-alive, its 0x00, its close): one
    # epoll call per tick instead of a recv on every socket, most of which have nothing.
    readable = select.epoll()
    slot_of: dict[int, int] = {}  # socket fd -> its slot in ``calls``

    def new_call(slot: int) -> _Call:
        nonlocal seq
        seq += 1
        uid = str(uuid.uuid4())
        channel = f"PJSIP/trunk-{seq:08x}"
        ami.event("Newchannel", channel, uid)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.send(encode_uuid_frame(uuid.UUID(uid)))
        readable.register(sock.fileno(), select.EPOLLIN)
        slot_of[sock.fileno()] = slot
        return _Call(sock, uid, channel, audio[seq % len(audio)])

    calls: list[_Call | None] = []  # None: a slot whose new call could not connect yet
    errors: collections.Counter[str] = collections.Counter()
    period = 0.02
    ramp_ticks = 50  # open the streams over a second, not in one burst
    ticks = int(seconds / period)
    frames_out = bytes_in = late = completed = failed = 0
    t0 = loop.time()
    next_tick = t0
    for tick in range(ticks):
        if len(calls) < streams:
            want = min(streams, (tick + 1) * streams // ramp_ticks)
            calls += [new_call(i) for i in range(len(calls), want)]
        # What Puente sent: a call it ended (its verdict is set: 0x00 and close) makes room
        # for the next call, which starts sending on the next tick.
        fresh: set[int] = set()
        for fd, _ in readable.poll(0):
            i = slot_of[fd]
            call = calls[i]
            assert call is not None
            sock = call.sock
            ended = False
            try:
                while chunk := sock.recv(65536):
                    bytes_in += len(chunk)
                    if len(chunk) < 65536:
                        break
                else:
                    ended = True
            except BlockingIOError:
                pass
            except OSError:
                ended = True
            if ended:
                del slot_of[fd]
                readable.unregister(fd)
                sock.close()
                ami.event("Hangup", call.channel, call.uid, "Cause: 16\r\n")
                completed += 1
                fresh.add(i)
                try:
                    calls[i] = new_call(i)
                except OSError as e:
                    calls[i] = None
                    failed += 1
                    errors[type(e).__name__] += 1
        # One 20 ms frame to every call, in real time.
        for i, call in enumerate(calls):
            if fresh and i in fresh:
                continue
            if call is None:  # connecting failed last time: try again (and count it)
                try:
                    call = calls[i] = new_call(i)
                except OSError as e:
                    failed += 1
                    errors[type(e).__name__] += 1
                    continue
            frame = call.frames[call.pos] if call.pos < len(call.frames) else _SILENCE
            call.pos += 1
            try:
                call.sock.send(frame)
                frames_out += 1
            except OSError:
                pass
        next_tick += period
        delay = next_tick - loop.time()
        if delay < 0:
            late += 1
        await asyncio.sleep(max(0.0, delay))
    wall = loop.time() - t0
    for call in calls:
        if call is not None:
            call.sock.close()
    readable.close()
    for _ in range(20):  # Puente logs off when it is done measuring
        if ami.writer is None:
            break
        await asyncio.sleep(0.1)
    if ami.writer is not None:
        ami.writer.close()
    await asyncio.sleep(0.1)  # the connection's task sees its end
    server.close()
    await server.wait_closed()
    return {
        "frames_out": frames_out,
        "frames_expected": ticks * streams - streams * ramp_ticks // 2,
        "wall_s": round(wall, 3),
        "late_ticks": late,
        "ticks": ticks,
        "bytes_in": bytes_in,
        "calls_completed": completed,
        "connect_failures": failed,
        "connect_errors": dict(errors),
        "setvars": ami.setvars,
        "verdicts": dict(ami.verdicts),
    }


def main(argv: list[str]) -> int:
    gc.disable()  # the measuring instrument: no collector pauses (it lives for seconds)
    t = time.perf_counter()
    stats = asyncio.run(amd_load(int(argv[0]), int(argv[1]), float(argv[2])))
    stats["peer_cpu_s"] = round(time.process_time(), 2)
    stats["peer_run_s"] = round(time.perf_counter() - t, 2)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
