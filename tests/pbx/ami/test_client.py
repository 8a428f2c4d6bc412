"""The AMI client against a small fake Asterisk on loopback (with a fault proxy in between)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from pbx.ami import (
    BANNER,
    ActionFateUnknown,
    ActionTimeout,
    AmiClient,
    AmiError,
    AmiMessage,
    AmiSettings,
    EventsLost,
    MessageFramer,
    NotConnected,
    encode_message,
)
from tests.support.faultproxy import FaultProxy


class FakeAsterisk:
    """Answers Login/Ping/Originate/CoreShowChannels like Asterisk 22 (see the transcripts)."""

    def __init__(self, secret: str = "s3cret", auth_delay_s: float = 0.0) -> None:
        self.secret = secret
        self.auth_delay_s = auth_delay_s
        self.received: list[AmiMessage] = []
        self.logins = 0
        self.answer = True  # False: swallow actions (a stalled Asterisk)
        self.writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.originate_response_after_s = 0.05
        self.list_items = "1"  # what CoreShowChannelsComplete says

    async def __aenter__(self) -> FakeAsterisk:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self.writers:
            w.transport.abort()

    def actions(self, name: str) -> list[AmiMessage]:
        return [m for m in self.received if m.name == name]

    def broadcast(self, pairs: list[tuple[str, str]]) -> None:
        for w in self.writers:
            w.write(encode_message(pairs))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(BANNER)
        framer = MessageFramer()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for msg in framer.feed(data):
                    self.received.append(msg)
                    if self.answer:
                        await self._answer(msg, writer)

    async def _answer(self, msg: AmiMessage, writer: asyncio.StreamWriter) -> None:
        aid = msg["ActionID"]
        if msg.name == "Login":
            self.logins += 1
            if msg["Secret"] != self.secret:
                await asyncio.sleep(self.auth_delay_s)
                writer.write(
                    encode_message(
                        [
                            ("Response", "Error"),
                            ("ActionID", aid),
                            ("Message", "Authentication failed"),
                        ]
                    )
                )
                writer.close()
                return
            writer.write(
                encode_message(
                    [
                        ("Response", "Success"),
                        ("ActionID", aid),
                        ("Message", "Authentication accepted"),
                    ]
                )
                + encode_message(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Status", "Fully Booted"),
                    ]
                )
            )
        elif msg.name == "Ping":
            writer.write(
                encode_message([("Response", "Success"), ("ActionID", aid), ("Ping", "Pong")])
            )
        elif msg.name == "Originate":
            writer.write(
                encode_message(
                    [
                        ("Response", "Success"),
                        ("ActionID", aid),
                        ("Message", "Originate successfully queued"),
                    ]
                )
            )
            await asyncio.sleep(self.originate_response_after_s)
            writer.write(
                encode_message(
                    [
                        ("Event", "OriginateResponse"),
                        ("Privilege", "call,all"),
                        ("ActionID", aid),
                        ("Response", "Failure"),
                        ("Channel", msg["Channel"]),
                        ("Reason", "0"),
                        ("Uniqueid", "<unknown>"),
                    ]
                )
            )
        elif msg.name == "CoreShowChannels":
            writer.write(
                encode_message(
                    [
                        ("Response", "Success"),
                        ("ActionID", aid),
                        ("EventList", "start"),
                        ("Message", "Channels will follow"),
                    ]
                )
                + encode_message(
                    [
                        ("Event", "CoreShowChannel"),
                        ("ActionID", aid),
                        ("Channel", "PJSIP/trunk-00000001"),
                        ("Uniqueid", "a-1"),
                    ]
                )
                + b"\r\n"  # a stray blank line, as a lone CRLF chunk would leave
                + encode_message(
                    [
                        ("Event", "CoreShowChannelsComplete"),
                        ("ActionID", aid),
                        ("EventList", "Complete"),
                        ("ListItems", self.list_items),
                    ]
                )
            )
        elif msg.name == "Logoff":
            writer.write(
                encode_message(
                    [
                        ("Response", "Goodbye"),
                        ("ActionID", aid),
                        ("Message", "Thanks for all the fish."),
                    ]
                )
            )
            writer.close()


def settings_for(port: int, **kw: object) -> AmiSettings:
    base = dict(
        port=port,
        username="dialer",
        secret="s3cret",
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        action_timeout_s=2.0,
        ping_interval_s=30.0,
        login_timeout_s=2.0,
    )
    base.update(kw)
    return AmiSettings(**base)  # type: ignore[arg-type]


async def test_login_action_and_event_list() -> None:
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        assert client.banner == "Asterisk Call Manager/11.0.0"
        result = await client.send_action("CoreShowChannels")
        assert result.ok
        assert [e["Uniqueid"] for e in result.events] == ["a-1"]
        assert result.complete is not None
        assert not result.list_items_mismatch
        login = ast.actions("Login")[0]
        assert login["Username"] == "dialer"


async def test_wrong_password_is_a_clear_error_with_backoff_not_a_tight_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeAsterisk(secret="other", auth_delay_s=0.1) as ast:
        client = AmiClient(settings_for(ast.port, auth_failure_backoff_s=5.0))
        with caplog.at_level(logging.ERROR):
            client.start()
            await asyncio.sleep(1.0)
        assert ast.logins == 1  # one try, then a long wait
        assert client.auth_failures_total == 1
        assert not client.connected
        messages = [r.getMessage() for r in caplog.records]
        assert any("login as 'dialer' refused: Authentication failed" in m for m in messages)
        assert not any("s3cret" in m for m in messages)
        with pytest.raises(NotConnected):
            await client.send_action("Ping")
        await client.close()


async def test_originate_response_is_correlated_and_also_streamed() -> None:
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        seen: list[AmiMessage] = []
        client.subscribe(seen.append, "OriginateResponse")
        handle = await client.originate(
            [
                ("Channel", "PJSIP/+15550001@trunk"),
                ("Context", "puente-outbound"),
                ("Exten", "s"),
                ("Variable", ["PUENTE_ATTEMPT=a-1", "PUENTE_CAMPAIGN=c1"]),
            ],
            action_id="a-1",
        )
        assert handle.response.ok
        event = await handle.result(2)
        assert event["Reason"] == "0"
        assert [m["ActionID"] for m in seen] == ["a-1"]
        sent = ast.actions("Originate")[0]
        assert sent["Async"] == "true"
        assert sent.get_all("Variable") == ["PUENTE_ATTEMPT=a-1", "PUENTE_CAMPAIGN=c1"]
        async for item in client.events():
            if isinstance(item, AmiMessage) and item.name == "OriginateResponse":
                break


async def test_action_timeout_and_late_answer_is_discarded() -> None:
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        ast.answer = False
        with pytest.raises(ActionTimeout):
            await client.send_action("Ping", timeout_s=0.2)
        ast.answer = True
        result = await client.send_action("Ping")
        assert result.ok


async def test_cut_mid_message_fails_in_flight_actions_and_never_replays_them() -> None:
    async with FakeAsterisk() as ast, FaultProxy("127.0.0.1", ast.port) as proxy:
        client = AmiClient(settings_for(proxy.port))
        client.start()
        await client.wait_connected(2)
        ast.originate_response_after_s = 5.0
        ast.answer = False  # the Originate is received but not answered yet
        task = asyncio.create_task(
            client.originate(
                [("Channel", "PJSIP/+15550002@trunk"), ("Context", "c"), ("Exten", "s")],
                action_id="a-2",
            )
        )
        await asyncio.sleep(0.2)
        proxy.inject("s2c", b"Response: Succ")  # half a message, then the cut
        await asyncio.sleep(0.05)
        await proxy.cut_all()
        with pytest.raises(ActionFateUnknown):
            await task
        ast.answer = True
        await client.wait_connected(3)  # reconnected
        await client.send_action("Ping")
        assert len(ast.actions("Originate")) == 1  # never re-sent after the reconnect
        assert ast.logins == 2
        await client.close()


async def test_stalled_peer_is_detected_by_ping_and_reconnected() -> None:
    async with FakeAsterisk() as ast, FaultProxy("127.0.0.1", ast.port) as proxy:
        client = AmiClient(settings_for(proxy.port, ping_interval_s=0.2, ping_timeout_s=0.2))
        client.start()
        await client.wait_connected(2)
        proxy.stall("s2c")
        await asyncio.sleep(0.8)
        assert client.disconnects_total >= 1
        proxy.resume("s2c")
        await client.wait_connected(3)
        await client.close()


async def test_slow_peer_one_byte_at_a_time() -> None:
    async with FakeAsterisk() as ast, FaultProxy("127.0.0.1", ast.port) as proxy:
        proxy.set_chunking("s2c", 1)
        async with AmiClient(settings_for(proxy.port)) as client:
            await client.wait_connected(3)
            result = await client.send_action("CoreShowChannels")
            assert len(result.events) == 1


async def test_garbage_closes_the_session_with_a_log_line_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeAsterisk() as ast:
        client = AmiClient(settings_for(ast.port, max_message_bytes=2048))
        with caplog.at_level(logging.ERROR):
            client.start()
            await client.wait_connected(2)
            ast.broadcast([("Event", "Junk"), ("Data", "x" * 4000)])
            await asyncio.sleep(0.3)
        assert client.protocol_errors_total == 1
        assert any(
            "protocol error" in r.getMessage() and str(ast.port) in r.getMessage()
            for r in caplog.records
        )
        await client.wait_connected(3)
        assert (await client.send_action("Ping")).ok
        await client.close()


async def test_event_queue_overflow_is_counted_and_reported() -> None:
    async with (
        FakeAsterisk() as ast,
        AmiClient(settings_for(ast.port, event_queue_size=5)) as client,
    ):
        await client.wait_connected(2)
        for i in range(20):
            ast.broadcast([("Event", "VarSet"), ("Variable", "N"), ("Value", str(i))])
        await client.send_action("Ping")  # everything before it has been read
        got: list[object] = []
        async for item in client.events():
            got.append(item)
            if isinstance(item, EventsLost):
                break
        queued = [g.name for g in got if isinstance(g, AmiMessage)]
        assert queued == ["FullyBooted", "VarSet", "VarSet", "VarSet", "VarSet"]
        assert got[-1] == EventsLost(16)
        assert client.events_total == 21  # FullyBooted + 20


async def test_a_client_read_by_subscribers_only_keeps_no_queue(caplog) -> None:
    # The service never reads events(): its queue filled after event_queue_size events, logged
    # "event queue full" as an ERROR, and held that many messages for good.
    async with (
        FakeAsterisk() as ast,
        AmiClient(settings_for(ast.port, event_queue_size=5), queue_events=False) as client,
    ):
        seen: list[str] = []
        client.subscribe(lambda m: seen.append(m["Value"]), "VarSet")
        await client.wait_connected(2)
        with caplog.at_level(logging.ERROR):
            for i in range(20):
                ast.broadcast([("Event", "VarSet"), ("Variable", "N"), ("Value", str(i))])
            await client.send_action("Ping")  # everything before it has been read
        assert seen == [str(i) for i in range(20)]
        assert not client._events
        assert not [r for r in caplog.records if "queue full" in r.getMessage()]


async def test_unknown_events_are_passed_on() -> None:
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        ast.broadcast([("Event", "SomethingNew"), ("Privilege", "call,all"), ("X", "1")])
        async for item in client.events():
            if isinstance(item, AmiMessage) and item.name == "SomethingNew":
                assert item["X"] == "1"
                break


@pytest.mark.parametrize("after_login", [False, True])
async def test_a_peer_that_fails_every_session_at_once_gets_backoff_not_a_storm(
    after_login: bool,
) -> None:
    # Accepting and closing (or logging us in and then sending garbage) reset the backoff to
    # its minimum every time: ~25 reconnects a second here, for ever, one log line each.
    sessions = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sessions
        sessions += 1
        writer.write(BANNER)
        if after_login:
            framer = MessageFramer()
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    for msg in framer.feed(data):
                        writer.write(
                            encode_message([("Response", "Success"), ("ActionID", msg["ActionID"])])
                            + b"not a header block\r\n\r\n"
                        )
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AmiClient(settings_for(port, reconnect_min_s=0.05, reconnect_max_s=1.0))
    client.start()
    await asyncio.sleep(2.0)
    await client.close()
    server.close()
    assert 2 <= sessions <= 12, sessions  # 0.05, 0.1, 0.2, ... 1 s (jittered), not 40


async def test_a_refused_originate_says_so_instead_of_cancelling_its_waiter() -> None:
    # handle.result() of a refused Originate raised CancelledError: to a caller's task that
    # looks like its own cancellation, and ``except Exception`` does not catch it.
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        answer = ast._answer

        async def refuse(msg: AmiMessage, writer: asyncio.StreamWriter) -> None:
            if msg.name != "Originate":
                return await answer(msg, writer)
            refused = [("Response", "Error"), ("ActionID", msg["ActionID"])]
            writer.write(encode_message([*refused, ("Message", "Originate failed")]))

        ast._answer = refuse  # type: ignore[method-assign]
        handle = await client.originate([("Channel", "PJSIP/1@t"), ("Exten", "s")], action_id="r1")
        assert not handle.response.ok
        with pytest.raises(AmiError, match="Originate r1 refused: Originate failed"):
            await handle.result(1)
        assert (await client.send_action("Ping")).ok


async def test_a_protocol_error_never_logs_the_message_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An echoed Originate is no Response or Event: its Channel carries the callee's number.
    async with FakeAsterisk() as ast:
        client = AmiClient(settings_for(ast.port))
        with caplog.at_level(logging.DEBUG):
            client.start()
            await client.wait_connected(2)
            ast.broadcast(
                [
                    ("Action", "Originate"),
                    ("Channel", "PJSIP/+5215512345678@trunk"),
                    ("Exten", "5215512345678"),
                ]
            )
            await asyncio.sleep(0.3)
        assert client.protocol_errors_total == 1
        assert "neither a Response nor an Event" in caplog.text
        assert "5215512345678" not in caplog.text
        assert "2345678" not in caplog.text
        await client.close()


async def test_actions_while_the_client_closes_are_not_sent_and_break_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # close() sends Logoff and waits for its Goodbye (here: none comes, the peer stalls). An
    # action asked for meanwhile (a dialer task still draining, the keepalive's Ping) is not
    # sent: it raised a protocol error from the Logoff's CLOSING state, and the keepalive's
    # was logged as an ERROR that closed the session.
    async with FakeAsterisk() as ast, FaultProxy("127.0.0.1", ast.port) as proxy:
        client = AmiClient(settings_for(proxy.port, ping_interval_s=0.05, ping_timeout_s=2.0))
        client.start()
        await client.wait_connected(2)
        proxy.stall("s2c")
        closing = asyncio.create_task(client.close())
        await asyncio.sleep(0.3)  # the Logoff is out, its answer stalled; pings are due
        with pytest.raises(NotConnected):
            await client.send_action("QueueStatus")
        await closing
    assert client.protocol_errors_total == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_list_count_in_other_digits_is_no_count() -> None:
    # 'ListItems: ²' passed str.isdigit() and then failed int(): a ValueError where a count
    # that is not one is simply not compared.
    from pbx.ami import AmiMessage
    from pbx.ami._protocol import ActionResult

    def result(count: str) -> ActionResult:
        return ActionResult(
            "CoreShowChannels", "1",
            AmiMessage.from_pairs([("Response", "Success")]),
            events=[AmiMessage.from_pairs([("Event", "CoreShowChannel")])],
            complete=AmiMessage.from_pairs(
                [("Event", "CoreShowChannelsComplete"), ("ListItems", count)]
            ),
        )  # fmt: skip

    assert not result("\u00b2").list_items_mismatch
    assert not result("1").list_items_mismatch
    assert result("2").list_items_mismatch
    # More digits than int() takes (4,300): a ValueError that killed the client's supervisor.
    assert result("9" * 4301).list_items_mismatch
    assert not result("0" * 4300 + "1").list_items_mismatch


async def test_a_huge_list_count_is_a_mismatch_not_a_dead_client() -> None:
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        ast.list_items = "9" * 5000
        result = await client.send_action("CoreShowChannels")
        assert result.list_items_mismatch
        ast.list_items = "1"
        assert (await client.send_action("Ping")).ok  # the session goes on


async def test_an_unexpected_error_in_a_session_ends_it_and_the_client_reconnects(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Any bug on the read path (here, the protocol core raising what it never should) used to
    # escape the supervisor: the client stayed "connected" with nobody reading, for good.
    from pbx.ami._protocol import AmiClientProtocol

    real = AmiClientProtocol.receive_data
    armed = [False]

    def receive_data(self: AmiClientProtocol, data: bytes) -> None:
        if armed[0]:
            armed[0] = False
            raise RuntimeError("a bug")
        real(self, data)

    monkeypatch.setattr(AmiClientProtocol, "receive_data", receive_data)
    async with FakeAsterisk() as ast, AmiClient(settings_for(ast.port)) as client:
        await client.wait_connected(2)
        armed[0] = True
        with caplog.at_level(logging.ERROR):
            with contextlib.suppress(AmiError):
                await client.send_action("Ping")

            async def back() -> None:
                while ast.logins < 2 or not client.connected:  # noqa: ASYNC110 - polling
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(back(), 5)
        assert (await client.send_action("Ping")).ok
        assert "unexpected error" in caplog.text
