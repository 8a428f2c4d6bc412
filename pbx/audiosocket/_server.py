"""The AudioSocket server: a thin asyncio adapter around :class:`AudioSocketConnection`.

Built for many concurrent calls: ONE shared ticker, every 40 ms by default, reads each
call's non-blocking socket (whatever arrived: usually two frames) and writes what is due:
the app's queued audio, paced in real time (a tick's frames, two 20 ms frames by default, in
one send), or, when the app has nothing queued, one frame of silence once nothing was written
to the call for ``keepalive_interval_ms`` (500 ms by default). That keep-alive is all
app_audiosocket needs: it drops a call only after 2 s with no frame in either direction
(over a Local channel Asterisk sends nothing while the far end is silent), and the caller
hears silence whether or not silence is sent. No selector registration, no task and no
callback per call or per read, and no send per call per tick: at 1,000 calls that is what
the CPU budget allows. A call whose peer is not reading gets nothing more that tick rather
than an ever-growing buffer.

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
import socket
import time
import uuid as uuid_mod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

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
    APP_ERROR = "app_error"  # the app's callback raised: that call ends, the others go on


class AudioSocketCall:
    """One call on the AudioSocket. Read with ``async for event in call`` or set ``on_audio``."""

    def __init__(self, server: AudioSocketServer, peer: str) -> None:
        self._server = server
        self.peer = peer
        self.uuid: uuid_mod.UUID | None = None
        self.started_at = time.monotonic()
        self._on_audio: Callable[[bytes], None] | None = None
        self._on_event: Callable[[DtmfReceived | ErrorReceived], None] | None = None
        self.end_reason: EndReason | None = None
        self.end_detail = ""
        self.frames_in = 0
        self._events: collections.deque[AudioReceived | DtmfReceived | ErrorReceived] = (
            collections.deque()
        )
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._out = bytearray()
        self._max_out = int(server.settings.max_outgoing_s * 16000)
        self._frame_bytes = server.settings.keepalive_frame_ms * 16
        self._frames_per_tick = server.settings.frames_per_tick
        # One frame of silence: the keep-alive, and the padding of the app's last block.
        self._silence = (
            SILENCE_20MS_FRAME
            if self._frame_bytes == 320
            else encode_audio_frame(bytes(self._frame_bytes))
        )
        self._protocol: _CallSocket | None = None
        self.last_rx = time.monotonic()

    # -- reading ----------------------------------------------------------------------------
    @property
    def on_audio(self) -> Callable[[bytes], None] | None:
        """Fast path: a synchronous per-frame callback (e.g. the AMD detector).

        While set, audio frames go to it and not to the event queue. Setting it first hands it
        the audio already queued (frames that arrived with the UUID, before the handler ran),
        in order, so it sees every frame of the call; DTMF and errors stay in the queue.
        """
        return self._on_audio

    @on_audio.setter
    def on_audio(self, callback: Callable[[bytes], None] | None) -> None:
        self._on_audio = callback
        if callback is not None:
            self._hand_queued(audio=True, to=lambda event: callback(event.pcm))

    @property
    def on_event(self) -> Callable[[DtmfReceived | ErrorReceived], None] | None:
        """Fast path for the other frames: a synchronous callback for DTMF and Asterisk's
        error frames. While set, they go to it and not to the event queue, so a burst of them
        (however many one socket read holds) can never overload the call. Setting it first
        hands it those already queued, in order; audio stays in the queue."""
        return self._on_event

    @on_event.setter
    def on_event(self, callback: Callable[[DtmfReceived | ErrorReceived], None] | None) -> None:
        self._on_event = callback
        if callback is not None:
            self._hand_queued(audio=False, to=callback)

    def _hand_queued(self, *, audio: bool, to: Callable[[Any], None]) -> None:
        """Hand ``to`` the queued events of one kind (audio, or the others), in order; the
        rest stay queued."""
        if not self._events:
            return
        kept: collections.deque[AudioReceived | DtmfReceived | ErrorReceived] = collections.deque()
        for event in self._events:
            if isinstance(event, AudioReceived) == audio:
                to(event)
            else:
                kept.append(event)
        self._events = kept

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
        if isinstance(event, AudioReceived):
            self.frames_in += 1
            if self._on_audio is not None:
                self._on_audio(event.pcm)
                return
        elif self._on_event is not None:
            self._on_event(event)
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
        """Queue audio to play; the ticker sends it in real time, a tick's frames each tick
        (the keep-alive is not needed meanwhile)."""
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

    def _next_block(self) -> bytes:
        """One tick's frames of the app's audio (padded with silence at its end)."""
        return b"".join(self._next_frame() for _ in range(self._frames_per_tick))

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


class _CallSocket:
    """One call's socket, polled by the server's ticker (no selector, no callback per read).

    Every tick (40 ms by default) the ticker reads whatever Asterisk sent and writes what is
    due in one send: a tick's frames of the app's audio, or the keep-alive when nothing was
    written for ``keepalive_interval_ms``. The selector, a handle and a callback per frame are
    gone; one syscall per call per tick remains (the read), plus a write for app audio or
    the keep-alive.
    A frame waits at most one tick before we read it, which nothing on this path notices
    (an AMD decision takes hundreds of milliseconds).
    """

    __slots__ = (
        "_pending_out",
        "call",
        "closing",
        "core",
        "last_tx",
        "peer",
        "server",
        "sock",
        "started_at",
    )

    def __init__(self, server: AudioSocketServer, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.core = AudioSocketConnection(server.settings.max_frame_bytes)
        self.call = AudioSocketCall(server, peer)
        self.call._protocol = self
        self.closing = False
        self.started_at = server.now
        #: When we last wrote to the call (the keep-alive interval counts from the connect).
        self.last_tx = server.now
        self._pending_out = b""

    # reading ------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read what has arrived and act on it."""
        try:
            data = self.sock.recv(_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._peer_gone(f"connection lost: {e}")
            return
        if not data:
            self._eof()
            return
        call = self.call
        call.last_rx = self.server.now
        core = self.core
        on_audio = call._on_audio
        if on_audio is not None:
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
                    call.uuid = event.uuid
                    self.server._start_handler(call)
                elif isinstance(event, PeerHangup):
                    call._end(EndReason.PEER_HANGUP, "0x00 from Asterisk", send_hangup=False)
                    return
        except ProtocolError as e:
            log.warning("audiosocket: closing %s (call %s): %s", self.peer, call.uuid or "-", e)
            call._end(EndReason.PROTOCOL_ERROR, str(e), send_hangup=False)

    def _eof(self) -> None:
        call = self.call
        try:
            self.core.receive_data(b"")
            event = self.core.next_event()
        except ProtocolError as e:
            log.warning("audiosocket: %s (call %s): %s", self.peer, call.uuid or "-", e)
            call._end(EndReason.PROTOCOL_ERROR, str(e), send_hangup=False)
            return
        if isinstance(event, PeerHangup) or not call.closed:
            self._peer_gone("connection closed by Asterisk")

    def _peer_gone(self, why: str) -> None:
        self.call._end(EndReason.PEER_HANGUP, why, send_hangup=False)

    # writing ------------------------------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        """Send now; keep what the kernel did not take. False when the peer is not reading."""
        if self._pending_out:
            data = self._pending_out + data
            self._pending_out = b""
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as e:
            self._peer_gone(f"connection lost: {e}")
            return False
        if sent < len(data):
            self._pending_out = data[sent:]
            return False
        return True

    def close(self, *, send_hangup: bool) -> None:
        if self.closing:
            return
        self.closing = True
        self.server._sockets.pop(self.sock.fileno(), None)
        if send_hangup and self.core.state in (State.STREAMING, State.AWAIT_UUID):
            with contextlib.suppress(ProtocolError, OSError):
                self._write(self.core.send_hangup())
        # What the kernel did not take is dropped: Asterisk sees the close, which also ends
        # AudioSocket() with the dialplan going on.
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.calls.discard(self.call)


_READ_BYTES = 65536


class AudioSocketServer:
    def __init__(self, handler: Handler, settings: AudioSocketSettings | None = None) -> None:
        self.handler = handler
        self.settings = settings or AudioSocketSettings()
        self.settings.validate()  # e.g. a keep-alive too rare would get every call dropped
        self.calls: set[AudioSocketCall] = set()
        self.now = time.monotonic()
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._sockets: dict[int, _CallSocket] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._last_idle_check = 0.0
        self.calls_total = 0
        self.errors_total = 0
        self.refused_total = 0
        #: Called once per tick, after every call's socket was read (and the next tick was
        #: scheduled): a consumer that batches (the AMD detectors) handles everything that
        #: arrived in that pass at once.
        self.tick_listeners: list[Callable[[], None]] = []
        #: Called with each call as its UUID arrives, before its handler is started and before
        #: any frame after the UUID is read: where an app sets ``on_audio``/``on_event`` on
        #: which no frame (of a burst in the same socket read) may be missed or queued.
        self.call_listeners: list[Callable[[AudioSocketCall], None]] = []

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings asked for 0)."""
        if self._port is None:
            raise RuntimeError("the AudioSocket server is not started")
        return self._port

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self.settings.host, self.settings.port, type=socket.SOCK_STREAM
        )
        family, _, _, _, address = infos[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(1024)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        loop.add_reader(listener.fileno(), self._accept_ready)
        self._next_tick = loop.time()
        self._tick()
        log.info("audiosocket server listening on %s:%d", self.settings.host, self.port)

    def _accept_ready(self) -> None:
        listener = self._listener
        if listener is None:
            return
        for _ in range(256):  # a burst of connects, without starving the loop
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("audiosocket: accept failed: %s", e)
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
            conn = _CallSocket(self, sock, peer)
            if len(self.calls) >= self.settings.max_sessions:
                log.warning(
                    "audiosocket: refusing %s: %d sessions (max_sessions); the dialplan continues",
                    peer,
                    len(self.calls),
                )
                self.refused_total += 1
                conn.call.end_reason = EndReason.REFUSED
                conn.close(send_hangup=True)
                continue
            self._sockets[sock.fileno()] = conn
            self.calls.add(conn.call)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = now = time.monotonic()
        uuid_deadline = now - self.settings.uuid_timeout_s
        # Written to no later than this: the call needs its keep-alive.
        keepalive_due = now - self.settings.keepalive_interval_ms / 1000
        for conn in list(self._sockets.values()):
            if conn.closing:
                continue
            try:
                conn.poll()  # read first: a frame that ends the call ends it before we write
            except Exception as e:  # the app's callback (on_audio, on_event, a listener)
                self.errors_total += 1
                log.exception("audiosocket: call %s: unexpected %s in the app; ending it",
                              conn.call.uuid or "-", type(e).__name__)  # fmt: skip
                conn.call._end(EndReason.APP_ERROR, f"unexpected {type(e).__name__}",
                               send_hangup=True)  # fmt: skip
                continue
            if conn.closing:
                continue
            call = conn.call
            if call.uuid is None:
                if conn.started_at < uuid_deadline:
                    log.warning("audiosocket: %s sent no UUID frame in time; closing", conn.peer)
                    call._end(EndReason.UUID_TIMEOUT, "no UUID frame", send_hangup=False)
                continue
            if conn._pending_out and not conn._write(b""):
                continue  # the peer is not reading: nothing more, not a growing buffer
            if call._out:
                block = call._next_block()  # the app's audio: every tick, in real time
            elif conn.last_tx <= keepalive_due:
                block = call._silence  # the keep-alive
            else:
                continue  # written to recently: app_audiosocket's 2 s are far off
            if conn.core.state is not State.STREAMING:
                conn.core._send(0x10)  # raises: the core says why audio cannot go out now
            # STREAMING -> STREAMING on audio: no transition to record on this hot path.
            conn.last_tx = now
            conn._write(block)
        if now - self._last_idle_check >= 1.0:
            self._last_idle_check = now
            self._check_deadlines()
        period = self.settings.keepalive_frame_ms * self.settings.frames_per_tick / 1000
        self._next_tick += period
        if self._next_tick < loop.time():  # we fell behind: do not burst to catch up
            self._next_tick = loop.time() + period
        self._ticker = loop.call_at(self._next_tick, self._tick)
        # Last, once the next tick is set from this one's start: a listener's work (a batch
        # of AMD analysis) does not push the schedule back.
        for listener in self.tick_listeners:
            try:
                listener()
            except Exception:
                log.exception("audiosocket: tick listener %r failed", listener)

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
        for listener in self.call_listeners:
            listener(call)
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

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, give live calls ``grace_s`` to finish, then end them."""
        self._stop_listening()
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.abort()

    async def abort(self) -> None:
        self._stop_listening()
        for call in list(self.calls):
            call._end(EndReason.SHUTDOWN, "server stopping", send_hangup=True)
        for conn in list(self._sockets.values()):
            conn.close(send_hangup=False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
