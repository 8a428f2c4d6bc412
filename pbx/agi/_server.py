"""The FastAGI server: a thin asyncio adapter around :class:`AgiServerConnection`.

Asterisk connects once per ``AGI(agi://host:port/script,args)``, sends the ``agi_*`` block and
then waits for commands. The server routes the session to a flow by ``agi_network_script``,
runs it as one task, and closes the socket when the flow ends: Asterisk never closes it, so a
flow that returned without closing would hold the channel in ``AGI()`` forever.

Every read has a deadline (the environment block, each command's answer, the whole session).
A command that gets no answer in time closes the session: AGI is strictly one command at a
time, so a late answer could never be matched to the right command again.

``200 result=-1`` means "the caller hung up" *or* "the command failed": res_agi answers a GET
DATA or STREAM FILE whose sound file is missing exactly as it answers a hang-up. The helpers ask
``CHANNEL STATUS`` before they conclude (:meth:`AgiSession.failed`): ``511`` or the ``HANGUP``
line is :class:`AgiHangup`; an answer is :class:`AgiCommandFailed`, and the caller is still
there.

Logs carry the verb of a command, never its arguments (``SAY DIGITS`` may be reading back a
card number), and a masked caller id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from pbx._exceptions import ProtocolError
from pbx.agi._core import (
    NEED_DATA,
    AgiEnvironment,
    AgiResponse,
    AgiServerConnection,
    HangupNotice,
    quote,
)
from pbx.agi._exceptions import (
    AgiCommandError,
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiSessionClosed,
    AgiTimeout,
)
from pbx.agi._settings import AgiSettings
from puente.redact import mask_number

log = logging.getLogger(__name__)

Handler = Callable[["AgiSession"], Awaitable[None]]


def _arg(value: str) -> str:
    """An argument as Asterisk reads it: bare when it is one plain token, else quoted."""
    if value and not any(c in value for c in ' "\\\t'):
        return value
    return quote(value)


def _verb(command: str) -> str:
    words = command.split(" ", 2)
    return " ".join(words[:2]) if len(words) > 1 and words[1].isupper() else words[0]


@dataclass(frozen=True)
class GetDataResult:
    digits: str
    timed_out: bool


class AgiSession:
    """One FastAGI connection, as a flow sees it."""

    def __init__(self, server: AgiServer, protocol: _AgiProtocol, peer: str) -> None:
        self._server = server
        self._protocol = protocol
        self.peer = peer
        self.env: AgiEnvironment | None = None
        self.started_at = time.monotonic()
        self.commands = 0
        self._pending: asyncio.Future[AgiResponse] | None = None
        self._deadline = 0.0
        self._command = ""
        self._hangup = asyncio.Event()
        self._closed = asyncio.Event()
        self.close_reason = ""

    # -- state ------------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        """Asterisk said ``HANGUP``: the caller is gone (the flow may still save its result)."""
        return self._hangup.is_set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def caller(self) -> str:
        """The caller id, masked for logs."""
        return mask_number(self.env.callerid if self.env else None)

    def __repr__(self) -> str:
        env = self.env
        return (
            f"<AgiSession {env.script if env else '?'} {env.uniqueid if env else '?'}"
            f" from {self.peer} caller {self.caller}>"
        )

    async def wait_hangup(self) -> None:
        await self._hangup.wait()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- commands ---------------------------------------------------------------------------
    async def command(self, command: str, timeout_s: float | None = None) -> AgiResponse:
        """Send one raw command and return Asterisk's answer, whatever its code."""
        if self.closed:
            raise AgiSessionClosed(f"{self!r} is closed ({self.close_reason})")
        if self._pending is not None:
            raise AgiError("AGI allows one command at a time; another is outstanding")
        proto = self._protocol
        data = proto.core.send_command(command)
        fut: asyncio.Future[AgiResponse] = asyncio.get_running_loop().create_future()
        self._pending = fut
        assert proto.transport is not None
        proto.transport.write(data)
        self.commands += 1
        self._server.commands_total += 1
        deadline = timeout_s if timeout_s is not None else self._server.settings.command_timeout_s
        # No timer per command: the server's watchdog checks every pending command's deadline
        # a few times a second (a TimerHandle per command costs more than the command).
        self._deadline = time.monotonic() + deadline
        self._command = command
        try:
            return await fut
        finally:
            self._pending = None

    def _check_deadline(self, now: float) -> None:
        fut = self._pending
        if fut is None or fut.done() or now < self._deadline:
            return
        verb = _verb(self._command)
        log.warning("agi %r: no answer to %s in time; closing the session", self, verb)
        self._server.timeouts_total += 1
        fut.set_exception(AgiTimeout(f"no answer to {verb} in time"))
        self._protocol.close("command timeout")

    async def _run(self, command: str, timeout_s: float | None = None) -> AgiResponse:
        """A command whose 510/520 is a bug in the flow and whose 511 means the caller left."""
        response = await self.command(command, timeout_s)
        if response.code == 511:
            self._hangup.set()
            raise AgiHangup(f"{_verb(command)}: channel is dead")
        if response.code != 200:
            raise AgiCommandError(command, response)
        return response

    def _media_timeout(self, own_ms: int | None = None) -> float:
        s = self._server.settings
        if own_ms is None or own_ms <= 0:
            return s.media_timeout_s
        return own_ms / 1000 + s.media_margin_s

    async def failed(self, verb: str) -> NoReturn:
        """``verb`` answered ``200 result=-1``: did the caller hang up, or did it fail?

        Asterisk answers both the same (res_agi's GET DATA prints ``result=-1`` for any
        negative ``ast_app_getdata_full``, which is also what a missing prompt file gives).
        After a hang-up it writes ``HANGUP`` and refuses channel commands with ``511``
        (agi/02, agi/03); on a live channel ``CHANNEL STATUS`` answers ``200 result=<state>``
        (agi/01). Raises :class:`AgiHangup` in the first case, :class:`AgiCommandFailed`
        in the second.
        """
        if not self.hung_up:
            response = await self.command("CHANNEL STATUS")
            if response.code == 200 and not self.hung_up:
                self._server.failures_total += 1
                log.warning(
                    "agi %r: %s failed on a live channel (a missing sound file?)", self, verb
                )
                raise AgiCommandFailed(verb, response.result_int)
            if response.code not in (200, 511):
                raise AgiCommandError("CHANNEL STATUS", response)
        self._hangup.set()
        raise AgiHangup(f"{verb}: channel is gone")

    def key_of(self, response: AgiResponse, verb: str) -> str | None:
        """The key a STREAM FILE, SAY or WAIT FOR DIGIT answer carries, or None.

        A result that is no key's code is a malformed answer on a live channel: logged (never
        the value: it may be a key), counted, and :class:`AgiCommandFailed` (the flow's error
        path) rather than a key the caller never pressed.
        """
        if response.bad_digit:
            self._server.errors_total += 1
            log.warning("agi %r: %s answered a result that is no key's code", self, verb)
            raise AgiCommandFailed(verb)
        return response.digit

    async def answer(self) -> None:
        response = await self._run("ANSWER")
        if response.result == "-1":
            await self.failed("ANSWER")

    async def hangup(self) -> None:
        """Hang the channel up (the flow should then end; the server closes the socket)."""
        await self._run("HANGUP")
        self._hangup.set()

    async def channel_status(self) -> int:
        response = await self._run("CHANNEL STATUS")
        return response.result_int if response.result_int is not None else -1

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; returns the key that interrupted it, if any.

        ``result=-1`` is a missing file or a hangup: logged, and the next channel command
        tells which (511 raises :class:`AgiHangup`).
        """
        response = await self._run(
            f"STREAM FILE {name} {quote(escape_digits)}", self._media_timeout()
        )
        if response.result == "-1":
            log.warning("agi %r: prompt %r did not play (missing file or hangup)", self, name)
            return None
        return self.key_of(response, "STREAM FILE")

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> GetDataResult:
        """Play ``prompt`` and collect up to ``max_digits`` keys (``#`` ends early).

        ``prompt=""`` collects with no prompt (``ast_app_getdata_full`` skips the file when
        the name is empty). A missing prompt file raises :class:`AgiCommandFailed` (the
        caller is still there: try another file, or none); a hang-up :class:`AgiHangup`.
        """
        response = await self._run(
            f"GET DATA {_arg(prompt)} {int(timeout_ms)} {int(max_digits)}",
            self._media_timeout() + timeout_ms / 1000 * max(1, max_digits),
        )
        if response.result == "-1":
            await self.failed("GET DATA")
        return GetDataResult(response.result, response.is_timeout)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """One key, or None on timeout."""
        response = await self._run(
            f"WAIT FOR DIGIT {int(timeout_ms)}", self._media_timeout(timeout_ms)
        )
        if response.result == "-1":
            await self.failed("WAIT FOR DIGIT")
        return self.key_of(response, "WAIT FOR DIGIT")

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        if not (digits.isascii() and digits.isdigit()):  # (isdigit alone: also "²")
            raise ValueError("say_digits takes digits 0-9 only")
        response = await self._run(
            f"SAY DIGITS {digits} {quote(escape_digits)}", self._media_timeout()
        )
        if response.result == "-1":
            await self.failed("SAY DIGITS")
        return self.key_of(response, "SAY DIGITS")

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        response = await self._run(
            f"SAY NUMBER {int(number)} {quote(escape_digits)}", self._media_timeout()
        )
        if response.result == "-1":
            await self.failed("SAY NUMBER")
        return self.key_of(response, "SAY NUMBER")

    async def say_date(self, epoch_s: int, escape_digits: str = "") -> str | None:
        response = await self._run(
            f"SAY DATE {int(epoch_s)} {quote(escape_digits)}", self._media_timeout()
        )
        if response.result == "-1":
            await self.failed("SAY DATE")
        return self.key_of(response, "SAY DATE")

    async def set_variable(self, name: str, value: str) -> None:
        await self._run(f"SET VARIABLE {name} {quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when unset (``200 result=0``)."""
        response = await self._run(f"GET VARIABLE {name}")
        return response.data if response.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        response = await self._run(f"GET FULL VARIABLE {quote(expression)}")
        return response.data if response.result == "1" else None

    async def exec(self, application: str, *args: str) -> int:
        """Run a dialplan application; returns its result (``-2``: no such application)."""
        command = f"EXEC {application}"
        if args:
            command += " " + _arg(",".join(args))
        response = await self._run(command, self._media_timeout())
        if response.result == "-2":
            raise AgiCommandError(command, response)
        return response.result_int if response.result_int is not None else -1

    async def verbose(self, message: str, level: int = 1) -> None:
        await self._run(f"VERBOSE {quote(message)} {int(level)}")

    async def noop(self) -> None:
        await self._run("NOOP")

    # -- called by the protocol -------------------------------------------------------------
    def _on_response(self, response: AgiResponse) -> None:
        fut = self._pending
        if fut is not None and not fut.done():
            fut.set_result(response)

    def _on_closed(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        self._hangup.set()
        self._closed.set()
        fut = self._pending
        if fut is not None and not fut.done():
            fut.set_exception(AgiHangup(f"connection closed: {reason}"))


class _AgiProtocol(asyncio.Protocol):
    def __init__(self, server: AgiServer) -> None:
        self.server = server
        s = server.settings
        self.core = AgiServerConnection(
            max_env_bytes=s.max_env_bytes, max_line_bytes=s.max_line_bytes
        )
        self.transport: asyncio.Transport | None = None
        self.session: AgiSession | None = None
        self._env_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.session = AgiSession(self.server, self, peer_s)
        if len(self.server.sessions) >= self.server.settings.max_sessions:
            log.warning(
                "agi: refusing %s: %d sessions (max_sessions); AGI() returns and the"
                " dialplan continues",
                peer_s,
                len(self.server.sessions),
            )
            self.server.refused_total += 1
            self.close("refused: max_sessions")
            return
        self.server.sessions.add(self.session)
        self._env_timer = asyncio.get_running_loop().call_later(
            self.server.settings.env_timeout_s, self._env_timeout
        )

    def data_received(self, data: bytes) -> None:
        session = self.session
        assert session is not None
        core = self.core
        try:
            core.receive_data(data)
            while (event := core.next_event()) is not NEED_DATA:
                if isinstance(event, AgiResponse):
                    session._on_response(event)
                elif isinstance(event, HangupNotice):
                    session._hangup.set()
                elif isinstance(event, AgiEnvironment):
                    self._started(event)
        except ProtocolError as e:
            self.server.errors_total += 1
            log.warning("agi: closing %s (%r): %s", session.peer, session, e)
            self.close(f"protocol error: {e}")
        except Exception as e:  # a bug on this path: this call ends, the server goes on
            self.server.errors_total += 1
            log.exception("agi: closing %s (%r): unexpected %s", session.peer, session,
                          type(e).__name__)  # fmt: skip
            self.close(f"unexpected {type(e).__name__}")

    def eof_received(self) -> bool:
        session = self.session
        assert session is not None
        try:
            self.core.receive_data(b"")
            self.core.next_event()
        except ProtocolError as e:
            log.warning("agi: %s (%r): %s", session.peer, session, e)
        self.close("connection closed by Asterisk")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._env_timer is not None:
            self._env_timer.cancel()
        session = self.session
        if session is not None:
            self.server.sessions.discard(session)
            session._on_closed(str(exc) if exc else "connection lost")

    def _started(self, env: AgiEnvironment) -> None:
        if self._env_timer is not None:
            self._env_timer.cancel()
            self._env_timer = None
        session = self.session
        assert session is not None
        session.env = env
        self.server._start_handler(session)

    def _env_timeout(self) -> None:
        session = self.session
        if session is not None and session.env is None:
            log.warning("agi: %s sent no complete environment block in time; closing", session.peer)
            self.server.errors_total += 1
            self.close("environment timeout")

    def close(self, reason: str) -> None:
        session = self.session
        if session is not None:
            session._on_closed(reason)
        with contextlib.suppress(ProtocolError):
            self.core.close()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class AgiServer:
    """Routes each session by ``agi_network_script`` to a flow handler.

    ``routes`` maps a script name (``agi://host/<script>``) to a handler; ``default`` takes the
    rest. With no handler for a script the session is closed at once (``AGISTATUS=SUCCESS``, the
    dialplan goes on) and a warning names the script.
    """

    def __init__(
        self,
        routes: Mapping[str, Handler],
        settings: AgiSettings | None = None,
        default: Handler | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.default = default
        self.settings = settings or AgiSettings()
        self.settings.validate()
        self.sessions: set[AgiSession] = set()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sessions_total = 0
        self.commands_total = 0
        self.errors_total = 0
        self.timeouts_total = 0
        self.refused_total = 0
        self.hangups_total = 0
        self.failures_total = 0  # result=-1 on a live channel (a missing sound file...)
        self._port: int | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.now = time.monotonic()

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings asked for 0)."""
        if self._port is None:
            raise RuntimeError("the AGI server is not started")
        return self._port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AgiProtocol(self),
            self.settings.host,
            self.settings.port,
            reuse_address=True,
            backlog=1024,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._tick()
        log.info("agi server listening on %s:%d", self.settings.host, self.port)

    WATCHDOG_PERIOD_S = 0.1

    def _tick(self) -> None:
        self.now = now = time.monotonic()
        for session in list(self.sessions):
            if session._pending is not None:
                session._check_deadline(now)
        self._watchdog = asyncio.get_running_loop().call_later(self.WATCHDOG_PERIOD_S, self._tick)

    def _route(self, script: str) -> Handler | None:
        name = script.strip("/")
        return self.routes.get(name) or self.routes.get(name.split("/", 1)[0]) or self.default

    def _start_handler(self, session: AgiSession) -> None:
        self.sessions_total += 1
        task = asyncio.get_running_loop().create_task(self._run_handler(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, session: AgiSession) -> None:
        assert session.env is not None
        handler = self._route(session.env.script)
        proto = session._protocol
        if handler is None:
            log.warning("agi %r: no flow for script %r; closing", session, session.env.script)
            proto.close("no route")
            return
        reason = "flow ended"
        try:
            async with asyncio.timeout(self.settings.session_timeout_s):
                await handler(session)
        except TimeoutError:
            reason = "session timeout"
            log.warning("agi %r: over %.0f s; closing", session, self.settings.session_timeout_s)
        except AgiHangup:
            reason = "caller hung up"
            self.hangups_total += 1
        except AgiError as e:
            reason = f"flow stopped: {e}"
            log.warning("agi %r: %s", session, e)
        except asyncio.CancelledError:
            proto.close("server stopping")
            raise
        except Exception:
            reason = "flow failed"
            self.errors_total += 1
            log.exception("agi %r: flow failed; closing the session", session)
        finally:
            # Asterisk never closes the FastAGI socket: we must, or the channel stays in AGI().
            proto.close(reason)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, give live flows ``grace_s`` to end, then close them."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.abort()

    async def abort(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for session in list(self.sessions):
            session._protocol.close("server stopping")
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
