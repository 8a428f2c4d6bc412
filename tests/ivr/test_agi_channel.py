"""A flow's collect over FastAGI when prompt files are missing (the caller is still there).

Puente's AGI server runs :class:`AgiChannel` against a minimal Asterisk: the simulator's
:class:`AgiResponder` (its answers are the recorded Asterisk 22 ones) behind a TCP socket,
writing the ``HANGUP`` line before the next answer once the caller has hung up (agi/02).
res_agi answers a GET DATA whose prompt file is missing with ``200 result=-1``, the same line
as a hang-up: the prompt's fallbacks must be played and the keys collected, not the call ended.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from ivr import (
    ACTIONS,
    AgiChannel,
    Catalog,
    CollectionsActions,
    FlowMachine,
    IvrService,
    parse_flow,
)
from ivr._flow import CollectSpec
from ivr._machine import File, Finish, Number, Play, Speech
from ivr.payments import SandboxGateway
from pbx.agi import (
    AgiCommandFailed,
    AgiHangup,
    AgiServer,
    AgiSettings,
    CommandReader,
    encode_environment,
)
from pbx.sim._agi_caller import AgiAnswer, AgiResponder

SPEC = CollectSpec(into="account", min_digits=4, max_digits=16, timeout_ms=7000)
PROMPT = File(("puente/es/enter_account", "puente/es/enter_account_v1"))


async def over_agi(
    responder: AgiResponder, body: Callable[[AgiChannel], Awaitable[Any]]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Run ``body`` on a FastAGI session answered by ``responder``; what it returned or
    raised, and the dialogue (command, answer; ``("", "HANGUP")`` for the line)."""
    out: dict[str, Any] = {}

    async def flow(session) -> None:
        try:
            out["value"] = await body(AgiChannel(session))
        except Exception as e:
            out["error"] = e
            raise

    server = AgiServer({"t": flow}, AgiSettings(port=0))
    await server.start()
    dialogue: list[tuple[str, str]] = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode_environment([("agi_network", "yes"), ("agi_network_script", "t")]))
        commands = CommandReader()
        owed_hangup_line = False
        while data := await asyncio.wait_for(reader.read(4096), 5):
            for command in commands.feed(data):
                answer = responder.respond(command)
                if owed_hangup_line:
                    writer.write(b"HANGUP\n")
                    dialogue.append(("", "HANGUP"))
                    owed_hangup_line = False
                writer.write(answer.text.encode())
                dialogue.append((command, answer.text.rstrip("\n")))
                if answer.hangup_after:
                    responder.dead = owed_hangup_line = True
        writer.close()
    finally:
        await server.stop(grace_s=1)
    return out, dialogue


def collect(speech: tuple[Speech, ...]) -> Callable[[AgiChannel], Awaitable[Any]]:
    return lambda channel: channel.collect(speech, SPEC)


async def test_prompt_files_present_one_get_data_as_before() -> None:
    out, dialogue = await over_agi(AgiResponder(keys=["!1234#"]), collect((PROMPT,)))
    assert out["value"] == ("1234", False)
    assert dialogue == [("GET DATA puente/es/enter_account 7000 16", "200 result=1234")]


async def test_a_missing_first_candidate_plays_the_fallback_and_collects() -> None:
    responder = AgiResponder(keys=["1234#"], missing_sounds=frozenset({PROMPT.candidates[0]}))
    out, dialogue = await over_agi(responder, collect((PROMPT,)))
    assert out == {"value": ("1234", False)}
    assert dialogue == [
        ("GET DATA puente/es/enter_account 7000 16", "200 result=-1"),
        ("CHANNEL STATUS", "200 result=6"),  # up: the file was missing, the caller is there
        ("GET DATA puente/es/enter_account_v1 7000 16", "200 result=1234"),
    ]


async def test_no_file_at_all_still_collects_with_no_prompt() -> None:
    responder = AgiResponder(keys=["1234#"], missing_sounds=frozenset(PROMPT.candidates))
    out, dialogue = await over_agi(responder, collect((PROMPT,)))
    assert out == {"value": ("1234", False)}
    assert [c for c, _ in dialogue] == [
        "GET DATA puente/es/enter_account 7000 16",
        "CHANNEL STATUS",
        "GET DATA puente/es/enter_account_v1 7000 16",
        "CHANNEL STATUS",
        'GET DATA "" 7000 16',
    ]


async def test_a_missing_silence_file_after_a_spoken_number_still_collects() -> None:
    responder = AgiResponder(keys=["3#"], missing_sounds=frozenset({"silence/1"}))
    out, dialogue = await over_agi(responder, collect((Number(2),)))
    assert out == {"value": ("3", False)}
    assert [c for c, _ in dialogue] == [
        'SAY NUMBER 2 "0123456789*#"',
        "GET DATA silence/1 7000 16",
        "CHANNEL STATUS",
        'GET DATA "" 7000 16',
    ]


async def test_a_hang_up_during_get_data_is_still_a_hang_up() -> None:
    out, dialogue = await over_agi(AgiResponder(keys=["H"]), collect((PROMPT,)))
    assert isinstance(out["error"], AgiHangup)
    assert dialogue == [
        ("GET DATA puente/es/enter_account 7000 16", "200 result=-1"),
        ("", "HANGUP"),
        ("CHANNEL STATUS", "511 Command Not Permitted on a dead channel or intercept routine"),
    ]


async def test_a_hang_up_on_the_fallback_after_a_missing_file_is_a_hang_up() -> None:
    responder = AgiResponder(keys=["H"], missing_sounds=frozenset({PROMPT.candidates[0]}))
    out, dialogue = await over_agi(responder, collect((PROMPT,)))
    assert isinstance(out["error"], AgiHangup)
    assert [a for _, a in dialogue][:4] == [
        "200 result=-1",
        "200 result=6",
        "200 result=-1",
        "HANGUP",
    ]


class _Failing(AgiResponder):
    """A PBX where even GET DATA with no prompt fails (it should not happen)."""

    def _get_data(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=-1\n", 0.0)


async def test_collect_failing_on_a_live_channel_raises_a_failure_not_a_hangup() -> None:
    out, dialogue = await over_agi(_Failing(keys=["1#"]), collect((PROMPT,)))
    assert isinstance(out["error"], AgiCommandFailed)
    assert not isinstance(out["error"], AgiHangup)
    assert dialogue[-2:] == [
        ('GET DATA "" 7000 16', "200 result=-1"),
        ("CHANNEL STATUS", "200 result=6"),
    ]


# -- the driver loop: a failure on a live channel is the flow's error path --------------------
FLOW = """
flow: mini
languages: [es, en]
entries: {inbound: ask}
agent: to_agent
on_error: apology
states:
  ask:
    play: [enter_account]
    collect: {into: account, min_digits: 4, max_digits: 8}
    next: done
  done:
    end: ok
  to_agent:
    play: [transferring]
    transfer: agent
  apology:
    play: [apology]
    transfer: agent
"""


class FailingChannel:
    """A channel whose collect fails on a live call (every file and the no-prompt read)."""

    def __init__(self) -> None:
        self.heard: list[tuple[Speech, ...]] = []
        self.transferred = ""
        self.finished = ""

    async def play(self, speech: tuple[Speech, ...]) -> None:
        self.heard.append(speech)

    async def collect(self, speech: tuple[Speech, ...], spec: CollectSpec) -> tuple[str, bool]:
        raise AgiCommandFailed("GET DATA", 6)

    async def transfer(self, session_id: uuid.UUID, target: str) -> None:
        self.transferred = target

    async def set_language(self, language: str) -> None:
        pass

    async def finish(self, outcome: str) -> None:
        self.finished = outcome


async def test_a_failed_collect_goes_to_on_error_never_to_a_hang_up(
    db_pool: asyncpg.Pool,
) -> None:
    catalog = Catalog.load()
    flow = parse_flow(FLOW, "mini.yaml", catalog, ACTIONS)
    actions = CollectionsActions(db_pool, gateway=SandboxGateway())
    service = IvrService(db_pool, {"mini": flow}, catalog, actions, node="test")
    channel = FailingChannel()
    result = await service.run_call(flow, "inbound", channel, language="es", data={}, caller=None)
    assert result.outcome == "transfer"
    assert channel.transferred == "agent"  # the apology, then an agent
    assert channel.heard == [(File(("puente/es/apology",)),)]
    assert {"state": "ask", "event": "GET DATA failed"} in result.trail
    outcome = await db_pool.fetchval(
        "SELECT outcome FROM ivr_sessions WHERE id = $1", result.session_id
    )
    assert outcome == "transfer"


@pytest.mark.parametrize("state", ["ask", "apology"])
def test_the_machine_error_path_never_loops(state: str) -> None:
    catalog = Catalog.load()
    m = FlowMachine(parse_flow(FLOW, "mini.yaml", catalog, ACTIONS), catalog, entry="inbound",
                    language="es")  # fmt: skip
    m.start()
    m.state = m.flow.states[state]
    step = m.failed("GET DATA failed")
    if state == "ask":
        assert step == Play((File(("puente/es/apology",)),))
    else:  # the error state itself failed: end, rather than loop
        assert step == Finish("error")


# -- malformed answers and environments: the flow's error path, the session row kept ----------
class _NoKeyCode(AgiResponder):
    """A PBX that answers the welcome prompt with a result that is no key's code."""

    def _stream_file(self, args: list[str]) -> AgiAnswer:
        if args and args[0] == "puente/es/welcome":
            return AgiAnswer("200 result=99999999 endpos=10\n", 0.0)
        return super()._stream_file(args)


WELCOME = """
flow: hello
entries: {inbound: hello}
on_error: apology
states:
  hello:
    play: [welcome]
    end: ok
  apology:
    play: [apology]
    transfer: agent
"""


def _service(db_pool: asyncpg.Pool, flow_text: str) -> tuple[IvrService, Any]:
    catalog = Catalog.load()
    flow = parse_flow(flow_text, "hello.yaml", catalog, ACTIONS)
    actions = CollectionsActions(db_pool, gateway=SandboxGateway())
    return IvrService(db_pool, {flow.name: flow}, catalog, actions, node="test"), flow


async def test_a_prompt_answered_with_no_key_code_goes_to_on_error(db_pool: asyncpg.Pool) -> None:
    service, flow = _service(db_pool, WELCOME)

    async def call(channel: AgiChannel) -> Any:
        return await service.run_call(flow, "inbound", channel, language="es", data={},
                                      caller=None)  # fmt: skip

    out, dialogue = await over_agi(_NoKeyCode(keys=[]), call)
    result = out["value"]
    assert result.outcome == "transfer"  # the apology, then an agent: not a closed socket
    assert {"state": "hello", "event": "STREAM FILE failed"} in result.trail
    assert [c for c, _ in dialogue][1:3] == [
        'STREAM FILE puente/es/welcome ""',
        'STREAM FILE puente/es/apology ""',
    ]


async def test_control_characters_in_the_uniqueid_and_caller_keep_the_session_row(
    db_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    service, flow = _service(db_pool, WELCOME)
    channel = FailingChannel()
    uniqueid = f"17953\x00{uuid.uuid4().hex[:8]}.4\x1b2"
    with caplog.at_level("WARNING"):
        result = await service.run_call(
            flow,
            "inbound",
            channel,
            language="es",
            data={},
            caller="+52551\x00234\n5678",
            uniqueid=uniqueid,
        )
    assert result.outcome == "ok"
    row = await db_pool.fetchrow(
        "SELECT uniqueid, caller, outcome FROM ivr_sessions WHERE id = $1", result.session_id
    )
    assert row is not None, caplog.text  # PostgreSQL refuses NUL: the row was lost
    assert row["uniqueid"] == uniqueid.replace("\x00", "").replace("\x1b", "")
    assert row["caller"] == "+52******5678"  # masked, and no control character left
    assert row["outcome"] == "ok"
    assert "session not recorded" not in caplog.text
    assert "control characters removed" in caplog.text
