"""The AudioSocket server: a thin asyncio adapter around :class:`AudioSocketConnection`.

Built for many concurrent calls: the data path is an ``asyncio.Protocol`` (no StreamReader,
no task per read), and ONE shared ticker writes every call's outgoing frame each 20 ms: the
app's queued audio if any, else silence, which keeps app_audiosocket from dropping an idle
call after 2 s. A call whose transport is paused (peer not reading) gets no keep-alive that
tick rather than an ever-growing buffer.

Per call, the server runs ``handler(call)`` once the UUID frame has arrived. Whatever happens
(handler returns or raises, peer misbehaves, timeouts, shutdown) the call ends; when we end it
we send 0x00 so the dialplan continues on its safe path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
import uuid as uuid_mod
from collections.abc import AsyncIterator, Awaitable, Callable

from pbx._exceptions import ProtocolError
from pbx.audiosocket._core import (
    NEED_DATA,
    SILENCE_20MS_FRAME,
    AudioReceived,
    AudioSocketConnection,
    CallStarted,
    DtmfReceived,
    ErrorReceived,
    PeerHangup,
    State,
    encode_audio_frame,
)
from pbx.audiosocket._exceptions import CallClosed, OutgoingAudioOverflow
from pbx.audiosocket._settings import AudioSocketSettings

log = logging.getLogger(__name__)

Handler = Callable[["AudioSocketCall"], Awaitable[None]]


class EndReason(enum.Enum):
    PEER_HANGUP = "peer_hangup"  # Asterisk closed (caller hung up) or sent 0x00
    LOCAL_HANGUP = "local_hangup"  # we sent 0x00: the dialplan continues
    UUID_TIMEOUT = "uuid_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    CALL_TIMEOUT = "call_timeout"
    PROTOCOL_ERROR = "protocol_error"
    OVERLOADED = "overloaded"  # the consumer fell behind: loud, never silent
    REFUSED = "refused"  # over max_sessions
    SHUTDOWN = "shutdown"


class AudioSocketCall:
    """One call on the AudioSocket. Read with ``async for event in call`` or set ``on_audio``."""

    def __init__(self, server: AudioSocketServer, peer: str) -> None:
        self._server = server
        self.peer = peer
        self.uuid: uuid_mod.UUID | None = None
        self.started_at = time.monotonic()
        # Fast path: a synchronous per-frame callback (e.g. the AMD detector). When set, audio
        # frames go to it and not to the event queue.
        self.on_audio: Callable[[bytes], None] | None = None
        self.end_reason: EndReason | None = None
        self.end_detail = ""
        self.frames_in = 0
        self.dtmf: list[str] = []
        self._events: collections.deque[AudioReceived | DtmfReceived | ErrorReceived] = (
            collections.deque()
        )
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._out = bytearray()
        self._max_out = int(server.settings.max_outgoing_s * 16000)
        self._frame_bytes = server.settings.keepalive_frame_ms * 16
        self._silence = (
            SILENCE_20MS_FRAME
            if self._frame_bytes == 320
            else encode_audio_frame(bytes(self._frame_bytes))
        )
        self._protocol: _CallProtocol | None = None
        self.last_rx = time.monotonic()

    # -- reading ----------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[AudioReceived | DtmfReceived | ErrorReceived]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioReceived | DtmfReceived | ErrorReceived]:
        while True:
            while self._events:
                yield self._events.popleft()
            if self._closed.is_set():
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    def _deliver(self, event: AudioReceived | DtmfReceived | ErrorReceived) -> None:
        if isinstance(event, DtmfReceived):
            self.dtmf.append(event.digit)
        if isinstance(event, AudioReceived):
            self.frames_in += 1
            if self.on_audio is not None:
                self.on_audio(event.pcm)
                return
        if len(self._events) >= self._server.settings.event_queue_frames:
            log.error(
                "audiosocket call %s from %s: consumer %d frames behind; ending the call",
                self.uuid,
                self.peer,
                len(self._events),
            )
            self._end(EndReason.OVERLOADED, "consumer too slow", send_hangup=True)
            return
        self._events.append(event)
        self._wakeup.set()

    # -- writing ----------------------------------------------------------------------------
    def send_audio(self, pcm: bytes) -> None:
        """Queue audio to play; the ticker sends it in real time in place of silence."""
        if self.closed:
            raise CallClosed(f"call {self.uuid} is closed")
        if len(pcm) % 2:
            raise ValueError("audio must be whole 16-bit samples")
        if len(self._out) + len(pcm) > self._max_out:
            raise OutgoingAudioOverflow(f"call {self.uuid}: more than the outgoing audio cap")
        self._out += pcm

    @property
    def outgoing_bytes(self) -> int:
        return len(self._out)

    def _next_frame(self) -> bytes:
        if not self._out:
            return self._silence
        chunk = bytes(self._out[: self._frame_bytes])
        del self._out[: self._frame_bytes]
        if len(chunk) < self._frame_bytes:  # pad the tail so the frame timing stays regular
            chunk += bytes(self._frame_bytes - len(chunk))
        return encode_audio_frame(chunk)

    async def hangup(self) -> None:
        """Send 0x00 and close: ``AudioSocket()`` returns and the dialplan continues."""
        self._end(EndReason.LOCAL_HANGUP, "", send_hangup=True)
        await self.wait_closed()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _end(self, reason: EndReason, detail: str, *, send_hangup: bool) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.end_detail = detail
        proto = self._protocol
        if proto is not None:
            proto.close(send_hangup=send_hangup)
        self._closed.set()
        self._wakeup.set()


class _CallProtocol(asyncio.Protocol):
    def __init__(self, server: AudioSocketServer) -> None:
        self.server = server
        self.core = AudioSocketConnection(server.settings.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.call: AudioSocketCall | None = None
        self.paused = False
        self.closing = False
        self._uuid_timer: asyncio.TimerHandle | None = None

    # asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.call = AudioSocketCall(self.server, peer_s)
        self.call._protocol = self
        if len(self.server.calls) >= self.server.settings.max_sessions:
            log.warning(
                "audiosocket: refusing %s: %d sessions (max_sessions); the dialplan continues",
                peer_s,
                len(self.server.calls),
            )
            self.call.end_reason = EndReason.REFUSED
            self.close(send_hangup=True)
            return
        self.server.calls.add(self.call)
        loop = asyncio.get_running_loop()
        self._uuid_timer = loop.call_later(self.server.settings.uuid_timeout_s, self._uuid_timeout)

    def data_received(self, data: bytes) -> None:
        call = self.call
        assert call is not None
        call.last_rx = self.server.now
        core = self.core
        on_audio = call.on_audio
        if on_audio is not None and not self.closing:
            frames = core.receive_audio_frames(data)
            if frames is not None:  # whole audio frames: straight to the detector
                call.frames_in += len(frames)
                for pcm in frames:
                    on_audio(pcm)
                return
        try:
            core.receive_data(data)
            while True:
                event = core.next_event()
                if event is NEED_DATA:
                    return
                if isinstance(event, AudioReceived | DtmfReceived | ErrorReceived):
                    call._deliver(event)
                    if call.closed:
                        return
                elif isinstance(event, CallStarted):
                    self._started(event)
                elif isinstance(event, PeerHangup):
                    call._end(EndReason.PEER_HANGUP, "0x00 from Asterisk", send_hangup=False)
                    return
        except ProtocolError as e:
            log.warning("audiosocket: closing %s (call %s): %s", call.peer, call.uuid or "-", e)
            call._end(EndReason.PROTOCOL_ERROR, str(e), send_hangup=False)

    def eof_received(self) -> bool:
        call = self.call
        assert call is not None
        try:
            self.core.receive_data(b"")
            event = self.core.next_event()
        except ProtocolError as e:
            log.warning("audiosocket: %s (call %s): %s", call.peer, call.uuid or "-", e)
            call._end(EndReason.PROTOCOL_ERROR, str(e), send_hangup=False)
            return False
        if isinstance(event, PeerHangup):
            call._end(EndReason.PEER_HANGUP, "connection closed by Asterisk", send_hangup=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
        call = self.call
        if call is not None:
            self.server.calls.discard(call)
            if not call.closed:
                call._end(EndReason.PEER_HANGUP, str(exc or "connection lost"), send_hangup=False)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # our side ----------------------------------------------------------------------------
    def _started(self, event: CallStarted) -> None:
        call = self.call
        assert call is not None
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
            self._uuid_timer = None
        call.uuid = event.uuid
        self.server._start_handler(call)

    def _uuid_timeout(self) -> None:
        call = self.call
        if call is not None and call.uuid is None and not call.closed:
            log.warning("audiosocket: %s sent no UUID frame in time; closing", call.peer)
            call._end(EndReason.UUID_TIMEOUT, "no UUID frame", send_hangup=False)

    def write_tick(self) -> None:
        call = self.call
        if self.paused or self.closing or call is None or call.uuid is None:
            return
        if self.core.state is not State.STREAMING:
            self.core._send(0x10)  # raises: the core says why audio cannot go out now
        # STREAMING -> STREAMING on audio: no transition to record on this hot path.
        assert self.transport is not None
        self.transport.write(call._next_frame() if call._out else call._silence)

    def close(self, *, send_hangup: bool) -> None:
        if self.closing:
            return
        self.closing = True
        t = self.transport
        if t is None or t.is_closing():
            return
        if send_hangup and self.core.state.value in ("STREAMING", "AWAIT_UUID"):
            with contextlib.suppress(ProtocolError):
                t.write(self.core.send_hangup())
        t.close()


class AudioSocketServer:
    def __init__(self, handler: Handler, settings: AudioSocketSettings | None = None) -> None:
        self.handler = handler
        self.settings = settings or AudioSocketSettings()
        self.calls: set[AudioSocketCall] = set()
        self.now = time.monotonic()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._last_idle_check = 0.0
        self.calls_total = 0
        self.errors_total = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _CallProtocol(self), self.settings.host, self.settings.port, reuse_address=True
        )
        self._next_tick = loop.time()
        self._tick()
        log.info("audiosocket server listening on %s:%d", self.settings.host, self.port)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = time.monotonic()
        for call in list(self.calls):
            proto = call._protocol
            if proto is not None:
                proto.write_tick()
        if self.now - self._last_idle_check >= 1.0:
            self._last_idle_check = self.now
            self._check_deadlines()
        period = self.settings.keepalive_frame_ms / 1000
        self._next_tick += period
        if self._next_tick < loop.time():  # we fell behind: do not burst to catch up
            self._next_tick = loop.time() + period
        self._ticker = loop.call_at(self._next_tick, self._tick)

    def _check_deadlines(self) -> None:
        s = self.settings
        for call in list(self.calls):
            if call.uuid is None or call.closed:
                continue
            if self.now - call.last_rx > s.idle_timeout_s:
                log.warning(
                    "audiosocket call %s: no frame for %.0f s; ending", call.uuid, s.idle_timeout_s
                )
                call._end(EndReason.IDLE_TIMEOUT, "idle", send_hangup=True)
            elif self.now - call.started_at > s.call_timeout_s:
                log.warning(
                    "audiosocket call %s: over the %.0f s cap; ending", call.uuid, s.call_timeout_s
                )
                call._end(EndReason.CALL_TIMEOUT, "call timeout", send_hangup=True)

    def _start_handler(self, call: AudioSocketCall) -> None:
        self.calls_total += 1
        task = asyncio.get_running_loop().create_task(self._run_handler(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, call: AudioSocketCall) -> None:
        try:
            async with asyncio.timeout(self.settings.call_timeout_s):
                await self.handler(call)
        except TimeoutError:
            log.warning(
                "audiosocket call %s: handler over %.0f s", call.uuid, self.settings.call_timeout_s
            )
            call._end(EndReason.CALL_TIMEOUT, "handler timeout", send_hangup=True)
        except asyncio.CancelledError:
            call._end(EndReason.SHUTDOWN, "cancelled", send_hangup=True)
            raise
        except Exception:
            self.errors_total += 1
            log.exception("audiosocket call %s: handler failed; ending the call", call.uuid)
        finally:
            if not call.closed:
                call._end(EndReason.LOCAL_HANGUP, "handler returned", send_hangup=True)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, give live calls ``grace_s`` to finish, then end them."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.abort()

    async def abort(self) -> None:
        for call in list(self.calls):
            call._end(EndReason.SHUTDOWN, "server stopping", send_hangup=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
