"""FastAGI: the real Asterisk 22 sessions through the core and through the asyncio server."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx import LocalProtocolError, RemoteProtocolError
from pbx.agi import (
    NEED_DATA,
    AgiCommandError,
    AgiEnvironment,
    AgiHangup,
    AgiResponse,
    AgiServer,
    AgiServerConnection,
    AgiSession,
    AgiSettings,
    CommandReader,
    HangupNotice,
    State,
    encode_environment,
    quote,
)
from tests.support import transcripts

SCENARIOS = [
    "01-full-session",
    "02-caller-hangup-during-wait-for-digit",
    "03-caller-hangup-while-idle",
    "04-caller-hangup-during-stream-file",
    "05-agi-server-closes-socket",
]


def chunks(name: str) -> list[transcripts.Chunk]:
    return [
        c
        for c in transcripts.log_chunks(f"agi/{name}.log.txt")
        if c.direction in ("AST->APP", "APP->AST")
    ]


def drain(conn: AgiServerConnection) -> list[object]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def replay_core(name: str, *, bytewise: bool = False) -> list[tuple[str, list[object]]]:
    """Each recorded command and the events its answer produced, in recorded chunking."""
    conn = AgiServerConnection()
    steps: list[tuple[str, list[object]]] = [("<connect>", [])]
    for c in chunks(name):
        if c.direction == "APP->AST":
            command = c.data.decode().rstrip("\n")
            assert conn.send_command(command) == c.data  # we would send exactly these bytes
            steps.append((command, []))
        else:
            pieces = [c.data[i : i + 1] for i in range(len(c.data))] if bytewise else [c.data]
            for piece in pieces:
                conn.receive_data(piece)
                steps[-1][1].extend(drain(conn))
    return steps


# -- the environment block ------------------------------------------------------------------------
def test_environment_block_facts() -> None:
    steps = replay_core("01-full-session")
    (env,) = steps[0][1]
    assert isinstance(env, AgiEnvironment)
    keys = list(env.variables)
    assert keys[:4] == ["agi_network", "agi_network_script", "agi_request", "agi_channel"]
    assert keys[-2:] == ["agi_arg_1", "agi_arg_2"]
    assert len(keys) == 24
    assert env.script == "test"
    assert env.request == "agi://127.0.0.1:4573/test"
    assert env.args == ("arg1", "arg with space")  # spaces kept
    assert env.get("accountcode") == ""  # "agi_accountcode: " with an empty value
    assert env.callerid == "5550100"
    assert env.uniqueid == "1795335161.42"
    assert env.get("version") == "22.10.1"


def test_environment_split_at_every_offset() -> None:
    raw = transcripts.read("agi/01-full-session.from-asterisk.txt")
    block = raw[: raw.index(b"\n\n") + 2]
    whole = AgiServerConnection()
    whole.receive_data(block)
    (expected,) = drain(whole)
    for cut in range(len(block) + 1):
        conn = AgiServerConnection()
        conn.receive_data(block[:cut])
        first = drain(conn)
        conn.receive_data(block[cut:])
        events = first + drain(conn)
        assert events == [expected], cut
        assert conn.state is State.IDLE


def test_encode_environment_round_trips_the_recorded_block() -> None:
    raw = transcripts.read("agi/01-full-session.from-asterisk.txt")
    block = raw[: raw.index(b"\n\n") + 2]
    conn = AgiServerConnection()
    conn.receive_data(block)
    (env,) = drain(conn)
    assert encode_environment(env.variables) == block


# -- the full session: every response kind ------------------------------------------------
@pytest.mark.parametrize("bytewise", [False, True], ids=["recorded-chunks", "byte-by-byte"])
def test_full_session_responses(bytewise: bool) -> None:
    steps = dict(
        (i, (cmd, evs))
        for i, (cmd, evs) in enumerate(replay_core("01-full-session", bytewise=bytewise))
    )
    by_command = [steps[i] for i in sorted(steps)][1:]

    def response(index: int) -> AgiResponse:
        (ev,) = [e for e in by_command[index][1] if isinstance(e, AgiResponse)]
        return ev

    cmds = [c for c, _ in by_command]
    assert cmds[0] == "ANSWER"
    assert response(0).result == "0"
    assert response(1).result_int == 6  # CHANNEL STATUS: up
    got = response(3)
    assert cmds[3] == "GET VARIABLE DISPO"
    assert (got.result, got.data) == ("1", "left message")
    assert (response(4).result, response(4).data) == ("0", None)  # unset variable
    assert response(5).data == "5550100|Local/listen@answer-and-talk-00000015;1|left message"
    assert (response(7).result, response(7).endpos) == ("0", 11234)
    assert (response(8).digit, response(8).endpos) == ("5", 8960)  # interrupted by '5'
    assert (response(9).result, response(9).endpos, response(9).hung_up) == ("-1", 0, True)
    assert response(12).result == "1234"  # GET DATA, 4 digits
    assert (response(13).result, response(13).is_timeout) == ("", True)
    assert response(14).result == "9"  # GET DATA ended by '#'
    assert response(15).digit == "7"  # WAIT FOR DIGIT: ASCII 55
    assert response(16).digit is None
    assert response(16).result == "0"
    assert cmds[19] == "EXEC NoSuchApplication foo"
    assert response(19).result == "-2"
    assert cmds[22] == "FOO BAR"
    assert response(22).code == 510
    usage = response(23)
    assert cmds[23] == "STREAM FILE"
    assert usage.code == 520
    lines = usage.text.splitlines()
    assert lines[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert lines[-1] == "520 End of proper usage."
    assert any("<literal>" in line for line in lines[1:-1])  # unprefixed middle lines
    assert all(not line.startswith("520") for line in lines[1:-1])
    # HANGUP: result=1, then the unsolicited HANGUP line before the next response
    assert cmds[25] == "HANGUP"
    assert response(25).result == "1"
    assert cmds[26] == "GET VARIABLE DISPO"
    assert isinstance(by_command[26][1][0], HangupNotice)
    assert response(26).data == "left message"  # variables still readable on a dead channel
    assert cmds[27] == 'STREAM FILE hello-world ""'
    assert response(27).code == 511
    assert cmds[28] == "NOOP"
    assert response(28).code == 200


@pytest.mark.parametrize(
    ("name", "where", "before"),
    [
        # (scenario, command whose answer carries the HANGUP line, HANGUP before the response?)
        ("02-caller-hangup-during-wait-for-digit", "GET VARIABLE agi_channel", True),
        ("03-caller-hangup-while-idle", "ANSWER", False),
        ("04-caller-hangup-during-stream-file", "NOOP", True),
    ],
)
def test_far_end_hangup_line(name: str, where: str, before: bool) -> None:
    steps = replay_core(name)
    for command, events in steps:
        kinds = [type(e).__name__ for e in events]
        if command == where:
            if before:
                assert kinds == ["HangupNotice", "AgiResponse"]
            else:  # idle: the line arrives after the answer, with nothing outstanding
                assert kinds == ["AgiResponse", "HangupNotice"]
        else:
            assert "HangupNotice" not in kinds


def test_dead_channel_answers() -> None:
    steps = dict(replay_core("02-caller-hangup-during-wait-for-digit")[1:])
    assert steps["WAIT FOR DIGIT 15000"][0].result == "-1"
    assert steps['STREAM FILE hello-world ""'][0].code == 511
    assert steps["NOOP"][0].code == 200
    steps3 = dict(replay_core("03-caller-hangup-while-idle")[1:])
    assert steps3["CHANNEL STATUS"][0].code == 511
    assert steps3["EXEC Playback hello-world"][0].code == 200


def test_server_closes_socket_scenario_has_no_hangup() -> None:
    steps = replay_core("05-agi-server-closes-socket")
    assert all(not isinstance(e, HangupNotice) for _, evs in steps for e in evs)
    assert [c for c, _ in steps[1:]] == [
        c.data.decode().rstrip("\n")
        for c in chunks("05-agi-server-closes-socket")
        if c.direction == "APP->AST"
    ]


# -- refusals ---------------------------------------------------------------------------------
def test_one_command_at_a_time_and_injection_refused() -> None:
    conn = AgiServerConnection()
    conn.receive_data(encode_environment({"agi_network": "yes"}))
    drain(conn)
    with pytest.raises(LocalProtocolError):
        conn.send_command("NOOP\nHANGUP")
    conn = AgiServerConnection()
    conn.receive_data(encode_environment({"agi_network": "yes"}))
    drain(conn)
    conn.send_command("NOOP")
    with pytest.raises(LocalProtocolError):
        conn.send_command("NOOP")
    with pytest.raises(LocalProtocolError):
        quote("a\nb")


def test_unsolicited_response_and_bad_lines_are_remote_errors() -> None:
    conn = AgiServerConnection()
    conn.receive_data(encode_environment({"agi_network": "yes"}))
    drain(conn)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"200 result=0\n")  # nothing outstanding
    conn = AgiServerConnection()
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"GET / HTTP/1.1\r\n")  # not an agi_ line
    conn = AgiServerConnection()
    conn.receive_data(encode_environment({"agi_network": "yes"}))
    drain(conn)
    conn.send_command("NOOP")
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"200 banana\n")


def test_environment_size_cap() -> None:
    conn = AgiServerConnection(max_env_bytes=1024)
    block = b"".join(f"agi_arg_{i}: {'x' * 40}\n".encode() for i in range(100))
    with pytest.raises(RemoteProtocolError, match="environment block"):
        conn.receive_data(block)
    conn = AgiServerConnection(max_line_bytes=256)
    with pytest.raises(RemoteProtocolError, match="without a newline"):
        conn.receive_data(b"agi_x: " + b"y" * 300)


def test_eof_mid_line_is_an_error() -> None:
    conn = AgiServerConnection()
    conn.receive_data(b"agi_network: y")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a line"):
        conn.next_event()


# -- hypothesis ---------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_core(data: bytes) -> None:
    conn = AgiServerConnection(max_env_bytes=2048, max_line_bytes=512)
    try:
        conn.receive_data(data)
        drain(conn)
        conn.receive_data(b"")
        drain(conn)
    except RemoteProtocolError:
        assert conn.state is State.ERROR


RECORDED = transcripts.read("agi/01-full-session.from-asterisk.txt")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_session_never_crashes_the_core(data: st.DataObject) -> None:
    raw = bytearray(RECORDED)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    conn = AgiServerConnection()
    env_end = raw.find(b"\n\n")
    try:
        conn.receive_data(bytes(raw[: env_end + 2] if env_end >= 0 else raw))
        drain(conn)
        for line in bytes(raw[env_end + 2 :]).split(b"\n"):
            if conn.state is State.IDLE:
                conn.send_command("NOOP")
            conn.receive_data(line + b"\n")
            drain(conn)
    except (RemoteProtocolError, LocalProtocolError):
        pass


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00"), max_size=40))
def test_quote_round_trip(value: str) -> None:
    quoted = quote(value)
    assert quoted.startswith('"')
    assert quoted.endswith('"')
    inner = quoted[1:-1]
    out, i = [], 0
    while i < len(inner):  # Asterisk's parser: backslash escapes the next character
        if inner[i] == "\\":
            i += 1
        out.append(inner[i])
        i += 1
    assert "".join(out) == value


@given(st.lists(st.text(alphabet="ABCDEFGHIJ \"'", min_size=1, max_size=30), max_size=10))
def test_command_reader_frames_commands(lines: list[str]) -> None:
    reader = CommandReader()
    wire = b"".join(line.encode() + b"\n" for line in lines)
    got: list[str] = []
    for i in range(0, len(wire), 3):
        got += reader.feed(wire[i : i + 3])
    assert got == lines


# -- the asyncio server against the recorded Asterisk side ---------------------------------------
async def replay_asterisk(port: int, name: str) -> tuple[bytes, bool]:
    """Play Asterisk from the log: answer each expected command with the recorded bytes.

    Returns what the server sent and whether it then closed the socket.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = bytearray()
    script = chunks(name)
    i = 0
    try:
        while i < len(script):
            c = script[i]
            if c.direction == "AST->APP":
                writer.write(c.data)
                await writer.drain()
                i += 1
                continue
            got = await asyncio.wait_for(reader.readexactly(len(c.data)), 5)
            sent += got
            assert got == c.data, (got, c.data)
            i += 1
        rest = await asyncio.wait_for(reader.read(), 5)
        return bytes(sent + rest), rest == b""
    finally:
        writer.close()


async def test_server_replays_the_full_session_exactly() -> None:
    seen: dict[str, object] = {}

    async def flow(s: AgiSession) -> None:
        assert s.env is not None
        seen["args"] = s.env.args
        await s.answer()
        seen["status"] = await s.channel_status()
        await s.set_variable("DISPO", "left message")
        seen["dispo"] = await s.get_variable("DISPO")
        seen["unset"] = await s.get_variable("NO_SUCH_VAR")
        seen["full"] = await s.get_full_variable("${CALLERID(num)}|${CHANNEL}|${DISPO}")
        await s.verbose("hello from fastagi", 1)
        seen["play"] = await s.stream_file("hello-world")
        seen["interrupted"] = await s.stream_file("demo-congrats", "0123456789*#")
        seen["missing"] = await s.stream_file("no-such-file")
        await s.say_digits("123")
        await s.say_number(42)
        seen["data"] = [await s.get_data("beep", t, 4) for t in (5000, 2000, 5000)]
        seen["digits"] = [await s.wait_for_digit(5000), await s.wait_for_digit(1000)]
        await s.exec("Playback", "hello-world")
        await s.command('EXEC Set "FOO=bar"')
        with pytest.raises(AgiCommandError, match="NoSuchApplication"):
            await s.exec("NoSuchApplication", "foo")
        await s.command("DATABASE PUT rig lastcall ok")
        seen["db"] = (await s.command("DATABASE GET rig lastcall")).data
        with pytest.raises(AgiCommandError, match="510"):
            await s._run("FOO BAR")
        with pytest.raises(AgiCommandError, match="520"):
            await s._run("STREAM FILE")
        await s.noop()
        await s.hangup()
        assert s.hung_up
        seen["after"] = await s.get_variable("DISPO")  # results can still be saved
        with pytest.raises(AgiHangup):
            await s.stream_file("hello-world")
        await s.noop()

    server = AgiServer({"test": flow}, AgiSettings(port=0))
    await server.start()
    try:
        sent, closed = await replay_asterisk(server.port, "01-full-session")
    finally:
        await server.stop(grace_s=1)
    assert sent == transcripts.read("agi/01-full-session.to-asterisk.txt")
    assert closed  # Asterisk never closes: the server must
    assert seen["args"] == ("arg1", "arg with space")
    assert seen["status"] == 6
    assert (seen["dispo"], seen["unset"]) == ("left message", None)
    assert seen["full"] == "5550100|Local/listen@answer-and-talk-00000015;1|left message"
    assert (seen["play"], seen["interrupted"], seen["missing"]) == (None, "5", None)
    assert [(d.digits, d.timed_out) for d in seen["data"]] == [  # type: ignore[attr-defined]
        ("1234", False),
        ("", True),
        ("9", False),
    ]
    assert seen["digits"] == ["7", None]
    assert seen["db"] == "ok"
    assert seen["after"] == "left message"


@pytest.mark.parametrize("name", SCENARIOS[1:])
async def test_server_against_recorded_hangups(name: str) -> None:
    """The flow issues the recorded commands; the helpers turn the hangup into AgiHangup."""
    recorded = [c.data.decode().rstrip("\n") for c in chunks(name) if c.direction == "APP->AST"]
    outcome: dict[str, object] = {}

    async def flow(s: AgiSession) -> None:
        codes = []
        for command in recorded:
            codes.append((await s.command(command)).code)
        outcome["codes"] = codes
        outcome["hung_up"] = s.hung_up

    server = AgiServer({"test": flow}, AgiSettings(port=0))
    await server.start()
    try:
        sent, closed = await replay_asterisk(server.port, name)
    finally:
        await server.stop(grace_s=1)
    assert sent == transcripts.read(f"agi/{name}.to-asterisk.txt")
    assert closed
    assert outcome["hung_up"] is (name != "05-agi-server-closes-socket")
    if name.startswith("02") or name.startswith("03"):
        assert 511 in outcome["codes"]  # type: ignore[operator]


async def test_idle_hangup_reaches_the_flow_as_hangup() -> None:
    result: dict[str, object] = {}

    async def flow(s: AgiSession) -> None:
        await s.answer()
        async with asyncio.timeout(5):
            await s.wait_hangup()
        result["saved"] = await s.command("GET VARIABLE DISPO")  # still allowed
        try:
            await s.channel_status()
        except AgiHangup:
            result["hangup"] = True

    server = AgiServer({"test": flow}, AgiSettings(port=0))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        raw = transcripts.read("agi/03-caller-hangup-while-idle.from-asterisk.txt")
        env_end = raw.index(b"\n\n") + 2
        writer.write(raw[:env_end])
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\nHANGUP\n")
        assert await reader.readline() == b"GET VARIABLE DISPO\n"
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b"CHANNEL STATUS\n"
        writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # flow over, socket closed
        writer.close()
    finally:
        await server.stop(grace_s=1)
    assert result == {"saved": AgiResponse(200, "0", None, None, "200 result=0"), "hangup": True}


@pytest.mark.parametrize(("line", "result"), [("200 result=*12", "*12"), ("200 result=*", "*")])
def test_get_data_may_return_star_keys(line: str, result: str) -> None:
    # GET DATA returns the keys pressed before '#' or the timeout; '*' is one of them.
    conn = AgiServerConnection()
    conn.receive_data(encode_environment({"agi_network": "yes"}))
    drain(conn)
    conn.send_command("GET DATA beep 5000 4")
    conn.receive_data(line.encode() + b"\n")
    (response,) = drain(conn)
    assert isinstance(response, AgiResponse)
    assert response.result == result
