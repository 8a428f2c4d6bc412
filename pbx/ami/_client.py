"""The AMI client: a thin asyncio adapter around :class:`AmiClientProtocol`.

One supervisor task owns the connection: connect, banner, Login, then a reader and a keepalive
Ping, all under deadlines; when the connection is lost it fails every action in flight with
:class:`ActionFateUnknown` (never re-sending any: a replayed Originate calls a debtor twice) and
reconnects with jittered exponential backoff. A refused login waits ``auth_failure_backoff_s``.

Events go to synchronous subscribers (the dialer's low-latency path) and to a bounded queue
read with ``async for message in client.events()``. When the queue is full, events are counted
and an :class:`EventsLost` marker tells the reader how many it missed: never unbounded, never
silent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from pbx._exceptions import ProtocolError
from pbx.ami._exceptions import (
    ActionFateUnknown,
    ActionTimeout,
    AmiAuthenticationError,
    AmiError,
    NotConnected,
)
from pbx.ami._message import AmiMessage, FieldsLike, iter_fields
from pbx.ami._protocol import ActionResult, AmiClientProtocol, Banner, ConnectionClosed, Unsolicited
from pbx.ami._settings import AmiSettings

log = logging.getLogger(__name__)

Subscriber = Callable[[AmiMessage], None]

# A session logged in for this long worked: the next reconnect starts from the shortest wait.
_STABLE_SESSION_S = 5.0


@dataclass(frozen=True)
class EventsLost:
    """``count`` events were not queued because the reader fell behind."""

    count: int


class _ConnectionLost(Exception):
    pass


class OriginateHandle:
    """An async Originate: its immediate response and, later, its ``OriginateResponse``."""

    def __init__(self, response: ActionResult, waiter: asyncio.Future[AmiMessage]) -> None:
        self.response = response
        self._waiter = waiter

    @property
    def action_id(self) -> str:
        return self.response.action_id

    async def result(self, timeout_s: float) -> AmiMessage:
        """The ``OriginateResponse`` event; ``ActionFateUnknown`` if the connection dropped,
        :class:`AmiError` if Asterisk refused the Originate (nothing was dialed)."""
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(self._waiter)


class AmiClient:
    def __init__(self, settings: AmiSettings, *, queue_events: bool = True) -> None:
        """``queue_events``: keep events for :meth:`events` too. A client read only through
        :meth:`subscribe` (the service) passes False: else, with no reader, the queue fills
        (and logs that it is full) and holds ``event_queue_size`` messages for good."""
        self.settings = settings
        self._queue_events = queue_events
        self.peer = f"{settings.host}:{settings.port}"
        self._subscribers: dict[str | None, list[Subscriber]] = {}
        self._events: collections.deque[AmiMessage | EventsLost] = collections.deque()
        self._events_ready = asyncio.Event()
        self._lost = 0
        self._pending: dict[str, asyncio.Future[ActionResult]] = {}
        self._originates: dict[str, asyncio.Future[AmiMessage]] = {}
        self._proto: AmiClientProtocol | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self.banner: str | None = None
        self._logged_in_at: float | None = None  # when this session's login succeeded
        # Counters for metrics and the demo summary.
        self.events_total = 0
        self.connects_total = 0
        self.disconnects_total = 0
        self.auth_failures_total = 0
        self.protocol_errors_total = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> AmiClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        self._closing = True
        if self._connected.is_set():
            with contextlib.suppress(Exception):
                await self.send_action("Logoff", timeout_s=1.0)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._teardown("client closed")
        self._events_ready.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    # -- events ---------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber, event: str | None = None) -> None:
        """Call ``callback(message)`` for every event (or every ``event`` of that name)."""
        self._subscribers.setdefault(event, []).append(callback)

    async def events(self) -> AsyncIterator[AmiMessage | EventsLost]:
        while not (self._closing and not self._events):
            while self._events:
                yield self._events.popleft()
            if self._lost:
                lost, self._lost = self._lost, 0
                yield EventsLost(lost)
                continue
            self._events_ready.clear()
            await self._events_ready.wait()

    def _deliver(self, msg: AmiMessage) -> None:
        self.events_total += 1
        name = msg.name
        if name == "OriginateResponse":
            waiter = self._originates.pop(msg.get("ActionID") or "", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
        for key in (name, None):
            for cb in self._subscribers.get(key, ()):
                try:
                    cb(msg)
                except Exception:
                    log.exception("AMI subscriber %r failed on %s", cb, name)
        if not self._queue_events:
            return
        if len(self._events) >= self.settings.event_queue_size:
            if self._lost == 0:
                log.error(
                    "AMI %s: event queue full (%d); counting lost events until the reader "
                    "catches up",
                    self.peer,
                    self.settings.event_queue_size,
                )
            self._lost += 1
            return
        if self._lost:
            self._events.append(EventsLost(self._lost))
            self._lost = 0
        self._events.append(msg)
        self._events_ready.set()

    # -- actions --------------------------------------------------------------------------------
    async def send_action(
        self,
        action: str,
        fields: FieldsLike = (),
        *,
        action_id: str | None = None,
        timeout_s: float | None = None,
    ) -> ActionResult:
        """Send one action and wait for its complete answer.

        Raises :class:`NotConnected` (not sent), :class:`ActionTimeout` (sent, no answer in
        time) or :class:`ActionFateUnknown` (sent, connection lost before the answer).
        """
        return await self._send(action, fields, action_id, timeout_s, require_login=True)

    async def _send(
        self,
        action: str,
        fields: FieldsLike,
        action_id: str | None,
        timeout_s: float | None,
        *,
        require_login: bool,
        on_sent: Callable[[str], None] | None = None,
    ) -> ActionResult:
        proto, writer = self._proto, self._writer
        if proto is None or writer is None or (require_login and not self._connected.is_set()):
            raise NotConnected(f"AMI {self.peer} is not connected; {action} not sent")
        if self._closing and action.lower() != "logoff":
            # (once Logoff is out, the protocol takes no other action: a caller still draining
            # gets what a lost link gives it)
            raise NotConnected(f"AMI {self.peer} is closing; {action} not sent")
        aid, data = proto.send_action(action, fields, action_id)
        fut: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._pending[aid] = fut
        if on_sent is not None:
            on_sent(aid)
        writer.write(data)
        try:
            async with asyncio.timeout(timeout_s or self.settings.action_timeout_s):
                return await fut
        except TimeoutError:
            if proto is self._proto:
                proto.forget(aid)
            raise ActionTimeout(
                f"AMI {self.peer}: no answer to {action} ({aid}) within "
                f"{timeout_s or self.settings.action_timeout_s:.1f} s"
            ) from None
        finally:
            self._pending.pop(aid, None)

    async def originate(
        self, fields: FieldsLike, *, action_id: str, timeout_s: float | None = None
    ) -> OriginateHandle:
        """An async Originate (``Async: true`` is forced) with ``action_id`` (the attempt's)."""
        pairs = [(k, v) for k, v in _pairs(fields) if k.lower() != "async"]
        pairs.append(("Async", "true"))
        waiter: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()

        def register(aid: str) -> None:
            self._originates[aid] = waiter

        try:
            response = await self._send(
                "Originate", pairs, action_id, timeout_s, require_login=True, on_sent=register
            )
        except BaseException:
            # The response never came: the OriginateResponse may still come; keep the waiter
            # registered so the event is still matched, but nobody awaits it here.
            waiter.cancel()
            self._originates.pop(action_id, None)
            raise
        if not response.ok:  # refused: no OriginateResponse will come
            self._originates.pop(action_id, None)
            waiter.set_exception(
                AmiError(f"AMI {self.peer}: Originate {action_id} refused: {response.message}")
            )
            waiter.exception()  # mark retrieved: nobody may ask for the result
        return OriginateHandle(response, waiter)

    # -- the connection -------------------------------------------------------------------------
    async def _supervise(self) -> None:
        s = self.settings
        delay = s.reconnect_min_s
        while not self._closing:
            self._logged_in_at = None
            try:
                await self._session()
            except AmiAuthenticationError as e:
                self.auth_failures_total += 1
                log.error("%s; retrying in %.0f s", e, s.auth_failure_backoff_s)
                self._teardown(str(e))
                await asyncio.sleep(s.auth_failure_backoff_s)
                continue
            except _ConnectionLost as e:
                log.warning("AMI %s: connection lost: %s", self.peer, e)
            except ProtocolError as e:
                self.protocol_errors_total += 1
                log.error("AMI %s: protocol error, closing the session: %s", self.peer, e)
            except (OSError, TimeoutError) as e:
                log.warning("AMI %s: cannot connect: %s", self.peer, e or e.__class__.__name__)
            except Exception:
                # A bug on the session's path: the session ends and a new one starts, as for a
                # protocol error. Escaping, it ended this loop and left the client "connected"
                # with nobody reading, never to reconnect.
                self.protocol_errors_total += 1
                log.exception("AMI %s: unexpected error, closing the session", self.peer)
            self._teardown("connection lost")
            if self._closing:
                return
            # Back to the shortest wait only after a session that worked for a while: a peer
            # that accepts and closes, or logs us in and then breaks the protocol, at once and
            # every time, gets the growing backoff, not a reconnect storm.
            up_since = self._logged_in_at
            if up_since is not None and time.monotonic() - up_since >= _STABLE_SESSION_S:
                delay = s.reconnect_min_s
            wait = random.uniform(0.5, 1.0) * delay  # jitter: nodes must not reconnect in step
            await asyncio.sleep(wait)
            delay = min(s.reconnect_max_s, delay * 2)

    async def _session(self) -> None:
        s = self.settings
        async with asyncio.timeout(s.connect_timeout_s):
            reader, writer = await asyncio.open_connection(s.host, s.port)
        self._writer = writer
        self._proto = proto = AmiClientProtocol(s.action_id_prefix, s.max_message_bytes)
        self.banner = None
        banner_seen = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                reading = tg.create_task(self._read(reader, proto, banner_seen))
                async with asyncio.timeout(s.login_timeout_s):
                    await banner_seen.wait()
                    result = await self._send(
                        "Login",
                        [("Username", s.username), ("Secret", s.secret)],
                        None,
                        s.login_timeout_s,
                        require_login=False,
                    )
                if not result.ok:
                    raise AmiAuthenticationError(
                        f"AMI {self.peer}: login as {s.username!r} refused: "
                        f"{result.message or result.response.name}"
                    )
                self.connects_total += 1
                self._logged_in_at = time.monotonic()
                self._connected.set()
                log.info("AMI %s: logged in as %s (%s)", self.peer, s.username, self.banner)
                tg.create_task(self._keepalive())
                await reading
        except* AmiAuthenticationError as eg:
            raise eg.exceptions[0] from None
        except* ProtocolError as eg:
            raise eg.exceptions[0] from None
        except* _ConnectionLost as eg:
            raise eg.exceptions[0] from None
        except* (OSError, TimeoutError) as eg:
            if self._connected.is_set():
                raise _ConnectionLost(str(eg.exceptions[0]) or "timeout") from None
            raise eg.exceptions[0] from None

    async def _read(
        self, reader: asyncio.StreamReader, proto: AmiClientProtocol, banner_seen: asyncio.Event
    ) -> None:
        while True:
            data = await reader.read(65536)
            proto.receive_data(data)
            for ev in proto.drain():
                if isinstance(ev, Unsolicited):
                    msg = ev.message
                    if msg.kind == "Event":
                        self._deliver(msg)
                    else:
                        log.debug("AMI %s: late or unmatched response %r", self.peer, msg)
                elif isinstance(ev, ActionResult):
                    fut = self._pending.get(ev.action_id)
                    if fut is not None and not fut.done():
                        fut.set_result(ev)
                    if ev.list_items_mismatch:
                        log.warning(
                            "AMI %s: %s said ListItems %s but sent %d items",
                            self.peer,
                            ev.action,
                            ev.complete.get("ListItems") if ev.complete else "?",
                            len(ev.events),
                        )
                elif isinstance(ev, Banner):
                    self.banner = ev.line
                    banner_seen.set()
                elif isinstance(ev, ConnectionClosed):
                    raise _ConnectionLost("closed by Asterisk")

    async def _keepalive(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval_s)
            if self._closing:
                return  # (the Logoff's answer, or its timeout, ends the session)
            try:
                await self.send_action("Ping", timeout_s=s.ping_timeout_s)
            except ActionTimeout:
                raise _ConnectionLost(
                    f"no answer to Ping within {s.ping_timeout_s:.1f} s (stalled peer)"
                ) from None

    def _teardown(self, why: str) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            self.disconnects_total += 1
        writer, self._writer, self._proto = self._writer, None, None
        if writer is not None:
            writer.transport.abort()
        for aid, fut in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(
                    ActionFateUnknown(f"AMI {self.peer}: {why} while action {aid} was in flight")
                )
        self._pending.clear()
        for aid, fut in list(self._originates.items()):
            if not fut.done():
                fut.set_exception(
                    ActionFateUnknown(
                        f"AMI {self.peer}: {why} before the OriginateResponse of {aid}"
                    )
                )
                fut.exception()  # mark retrieved: nobody may be awaiting it
        self._originates.clear()


def _pairs(fields: FieldsLike) -> list[tuple[str, str]]:
    return list(iter_fields(fields))
