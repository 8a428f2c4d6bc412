"""The AudioSocket server on loopback, against a fake Asterisk (and a fault proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid

import pytest

from pbx.audiosocket import (
    NEED_DATA,
    AsteriskSideConnection,
    AudioReceived,
    AudioSocketCall,
    AudioSocketServer,
    AudioSocketSettings,
    DtmfReceived,
    EndReason,
    ServerAudio,
    ServerHangup,
)
from tests.support.faultproxy import FaultProxy


class FakeAsterisk:
    """Asterisk's end of one AudioSocket() call."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.uuid = uuid.uuid4()
        self.core = AsteriskSideConnection(self.uuid)
        self.connected_at = time.monotonic()
        self.audio_frames: list[bytes] = []
        self.audio_times: list[float] = []  # when each frame was read (monotonic seconds)
        self.hangup = False
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    def start(self) -> None:
        self.writer.write(self.core.start())

    def send_audio(self, pcm: bytes) -> None:
        self.writer.write(self.core.send_audio(pcm))

    async def read_for(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.eof:
                    try:
                        data = await self.reader.read(65536)
                    except ConnectionResetError:  # we closed with frames unread: TCP RST
                        data = b""
                    if not data:
                        self.eof = True
                        break
                    self.core.receive_data(data)
                    while (ev := self.core.next_event()) is not NEED_DATA:
                        if isinstance(ev, ServerAudio):
                            self.audio_frames.append(ev.pcm)
                            self.audio_times.append(time.monotonic())
                        elif isinstance(ev, ServerHangup):
                            self.hangup = True

    def longest_quiet_s(self, until: float) -> float:
        """The longest stretch with no frame either way, from the UUID frame to ``until``,
        when this Asterisk sent nothing after its UUID frame (a Local channel whose far end
        is silent): what app_audiosocket's 2 s rule (``MAX_WAIT_TIMEOUT_MSEC``) looks at."""
        marks = [self.connected_at, *self.audio_times, until]
        return max(b - a for a, b in itertools.pairwise(marks))

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def serving(handler, **settings):
    server = AudioSocketServer(handler, AudioSocketSettings(port=0, **settings))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace_s=1)


async def test_uuid_audio_and_dtmf_reach_the_handler_and_hangup_continues_the_dialplan() -> None:
    got: list[object] = []
    calls: list[AudioSocketCall] = []

    async def handler(call: AudioSocketCall) -> None:
        calls.append(call)
        async for event in call:
            got.append(event)
            if isinstance(event, DtmfReceived) and event.digit == "#":
                await call.hangup()

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        for i in range(5):
            ast.send_audio(bytes([i]) * 320)
        ast.writer.write(ast.core.send_dtmf("#"))
        await ast.read_for(2.0)
        assert ast.hangup
        assert ast.eof
        assert calls[0].uuid == ast.uuid
        assert calls[0].end_reason is EndReason.LOCAL_HANGUP
        assert [len(e.pcm) for e in got if isinstance(e, AudioReceived)] == [320] * 5
        assert got[-1] == DtmfReceived("#")
        ast.close()


async def test_keepalive_keeps_a_silent_call_alive_with_a_frame_every_interval() -> None:
    # Asterisk sends nothing after the UUID frame (a Local channel, the far end silent) for
    # longer than app_audiosocket's 2 s: the default keep-alive (500 ms) keeps the call up.
    async def handler(call: AudioSocketCall) -> None:
        await asyncio.sleep(3.0)

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        await ast.read_for(2.3)
        end = time.monotonic()
        assert not ast.eof
        assert all(f == bytes(320) for f in ast.audio_frames)
        # About one frame per 500 ms (at 0.5, 1.0, 1.5 and 2.0 s, each up to a tick late), not
        # one tick's silence every 40 ms (some 115 frames).
        assert 3 <= len(ast.audio_frames) <= 6
        # app_audiosocket's rule: never 2 s with no frame either way. Here the gaps are the
        # interval plus at most a tick (and a loaded machine's lag).
        assert ast.longest_quiet_s(end) < 1.2
        gaps = [b - a for a, b in itertools.pairwise(ast.audio_times)]
        assert min(gaps) > 0.3  # no keep-alive sooner than the interval (receive jitter aside)
        ast.close()


async def test_keepalive_interval_is_the_setting() -> None:
    async def handler(call: AudioSocketCall) -> None:
        await asyncio.sleep(1.5)

    async with serving(handler, keepalive_interval_ms=100) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        await ast.read_for(1.0)
        end = time.monotonic()
        # Due 100 ms after the last write, checked every 40 ms tick: one frame per 120 ms.
        assert 5 <= len(ast.audio_frames) <= 10
        assert ast.longest_quiet_s(end) < 0.5
        ast.close()


async def test_no_keepalive_while_app_audio_plays_and_it_resumes_after() -> None:
    tone = b"\x10\x27" * 160 * 4  # 4 frames: two ticks' worth

    async def handler(call: AudioSocketCall) -> None:
        call.send_audio(tone)
        await asyncio.sleep(2.0)

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        await ast.read_for(1.2)
        loud = [i for i, f in enumerate(ast.audio_frames) if f != bytes(320)]
        assert loud == [0, 1, 2, 3]  # the app's audio first, whole, and no silence in it
        assert b"".join(ast.audio_frames[:4]) == tone
        # Then silence only once nothing was written for the interval (500 ms): a keep-alive.
        quiet = ast.audio_times[4:]
        assert 1 <= len(quiet) <= 2
        assert quiet[0] - ast.audio_times[3] > 0.4
        ast.close()


async def test_app_audio_replaces_silence_at_real_time_pace() -> None:
    tone = b"\x10\x27" * 160 * 10  # 10 frames of a constant level

    async def handler(call: AudioSocketCall) -> None:
        call.send_audio(tone)
        await asyncio.sleep(0.5)

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        await ast.read_for(0.4)
        frames = zip(ast.audio_frames, ast.audio_times, strict=True)
        loud = [(f, t) for f, t in frames if f != bytes(320)]
        assert len(loud) == 10
        assert b"".join(f for f, _ in loud) == tone
        # Paced: two frames a tick over five ticks (160 ms from the first to the last; a late
        # tick may bring the next one up to a tick closer), not written at once.
        assert loud[-1][1] - loud[0][1] > 0.06
        ast.close()


async def test_caller_hangup_ends_the_call_as_peer_hangup() -> None:
    ended = asyncio.Event()
    seen: list[AudioSocketCall] = []

    async def handler(call: AudioSocketCall) -> None:
        seen.append(call)
        await call.wait_closed()
        ended.set()

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        ast.send_audio(bytes(320))
        await asyncio.sleep(0.1)
        ast.close()
        async with asyncio.timeout(2):
            await ended.wait()
        assert seen[0].end_reason is EndReason.PEER_HANGUP


async def test_no_uuid_frame_in_time_closes_the_connection() -> None:
    async def handler(call: AudioSocketCall) -> None:
        raise AssertionError("never started")

    async with serving(handler, uuid_timeout_s=0.2) as server:
        ast = await FakeAsterisk.connect(server.port)
        await ast.read_for(1.5)
        assert ast.eof
        assert server.calls_total == 0


@pytest.mark.parametrize(
    ("garbage", "problem"),
    [
        (b"\x10\x00\x03abc", "odd length"),
        (b"\x10\x10\x00", "cap"),
        (b"\x07\x00\x00", "unknown frame kind 0x07"),
    ],
)
async def test_malformed_frames_close_that_session_only(
    garbage: bytes, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    ends: list[AudioSocketCall] = []

    async def handler(call: AudioSocketCall) -> None:
        ends.append(call)
        await call.wait_closed()

    async with serving(handler, max_frame_bytes=2048, keepalive_interval_ms=100) as server:
        good, bad = await FakeAsterisk.connect(server.port), await FakeAsterisk.connect(server.port)
        good.start()
        bad.start()
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="pbx.audiosocket._server"):
            bad.writer.write(garbage)
            await bad.read_for(1.0)
        assert bad.eof
        assert any(
            problem in r.getMessage() and str(bad.uuid) in r.getMessage() for r in caplog.records
        )
        bad_call = next(c for c in ends if c.uuid == bad.uuid)
        assert bad_call.end_reason is EndReason.PROTOCOL_ERROR
        # The other call is untouched: still open, still getting its keep-alives.
        good.audio_frames.clear()
        await good.read_for(0.6)
        assert not good.eof
        assert len(good.audio_frames) >= 2
        good.close()


async def test_over_max_sessions_gets_an_immediate_hangup_frame() -> None:
    async def handler(call: AudioSocketCall) -> None:
        await asyncio.sleep(5)

    async with serving(handler, max_sessions=1) as server:
        first = await FakeAsterisk.connect(server.port)
        first.start()
        await asyncio.sleep(0.05)
        second = await FakeAsterisk.connect(server.port)
        second.start()
        await second.read_for(1.0)
        assert second.hangup
        assert second.eof
        first.close()


async def test_slow_consumer_is_ended_loudly_not_buffered_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[AudioSocketCall] = []

    async def handler(call: AudioSocketCall) -> None:
        calls.append(call)
        await asyncio.sleep(5)  # never reads

    async with serving(handler, event_queue_frames=20) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        with caplog.at_level(logging.ERROR):
            for _ in range(40):
                ast.send_audio(bytes(320))
            await ast.read_for(1.0)
        assert calls[0].end_reason is EndReason.OVERLOADED
        assert ast.eof  # 0x00 then close (the 0x00 itself may be lost to the RST)
        assert any("behind" in r.getMessage() for r in caplog.records)


async def test_an_event_callback_takes_any_burst_of_dtmf_and_leaves_the_audio_queued(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Queued, 400 DTMF frames in one socket read (a queue of 20 here, 250 by default) ended
    # the call as overloaded before any consumer could run. With on_event they go to the
    # callback as they are read, those queued before it was set first, in order.
    calls: list[AudioSocketCall] = []
    digits: list[str] = []
    audio: list[object] = []

    async def handler(call: AudioSocketCall) -> None:
        calls.append(call)
        await asyncio.sleep(0.3)  # the first digits wait in the queue meanwhile
        call.on_event = lambda event: digits.append(event.digit)
        async with asyncio.timeout(1.0):
            async for event in call:
                audio.append(event)
                if len(audio) == 2:
                    return

    async with serving(handler, event_queue_frames=20) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        ast.writer.write(ast.core.send_dtmf("1") * 5)
        ast.send_audio(bytes(320))
        await asyncio.sleep(0.5)
        with caplog.at_level(logging.ERROR):
            ast.writer.write(ast.core.send_dtmf("2") * 400 + ast.core.send_dtmf("3"))
            ast.send_audio(bytes(320))
            await ast.read_for(0.5)
        assert digits == ["1"] * 5 + ["2"] * 400 + ["3"]
        assert [type(e).__name__ for e in audio] == ["AudioReceived"] * 2
        assert calls[0].end_reason is not EndReason.OVERLOADED
        assert not any("behind" in r.getMessage() for r in caplog.records)
        ast.close()


async def test_fast_path_callback_sees_every_frame_through_a_dribbling_proxy() -> None:
    frames: list[bytes] = []

    async def handler(call: AudioSocketCall) -> None:
        call.on_audio = frames.append
        await asyncio.sleep(1.0)

    async with serving(handler) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.set_chunking("c2s", 7)
        ast = await FakeAsterisk.connect(proxy.port)
        ast.start()
        for i in range(20):
            ast.send_audio(bytes([i % 256]) * 480)
        await ast.read_for(0.6)
        assert [f[0] for f in frames] == list(range(20))
        assert all(len(f) == 480 for f in frames)
        ast.close()


async def test_connection_cut_mid_frame_is_a_protocol_error_and_nothing_escapes() -> None:
    calls: list[AudioSocketCall] = []
    done = asyncio.Event()

    async def handler(call: AudioSocketCall) -> None:
        calls.append(call)
        await call.wait_closed()
        done.set()

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        ast.writer.write(b"\x10\x01\x40" + bytes(100))  # 320 announced, 100 sent
        await ast.writer.drain()
        await asyncio.sleep(0.05)
        ast.writer.write_eof()
        async with asyncio.timeout(2):
            await done.wait()
        assert calls[0].end_reason is EndReason.PROTOCOL_ERROR


async def test_handler_exception_is_logged_and_the_call_still_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(call: AudioSocketCall) -> None:
        raise RuntimeError("boom")

    async with serving(handler) as server:
        ast = await FakeAsterisk.connect(server.port)
        ast.start()
        with caplog.at_level(logging.ERROR):
            await ast.read_for(1.0)
        assert ast.hangup
        assert server.errors_total == 1


async def test_shutdown_ends_live_calls_with_a_hangup_frame() -> None:
    async def handler(call: AudioSocketCall) -> None:
        await asyncio.sleep(30)

    server = AudioSocketServer(handler, AudioSocketSettings(port=0))
    await server.start()
    ast = await FakeAsterisk.connect(server.port)
    ast.start()
    await asyncio.sleep(0.1)
    await server.stop(grace_s=0.1)
    await ast.read_for(1.0)
    assert ast.hangup
    assert ast.eof


async def test_an_app_callback_that_raises_ends_that_call_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A callback's exception (on_audio, on_event, a call listener) escaped the ticker before it
    # scheduled the next tick: every call stopped being read and kept alive, and Asterisk
    # dropped them all 2 s later.
    ends: list[AudioSocketCall] = []

    async def handler(call: AudioSocketCall) -> None:
        ends.append(call)

        def on_audio(pcm: bytes) -> None:
            if pcm[:4] == b"boom":
                raise RuntimeError("a bug in the app")

        call.on_audio = on_audio
        await call.wait_closed()

    async with serving(handler, keepalive_interval_ms=100) as server:
        good, bad = await FakeAsterisk.connect(server.port), await FakeAsterisk.connect(server.port)
        good.start()
        bad.start()
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.ERROR, logger="pbx.audiosocket._server"):
            bad.send_audio(b"boom" + bytes(316))
            await bad.read_for(1.0)
        assert bad.eof
        assert "unexpected RuntimeError" in caplog.text
        bad_call = next(c for c in ends if c.uuid == bad.uuid)
        assert bad_call.end_reason is EndReason.APP_ERROR
        good.audio_frames.clear()
        await good.read_for(0.6)
        assert not good.eof
        assert len(good.audio_frames) >= 2  # still read and kept alive
        good.send_audio(bytes(320))
        good.close()
