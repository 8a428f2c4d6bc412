"""Puente's own protocol code against the simulated Asterisk, over real TCP, outcome by outcome.

The AMI client originates; the simulator plays the callee; on answer it runs the dialplan of
``asterisk_conf/extensions.conf`` and connects to Puente's AudioSocket and FastAGI servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest

from pbx.agi import AgiHangup, AgiServer, AgiSession, AgiSettings
from pbx.ami import AmiClient, AmiMessage, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import (
    DEFAULT_DIALPLAN,
    CalleeModel,
    ModelFile,
    SimCore,
    SimServerSettings,
    SimSettings,
    SimulatedAsterisk,
    load_dialplan,
)
from pbx.sim._callees import WIRE
from tests.support.outbound import originate_outbound

NUMBERS = {
    "+15550000001": "human",
    "+15550000002": "machine",
    "+15550000003": "busy",
    "+15550000004": "congestion",
    "+15550000005": "rejected",
    "+15550000006": "no_answer",
    "+15550000007": "unallocated",
    "+15550000008": "unreachable",
    "+15550000009": "fax",
}
BY_OUTCOME = {v: k for k, v in NUMBERS.items()}


class Rig:
    """Puente's side (AMI client, AudioSocket and FastAGI servers) and the simulator."""

    def __init__(self) -> None:
        self.events: list[AmiMessage] = []
        self.changed = asyncio.Event()
        self.audio_calls: list[AudioSocketCall] = []
        self.amd_verdict: dict[str, str] = {}  # attempt -> AMDSTATUS to set over AMI
        self.flows: list[str] = []
        self.agi_hangups = 0
        self.client: AmiClient
        self.sim: SimulatedAsterisk

    def on_event(self, msg: AmiMessage) -> None:
        self.events.append(msg)
        self.changed.set()

    async def wait_for(
        self, pred: Callable[[AmiMessage], bool], timeout_s: float = 10.0
    ) -> AmiMessage:
        async with asyncio.timeout(timeout_s):
            while True:
                for m in self.events:
                    if pred(m):
                        return m
                self.changed.clear()
                await self.changed.wait()

    async def on_audiosocket(self, call: AudioSocketCall) -> None:
        """A stand-in for AMD: listen for 0.4 s, give a verdict over AMI, end the socket."""
        self.audio_calls.append(call)
        await asyncio.sleep(0.4)
        attempt = str(call.uuid)
        verdict = self.amd_verdict.get(attempt)
        if verdict:
            channel = next(
                m["Channel"]
                for m in self.events
                if m.name == "Newchannel" and m.get("Uniqueid") == attempt
            )
            result = await self.client.send_action(
                "Setvar", [("Channel", channel), ("Variable", "AMDSTATUS"), ("Value", verdict)]
            )
            assert result.ok
        await call.hangup()

    async def pay_flow(self, s: AgiSession) -> None:
        self.flows.append("pay")
        try:
            got = await s.get_data("puente/es/ingrese-documento", 3000, 4)
            await s.set_variable("PUENTE_RESULT", got.digits)
        except AgiHangup:
            self.agi_hangups += 1
            raise

    async def originate(self, number: str, **variables: str) -> tuple[str, AmiMessage]:
        attempt, handle = await originate_outbound(
            self.client, number, timeout_ms=1500, **variables
        )
        return attempt, await handle.result(10)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    audio = AudioSocketServer(r.on_audiosocket, AudioSocketSettings(port=0))
    agi = AgiServer({"pay": r.pay_flow}, AgiSettings(port=0))
    await audio.start()
    await agi.start()
    spec = msgspec.convert(
        {
            "numbers": NUMBERS,
            "ring_s": {"dist": "fixed", "value": 0.2},
            "fail_after_s": {"dist": "fixed", "value": 0.1},
            "unreachable_after_s": {"dist": "fixed", "value": 0.3},
            "patience_s": {"dist": "fixed", "value": 30.0},
            "talk_s": {"dist": "fixed", "value": 0.5},
            "machine_greeting_s": {"dist": "fixed", "value": 1.0},
        },
        ModelFile,
    )
    core = SimCore(
        load_dialplan(DEFAULT_DIALPLAN),
        CalleeModel(spec),
        SimSettings(agent_ring_s=0.2, playback_s=0.3),
    )
    core.add_member("collections", "Local/100@agents", "Sim Agent 100", 0.0)
    r.sim = SimulatedAsterisk(
        core,
        SimServerSettings(
            ami_port=0,
            secret="s3cret",
            audiosocket=f"127.0.0.1:{audio.port}",
            agi=f"127.0.0.1:{agi.port}",
            agi_keys=("1234",),
        ),
    )
    await r.sim.start()
    r.client = AmiClient(
        AmiSettings(port=r.sim.ami_port, username="puente", secret="s3cret", ping_interval_s=60)
    )
    r.client.subscribe(r.on_event)
    r.client.start()
    await r.client.wait_connected(5)
    try:
        yield r
    finally:
        await r.client.close()
        await r.sim.stop()
        await audio.stop(grace_s=0.5)
        await agi.stop(grace_s=0.5)


@pytest.mark.parametrize(
    "outcome", ["busy", "congestion", "rejected", "no_answer", "unallocated", "unreachable"]
)
async def test_unanswered_outcomes_as_asterisk_reports_them(rig: Rig, outcome: str) -> None:
    attempt, response = await rig.originate(BY_OUTCOME[outcome])
    wire = WIRE[outcome]
    assert response["Response"] == "Failure"
    assert response["Reason"] == str(wire.reason)
    hangup = await rig.wait_for(lambda m: m.name == "Hangup" and m.get("Uniqueid") == attempt)
    assert hangup["Cause"] == str(wire.cause)
    assert not rig.audio_calls  # nothing answered, no AudioSocket


async def test_human_answer_streams_audio_then_reaches_an_agent(rig: Rig) -> None:
    attempt, response = await rig.originate(BY_OUTCOME["human"])
    assert response["Response"] == "Success"
    assert response["Reason"] == "4"
    assert response["Uniqueid"] == attempt  # ChannelId honoured
    amd = await rig.wait_for(lambda m: m.name == "UserEvent" and m.get("Attempt") == attempt)
    assert amd["AMDSTATUS"] == "NOTSURE"  # no verdict given: the fail-safe default
    (call,) = rig.audio_calls
    assert str(call.uuid) == attempt
    assert call.frames_in >= 10  # ~20 frames in 0.4 s of real time
    connect = await rig.wait_for(lambda m: m.name == "AgentConnect")
    assert connect["Queue"] == "collections"
    await rig.wait_for(lambda m: m.name == "AgentComplete")
    await rig.wait_for(lambda m: m.name == "Hangup" and m.get("Uniqueid") == attempt)


async def test_machine_verdict_over_ami_plays_the_message(rig: Rig) -> None:
    attempt, response = await rig.originate(BY_OUTCOME["machine"], PUENTE_VM="puente/vm-es")
    assert response["Reason"] == "4"
    rig.amd_verdict[attempt] = "MACHINE"
    amd = await rig.wait_for(lambda m: m.name == "UserEvent" and m.get("UserEvent") == "PuenteAMD")
    assert amd["AMDSTATUS"] == "MACHINE"
    vm = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteVoicemail")
    assert vm["Attempt"] == attempt
    await rig.wait_for(lambda m: m.name == "Hangup" and m.get("Uniqueid") == attempt)
    assert not any(m.name == "AgentConnect" for m in rig.events)


async def test_agentless_call_runs_the_ivr_flow_over_fastagi(rig: Rig) -> None:
    attempt, _ = await rig.originate(
        BY_OUTCOME["human"], PUENTE_MODE="agentless", PUENTE_FLOW="pay"
    )
    await rig.wait_for(lambda m: m.name == "Hangup" and m.get("Uniqueid") == attempt, 15)
    assert rig.flows == ["pay"]
    assert rig.agi_hangups == 0  # the scripted caller typed 1234, the flow ended, AGI() returned


async def test_wrong_secret_is_refused_after_a_second(rig: Rig) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.sim.ami_port)
    assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
    writer.write(b"Action: Login\r\nActionID: x\r\nUsername: puente\r\nSecret: nope\r\n\r\n")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    reply = await asyncio.wait_for(reader.read(), 5)
    assert loop.time() - t0 >= 0.9
    assert reply == b"Response: Error\r\nActionID: x\r\nMessage: Authentication failed\r\n\r\n"
    writer.close()


async def test_dropped_ami_connection_is_survived_without_replay(rig: Rig) -> None:
    rig.sim.drop_ami()
    async with asyncio.timeout(5):
        while rig.client.connects_total < 2:  # noqa: ASYNC110 - a counter of the client
            await asyncio.sleep(0.01)
    await rig.client.wait_connected(5)  # reconnected and logged in again
    assert rig.client.disconnects_total == 1
    _, response = await rig.originate(BY_OUTCOME["busy"])
    assert response["Reason"] == "0"


async def test_caller_hanging_up_in_the_ivr_reaches_the_flow_as_a_hangup(rig: Rig) -> None:
    rig.sim.settings = dataclasses.replace(rig.sim.settings, agi_keys=("H",))
    attempt, _ = await rig.originate(
        BY_OUTCOME["human"], PUENTE_MODE="agentless", PUENTE_FLOW="pay"
    )
    await rig.wait_for(lambda m: m.name == "Hangup" and m.get("Uniqueid") == attempt, 15)
    async with asyncio.timeout(5):
        while rig.agi_hangups < 1:  # noqa: ASYNC110 - the flow notices right after the hangup
            await asyncio.sleep(0.01)
    assert rig.flows == ["pay"]


async def test_puente_not_listening_takes_the_notsure_path_not_a_hangup(rig: Rig) -> None:
    """AudioSocket() cannot connect and returns -1; TryExec() keeps the answered person in the
    dialplan with the NOTSURE set before it: an agent, never a dropped call."""
    rig.sim.core.globals["PUENTE_AUDIOSOCKET"] = "127.0.0.1:1"  # nothing there
    attempt, response = await rig.originate(BY_OUTCOME["human"])
    assert response["Reason"] == "4"
    amd = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD")
    assert (amd["Attempt"], amd["AMDSTATUS"], amd["AMDCAUSE"]) == (
        attempt,
        "NOTSURE",
        "PUENTE-NO-VERDICT",
    )
    assert rig.sim.media_failures == 1
    assert any(
        m.name == "VarSet" and m.get("Variable") == "TRYSTATUS" and m.get("Value") == "FAILED"
        for m in rig.events
    )
    join = await rig.wait_for(lambda m: m.name == "QueueCallerJoin")
    assert join["Uniqueid"] == attempt


async def test_an_attempt_id_that_is_not_a_uuid_fails_audiosocket_as_asterisk_does(
    rig: Rig,
) -> None:
    attempt, response = await rig.originate(BY_OUTCOME["human"], PUENTE_ATTEMPT="not-a-uuid")
    assert response["Reason"] == "4"
    amd = await rig.wait_for(
        lambda m: m.get("UserEvent") == "PuenteAMD" and m.get("Uniqueid") == attempt
    )
    assert amd["AMDSTATUS"] == "NOTSURE"  # the app failed; TryExec() went on
    assert rig.sim.media_failures == 1
    assert not rig.audio_calls


async def test_audiosocket_leg_bytes_are_what_asterisk_sends(rig: Rig) -> None:
    """UUID frame first, then 320-byte audio frames in real time; our close ends AudioSocket()."""
    received = bytearray()
    first_read = asyncio.Event()

    async def raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < 1.0:
            data = await reader.read(65536)
            if not data:
                break
            received.extend(data)
            first_read.set()
        writer.close()  # no 0x00: closing alone must end AudioSocket() too

    server = await asyncio.start_server(raw, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rig.sim.core.globals["PUENTE_AUDIOSOCKET"] = f"127.0.0.1:{port}"
    try:
        attempt, _ = await rig.originate(BY_OUTCOME["human"])
        amd = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD")
        assert amd["Attempt"] == attempt  # the dialplan went on after our close
    finally:
        server.close()
    assert received[:3] == b"\x01\x00\x10"
    assert bytes(received[3:19]) == uuid.UUID(attempt).bytes
    frames, pos = [], 19
    while pos + 3 <= len(received):
        kind, length = received[pos], int.from_bytes(received[pos + 1 : pos + 3], "big")
        frames.append((kind, length))
        pos += 3 + length
    assert {f for f in frames} == {(0x10, 320)}
    assert 30 <= len(frames) <= 60  # 1 s of real time at 50 frames/s (a loaded CI is slower)


async def test_a_fax_answers_and_gets_the_fail_safe_path(rig: Rig) -> None:
    attempt, response = await rig.originate(BY_OUTCOME["fax"])
    assert response["Reason"] == "4"
    amd = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD")
    assert amd["Attempt"] == attempt
    assert len(rig.audio_calls) == 1  # the tones came over AudioSocket like any answer


async def test_without_silence_frames_a_server_that_never_writes_loses_audiosocket_after_2s(
    rig: Rig,
) -> None:
    """app_audiosocket's rule, over a Local channel: the far end's silences send nothing, and
    2 s with no frame either way fail AudioSocket(); TryExec() goes on with NOTSURE."""
    rig.sim.settings = dataclasses.replace(rig.sim.settings, audiosocket_silence_frames=False)
    received = bytearray()
    closed_at: list[float] = []
    last_frame_at: list[float] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while data := await reader.read(65536):  # never writes anything back
            received.extend(data)
            last_frame_at.append(loop.time())
        closed_at.append(loop.time())
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    rig.sim.core.globals["PUENTE_AUDIOSOCKET"] = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        attempt, response = await rig.originate(BY_OUTCOME["human"])
        assert response["Reason"] == "4"
        amd = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD")
        async with asyncio.timeout(5):
            while not closed_at:  # noqa: ASYNC110 - the server reads the close just after
                await asyncio.sleep(0.01)
    finally:
        server.close()
    assert rig.sim.media_failures == 1
    assert (amd["Attempt"], amd["AMDSTATUS"]) == (attempt, "NOTSURE")  # the fail-safe path
    assert closed_at
    # What came: the UUID frame, then only the frames of the person's "hello?".
    frames = (len(received) - 19) // 323
    assert received[:3] == b"\x01\x00\x10"
    assert (len(received) - 19) % 323 == 0
    assert 5 <= frames <= 100  # the greeting (the model's 0.4-2 s), no silence after it
    assert 1.9 <= closed_at[0] - last_frame_at[-1] <= 3.0


async def test_without_silence_frames_puentes_keepalive_keeps_the_call(rig: Rig) -> None:
    rig.sim.settings = dataclasses.replace(rig.sim.settings, audiosocket_silence_frames=False)
    frames = 0

    def count(_pcm: bytes) -> None:
        nonlocal frames
        frames += 1

    async def listen_long(call: AudioSocketCall) -> None:
        call.on_audio = count
        await asyncio.sleep(3.5)  # well past 2 s of the far end's silence
        await call.hangup()

    audio = AudioSocketServer(listen_long, AudioSocketSettings(port=0))
    await audio.start()
    rig.sim.core.globals["PUENTE_AUDIOSOCKET"] = f"127.0.0.1:{audio.port}"
    try:
        attempt, _ = await rig.originate(BY_OUTCOME["human"])
        amd = await rig.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD", timeout_s=15)
        assert amd["Attempt"] == attempt  # our hang-up after 3.5 s ended AudioSocket()
    finally:
        await audio.stop(grace_s=0.5)
    assert rig.sim.media_failures == 0
    assert 5 <= frames <= 100  # the greeting only: 3.5 s of every frame would be 175
