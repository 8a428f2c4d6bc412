"""The FastAGI server on loopback against a fake Asterisk (and through a fault proxy)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pbx.agi import (
    AgiHangup,
    AgiServer,
    AgiSession,
    AgiSettings,
    AgiTimeout,
    CommandReader,
    encode_environment,
)
from tests.support.faultproxy import FaultProxy

CALLER = "+525512345678"


def env(script: str = "pay", callerid: str = CALLER) -> bytes:
    return encode_environment(
        [
            ("agi_network", "yes"),
            ("agi_network_script", script),
            ("agi_request", f"agi://127.0.0.1:4573/{script}"),
            ("agi_channel", "PJSIP/trunk-00000001"),
            ("agi_uniqueid", "1795335161.42"),
            ("agi_callerid", callerid),
            ("agi_arg_1", "attempt 7"),
        ]
    )


class FakeAsterisk:
    """Asterisk's side of one AGI() call: answers each command with a scripted line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.commands = CommandReader()
        self.pending: list[str] = []

    @classmethod
    async def connect(cls, port: int, block: bytes | None = None) -> FakeAsterisk:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        fa = cls(r, w)
        if block is not None:
            w.write(block)
        return fa

    async def next_command(self, timeout_s: float = 5) -> str | None:
        async with asyncio.timeout(timeout_s):
            while not self.pending:
                data = await self.reader.read(4096)
                if not data:
                    return None
                self.pending += self.commands.feed(data)
        return self.pending.pop(0)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def closed_by_server(self, timeout_s: float = 5) -> bool:
        async with asyncio.timeout(timeout_s):
            while True:
                data = await self.reader.read(4096)
                if not data:
                    return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def make_server():
    servers: list[AgiServer] = []

    async def make(routes, **kw) -> AgiServer:
        server = AgiServer(routes, AgiSettings(port=0, **kw))
        await server.start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        await s.abort()


async def test_routes_by_script_with_args_and_closes_when_the_flow_ends(make_server) -> None:
    got: list[tuple[str, tuple[str, ...]]] = []

    async def pay(s: AgiSession) -> None:
        assert s.env is not None
        got.append((s.env.script, s.env.args))
        await s.answer()

    server = await make_server({"pay": pay})
    fa = await FakeAsterisk.connect(server.port, env("pay"))
    assert await fa.next_command() == "ANSWER"
    fa.send(b"200 result=0\n")
    assert await fa.closed_by_server()
    assert got == [("pay", ("attempt 7",))]
    assert server.sessions_total == 1
    assert server.commands_total == 1


async def test_unknown_script_closes_at_once_and_says_which(make_server, caplog) -> None:
    server = await make_server({"pay": lambda s: asyncio.sleep(0)})
    with caplog.at_level(logging.WARNING, "pbx.agi"):
        fa = await FakeAsterisk.connect(server.port, env("nope"))
        assert await fa.closed_by_server()
    assert "no flow for script 'nope'" in caplog.text


async def test_environment_deadline(make_server, caplog) -> None:
    server = await make_server({}, env_timeout_s=0.2)
    with caplog.at_level(logging.WARNING, "pbx.agi"):
        fa = await FakeAsterisk.connect(server.port, b"agi_network: yes\n")  # never finished
        assert await fa.closed_by_server(2)
    assert "no complete environment block in time" in caplog.text
    assert server.errors_total == 1


async def test_oversized_environment_closes_only_that_session(make_server, caplog) -> None:
    release = asyncio.Event()

    async def flow(s: AgiSession) -> None:
        await release.wait()
        await s.noop()

    server = await make_server({"pay": flow}, max_env_bytes=1024)
    good = await FakeAsterisk.connect(server.port, env())
    with caplog.at_level(logging.WARNING, "pbx.agi"):
        big = b"".join(f"agi_var{i}: {'x' * 100}\n".encode() for i in range(20))
        bad = await FakeAsterisk.connect(server.port, big)
        assert await bad.closed_by_server()
    assert "environment block over 1024 bytes" in caplog.text
    assert "127.0.0.1:" in caplog.text  # the peer is named
    release.set()
    assert await good.next_command() == "NOOP"
    good.send(b"200 result=0\n")
    assert await good.closed_by_server()


async def test_garbage_answer_closes_with_a_clear_log(make_server, caplog) -> None:
    outcome: list[BaseException] = []

    async def flow(s: AgiSession) -> None:
        try:
            await s.answer()
        except AgiHangup as e:
            outcome.append(e)
            raise

    server = await make_server({"pay": flow})
    with caplog.at_level(logging.WARNING, "pbx.agi"):
        fa = await FakeAsterisk.connect(server.port, env())
        assert await fa.next_command() == "ANSWER"
        fa.send(b"HTTP/1.1 400 Bad Request\n")
        assert await fa.closed_by_server()
    assert "unexpected AGI response" in caplog.text
    assert outcome
    assert server.errors_total == 1


async def test_command_deadline_closes_the_session(make_server) -> None:
    raised: list[BaseException] = []

    async def flow(s: AgiSession) -> None:
        try:
            await s.noop()
        except AgiTimeout as e:
            raised.append(e)

    server = await make_server({"pay": flow}, command_timeout_s=0.2)
    fa = await FakeAsterisk.connect(server.port, env())
    assert await fa.next_command() == "NOOP"  # and never answer
    assert await fa.closed_by_server(3)
    assert raised
    assert server.timeouts_total == 1


async def test_connection_cut_mid_command_is_a_hangup_for_the_flow(make_server) -> None:
    raised: list[BaseException] = []
    done = asyncio.Event()

    async def flow(s: AgiSession) -> None:
        try:
            await s.wait_for_digit(5000)
        except AgiHangup as e:
            raised.append(e)
        finally:
            done.set()

    server = await make_server({"pay": flow})
    async with FaultProxy("127.0.0.1", server.port) as proxy:
        fa = await FakeAsterisk.connect(proxy.port, env())
        assert await fa.next_command() == "WAIT FOR DIGIT 5000"
        fa.send(b"200 res")  # half an answer, then the line dies
        await asyncio.sleep(0.05)
        await proxy.cut_all()
        async with asyncio.timeout(3):
            await done.wait()
    assert raised


async def test_slow_peer_bytewise_answers_still_work(make_server) -> None:
    results: list[object] = []

    async def flow(s: AgiSession) -> None:
        results.append(await s.get_data("enter-account", 3000, 6))
        results.append(await s.get_variable("PUENTE_ATTEMPT"))

    server = await make_server({"pay": flow})
    async with FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.set_chunking("c2s", 1)
        fa = await FakeAsterisk.connect(proxy.port, env())
        assert await fa.next_command() == "GET DATA enter-account 3000 6"
        fa.send(b"200 result=123456\n")
        assert await fa.next_command() == "GET VARIABLE PUENTE_ATTEMPT"
        fa.send(b"200 result=1 (a7)\n")
        assert await fa.closed_by_server()
    assert results[1] == "a7"
    assert results[0].digits == "123456"  # type: ignore[attr-defined]


async def test_stalled_peer_hits_the_deadline(make_server) -> None:
    server = await make_server({"pay": lambda s: s.noop()}, command_timeout_s=0.3)
    async with FaultProxy("127.0.0.1", server.port) as proxy:
        fa = await FakeAsterisk.connect(proxy.port, env())
        assert await fa.next_command() == "NOOP"
        proxy.stall("c2s")
        fa.send(b"200 result=0\n")  # stuck in the proxy
        assert await fa.closed_by_server(3)
    assert server.timeouts_total == 1


async def test_flow_exception_is_contained(make_server, caplog) -> None:
    async def broken(s: AgiSession) -> None:
        raise RuntimeError("bug in a flow")

    server = await make_server({"pay": broken})
    with caplog.at_level(logging.ERROR, "pbx.agi"):
        fa = await FakeAsterisk.connect(server.port, env())
        assert await fa.closed_by_server()
    assert "flow failed" in caplog.text
    assert server.errors_total == 1


async def test_max_sessions_refuses_extra_calls(make_server) -> None:
    hold = asyncio.Event()

    async def flow(s: AgiSession) -> None:
        await hold.wait()

    server = await make_server({"pay": flow}, max_sessions=2)
    a = await FakeAsterisk.connect(server.port, env())
    b = await FakeAsterisk.connect(server.port, env())
    await asyncio.sleep(0.05)
    c = await FakeAsterisk.connect(server.port, env())
    assert await c.closed_by_server()
    assert server.refused_total == 1
    hold.set()
    assert await a.closed_by_server()
    assert await b.closed_by_server()


async def test_many_concurrent_sessions_do_not_mix_answers(make_server) -> None:
    seen: dict[str, str | None] = {}

    async def flow(s: AgiSession) -> None:
        assert s.env is not None
        for _ in range(3):
            seen[s.env.args[0]] = await s.get_variable("WHO")

    server = await make_server({"pay": flow})

    async def one(i: int) -> None:
        block = encode_environment(
            {"agi_network_script": "pay", "agi_callerid": CALLER, "agi_arg_1": f"c{i}"}
        )
        fa = await FakeAsterisk.connect(server.port, block)
        for _ in range(3):
            assert await fa.next_command() == "GET VARIABLE WHO"
            await asyncio.sleep(0)
            fa.send(f"200 result=1 (c{i})\n".encode())
        assert await fa.closed_by_server()

    await asyncio.gather(*(one(i) for i in range(200)))
    assert seen == {f"c{i}": f"c{i}" for i in range(200)}


async def test_stop_drains_then_closes_live_sessions(make_server) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def flow(s: AgiSession) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    server = await make_server({"pay": flow})
    fa = await FakeAsterisk.connect(server.port, env())
    await started.wait()
    await server.stop(grace_s=0.2)
    assert await fa.closed_by_server()
    assert cancelled == [True]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_logs_never_carry_the_number_or_the_digits(make_server, caplog) -> None:
    async def flow(s: AgiSession) -> None:
        await s.say_digits("4111111111111111")
        await s.stream_file("missing-prompt")
        raise RuntimeError("boom")

    server = await make_server({"pay": flow}, command_timeout_s=0.3)
    with caplog.at_level(logging.DEBUG):
        fa = await FakeAsterisk.connect(server.port, env())
        assert await fa.next_command() == 'SAY DIGITS 4111111111111111 ""'
        fa.send(b"200 result=0\n")
        assert await fa.next_command() == 'STREAM FILE missing-prompt ""'
        fa.send(b"200 result=-1 endpos=0\n")
        assert await fa.closed_by_server()
    text = caplog.text
    assert "missing-prompt" in text  # the warning is there...
    assert "+52******5678" in text  # ...with the caller masked
    assert CALLER not in text
    assert "4111111111111111" not in text


CARD = "4111111111111111"


@pytest.mark.parametrize(
    "answer",
    [
        f"200 result={CARD} junk\n",  # malformed: the GET DATA digits are in it
        f"200 result={CARD}\n200 result={CARD}\n",  # the second while no command is outstanding
        f"{CARD}\n",  # no code at all
    ],
)
async def test_a_protocol_error_never_logs_the_line_it_refused(make_server, caplog, answer) -> None:
    async def flow(s: AgiSession) -> None:
        await s.get_data("enter_card", 5000, 16)
        await asyncio.sleep(1)

    server = await make_server({"pay": flow})
    with caplog.at_level(logging.DEBUG):
        fa = await FakeAsterisk.connect(server.port, env())
        assert (await fa.next_command()).startswith("GET DATA")
        fa.send(answer.encode())
        assert await fa.closed_by_server()
    assert server.errors_total == 1
    assert "closing" in caplog.text
    assert CARD not in caplog.text
    assert "11111111" not in caplog.text


async def test_a_bad_environment_line_is_not_logged(make_server, caplog) -> None:
    server = await make_server({"pay": lambda s: asyncio.sleep(0)})
    with caplog.at_level(logging.DEBUG):
        fa = await FakeAsterisk.connect(server.port, b"agi_callerid " + CALLER.encode() + b"\n")
        assert await fa.closed_by_server()
    assert "not an AGI environment line" in caplog.text
    assert CALLER not in caplog.text
    assert CALLER[1:] not in caplog.text


async def test_say_digits_takes_ascii_digits_only(make_server) -> None:
    # str.isdigit() is true of '²' and of other scripts' digits ('١٢٣'): such a command would
    # go to Asterisk, which says nothing for them (or the command fails on the call).
    refused: list[str] = []

    async def flow(s: AgiSession) -> None:
        for text in ("١٢٣", "12²", "", "12a"):
            try:
                await s.say_digits(text)
            except ValueError:
                refused.append(text)
        await s.stream_file("done")

    server = await make_server({"pay": flow})
    fa = await FakeAsterisk.connect(server.port, env())
    assert await fa.next_command() == 'STREAM FILE done ""'
    fa.send(b"200 result=0 endpos=0\n")
    assert await fa.closed_by_server()
    assert refused == ["١٢٣", "12²", "", "12a"]


def test_an_argument_numbered_with_other_digits_is_not_an_argument() -> None:
    # 'agi_arg_²' passed str.isdigit() and then failed int(): a ValueError out of the
    # sans-I/O core for one odd environment line, where a peer's junk is ignored.
    from pbx.agi import AgiEnvironment, AgiServerConnection

    core = AgiServerConnection()
    core.receive_data(
        encode_environment(
            [("agi_network_script", "pay"), ("agi_arg_1", "a"), ("agi_arg_\u00b2", "b")]
        )
    )
    event = core.next_event()
    assert isinstance(event, AgiEnvironment)
    assert event.args == ("a",)


def test_numbers_longer_than_int_takes_are_protocol_errors_or_ignored() -> None:
    # Past 4,300 digits int() raises ValueError: out of the core, past the server's handler.
    from pbx import ProtocolError
    from pbx.agi import AgiEnvironment, AgiServerConnection

    core = AgiServerConnection()
    core.receive_data(
        encode_environment([("agi_network_script", "pay"), ("agi_arg_" + "0" * 4301, "x")])
    )
    event = core.next_event()
    assert isinstance(event, AgiEnvironment)
    assert event.args == ()
    core.send_command("ANSWER")
    with pytest.raises(ProtocolError, match="malformed AGI 200 response"):
        core.receive_data(b"200 result=0 endpos=" + b"9" * 4301 + b"\n")


async def test_an_unexpected_error_in_the_core_closes_that_call_only(
    make_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pbx.agi import AgiServerConnection

    real = AgiServerConnection.receive_data

    def receive_data(self: AgiServerConnection, data: bytes) -> None:
        if b"boom" in data:
            raise RuntimeError("a bug")
        real(self, data)

    monkeypatch.setattr(AgiServerConnection, "receive_data", receive_data)

    async def flow(s: AgiSession) -> None:
        await s.answer()

    server = await make_server({"pay": flow})
    with caplog.at_level(logging.ERROR):
        fa = await FakeAsterisk.connect(server.port, env())
        assert await fa.next_command() == "ANSWER"
        fa.send(b"200 result=0 boom\n")
        assert await fa.closed_by_server()
    assert server.errors_total == 1
    assert "unexpected" in caplog.text
