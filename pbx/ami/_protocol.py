"""The AMI client connection, sans-I/O: states, ActionID correlation and EventList collection.

``AmiClientProtocol`` takes bytes from Asterisk (``receive_data``) and hands out facts
(``next_event``): the :class:`Banner`, an :class:`ActionResult` when an action of ours is
complete (its Response, plus the list items and the ``...Complete`` event for EventList
actions), and every other message as an :class:`Unsolicited` (events, including those that
carry one of our ActionIDs such as ``OriginateResponse``, and late responses). Actions become
bytes through ``send_action``, which assigns a unique ActionID unless the caller gives one.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from dataclasses import dataclass, field

from pbx._exceptions import LocalProtocolError, RemoteProtocolError
from pbx.ami._message import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AmiMessage,
    FieldsLike,
    MessageFramer,
    encode_message,
    iter_fields,
)


class State(enum.Enum):
    AWAIT_BANNER = "AWAIT_BANNER"
    CONNECTED = "CONNECTED"  # banner seen, not logged in
    LOGGING_IN = "LOGGING_IN"
    LOGGED_IN = "LOGGED_IN"
    CLOSING = "CLOSING"  # Logoff sent
    CLOSED = "CLOSED"
    ERROR = "ERROR"


# What may happen in each state: (state, input) -> next state.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.AWAIT_BANNER, "banner"): State.CONNECTED,
    (State.CONNECTED, "send_login"): State.LOGGING_IN,
    (State.LOGGING_IN, "login_ok"): State.LOGGED_IN,
    (State.LOGGING_IN, "login_failed"): State.CONNECTED,
    (State.LOGGED_IN, "send"): State.LOGGED_IN,
    (State.LOGGED_IN, "send_logoff"): State.CLOSING,
    (State.CONNECTED, "send_logoff"): State.CLOSING,
    (State.CLOSING, "goodbye"): State.CLOSED,
}
for _s in State:
    _TRANSITIONS[(_s, "eof")] = State.CLOSED


@dataclass(frozen=True)
class Banner:
    line: str

    @property
    def version(self) -> str:
        return self.line.rpartition("/")[2]


@dataclass
class ActionResult:
    """An action of ours, answered. ``events`` holds the list items of an EventList action."""

    action: str
    action_id: str
    response: AmiMessage
    events: list[AmiMessage] = field(default_factory=list)
    complete: AmiMessage | None = None

    @property
    def ok(self) -> bool:
        return self.response.name in ("Success", "Goodbye", "Follows")

    @property
    def message(self) -> str:
        return self.response.get("Message") or ""

    @property
    def list_items_mismatch(self) -> bool:
        """The ``...Complete`` event's ListItems disagrees with the items received."""
        if self.complete is None:
            return False
        n = self.complete.get("ListItems")
        if n is None or not (n.isascii() and n.isdigit()):
            return False  # no count, or not one
        n = n.lstrip("0") or "0"
        # (past 18 digits no list is that long, and int() refuses past 4,300)
        return len(n) > 18 or int(n) != len(self.events)


@dataclass(slots=True)  # not frozen: built once per event on the hot path
class Unsolicited:
    """A message not completing one of our pending actions (events, late responses)."""

    message: AmiMessage


@dataclass(frozen=True)
class ConnectionClosed:
    pass


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()

AmiProtocolEvent = Banner | ActionResult | Unsolicited | ConnectionClosed


@dataclass
class _Pending:
    action: str
    result: ActionResult | None = None  # set once the Response arrived for a list action


class AmiClientProtocol:
    def __init__(
        self,
        action_id_prefix: str = "puente",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.state = State.AWAIT_BANNER
        self._framer = MessageFramer(max_message_bytes)
        self._pending: dict[str, _Pending] = {}
        self._out: deque[AmiProtocolEvent] = deque()
        self._ids = itertools.count(1)
        self._prefix = action_id_prefix
        self._login_id: str | None = None
        self._logoff_id: str | None = None
        self._lists_open = 0  # actions whose EventList is being collected

    # -- state ------------------------------------------------------------------------------
    def _transition(self, what: str) -> None:
        nxt = _TRANSITIONS.get((self.state, what))
        if nxt is None:
            old = self.state
            self.state = State.ERROR
            error = LocalProtocolError if what.startswith("send") else RemoteProtocolError
            raise error(f"{what!r} is not allowed in state {old.value}")
        self.state = nxt

    @property
    def pending_action_ids(self) -> list[str]:
        return list(self._pending)

    # -- sending ----------------------------------------------------------------------------
    def send_action(
        self, action: str, fields: FieldsLike = (), action_id: str | None = None
    ) -> tuple[str, bytes]:
        """Encode an action; returns its ActionID (ours unless given) and the bytes to write."""
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        pairs = [(k, v) for k, v in iter_fields(fields) if k.lower() not in ("action", "actionid")]
        aid = action_id or f"{self._prefix}-{next(self._ids)}"
        if aid in self._pending:
            raise LocalProtocolError(f"ActionID {aid!r} is already pending")
        data = encode_message([("Action", action), ("ActionID", aid), *pairs])
        lowered = action.lower()
        if lowered == "login":
            self._transition("send_login")
            self._login_id = aid
        elif lowered == "logoff":
            self._transition("send_logoff")
            self._logoff_id = aid
        else:
            self._transition("send")
        self._pending[aid] = _Pending(action)
        return aid, data

    def forget(self, action_id: str) -> None:
        """Stop waiting for an action (its caller timed out); a late answer is Unsolicited."""
        pending = self._pending.pop(action_id, None)
        if pending is not None and pending.result is not None:
            self._lists_open -= 1

    # -- receiving ----------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from Asterisk; ``b""`` is EOF."""
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        if not data:
            self._transition("eof")
            self._out.append(ConnectionClosed())
            return
        try:
            if self.state is State.AWAIT_BANNER:
                self._framer.push(data)
                data = b""
                line = self._framer.take_line()
                if line is None:
                    return
                if not line.startswith(b"Asterisk Call Manager/"):
                    raise RemoteProtocolError(f"not an AMI banner: {line[:80]!r}")
                self._transition("banner")
                self._out.append(Banner(line.decode("utf-8", "replace")))
            for msg in self._framer.feed(data):
                self._handle(msg)
        except RemoteProtocolError:
            self.state = State.ERROR
            raise

    def _handle(self, msg: AmiMessage) -> None:
        kind = msg.kind
        if kind == "Event":
            # Hot path: most events belong to no action. Look for an ActionID (which parses
            # the headers) only while an EventList is being collected.
            aid = msg.get("ActionID") if self._lists_open and "ActionID" in msg.text else None
            if aid is not None:
                pending = self._pending.get(aid)
                if pending is not None and pending.result is not None:
                    if (msg.get("EventList") or "").lower() == "complete":
                        pending.result.complete = msg
                        del self._pending[aid]
                        self._lists_open -= 1
                        self._out.append(pending.result)
                    else:
                        pending.result.events.append(msg)
                    return
            self._out.append(Unsolicited(msg))
            return
        if kind == "Response":
            aid = msg.get("ActionID")
            pending = self._pending.get(aid) if aid is not None else None
            if pending is None or pending.result is not None:
                self._out.append(Unsolicited(msg))
                return
            result = ActionResult(pending.action, aid, msg)  # type: ignore[arg-type]
            if aid == self._login_id:
                self._login_id = None
                self._transition("login_ok" if msg.name == "Success" else "login_failed")
            if aid == self._logoff_id and msg.name == "Goodbye":
                self._transition("goodbye")
            if (msg.get("EventList") or "").lower() == "start":
                pending.result = result
                self._lists_open += 1
                return
            del self._pending[aid]  # type: ignore[arg-type]
            self._out.append(result)
            return
        raise RemoteProtocolError(
            f"AMI message is neither a Response nor an Event ({msg.kind or 'no kind'},"
            f" {len(msg.pairs)} headers)"
        )

    def next_event(self) -> AmiProtocolEvent | _NeedData:
        if self._out:
            return self._out.popleft()
        return NEED_DATA

    def drain(self) -> list[AmiProtocolEvent]:
        """Every event ready now (the adapter's hot path)."""
        out = list(self._out)
        self._out.clear()
        return out
