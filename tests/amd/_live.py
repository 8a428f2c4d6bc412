"""AMD on live calls over real TCP: Puente's AudioSocket server with :class:`LiveAmd`, and
either the simulated Asterisk (AMI + dialplan + callee audio) or a raw peer playing Asterisk's
side of the AudioSocket with whatever bytes a test wants."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec

from dialer.amd import AmdSettings, LiveAmd, LiveAmdSettings
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import ActionResult, AmiClient, AmiMessage, AmiSettings
from pbx.audiosocket import AudioSocketServer, AudioSocketSettings
from pbx.sim import (
    CalleeModel,
    ModelFile,
    SimServerSettings,
    SimSettings,
    SimulatedAsterisk,
)
from pbx.sim import build as build_sim
from tests.support.outbound import originate_outbound

HUMAN = "+15550000001"
MACHINE = "+15550000002"
FAX = "+15550000003"

#: Callees with fixed timings: a person says one 0.6 s word; a machine greets for 3.5 s and
#: beeps (0.3 s after its greeting, 0.5 s of 1,000 Hz).
MODEL = {
    "numbers": {HUMAN: "human", MACHINE: "machine", FAX: "fax"},
    "ring_s": {"dist": "fixed", "value": 0.2},
    "patience_s": {"dist": "fixed", "value": 30.0},
    "talk_s": {"dist": "fixed", "value": 0.5},
    "human_greeting_s": {"dist": "fixed", "value": 0.6},
    "machine_greeting_s": {"dist": "fixed", "value": 3.5},
    "machine_beep": 1.0,
}


@dataclass
class SimFloor:
    """Puente's side (AMI client, AudioSocket server with AMD) and the simulator."""

    amd: LiveAmd
    audio: AudioSocketServer
    sim: SimulatedAsterisk
    client: AmiClient
    events: list[tuple[float, AmiMessage]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, msg: AmiMessage) -> None:
        self.events.append((asyncio.get_running_loop().time(), msg))
        self.changed.set()

    async def wait_for(
        self, pred: Callable[[AmiMessage], bool], timeout_s: float = 15.0
    ) -> tuple[float, AmiMessage]:
        """The first event (and when it arrived) that ``pred`` accepts."""
        async with asyncio.timeout(timeout_s):
            while True:
                for at, m in self.events:
                    if pred(m):
                        return at, m
                self.changed.clear()
                await self.changed.wait()

    async def originate(self, number: str, **variables: str) -> str:
        attempt, handle = await originate_outbound(
            self.client, number, timeout_ms=5000, **variables
        )
        response = await handle.result(10)
        assert response["Response"] == "Success", response
        return attempt


@contextlib.asynccontextmanager
async def sim_floor(
    *, model: dict | None = None, settings: LiveAmdSettings | None = None, agents: int = 1
) -> AsyncIterator[SimFloor]:
    amd = LiveAmd(settings or LiveAmdSettings())
    audio = AudioSocketServer(amd.handle, AudioSocketSettings(port=0))
    amd.attach(audio)
    agi = AgiServer({}, AgiSettings(port=0))
    await audio.start()
    await agi.start()
    sim = build_sim(
        SimServerSettings(
            ami_port=0, secret="s", audiosocket=f"127.0.0.1:{audio.port}",
            agi=f"127.0.0.1:{agi.port}",
        ),
        model=CalleeModel(msgspec.convert(model or MODEL, ModelFile)),
        settings=SimSettings(agent_ring_s=0.2, playback_s=0.2, machine_linger_s=5.0),
        agents=agents,
    )  # fmt: skip
    await sim.start()
    client = AmiClient(
        AmiSettings(port=sim.ami_port, username="puente", secret="s", ping_interval_s=60)
    )
    floor = SimFloor(amd, audio, sim, client)
    client.subscribe(floor.on_event)
    amd.bind(client)
    client.start()
    try:
        await client.wait_connected(5)
        yield floor
    finally:
        await client.close()
        await sim.stop()
        await audio.stop(grace_s=0.5)
        await agi.stop(grace_s=0.5)


# -- a raw peer and a stand-in AMI ----------------------------------------------------------------
class RecordingAmi:
    """AMI as :class:`LiveAmd` uses it: records every Setvar and answers Success."""

    def __init__(self, connected: bool = True) -> None:
        self.connected = connected
        self.setvars: dict[str, dict[str, str]] = {}  # channel -> variable -> value

    async def send_action(
        self,
        action: str,
        fields: list[tuple[str, str]],
        *,
        action_id: str | None = None,
        timeout_s: float | None = None,
    ) -> ActionResult:
        f = dict(fields)
        assert action == "Setvar"
        self.setvars.setdefault(f["Channel"], {})[f["Variable"]] = f["Value"]
        response = AmiMessage.from_pairs(
            [("Response", "Success"), ("ActionID", "x"), ("Message", "Variable Set")]
        )
        return ActionResult(action, "x", response)


#: Short detector caps so that the fault tests take a second or two, not four.
QUICK = AmdSettings(
    initial_silence_ms=800,
    greeting_ms=1000,
    greeting_at_cap_ms=800,
    total_analysis_ms=1200,
)


@dataclass
class RawFloor:
    amd: LiveAmd
    audio: AudioSocketServer
    ami: RecordingAmi

    def channel_for(self, call_uuid: uuid.UUID) -> str:
        """Announce a channel for ``call_uuid`` as a Newchannel would; its name."""
        name = f"PJSIP/trunk-{call_uuid.hex[:8]}"
        self.amd.channels.on_newchannel({"Uniqueid": str(call_uuid), "Channel": name})
        return name

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.audio.port)


@contextlib.asynccontextmanager
async def raw_floor(
    settings: LiveAmdSettings | None = None,
    ami: RecordingAmi | None = None,
    detector: AmdSettings = QUICK,
) -> AsyncIterator[RawFloor]:
    amd = LiveAmd(settings or LiveAmdSettings(verdict_margin_ms=300), detector)
    audio = AudioSocketServer(amd.handle, AudioSocketSettings(port=0, uuid_timeout_s=0.5))
    amd.attach(audio)
    recorder = ami or RecordingAmi()
    amd.bind(recorder)
    await audio.start()
    try:
        yield RawFloor(amd, audio, recorder)
    finally:
        await audio.stop(grace_s=0.5)


async def read_until_closed(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Everything Puente sends until it closes the socket (TimeoutError if it does not).

    Puente may close while frames we sent are still unread on its side: the kernel then
    answers with a TCP RST, not a FIN. What it sent before is read all the same (the RST is
    reported after the data queued ahead of it), so that counts as closed too.
    """
    out = bytearray()
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
    return bytes(out)


def frame_kinds(data: bytes) -> list[tuple[int, int]]:
    """(kind, length) of every whole AudioSocket frame in ``data``."""
    kinds, pos = [], 0
    while pos + 3 <= len(data):
        kind, length = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        kinds.append((kind, length))
        pos += 3 + length
    return kinds
