"""AMD on live calls, over real TCP: verdicts reach the dialplan, faults end as NOTSURE."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid

import msgspec
import numpy as np
import pytest

from dialer.amd import AmdStatus, AmdVerdict, LiveAmdSettings, queue_timeout_s
from pbx.ami import ActionTimeout
from pbx.audiosocket import encode_audio_frame, encode_dtmf_frame, encode_uuid_frame
from pbx.sim import CalleeModel, ModelFile
from pbx.sim._audio import render, timeline
from tests.amd._live import (
    FAX,
    HUMAN,
    MACHINE,
    MODEL,
    QUICK,
    RecordingAmi,
    frame_kinds,
    raw_floor,
    read_until_closed,
    sim_floor,
)

HANGUP = (0x00, 0)
#: QUICK's hard cap (1.2 s) plus the margin (0.3 s), plus slack for a loaded machine.
CAP_S = 1.5 + 1.0


# -- the 2 s rule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("speech_end_ms", "decision_ms", "since_decision_ms", "since_answer_ms", "expected"),
    [
        (900, 1500, 20, 1520, 2),  # 620 ms after the greeting: 1.38 s left, rounded up
        (900, 1500, 500, 2000, 1),  # 1.1 s gone: 0.9 s left -> 1
        (900, 3000, 0, 3000, 1),  # over the 2 s already: at least 1
        (None, 2500, 40, 2540, 1),  # nobody spoke: from the answer
        (None, 0, 0, 100, 2),  # overloaded at once: 1.9 s left -> 2
    ],
)
def test_queue_timeout_is_what_is_left_of_two_seconds_rounded_up(
    speech_end_ms, decision_ms, since_decision_ms, since_answer_ms, expected
) -> None:
    verdict = AmdVerdict(AmdStatus.HUMAN, "HUMAN-600-600", decision_ms, 300, speech_end_ms)
    assert queue_timeout_s(verdict, since_decision_ms, since_answer_ms) == expected


def test_live_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        LiveAmdSettings(max_concurrent=0).validate()
    with pytest.raises(ValueError, match="agent_within_ms"):
        LiveAmdSettings(agent_within_ms=10).validate()


def test_detector_file_gives_the_detector_settings(tmp_path) -> None:
    good = tmp_path / "amd.yaml"
    good.write_text("greeting_ms: 3000\ntotal_analysis_ms: 4500\n")
    s = LiveAmdSettings(detector_file=good).detector_settings()
    assert (s.greeting_ms, s.total_analysis_ms) == (3000, 4500)
    bad = tmp_path / "bad.yaml"
    bad.write_text("greeting_ms: soon\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*greeting_ms"):
        LiveAmdSettings(detector_file=bad).detector_settings()
    bad.write_text("min_word_ms: 2026-02-30\n")  # a date YAML cannot build: was a traceback
    with pytest.raises(ValueError, match=r"AMD detector file .*bad\.yaml: "):
        LiveAmdSettings(detector_file=bad).detector_settings()


# -- against the simulated Asterisk ----------------------------------------------------------------
async def test_a_person_is_human_and_reaches_an_agent_within_the_two_seconds() -> None:
    async with sim_floor() as f:
        ends: list[tuple[str, float]] = []
        f.amd.on_greeting_end = lambda aid, at: ends.append((aid, at))
        attempt = await f.originate(HUMAN)
        _, amd = await f.wait_for(
            lambda m: m.get("UserEvent") == "PuenteAMD" and m.get("Attempt") == attempt
        )
        # When the greeting ended, for the runner to hold the agent's connect to the rule.
        [(noted, at)] = ends
        assert noted == attempt
        assert 0 < asyncio.get_running_loop().time() - at < 2.0
        assert amd["AMDSTATUS"] == "HUMAN"
        assert amd["AMDCAUSE"].startswith("HUMAN-")
        _, varset = await f.wait_for(
            lambda m: m.name == "VarSet" and m.get("Variable") == "PUENTE_QUEUE_TIMEOUT_S"
        )
        assert varset["Uniqueid"] == attempt
        assert varset["Value"] in ("1", "2")
        _, join = await f.wait_for(lambda m: m.name == "QueueCallerJoin")
        assert join["Uniqueid"] == attempt
        await f.wait_for(lambda m: m.name == "AgentConnect" and m.get("Uniqueid") == attempt)
        assert f.amd.verdicts == {"HUMAN": 1}
        assert not f.amd.faults
        assert f.audio.errors_total == 0


async def test_a_machine_gets_the_voicemail_message_after_its_beep() -> None:
    async with sim_floor() as f:
        attempt = await f.originate(MACHINE, PUENTE_VM="puente/vm-en")
        answered, _ = await f.wait_for(
            # A real Asterisk reports the TryExec() the AudioSocket() runs in.
            lambda m: m.name == "Newexten" and (m.get("AppData") or "").startswith("AudioSocket(")
        )
        _, amd = await f.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD", 20)
        assert amd["AMDSTATUS"] == "MACHINE"
        assert amd["AMDCAUSE"].startswith("LONGGREETING-")
        played, _ = await f.wait_for(
            lambda m: m.name == "Newexten" and m.get("Application") == "Playback"
        )
        _, vm = await f.wait_for(lambda m: m.get("UserEvent") == "PuenteVoicemail")
        assert vm["Attempt"] == attempt
        # The callee's audio starts as the AudioSocket connects: the message must start
        # after the end of its beep.
        segments = timeline(CalleeModel(msgspec.convert(MODEL, ModelFile)).fate(MACHINE, attempt))
        kinds = [kind for kind, _ in segments]
        beep_end_s = sum(seconds for _, seconds in segments[: kinds.index("beep") + 1])
        assert played - answered >= beep_end_s - 0.02
        assert played - answered <= beep_end_s + 1.0
        ((_, verdict, cue),) = f.amd.recent
        assert verdict.status is AmdStatus.MACHINE
        assert cue is not None
        assert cue.reason == "BEEP"
        assert cue.beep_hz == 1000
        assert not any(m.name == "AgentConnect" for _, m in f.events)
        assert f.amd.verdicts == {"MACHINE": 1}
        assert not f.amd.faults


@pytest.mark.parametrize("gaps_are_silence", [False, True])
async def test_over_a_line_that_sends_nothing_in_silences_gaps_are_heard_as_silence(
    gaps_are_silence: bool,
) -> None:
    # A Local channel (or a trunk that stops its RTP in silences): after the person's "hello?"
    # Asterisk sends no frame at all. With gaps_are_silence the detector hears the silence
    # that makes it HUMAN; without it, the gap is a stalled peer: NOTSURE at the cap.
    settings = LiveAmdSettings(gaps_are_silence=gaps_are_silence)
    async with sim_floor(settings=settings) as f:
        f.sim.settings = dataclasses.replace(f.sim.settings, audiosocket_silence_frames=False)
        attempt = await f.originate(HUMAN)
        _, amd = await f.wait_for(
            lambda m: m.get("UserEvent") == "PuenteAMD" and m.get("Attempt") == attempt, 15
        )
        assert f.sim.media_failures == 0  # Puente's keep-alive kept AudioSocket() going
        if gaps_are_silence:
            assert amd["AMDSTATUS"] == "HUMAN"
            assert f.amd.frames_filled > 0
            await f.wait_for(lambda m: m.name == "AgentConnect" and m.get("Uniqueid") == attempt)
        else:
            assert amd["AMDSTATUS"] == "NOTSURE"
            assert amd["AMDCAUSE"].startswith("TOOLONG-")
            assert f.amd.frames_filled == 0


async def test_a_machine_beep_ends_in_a_gap_heard_as_silence() -> None:
    async with sim_floor(settings=LiveAmdSettings(gaps_are_silence=True)) as f:
        f.sim.settings = dataclasses.replace(f.sim.settings, audiosocket_silence_frames=False)
        attempt = await f.originate(MACHINE, PUENTE_VM="puente/vm-en")
        _, amd = await f.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD", 20)
        assert amd["AMDSTATUS"] == "MACHINE"
        _, vm = await f.wait_for(lambda m: m.get("UserEvent") == "PuenteVoicemail")
        assert vm["Attempt"] == attempt
        ((_, verdict, cue),) = f.amd.recent
        assert verdict.status is AmdStatus.MACHINE
        assert cue is not None
        assert cue.reason == "BEEP"  # the beep's end was seen in the silence after it


async def test_a_fax_is_a_machine_at_once() -> None:
    async with sim_floor() as f:
        await f.originate(FAX)
        _, amd = await f.wait_for(lambda m: m.get("UserEvent") == "PuenteAMD")
        assert amd["AMDSTATUS"] == "MACHINE"
        assert amd["AMDCAUSE"].startswith("FAX-1100-")


# -- faults on the socket, against a raw peer ----------------------------------------------
async def _start_call(f, *, channel: bool = True):
    call_uuid = uuid.uuid4()
    name = f.channel_for(call_uuid) if channel else None
    reader, writer = await f.connect()
    writer.write(encode_uuid_frame(call_uuid))
    return call_uuid, name, reader, writer


def _speech_frames(seconds: float) -> list[bytes]:
    pcm = render([("silence", 0.2), ("speech", seconds)], seed=3)
    return [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


@pytest.mark.parametrize(
    ("name", "payload", "cause"),
    [
        ("over the detector's cap", encode_audio_frame(bytes(1200)), "BADFRAME-1200"),
        ("60 ms frames are audio", encode_audio_frame(bytes(960)) * 40, "INITIALSILENCE-"),
    ],
)
async def test_payloads_over_the_detector_cap_give_notsure_on_the_channel(
    name: str, payload: bytes, cause: str
) -> None:
    async with raw_floor() as f:
        _, channel, reader, writer = await _start_call(f)
        writer.write(payload)
        data = await read_until_closed(reader, CAP_S)
        assert frame_kinds(data)[-1] == HANGUP, name
        assert f.ami.setvars[channel]["AMDSTATUS"] == "NOTSURE"
        assert f.ami.setvars[channel]["AMDCAUSE"].startswith(cause)
        assert f.ami.setvars[channel]["PUENTE_QUEUE_TIMEOUT_S"] in ("1", "2")
        writer.close()
        assert f.audio.errors_total == 0


@pytest.mark.parametrize(
    ("name", "after_uuid"),
    [
        ("garbage", b"\x42\x00\x04spam" + b"\xff" * 40),
        ("odd-length audio", b"\x10\x00\x03abc"),
        ("over the server's cap", b"\x10\x10\x00" + bytes(4096)),
        ("a second UUID", encode_uuid_frame(uuid.uuid4())),
    ],
)
async def test_protocol_errors_end_the_call_as_notsure_without_raising(
    name: str, after_uuid: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with raw_floor() as f:
        _, channel, reader, writer = await _start_call(f)
        writer.write(b"".join(encode_audio_frame(fr) for fr in _speech_frames(0.2)))
        writer.write(after_uuid)
        with caplog.at_level(logging.INFO, logger="dialer.amd"):
            data = await read_until_closed(reader, CAP_S)
            await asyncio.sleep(0.1)  # the next tick notes the end
        # The server closed the socket (no 0x00 after a protocol error): the dialplan goes
        # on with its default NOTSURE; nothing is set.
        assert HANGUP not in frame_kinds(data), name
        assert channel not in f.ami.setvars
        assert f.amd.verdicts == {"NOTSURE": 1}
        assert "PUENTE-PROTOCOL-ERROR" in caplog.text
        assert f.audio.errors_total == 0
        writer.close()


async def test_a_peer_that_stalls_gets_notsure_at_the_hard_cap() -> None:
    async with raw_floor() as f:
        _, channel, reader, writer = await _start_call(f)
        writer.write(b"".join(encode_audio_frame(fr) for fr in _speech_frames(0.3)[:10]))
        writer.write(b"\x10\x01\x40" + bytes(100))  # and half a frame, then nothing
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        data = await read_until_closed(reader, CAP_S)
        assert loop.time() - t0 <= CAP_S
        assert frame_kinds(data)[-1] == HANGUP
        assert f.ami.setvars[channel]["AMDSTATUS"] == "NOTSURE"
        assert f.ami.setvars[channel]["AMDCAUSE"].startswith("TOOLONG-")
        writer.close()


@pytest.mark.parametrize("mid_frame", [False, True])
async def test_a_peer_that_closes_gets_hangup_or_notsure_and_nothing_is_set(
    mid_frame: bool,
) -> None:
    async with raw_floor() as f:
        _, channel, _, writer = await _start_call(f)
        writer.write(b"".join(encode_audio_frame(fr) for fr in _speech_frames(0.2)))
        if mid_frame:
            writer.write(b"\x10\x01\x40" + bytes(100))
        await writer.drain()
        writer.close()
        async with asyncio.timeout(CAP_S):
            while not f.amd.verdicts:  # noqa: ASYNC110 - a counter of the handler
                await asyncio.sleep(0.02)
        assert f.amd.verdicts == ({"NOTSURE": 1} if mid_frame else {"HANGUP": 1})
        assert channel not in f.ami.setvars
        assert f.audio.errors_total == 0


async def test_an_unknown_channel_is_handed_back_without_a_setvar() -> None:
    async with raw_floor() as f:
        _, _, reader, writer = await _start_call(f, channel=False)
        writer.write(encode_audio_frame(bytes(1200)))
        data = await read_until_closed(reader, CAP_S)
        assert frame_kinds(data)[-1] == HANGUP
        assert not f.ami.setvars
        assert f.amd.faults["no_channel"] == 1
        writer.close()


async def test_over_max_concurrent_a_call_gets_notsure_at_once() -> None:
    async with raw_floor(LiveAmdSettings(max_concurrent=1)) as f:
        _, first, _, w1 = await _start_call(f)
        w1.write(encode_audio_frame(bytes(320)))
        await asyncio.sleep(0.15)  # the first call is under analysis
        _, second, reader, w2 = await _start_call(f)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        data = await read_until_closed(reader, CAP_S)
        assert loop.time() - t0 < 0.5  # at once, not at the cap
        assert frame_kinds(data)[-1] == HANGUP
        assert f.ami.setvars[second] == {
            "AMDCAUSE": "PUENTE-OVERLOADED",
            "PUENTE_QUEUE_TIMEOUT_S": "2",
            "AMDSTATUS": "NOTSURE",
        }
        assert f.amd.faults["overloaded"] == 1
        assert first not in f.ami.setvars  # still listening
        w1.close()
        w2.close()


async def test_without_ami_every_call_goes_back_at_once() -> None:
    async with raw_floor(ami=RecordingAmi(connected=False)) as f:
        _, _, reader, writer = await _start_call(f)
        data = await read_until_closed(reader, 1.0)
        assert frame_kinds(data)[-1] == HANGUP
        assert f.amd.faults["no_ami"] == 1
        writer.close()


async def test_a_human_over_a_raw_peer_gets_human_and_its_queue_timeout() -> None:
    async with raw_floor(detector=type(QUICK)()) as f:
        _, channel, reader, writer = await _start_call(f)
        pcm = render([("silence", 1.5)], seed=4)
        frames = _speech_frames(0.6) + [pcm[i : i + 320] for i in range(0, len(pcm), 320)]
        loop = asyncio.get_running_loop()

        async def stream() -> None:  # in real time, as Asterisk sends it
            for fr in frames:
                writer.write(encode_audio_frame(fr))
                await asyncio.sleep(0.02)

        sender = loop.create_task(stream())
        try:
            await read_until_closed(reader, 4.0)
        finally:
            sender.cancel()
        assert f.ami.setvars[channel]["AMDSTATUS"] == "HUMAN"
        assert f.ami.setvars[channel]["PUENTE_QUEUE_TIMEOUT_S"] in ("1", "2")
        writer.close()


async def test_a_call_whose_analysis_falls_seconds_behind_is_notsure() -> None:
    async with raw_floor() as f:
        _, channel, reader, writer = await _start_call(f)
        async with asyncio.timeout(1):
            while not f.amd._sessions:  # noqa: ASYNC110 - the handler starts on the next turn
                await asyncio.sleep(0.01)
        (sess,) = f.amd._sessions.values()
        sess.frames.extend([bytes(320)] * 300)  # as if the loop had stalled for 6 s
        data = await read_until_closed(reader, CAP_S)
        assert frame_kinds(data)[-1] == HANGUP
        assert f.ami.setvars[channel]["AMDCAUSE"] == "PUENTE-OVERLOADED"
        assert f.amd.faults["backlog"] == 1
        writer.close()


async def test_drain_waits_for_the_calls_under_analysis() -> None:
    async with raw_floor() as f:
        await f.amd.drain()  # nothing under analysis: at once
        _, channel, _, writer = await _start_call(f)
        async with asyncio.timeout(1):
            while not f.amd.live:  # noqa: ASYNC110 - the handler starts on the next turn
                await asyncio.sleep(0.01)
        async with asyncio.timeout(CAP_S):
            await f.amd.drain()
        assert f.ami.setvars[channel]["AMDSTATUS"] == "NOTSURE"  # set before drain returned
        writer.close()


@pytest.mark.parametrize("kind", ["error", "dtmf"])
async def test_dtmf_and_asterisk_error_frames_do_not_overload_the_call(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """400 non-audio frames (over the server's queue of 250) among the audio, as Asterisk
    sends them over a second: drained, DTMF ignored, the first error logged once."""
    other = b"\xff\x00\x01\x03" if kind == "error" else encode_dtmf_frame("5")
    async with raw_floor() as f:
        call_uuid, channel, reader, writer = await _start_call(f)
        with caplog.at_level(logging.INFO):
            for _ in range(40):
                writer.write(encode_audio_frame(bytes(320)) + other * 10)
                await asyncio.sleep(0.02)
            data = await read_until_closed(reader, CAP_S)
        assert frame_kinds(data)[-1] == HANGUP
        assert f.ami.setvars[channel]["AMDSTATUS"] == "NOTSURE"
        assert "frames behind" not in caplog.text
        errors = [r for r in caplog.records if "AudioSocket error frame" in r.getMessage()]
        if kind == "error":
            assert len(errors) == 1
            assert errors[0].levelno == logging.WARNING
            assert str(call_uuid) in errors[0].getMessage()
            assert f.amd.faults["asterisk_error"] == 1
        else:
            assert not errors
        writer.close()


async def test_a_burst_of_dtmf_in_one_socket_read_does_not_overload_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1,000 DTMF frames in one write (one socket read), four times the server's queue: the
    call is not ended as overloaded, and the detector goes on to its verdict."""
    async with raw_floor() as f:
        _, channel, reader, writer = await _start_call(f)
        with caplog.at_level(logging.INFO):
            writer.write(encode_audio_frame(bytes(320)) + encode_dtmf_frame("5") * 1000)
            for _ in range(10):
                writer.write(encode_audio_frame(bytes(320)))
                await asyncio.sleep(0.02)
            data = await read_until_closed(reader, CAP_S)
        assert frame_kinds(data)[-1] == HANGUP
        assert "frames behind" not in caplog.text
        assert f.amd.faults.get("overloaded", 0) == 0
        assert f.ami.setvars[channel]["AMDCAUSE"].startswith("TOOLONG")  # its own verdict
        writer.close()


class _LoggingAmi(RecordingAmi):
    """Also keeps every Setvar in order: (channel, variable, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, str]] = []

    async def send_action(self, action, fields, *, action_id=None, timeout_s=None):  # type: ignore[no-untyped-def]
        f = dict(fields)
        self.log.append((f["Channel"], f["Variable"], f["Value"]))
        return await super().send_action(action, fields, action_id=action_id, timeout_s=timeout_s)


def _fax_frames(seconds: float) -> list[bytes]:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 1100 * t)).astype("<i2").tobytes()
    return [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


async def test_a_second_connection_with_the_same_uuid_sets_nothing_on_the_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A channel runs one AudioSocket() at a time: a second connection naming the attempt
    under analysis is not that call's. Its verdict (here a fax tone: MACHINE) must not be set
    on the person's channel, whose own call (stalled: NOTSURE at the cap) decides."""
    ami = _LoggingAmi()
    async with raw_floor(ami=ami) as f:
        call_uuid, channel, reader, writer = await _start_call(f)
        async with asyncio.timeout(1):
            while not f.amd.live:  # noqa: ASYNC110 - the handler starts on the next turn
                await asyncio.sleep(0.01)
        r2, w2 = await f.connect()
        with caplog.at_level(logging.WARNING, logger="dialer.amd"):
            w2.write(
                encode_uuid_frame(call_uuid)
                + b"".join(encode_audio_frame(fr) for fr in _fax_frames(0.8))
            )
            second = await read_until_closed(r2, CAP_S)
            first = await read_until_closed(reader, CAP_S)
        assert frame_kinds(second)[-1] == HANGUP
        assert frame_kinds(first)[-1] == HANGUP
        # Only the first call's verdict reached the channel, once.
        assert [(v, val) for ch, v, val in ami.log if v == "AMDSTATUS"] == [
            ("AMDSTATUS", "NOTSURE")
        ]
        assert all(ch == channel for ch, _, _ in ami.log)
        assert ami.setvars[channel]["AMDCAUSE"].startswith("TOOLONG-")
        assert f.amd.faults["duplicate"] == 1
        assert "second AudioSocket connection" in caplog.text
        writer.close()
        w2.close()


class _AnswerLostAmi(RecordingAmi):
    """Asterisk runs every Setvar (recorded), but AMDSTATUS's answer never comes back: the
    client times out (a loaded AMI stream, or the connection dropping after the write)."""

    async def send_action(self, action, fields, *, action_id=None, timeout_s=None):  # type: ignore[no-untyped-def]
        result = await super().send_action(action, fields, action_id=action_id, timeout_s=timeout_s)
        if dict(fields)["Variable"] == "AMDSTATUS":
            raise ActionTimeout("AMI test: no answer to Setvar within 2.0 s")
        return result


async def test_a_machine_whose_setvar_answer_is_lost_still_waits_for_the_greeting_end() -> None:
    """AMDSTATUS=MACHINE was (most likely) set though its answer was lost: ending the socket
    at once would start the message over the greeting, and the recording would miss its
    beginning (the business name). Puente listens on for the end of the greeting first."""
    async with raw_floor(ami=_AnswerLostAmi()) as f:
        _, channel, reader, writer = await _start_call(f)
        speech = _speech_frames(2.5)
        loop = asyncio.get_running_loop()
        silence_from: list[float] = []

        async def stream() -> None:  # in real time, as Asterisk sends it
            for fr in speech:
                writer.write(encode_audio_frame(fr))
                await asyncio.sleep(0.02)
            silence_from.append(loop.time())
            for _ in range(200):
                writer.write(encode_audio_frame(bytes(320)))
                await asyncio.sleep(0.02)

        sender = loop.create_task(stream())
        try:
            data = await read_until_closed(reader, 8.0)
            ended = loop.time()
        finally:
            sender.cancel()
        assert frame_kinds(data)[-1] == HANGUP
        assert f.ami.setvars[channel]["AMDSTATUS"] == "MACHINE"
        assert f.ami.setvars[channel]["AMDCAUSE"].startswith("LONGGREETING-")
        assert f.amd.faults["setvar_failed"] == 1
        # The socket ended after the greeting did, on the silence that followed it.
        assert silence_from
        assert ended > silence_from[0]
        ((_, verdict, cue),) = f.amd.recent
        assert verdict.status is AmdStatus.MACHINE
        assert cue is not None
        assert cue.reason == "SILENCE"
        writer.close()
