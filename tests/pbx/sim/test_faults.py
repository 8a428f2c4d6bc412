"""Faults on demand: what Puente's AMI client lives through against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest

from pbx.ami import ActionTimeout, AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings, EndReason
from pbx.sim import (
    DEFAULT_DIALPLAN,
    DEFAULT_MODEL,
    SimCore,
    SimServerSettings,
    SimulatedAsterisk,
    load_dialplan,
)
from pbx.sim._core import StartAudioSocket


async def until(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - counters of the objects under test
            await asyncio.sleep(0.01)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedAsterisk]:
    core = SimCore(load_dialplan(DEFAULT_DIALPLAN), DEFAULT_MODEL)
    s = SimulatedAsterisk(core, SimServerSettings(ami_port=0, secret="s3cret"))
    await s.start()
    yield s
    await s.stop()


def client_for(sim: SimulatedAsterisk, **kw: object) -> AmiClient:
    base: dict[str, object] = dict(
        port=sim.ami_port,
        username="puente",
        secret="s3cret",
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        login_timeout_s=0.5,
        action_timeout_s=1.0,
    )
    base.update(kw)
    return AmiClient(AmiSettings(**base))  # type: ignore[arg-type]


async def test_stalled_asterisk_is_detected_by_keepalive_and_recovered(sim) -> None:
    async with client_for(sim, ping_interval_s=0.2, ping_timeout_s=0.3) as client:
        await client.wait_connected(2)
        sim.stall_ami()
        await until(lambda: client.disconnects_total >= 1)
        assert not client.connected
        sim.resume_ami()
        await client.wait_connected(5)
        assert (await client.send_action("Ping")).ok


async def test_garbage_is_a_protocol_error_then_a_fresh_session(sim) -> None:
    async with client_for(sim) as client:
        await client.wait_connected(2)
        sim.send_garbage()
        await until(lambda: client.protocol_errors_total >= 1)
        await until(lambda: client.connects_total >= 2)
        assert (await client.send_action("Ping")).ok


async def test_slow_replies_hit_the_action_deadline_not_the_session(sim) -> None:
    async with client_for(sim) as client:
        await client.wait_connected(2)
        sim.settings = dataclasses.replace(sim.settings, ami_reply_delay_s=0.3)
        with pytest.raises(ActionTimeout):
            await client.send_action("Ping", timeout_s=0.1)
        assert (await client.send_action("Ping", timeout_s=1.0)).ok
        assert client.connects_total == 1


async def test_restart_drops_every_channel_and_media_session(sim) -> None:
    calls: list[AudioSocketCall] = []

    async def hold(call: AudioSocketCall) -> None:
        calls.append(call)
        await call.wait_closed()

    audio = AudioSocketServer(hold, AudioSocketSettings(port=0))
    await audio.start()
    sim.core.globals["PUENTE_AUDIOSOCKET"] = f"127.0.0.1:{audio.port}"
    try:
        async with client_for(sim) as client:
            await client.wait_connected(2)
            for i in range(40):  # some of them answer (the default model: ~40 %)
                attempt = str(uuid.uuid4())
                handle = await client.originate(
                    [
                        ("Channel", f"PJSIP/+1555000{i:04d}@trunk"),
                        ("Context", "puente-outbound"),
                        ("Exten", "s"),
                        ("Timeout", "30000"),
                        ("ChannelId", attempt),
                        ("Variable", f"PUENTE_ATTEMPT={attempt}"),
                    ],
                    action_id=attempt,
                )
                assert handle.response.ok
            await until(lambda: len(calls) >= 1, 30)
            sim.restart()
            await until(lambda: all(c.closed for c in calls))
            assert {c.end_reason for c in calls} == {EndReason.PEER_HANGUP}
            await until(lambda: client.connects_total >= 2)
            await client.wait_connected(2)
            result = await client.send_action("CoreShowChannels")
            assert result.ok
            assert result.events == []
    finally:
        await audio.stop(grace_s=0.5)


async def test_an_audiosocket_still_connecting_at_a_restart_is_closed(sim) -> None:
    # The leg's connection completes after Asterisk restarted (its channel is gone). The
    # simulator kept it and streamed audio to it, as no Asterisk would: it is closed at once.
    got: list[bytes] = []
    closed = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.read())  # until the simulator closes it
        closed.set()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client_for(sim) as client:
            await client.wait_connected(2)
            attempt = str(uuid.uuid4())
            handle = await client.originate(
                [("Channel", "PJSIP/+15550001234@trunk"), ("Context", "puente-outbound"),
                 ("Exten", "s"), ("Timeout", "30000"), ("ChannelId", attempt)],
                action_id=attempt,
            )  # fmt: skip
            assert handle.response.ok
            (channel,) = [c for c in sim.core.channels.values() if c.id == attempt]
            sim.restart()
            # What the core had asked for before the restart, still connecting after it.
            sim.apply([StartAudioSocket(channel.id, attempt, f"127.0.0.1:{port}", channel.fate)])
            await asyncio.wait_for(closed.wait(), 5)
            assert got == [b""]  # not even the UUID frame
            assert sim.audio_streams == 0
    finally:
        server.close()
        await server.wait_closed()
