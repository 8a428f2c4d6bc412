"""The simulated Asterisk over real TCP: a thin asyncio adapter around :class:`SimCore`.

- **AMI server** on ``host:ami_port``: the banner, Login (a wrong secret waits 1 s, answers
  ``Authentication failed`` and closes, as Asterisk does), Logoff, then every other action
  through :func:`pbx.sim._actions.handle_action`; events go to every logged-in connection.
- **AudioSocket legs**: when a channel runs ``AudioSocket()``, the simulator connects to the
  address (Puente's AudioSocket server), sends the UUID frame, then the callee's audio in real
  time, 320-byte frames every 20 ms. One shared ticker serves every leg (non-blocking sockets,
  no task per call). Puente's 0x00 or close ends ``AudioSocket()`` and the dialplan goes on;
  when the far end hangs up, the simulator closes the socket without 0x00, as Asterisk does.
  With ``audiosocket_silence_frames`` off, a leg sends nothing while its far end is silent (a
  Local channel, or a trunk that suppresses silence), and app_audiosocket's rule applies: 2 s
  with no frame in either direction fail ``AudioSocket()`` and the channel hangs up.
- **FastAGI legs**: for ``AGI(agi://...)`` it connects, sends the environment block (with
  ``agi_arg_N``) and answers each command with :class:`AgiResponder` (a scripted caller),
  taking each command's time on the channel. The caller's hang-up during a command makes it
  return ``-1`` and the ``HANGUP`` line precedes the next answer (or comes on its own after
  0.5 s of silence); a hang-up while idle writes it at once; after it, channel commands get
  511. ``SET VARIABLE`` writes the channel's variable table (``VarSet``), which the dialplan
  reads after ``AGI()``. Puente's close ends ``AGI()`` (``AGISTATUS=SUCCESS``).
- **Inbound calls** (:meth:`SimulatedAsterisk.call_in`): a call from the trunk run through the
  dialplan from ``context,exten,1``, its FastAGI legs played by the call's own key script.
  :meth:`SimulatedAsterisk.script_number` scripts the next AGI leg of an outbound call to a
  number; other legs use ``SimServerSettings.agi_keys``.
- **Observation** for tests: per call, the FastAGI dialogue (:meth:`agi_dialogue`), the channel
  variables even after the hangup (:meth:`call_variables`), and its end
  (:meth:`wait_call_ended`); ended calls beyond ``call_history`` are forgotten, oldest first.

Time is the event loop's clock, in seconds since :meth:`SimulatedAsterisk.start`; the core
only ever sees that number, so tests can also drive the core with virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid as uuid_mod
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pbx._exceptions import ProtocolError
from pbx.agi import CommandReader, encode_environment
from pbx.ami._message import BANNER, MessageFramer, encode_message
from pbx.audiosocket import (
    NEED_DATA,
    AsteriskSideConnection,
    ServerHangup,
)
from pbx.sim._actions import handle_action
from pbx.sim._agi_caller import AgiResponder
from pbx.sim._audio import FRAME_BYTES, content_s, render, sounding_frames, timeline
from pbx.sim._callees import CallFate
from pbx.sim._calls import DEFAULT_HISTORY, CallBook, CallRecord
from pbx.sim._core import (
    Broadcast,
    ChannelGone,
    EndMedia,
    Output,
    Reply,
    SimCore,
    StartAgi,
    StartAudioSocket,
)

log = logging.getLogger(__name__)

# Each leg renders this much of its callee's audio, and at least its whole greeting and beep
# and a second of the silence after them; past it, a second of line noise shared by every leg
# loops. 1,000 legs then hold 1,000 x 10 s of audio instead of 1,000 x 40 s.
AUDIO_HEAD_S = 10.0
# app_audiosocket's MAX_WAIT_TIMEOUT_MSEC: this long with no frame either way fails the app.
AUDIOSOCKET_IDLE_S = 2.0
# A HANGUP line owed after a command the hang-up interrupted goes out on its own after this
# long if Puente sends no command first (Asterisk notices the dead channel while idle).
HANGUP_LINE_S = 0.5


def _head(segments: list[tuple[str, float]], seconds: float) -> list[tuple[str, float]]:
    out, total = [], 0.0
    for kind, length in segments:
        if total >= seconds:
            break
        take = min(length, seconds - total)
        out.append((kind, take))
        total += take
    return out


def leg_audio(fate: CallFate, seed: int) -> bytes:
    """The head of what a callee sends on its AudioSocket leg (line noise loops after it)."""
    return render(_leg_head(fate), seed)


def _leg_head(fate: CallFate) -> list[tuple[str, float]]:
    segments = timeline(fate)
    return _head(segments, max(AUDIO_HEAD_S, content_s(segments) + 1.0))


@dataclass(frozen=True)
class SimServerSettings:
    host: str = "127.0.0.1"
    ami_port: int = 5038  # 0: any free port
    username: str = "puente"
    secret: str = field(default="puente", repr=False)
    # Where AudioSocket() and AGI() connect: Puente's servers. None: the dialplan's globals.
    audiosocket: str | None = None
    agi: str | None = None
    # Keys the scripted FastAGI caller presses, in order ('' = presses nothing, 'H' hangs up),
    # on every AGI leg that has no script of its own (call_in keys, script_number).
    agi_keys: tuple[str, ...] = ()
    # How long the scripted caller's prompts play, and each key it presses takes.
    agi_prompt_s: float = 1.5
    agi_key_s: float = 0.3
    # Ended calls whose variables and FastAGI dialogue stay observable.
    call_history: int = DEFAULT_HISTORY
    audio_seed: int = 1
    connect_timeout_s: float = 2.0
    login_failure_delay_s: float = 1.0
    # Faults on demand (also settable while running): every AMI reply this late, every AGI
    # answer this much slower.
    ami_reply_delay_s: float = 0.0
    agi_delay_s: float = 0.0
    # A leg sends frames through its far end's silences, as a PJSIP trunk's RTP does (recorded:
    # audiosocket/07). False: no frame while the far end is silent, as over a Local channel
    # (recorded: none during the far end's Record()) or a trunk that suppresses silence; then
    # Puente's keep-alive is what stops app_audiosocket from failing the call after 2 s, and
    # Puente's ``[amd] gaps_are_silence`` is what lets its detector hear the silences. Read
    # as each leg opens.
    audiosocket_silence_frames: bool = True


class _AmiConnection:
    def __init__(self, sim: SimulatedAsterisk, conn_id: int, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.id = conn_id
        self.writer = writer
        self.authenticated = False
        self.held: list[bytes] = []  # written while the connection is stalled

    def send(self, pairs: list[tuple[str, str]], *, reply: bool = False) -> None:
        data = encode_message(pairs)
        delay = self.sim.settings.ami_reply_delay_s if reply else 0.0
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self.write, data)
        else:
            self.write(data)

    def write(self, data: bytes) -> None:
        if self.sim.ami_stalled:
            self.held.append(data)
        elif not self.writer.is_closing():
            self.writer.write(data)


class _AudioLeg:
    """One ``AudioSocket()``: the Asterisk side of the socket, served by the shared ticker."""

    __slots__ = ("active_at", "call_id", "core", "ended", "frames", "position", "sock", "sounding")

    def __init__(
        self,
        call_id: str,
        sock: socket.socket,
        core: AsteriskSideConnection,
        pcm: bytes,
        sounding: list[bool] | None,
        now: float,
    ):
        self.call_id = call_id
        self.sock = sock
        self.core = core
        self.frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        # Per frame: does the far end make a sound. None: every frame goes out, silences too.
        self.sounding = sounding
        self.position = 0
        self.ended = False
        self.active_at = now  # the last frame either way (the UUID frame to start with)


class SimulatedAsterisk:
    """Serve one :class:`SimCore` over TCP. ``async with`` starts and stops it."""

    def __init__(self, core: SimCore, settings: SimServerSettings | None = None) -> None:
        self.core = core
        self.settings = settings or SimServerSettings()
        if self.settings.audiosocket:
            core.globals["PUENTE_AUDIOSOCKET"] = self.settings.audiosocket
        if self.settings.agi:
            core.globals["PUENTE_AGI"] = self.settings.agi
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _AmiConnection] = {}
        self.ami_stalled = False
        self._boot = 0.0
        self._agi_writers: dict[str, asyncio.StreamWriter] = {}
        self._next_conn = 1
        self._t0 = 0.0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._legs: dict[str, _AudioLeg] = {}
        self._agi: dict[str, asyncio.Queue[str]] = {}
        self._port: int | None = None
        self.audio_legs_total = 0
        noise = render([("silence", 1.0)], self.settings.audio_seed)
        self._noise = [noise[i : i + FRAME_BYTES] for i in range(0, len(noise), FRAME_BYTES)]
        self.agi_legs_total = 0
        self.media_failures = 0
        self.calls = CallBook(self.settings.call_history)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def ami_port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    def now(self) -> float:
        return time.monotonic() - self._t0

    async def start(self) -> None:
        self._t0 = time.monotonic()
        self.core.wall_zero = time.time()
        self._server = await asyncio.start_server(
            self._on_ami, self.settings.host, self.settings.ami_port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._driver = asyncio.get_running_loop().create_task(self._drive())
        self._next_tick = asyncio.get_running_loop().time()
        self._tick()
        log.info("simulated Asterisk: AMI on %s:%d", self.settings.host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            conn.writer.close()
        self._conns.clear()
        for leg in list(self._legs.values()):
            self._close_leg(leg)
        if self._ticker is not None:
            self._ticker.cancel()
        tasks = [t for t in (self._driver, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def __aenter__(self) -> SimulatedAsterisk:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults -------------------------------------------------------------------------------
    def drop_ami(self) -> None:
        """Cut every AMI connection (no Goodbye): the fault of a network blip."""
        for conn in list(self._conns.values()):
            conn.writer.transport.abort()

    def stall_ami(self) -> None:
        """Stop writing to AMI connections (a hung Asterisk); what would go out is held."""
        self.ami_stalled = True

    def resume_ami(self) -> None:
        self.ami_stalled = False
        for conn in list(self._conns.values()):
            held, conn.held = conn.held, []
            for data in held:
                conn.write(data)

    def send_garbage(self, data: bytes = b"\x00\xffnot AMI at all\r\n\r\n") -> None:
        """Write bytes that are not AMI to every connection."""
        for conn in list(self._conns.values()):
            conn.write(data)

    def restart(self) -> None:
        """Asterisk restarts: every channel is gone, every AMI connection dropped (an
        AudioSocket connection still being opened closes once it connects)."""
        for leg in list(self._legs.values()):
            self._close_leg(leg)
        for writer in list(self._agi_writers.values()):
            writer.transport.abort()
        self.core.restart()
        self.calls.all_gone()
        self._boot = self.now()
        self.drop_ami()

    # -- the core -----------------------------------------------------------------------------
    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def apply(self, outputs: list[Output]) -> None:
        """Carry out what the core decided, and wake the driver for its new timers."""
        for out in outputs:
            if isinstance(out, Broadcast):
                for conn in list(self._conns.values()):
                    if conn.authenticated:
                        conn.send(out.pairs)
            elif isinstance(out, Reply):
                conn = self._conns.get(out.conn)
                if conn is not None:
                    conn.send(out.pairs, reply=True)
            elif isinstance(out, StartAudioSocket):
                self._spawn(self._open_audiosocket(out))
            elif isinstance(out, StartAgi):
                rec = self._agi_leg_record(out.call_id)
                self.calls.agi_leg_opened(rec)
                self._spawn(self._run_agi(out, rec))
            elif isinstance(out, ChannelGone):
                self.calls.channel_gone(out.call_id, out.variables)
            elif isinstance(out, EndMedia):
                leg = self._legs.get(out.call_id)
                if leg is not None:
                    self._close_leg(leg)  # Asterisk just closes: no 0x00
                agi = self._agi.get(out.call_id)
                if agi is not None:
                    agi.put_nowait("HANGUP")
        self._wake.set()

    async def _drive(self) -> None:
        while True:
            self.apply(self.core.advance(self.now()))
            deadline = self.core.next_deadline()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    None if deadline is None else max(0.0, deadline - self.now())
                ):
                    await self._wake.wait()

    # -- calls (tests) --------------------------------------------------------------------------
    def call_in(
        self,
        exten: str,
        *,
        caller: str,
        keys: Sequence[str] = (),
        context: str = "puente-inbound",
        variables: Mapping[str, str] | None = None,
    ) -> str:
        """An inbound call from the trunk to ``exten``; returns its id (the Uniqueid).

        The call's FastAGI legs share ``keys`` (consumed in order; the caller hangs up when
        they run out at a prompt). Call it from the event loop.
        """
        ch, outputs = self.core.call_in(
            exten, self.now(), caller=caller, context=context, variables=variables
        )
        self.calls.open(ch.id, ch.variables, keys=keys)
        self.apply(outputs)
        return ch.id

    def script_number(self, number: str, keys: Sequence[str]) -> None:
        """The next outbound call to ``number`` that runs AGI() uses these keys (all its legs).

        Scripts for one number queue up: each call takes the oldest.
        """
        self.calls.script_number(number, keys)

    def agi_dialogue(self, call_id: str) -> list[tuple[str, str]]:
        """(command Puente sent, answer written) in order; ``("", "HANGUP")`` for the notice."""
        return list(self._record(call_id).dialogue)

    def call_variables(self, call_id: str) -> dict[str, str]:
        """The channel's variables (still there after the hangup), globals not included."""
        return dict(self._record(call_id).variables)

    async def wait_call_ended(self, call_id: str, timeout_s: float) -> None:
        """Until the channel is gone and its FastAGI legs closed; :class:`TimeoutError`."""
        rec = self._record(call_id)
        async with asyncio.timeout(timeout_s):
            await rec.wait_ended()

    def _record(self, call_id: str) -> CallRecord:
        rec = self.calls.get(call_id)
        if rec is not None:
            return rec
        ch = self.core.channels.get(call_id)
        if ch is None:
            raise KeyError(
                f"no call {call_id!r}: unknown, or ended more than {self.calls.history} calls ago"
            )
        return self.calls.open(call_id, ch.variables)

    def _agi_leg_record(self, call_id: str) -> CallRecord:
        rec = self._record(call_id)
        ch = self.core.channels.get(call_id)
        if rec.keys is None and ch is not None and not ch.inbound:
            rec.keys = self.calls.take_number_script(ch.number)
        return rec

    # -- AMI ----------------------------------------------------------------------------------
    async def _on_ami(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _AmiConnection(self, self._next_conn, writer)
        self._next_conn += 1
        self._conns[conn.id] = conn
        framer = MessageFramer()
        writer.write(BANNER)
        try:
            while data := await reader.read(65536):
                for msg in framer.feed(data):
                    if not await self._on_action(conn, msg.pairs):
                        return
        except (ProtocolError, ConnectionError) as e:
            log.warning("simulated AMI: closing connection %d: %s", conn.id, e)
        finally:
            self._conns.pop(conn.id, None)
            writer.close()

    async def _on_action(self, conn: _AmiConnection, pairs: list[tuple[str, str]]) -> bool:
        fields = {k.lower(): v for k, v in pairs}
        action = fields.get("action", "").lower()
        aid = [("ActionID", fields["actionid"])] if "actionid" in fields else []
        if action == "login":
            s = self.settings
            if fields.get("username") == s.username and fields.get("secret") == s.secret:
                conn.authenticated = True
                conn.send([("Response", "Success"), *aid, ("Message", "Authentication accepted")])
                uptime = str(int(self.now() - self._boot))
                conn.send(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ]
                )
                return True
            await asyncio.sleep(s.login_failure_delay_s)
            conn.send([("Response", "Error"), *aid, ("Message", "Authentication failed")])
            await conn.writer.drain()
            return False
        if action == "logoff":
            conn.send([("Response", "Goodbye"), *aid, ("Message", "Thanks for all the fish.")])
            await conn.writer.drain()
            return False
        if not conn.authenticated:
            conn.send([("Response", "Error"), *aid, ("Message", "Permission denied")])
            return True
        self.apply(handle_action(self.core, conn.id, pairs, self.now()))
        return True

    # -- AudioSocket legs -----------------------------------------------------------------------
    async def _open_audiosocket(self, start: StartAudioSocket) -> None:
        try:
            call_uuid = uuid_mod.UUID(start.uuid)
        except ValueError:
            # app_audiosocket: "Failed to parse UUID", the application returns -1.
            self.media_failures += 1
            log.warning("simulated AudioSocket(): %r is not a UUID; the app fails", start.uuid)
            self.apply(self.core.media_failed(start.call_id, self.now()))
            return
        host, _, port = start.address.rpartition(":")
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await loop.sock_connect(sock, (host, int(port)))
            if start.call_id not in self.core.channels:
                # The channel went while connecting (a restart, a hang-up): app_audiosocket
                # would see the hang-up at once and close the connection.
                sock.close()
                return
        except (OSError, TimeoutError, ValueError) as e:
            sock.close()
            self.media_failures += 1
            log.warning("simulated AudioSocket(): cannot connect to %s: %s", start.address, e)
            # app_audiosocket returns -1 (the channel hangs up unless under TryExec()).
            self.apply(self.core.media_failed(start.call_id, self.now()))
            return
        core = AsteriskSideConnection(call_uuid)
        head = _leg_head(start.fate)
        pcm = render(head, self.settings.audio_seed ^ zlib.crc32(start.call_id.encode()))
        sounding = None if self.settings.audiosocket_silence_frames else sounding_frames(head)
        leg = _AudioLeg(start.call_id, sock, core, pcm, sounding, loop.time())
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.send(core.start())
        self._legs[start.call_id] = leg
        self.audio_legs_total += 1

    def _tick(self) -> None:
        """Every 20 ms: one frame out and whatever came in, for every AudioSocket leg."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for leg in list(self._legs.values()):
            self._serve_leg(leg, now)
        # On a fixed schedule (no drift); when we fall behind, skip rather than burst.
        self._next_tick = max(self._next_tick + 0.02, loop.time())
        self._ticker = loop.call_at(self._next_tick, self._tick)

    def _serve_leg(self, leg: _AudioLeg, now: float) -> None:
        try:
            data = leg.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data is not None:
            if data == b"":
                self._leg_ended(leg, "closed by Puente")
                return
            leg.active_at = now
            try:
                leg.core.receive_data(data)
                while (event := leg.core.next_event()) is not NEED_DATA:
                    if isinstance(event, ServerHangup):
                        self._leg_ended(leg, "0x00 from Puente")
                        return
            except ProtocolError as e:  # e.g. 0x03 from Puente: app_audiosocket returns -1
                log.warning("simulated AudioSocket(): %s; the app fails", e)
                self._close_leg(leg)
                self.apply(self.core.media_failed(leg.call_id, self.now()))
                return
        position = leg.position
        leg.position += 1
        sounding = leg.sounding
        if sounding is not None and not (position < len(sounding) and sounding[position]):
            # The far end is silent and nothing carries its silence: no frame. app_audiosocket
            # fails (returns -1) after 2 s with no frame either way.
            if now - leg.active_at >= AUDIOSOCKET_IDLE_S:
                log.warning(
                    "simulated AudioSocket(): no activity for %.0f ms on %s; the app fails",
                    AUDIOSOCKET_IDLE_S * 1000,
                    leg.call_id,
                )
                self.media_failures += 1
                self._close_leg(leg)
                self.apply(self.core.media_failed(leg.call_id, self.now()))
            return
        if position < len(leg.frames):
            frame = leg.frames[position]
        else:  # past the rendered head: line noise, shared by every leg
            frame = self._noise[position % len(self._noise)]
        leg.active_at = now
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            leg.sock.send(leg.core.send_audio(frame))

    def _leg_ended(self, leg: _AudioLeg, why: str) -> None:
        self._close_leg(leg)
        self.apply(self.core.media_ended(leg.call_id, self.now()))

    def _close_leg(self, leg: _AudioLeg) -> None:
        if leg.ended:
            return
        leg.ended = True
        self._legs.pop(leg.call_id, None)
        leg.sock.close()

    @property
    def audio_streams(self) -> int:
        return len(self._legs)

    # -- FastAGI legs -----------------------------------------------------------------------------
    async def _run_agi(self, start: StartAgi, rec: CallRecord) -> None:
        try:
            await self._agi_leg(start, rec)
        finally:
            self.calls.agi_leg_closed(rec)

    async def _agi_leg(self, start: StartAgi, rec: CallRecord) -> None:
        call_id = start.call_id
        rest = start.url.split("://", 1)[-1]
        hostport = rest.split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        if not host:
            host, port = hostport, "4573"
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                reader, writer = await asyncio.open_connection(host, int(port))
        except (OSError, TimeoutError, ValueError) as e:
            self.media_failures += 1
            log.warning("simulated AGI(): cannot connect to %s: %s", hostport, e)
            self.apply(self.core.media_ended(call_id, self.now(), agi_status="FAILURE"))
            return
        self.agi_legs_total += 1
        self._agi_writers[call_id] = writer
        notices: asyncio.Queue[str] = asyncio.Queue()
        self._agi[call_id] = notices
        # Per-call keys are shared by the call's legs (one list, consumed in place).
        keys = rec.keys if rec.keys is not None else list(self.settings.agi_keys)
        caller = AgiResponder(
            keys=keys,
            variables=rec.variables,
            builtins=start.builtins,
            prompt_s=self.settings.agi_prompt_s,
            key_s=self.settings.agi_key_s,
        )
        commands = CommandReader()
        pending: list[str] = []
        owed_hangup_line = False  # the HANGUP line goes before the next response
        ignore_notices = False  # the flow's own HANGUP command ended the channel

        def hangup_line() -> None:
            writer.write(b"HANGUP\n")
            rec.dialogue.append(("", "HANGUP"))

        try:
            writer.write(encode_environment(start.env))
            while True:
                while not pending:
                    read = asyncio.ensure_future(reader.read(4096))
                    notice = asyncio.ensure_future(notices.get())
                    done, _ = await asyncio.wait(
                        {read, notice},
                        timeout=HANGUP_LINE_S if owed_hangup_line else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if notice in done and not ignore_notices and not caller.dead:
                        caller.dead = True  # idle: Asterisk writes the line on its own
                        hangup_line()
                    if notice not in done:
                        notice.cancel()
                    if read not in done:
                        read.cancel()
                        if not done and owed_hangup_line:  # idle since: it notices now
                            owed_hangup_line = False
                            hangup_line()
                        continue
                    data = read.result()
                    if not data:  # Puente closed the socket: AGI() returns
                        if not caller.dead:
                            self.apply(self.core.media_ended(call_id, self.now()))
                        return
                    pending += commands.feed(data)
                command = pending.pop(0)
                verb = command.strip().upper()
                answer = caller.respond(command)
                text = answer.text
                hung_up_during = False
                if self.settings.agi_delay_s > 0:  # fault: a slow PBX
                    await asyncio.sleep(self.settings.agi_delay_s)
                if answer.duration_s > 0 and not caller.dead:
                    try:
                        async with asyncio.timeout(answer.duration_s):
                            await notices.get()
                        # The caller hung up while the command was on the channel.
                        caller.dead = hung_up_during = True
                        text = (
                            "200 result=-1 endpos=0\n" if "endpos=" in text else ("200 result=-1\n")
                        )
                    except TimeoutError:
                        pass
                if owed_hangup_line:
                    hangup_line()
                    owed_hangup_line = False
                writer.write(text.encode())
                rec.dialogue.append((command, text.removesuffix("\n")))
                if answer.assigned is not None:
                    self.apply(self.core.set_variable(call_id, *answer.assigned))
                if verb == "ANSWER" and text.startswith("200"):
                    self.apply(self.core.answer(call_id, self.now()))
                if verb == "HANGUP" and text.startswith("200 result=1"):
                    owed_hangup_line = True
                    ignore_notices = True
                    self.apply(self.core.far_end_hangup(call_id, self.now()))
                elif answer.hangup_after and not caller.dead:
                    # The scripted caller hung up during the command: -1 now, the line next.
                    caller.dead = owed_hangup_line = True
                    self.apply(self.core.far_end_hangup(call_id, self.now()))
                elif hung_up_during:
                    owed_hangup_line = True
        except (ConnectionError, OSError):
            if not caller.dead:
                self.apply(self.core.media_ended(call_id, self.now()))
        finally:
            self._agi.pop(call_id, None)
            self._agi_writers.pop(call_id, None)
            writer.close()
