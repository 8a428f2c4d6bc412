"""``200 result=-1``: a caller who hung up, or a command that failed on a live channel.

res_agi answers both the same: GET DATA prints ``200 result=-1`` for any negative
``ast_app_getdata_full``, which is what ``ast_streamfile`` gives for a missing prompt file, and
what a hang-up gives. agi/01 records a missing file (``STREAM FILE no-such-file`` ->
``200 result=-1 endpos=0``, AMI ``AGIExecEnd Result: Failure``) on a channel that then goes on
(``SAY DIGITS`` plays); agi/02 records the same ``200 result=-1`` for a hang-up (WAIT FOR
DIGIT), then ``HANGUP`` and ``511``. The helpers ask ``CHANNEL STATUS`` before they conclude.

The answers here are the recorded bytes, cut out of the transcripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pbx.agi import (
    AgiCommandFailed,
    AgiHangup,
    AgiServer,
    AgiSession,
    AgiSettings,
)
from tests.pbx.agi.test_server import FakeAsterisk, env
from tests.support import transcripts


def recorded(name: str, command: str) -> bytes:
    """The bytes Asterisk sent after ``command`` in ``agi/<name>``, up to the next command."""
    out = bytearray()
    found = False
    for c in transcripts.log_chunks(f"agi/{name}.log.txt"):
        if c.direction == "APP->AST":
            if found:
                break
            found = c.data == f"{command}\n".encode()
        elif c.direction == "AST->APP" and found:
            out += c.data
    assert found, (name, command)
    return bytes(out)


MISSING_FILE = recorded("01-full-session", 'STREAM FILE no-such-file ""')
LIVE_STATUS = recorded("01-full-session", "CHANNEL STATUS")
HUNG_UP_IN_COMMAND = recorded("02-caller-hangup-during-wait-for-digit", "WAIT FOR DIGIT 15000")
DEAD = recorded("03-caller-hangup-while-idle", "CHANNEL STATUS")
HANGUP_LINE = recorded("02-caller-hangup-during-wait-for-digit", "GET VARIABLE agi_channel")[:7]


def test_the_recorded_answers_are_what_the_tests_say() -> None:
    assert MISSING_FILE == b"200 result=-1 endpos=0\n"
    assert LIVE_STATUS == b"200 result=6\n"
    assert HUNG_UP_IN_COMMAND == b"200 result=-1\n"  # GET DATA prints the same line
    assert DEAD == b"511 Command Not Permitted on a dead channel or intercept routine\n"
    assert HANGUP_LINE == b"HANGUP\n"


Call = Callable[[AgiSession], Awaitable[object]]
# Every helper whose -1 may be a failure; what it sends.
HELPERS: list[tuple[str, Call, str]] = [
    ("GET DATA", lambda s: s.get_data("puente/es/enter_account", 7000, 16),
     "GET DATA puente/es/enter_account 7000 16"),
    ("WAIT FOR DIGIT", lambda s: s.wait_for_digit(5000), "WAIT FOR DIGIT 5000"),
    ("SAY DIGITS", lambda s: s.say_digits("123"), 'SAY DIGITS 123 ""'),
    ("SAY NUMBER", lambda s: s.say_number(42), 'SAY NUMBER 42 ""'),
    ("SAY DATE", lambda s: s.say_date(1795335161), 'SAY DATE 1795335161 ""'),
    ("ANSWER", lambda s: s.answer(), "ANSWER"),
]  # fmt: skip


async def _session(
    flow: Callable[[AgiSession], Awaitable[None]],
) -> tuple[AgiServer, FakeAsterisk]:
    server = AgiServer({"pay": flow}, AgiSettings(port=0))
    await server.start()
    return server, await FakeAsterisk.connect(server.port, env())


@pytest.mark.parametrize(("verb", "call", "line"), HELPERS, ids=[h[0] for h in HELPERS])
async def test_minus_one_on_a_live_channel_is_a_failure_not_a_hangup(
    verb: str, call: Call, line: str
) -> None:
    raised: list[BaseException] = []

    async def flow(s: AgiSession) -> None:
        try:
            await call(s)
        except AgiCommandFailed as e:
            raised.append(e)
        assert not s.hung_up
        await s.set_variable("PUENTE_NEXT", "agent")  # the flow goes on

    server, fa = await _session(flow)
    try:
        assert await fa.next_command() == line
        fa.send(HUNG_UP_IN_COMMAND)
        assert await fa.next_command() == "CHANNEL STATUS"
        fa.send(LIVE_STATUS)
        assert await fa.next_command() == 'SET VARIABLE PUENTE_NEXT "agent"'
        fa.send(b"200 result=1\n")
        assert await fa.closed_by_server()
    finally:
        await server.abort()
    (e,) = raised
    assert isinstance(e, AgiCommandFailed)
    assert not isinstance(e, AgiHangup)
    assert (e.verb, e.status) == (verb, 6)
    assert (server.failures_total, server.hangups_total) == (1, 0)


@pytest.mark.parametrize("hangup_first", [False, True], ids=["511", "hangup-line-then-511"])
async def test_a_real_hang_up_during_get_data_is_still_a_hang_up(hangup_first: bool) -> None:
    raised: list[BaseException] = []
    server, fa = await _session(_card_entry(raised))
    try:
        assert await fa.next_command() == "GET DATA puente/es/enter_card 10000 19"
        fa.send(HUNG_UP_IN_COMMAND)
        assert await fa.next_command() == "CHANNEL STATUS"
        # agi/02: the HANGUP line comes before the next answer; agi/03: CHANNEL STATUS is 511.
        fa.send((HANGUP_LINE if hangup_first else b"") + DEAD)
        assert await fa.closed_by_server()
    finally:
        await server.abort()
    assert len(raised) == 1
    assert (server.failures_total, server.hangups_total) == (0, 1)


async def test_a_hang_up_line_with_the_minus_one_needs_no_question() -> None:
    raised: list[BaseException] = []
    server, fa = await _session(_card_entry(raised))
    try:
        assert await fa.next_command() == "GET DATA puente/es/enter_card 10000 19"
        fa.send(HUNG_UP_IN_COMMAND + HANGUP_LINE)  # one read: the flow sees both at once
        assert await fa.next_command() is None  # no CHANNEL STATUS: closed at once
    finally:
        await server.abort()
    assert len(raised) == 1


async def test_get_data_with_no_prompt_sends_an_empty_file_name() -> None:
    got: list[object] = []

    async def flow(s: AgiSession) -> None:
        got.append(await s.get_data("", 3000, 4))

    server, fa = await _session(flow)
    try:
        # An empty argument, as in the recorded 'STREAM FILE hello-world ""' (agi/01):
        # ast_app_getdata_full then skips the prompt and reads the keys.
        assert await fa.next_command() == 'GET DATA "" 3000 4'
        fa.send(b"200 result=1234\n")
        assert await fa.closed_by_server()
    finally:
        await server.abort()
    assert [(r.digits, r.timed_out) for r in got] == [("1234", False)]  # type: ignore[attr-defined]


async def test_failure_logs_carry_the_verb_only(caplog: pytest.LogCaptureFixture) -> None:
    async def flow(s: AgiSession) -> None:
        with pytest.raises(AgiCommandFailed) as info:
            await s.say_digits("4242424242424242")
        assert "4242" not in str(info.value)

    server, fa = await _session(flow)
    try:
        with caplog.at_level("DEBUG"):
            assert await fa.next_command() == 'SAY DIGITS 4242424242424242 ""'
            fa.send(HUNG_UP_IN_COMMAND)
            assert await fa.next_command() == "CHANNEL STATUS"
            fa.send(LIVE_STATUS)
            assert await fa.closed_by_server()
            await asyncio.sleep(0)
    finally:
        await server.abort()
    assert "SAY DIGITS failed on a live channel" in caplog.text
    assert "4242" not in caplog.text


def _card_entry(raised: list[BaseException]):
    """A flow that asks for a card number, noting the hang-up it gets instead."""

    async def flow(s: AgiSession) -> None:
        try:
            await s.get_data("puente/es/enter_card", 10000, 19)
        except AgiHangup as e:
            raised.append(e)
            raise

    return flow


# -- a result that is no key's code ------------------------------------------------------------
def test_a_result_out_of_the_dtmf_range_is_no_digit_and_flagged() -> None:
    from pbx.agi._core import AgiServerConnection

    core = AgiServerConnection()
    core.receive_data(env())
    core.next_event()
    core.send_command('STREAM FILE puente/es/welcome ""')
    core.receive_data(b"200 result=99999999 endpos=10\n")  # chr() of it would raise
    response = core.next_event()
    assert (response.digit, response.bad_digit) == (None, True)  # type: ignore[union-attr]
    for line, digit in ((b"200 result=53 endpos=8960\n", "5"), (b"200 result=0\n", None)):
        core.send_command("WAIT FOR DIGIT 5000")
        core.receive_data(line)
        ok = core.next_event()
        assert (ok.digit, ok.bad_digit) == (digit, False)  # type: ignore[union-attr]


@pytest.mark.parametrize("result", [b"99999999", b"1114112", b"97", b"300"])
async def test_stream_file_answered_with_no_key_is_a_failure_on_a_live_channel(
    result: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    async def flow(s: AgiSession) -> None:
        try:
            await s.stream_file("puente/es/welcome", "0123456789*#")
        except AgiCommandFailed as e:
            raised.append(e)
        await s.set_variable("PUENTE_NEXT", "agent")  # the flow goes on: its error path

    server, fa = await _session(flow)
    try:
        with caplog.at_level("WARNING"):
            assert await fa.next_command() == 'STREAM FILE puente/es/welcome "0123456789*#"'
            fa.send(b"200 result=" + result + b" endpos=10\n")
            assert await fa.next_command() == 'SET VARIABLE PUENTE_NEXT "agent"'
            fa.send(b"200 result=1\n")
            assert await fa.closed_by_server()
    finally:
        await server.abort()
    (e,) = raised
    assert e.verb == "STREAM FILE"  # type: ignore[attr-defined]
    assert "STREAM FILE answered a result that is no key's code" in caplog.text
    assert "99999999" not in caplog.text  # the value is not logged (it could be a key)
