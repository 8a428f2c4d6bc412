"""FastAGI, sans-I/O, server (Puente) side; plus the encoders Asterisk's side needs.

Recorded facts (Asterisk 22.10.1, ``tests/data/asterisk-transcripts/agi``):

- Asterisk connects and sends ``agi_*: value`` lines (LF only) ended by an empty line.
- One command at a time; each answer is one line ``200 result=N [(data)] [endpos=M]``, ``510``,
  ``511``, or a ``520-`` block ended by ``520 End of proper usage.`` whose middle lines have no
  prefix at all.
- When the channel hangs up, Asterisk writes ``HANGUP`` on its own line: while idle, or just
  before the next response. After that, channel I/O commands get 511; GET VARIABLE, NOOP and
  EXEC still get 200. Asterisk never closes the socket: the server does.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass, field

from pbx._exceptions import LocalProtocolError, RemoteProtocolError

DEFAULT_MAX_ENV_BYTES = 16384
DEFAULT_MAX_ENV_LINES = 200
DEFAULT_MAX_LINE_BYTES = 8192
MAX_520_LINES = 200
DTMF_KEYS = "0123456789*#ABCD"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` block. ``args`` are ``agi_arg_1..N`` with spaces kept."""

    variables: dict[str, str]
    args: tuple[str, ...]

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(name if name.startswith("agi_") else f"agi_{name}", default)

    @property
    def script(self) -> str:
        """The path of ``agi://host/<script>``: what routes the call to a flow."""
        return self.get("network_script")

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def dnid(self) -> str:
        return self.get("dnid")

    @property
    def language(self) -> str:
        return self.get("language")


_RESPONSE = re.compile(r"^200 result=(-?[0-9*#]*)(?: \((.*?)\))?(?: endpos=(-?[0-9]{1,18}))?\s*$")


@dataclass(frozen=True)
class AgiResponse:
    code: int  # 200, 510, 511, 520
    result: str = ""  # the text after result= ('' for GET DATA timeouts with no digits)
    data: str | None = None  # the parenthesised part, e.g. '(timeout)' -> 'timeout'
    endpos: int | None = None
    text: str = ""  # the whole response (all lines of a 520 block)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def is_timeout(self) -> bool:
        return self.data == "timeout"

    @property
    def digit(self) -> str | None:
        """WAIT FOR DIGIT / STREAM FILE: the key pressed (result is its ASCII code), else None.

        None too for a code that is no DTMF key's (see :attr:`bad_digit`)."""
        n = self.result_int
        if n is None or not 0 < n < 128 or chr(n) not in DTMF_KEYS:
            return None
        return chr(n)

    @property
    def bad_digit(self) -> bool:
        """``result=`` is a positive number that is no DTMF key's code (``99999999``): to a
        command that answers with a key, a malformed answer, not "no key pressed"."""
        n = self.result_int
        return n is not None and n > 0 and self.digit is None

    @property
    def hung_up(self) -> bool:
        """``result=-1``: the channel went away during the command (or the command failed)."""
        return self.code == 200 and self.result == "-1"


@dataclass(frozen=True)
class HangupNotice:
    """The unsolicited ``HANGUP`` line."""


AgiEvent = AgiEnvironment | AgiResponse | HangupNotice


class State(enum.Enum):
    READING_ENV = "READING_ENV"
    IDLE = "IDLE"
    AWAITING_RESPONSE = "AWAITING_RESPONSE"
    IN_520 = "IN_520"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.READING_ENV, "env_done"): State.IDLE,
    (State.IDLE, "send"): State.AWAITING_RESPONSE,
    (State.AWAITING_RESPONSE, "response"): State.IDLE,
    (State.AWAITING_RESPONSE, "520_start"): State.IN_520,
    (State.IN_520, "520_end"): State.IDLE,
    (State.IDLE, "close"): State.CLOSED,
    (State.AWAITING_RESPONSE, "close"): State.CLOSED,
    (State.IN_520, "close"): State.CLOSED,
    (State.READING_ENV, "close"): State.CLOSED,
}


def _check_command(command: str) -> None:
    if not command.strip():
        raise LocalProtocolError("empty AGI command")
    if any(c in command for c in "\r\n\x00"):
        raise LocalProtocolError("AGI command contains CR, LF or NUL (injection refused)")


def quote(arg: str) -> str:
    """Quote one command argument the way Asterisk's AGI parser reads it."""
    if any(c in arg for c in "\r\n\x00"):
        raise LocalProtocolError("AGI argument contains CR, LF or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiServerConnection:
    def __init__(
        self,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
        max_env_lines: int = DEFAULT_MAX_ENV_LINES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.state = State.READING_ENV
        self.environment: AgiEnvironment | None = None
        self.hangup_seen = False
        self._buf = bytearray()
        self._env_vars: dict[str, str] = {}
        self._env_bytes = 0
        self._block: list[str] = []
        self._events: deque[AgiEvent] = deque()
        self._eof = False
        self.max_env_bytes = max_env_bytes
        self.max_env_lines = max_env_lines
        self.max_line_bytes = max_line_bytes

    def _transition(self, what: str) -> None:
        nxt = _TRANSITIONS.get((self.state, what))
        if nxt is None:
            old = self.state
            self.state = State.ERROR
            error = LocalProtocolError if what == "send" else RemoteProtocolError
            raise error(f"{what!r} is not allowed in state {old.value}")
        self.state = nxt

    def send_command(self, command: str) -> bytes:
        """One command line; AGI allows one outstanding command at a time."""
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        _check_command(command)
        self._transition("send")
        return (command + "\n").encode("utf-8")

    def close(self) -> None:
        if self.state is not State.ERROR:
            self._transition("close")

    def receive_data(self, data: bytes) -> None:
        """Bytes from Asterisk; ``b""`` is EOF."""
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        if not data:
            self._eof = True
            return
        self._buf += data
        try:
            self._parse_lines()
        except RemoteProtocolError:
            self.state = State.ERROR
            raise

    def _parse_lines(self) -> None:
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > self.max_line_bytes:
                    raise RemoteProtocolError(
                        f"AGI line of more than {self.max_line_bytes} bytes without a newline"
                    )
                return
            raw = bytes(self._buf[:i])
            del self._buf[: i + 1]
            if len(raw) > self.max_line_bytes:
                raise RemoteProtocolError(f"AGI line of {len(raw)} bytes is over the cap")
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        state = self.state
        if line == "HANGUP" and state is not State.IN_520:
            self.hangup_seen = True
            self._events.append(HangupNotice())
            return
        if state is State.READING_ENV:
            self._env_line(line)
        elif state is State.AWAITING_RESPONSE:
            self._response_line(line)
        elif state is State.IN_520:
            self._block.append(line)
            if len(self._block) > MAX_520_LINES:
                raise RemoteProtocolError("520 usage block of too many lines")
            if line.startswith("520 "):
                self._transition("520_end")
                self._events.append(AgiResponse(520, text="\n".join(self._block)))
                self._block = []
        elif state is State.IDLE:
            raise RemoteProtocolError(
                f"AGI line while no command is outstanding ({len(line)} characters)"
            )
        else:
            raise RemoteProtocolError(f"AGI line in state {state.value} ({len(line)} characters)")

    def _env_line(self, line: str) -> None:
        if line == "":
            variables = dict(self._env_vars)
            n = sorted(
                (int(k[8:]), v)
                for k, v in variables.items()
                # (Asterisk numbers a call's arguments from 1: a few digits; past 4,300 of
                # them int() raises)
                if k.startswith("agi_arg_")
                and k[8:].isascii()
                and k[8:].isdigit()
                and len(k[8:]) <= 6
            )
            self.environment = AgiEnvironment(variables, tuple(v for _, v in n))
            self._transition("env_done")
            self._events.append(self.environment)
            return
        self._env_bytes += len(line) + 1
        if self._env_bytes > self.max_env_bytes or len(self._env_vars) >= self.max_env_lines:
            raise RemoteProtocolError(
                f"AGI environment block over {self.max_env_bytes} bytes"
                f" or {self.max_env_lines} lines"
            )
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_"):
            raise RemoteProtocolError(f"not an AGI environment line ({len(line)} characters)")
        self._env_vars[key] = value

    def _response_line(self, line: str) -> None:
        if line.startswith("520-"):
            self._transition("520_start")
            self._block = [line]
            return
        if line.startswith("200 "):
            m = _RESPONSE.match(line)
            if m is None:
                raise RemoteProtocolError(f"malformed AGI 200 response ({len(line)} characters)")
            endpos = int(m.group(3)) if m.group(3) is not None else None
            response = AgiResponse(200, m.group(1), m.group(2), endpos, line)
        elif line[:4] in ("510 ", "511 ", "520 ") or line in ("510", "511"):
            response = AgiResponse(int(line[:3]), text=line)
        else:
            raise RemoteProtocolError(f"unexpected AGI response ({len(line)} characters)")
        self._transition("response")
        self._events.append(response)

    def next_event(self) -> AgiEvent | _NeedData:
        if self._events:
            return self._events.popleft()
        if self._eof and self._buf:
            self.state = State.ERROR
            raise RemoteProtocolError(
                f"connection closed in the middle of a line ({len(self._buf)} bytes)"
            )
        return NEED_DATA

    @property
    def eof(self) -> bool:
        return self._eof


# -- Asterisk's side (for the simulator) ------------------------------------------------------
def encode_environment(pairs: list[tuple[str, str]] | dict[str, str]) -> bytes:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    lines = []
    for k, v in items:
        if "\n" in k or "\n" in v or not k.startswith("agi_"):
            raise LocalProtocolError(f"bad AGI environment pair {k!r}")
        lines.append(f"{k}: {v}\n")
    return ("".join(lines) + "\n").encode("utf-8")


@dataclass
class CommandReader:
    """Asterisk's side: command lines out of a byte stream (frame on LF first)."""

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        out = []
        while (i := self._buf.find(b"\n")) >= 0:
            out.append(bytes(self._buf[:i]).decode("utf-8", "replace").rstrip("\r"))
            del self._buf[: i + 1]
        if len(self._buf) > self.max_line_bytes:
            raise RemoteProtocolError("AGI command line over the cap")
        return out
