"""The app_amd baseline replayed on audio Asterisk 22 really sent, against what its AMD() said.

``amd/`` in the transcripts holds the AMI side of AMD() runs with the default amd.conf (the
verdicts in ``results-amd.txt``, the times in the logs) but not their audio. The same far ends
were recorded over AudioSocket, frame by frame as Asterisk delivered them:

- ``audiosocket/01``: ``Playback(hello-world)`` from a Local channel, the far end of
  ``amd/01-amd-local-human`` (which then plays ``silence/10``): 70 frames of 20 ms and a last
  one of 12 samples;
- ``audiosocket/07``: SIPp's ``g711a.pcap`` over PJSIP, the far end of
  ``amd/04-amd-pjsip-sipp-pcap-audio``: 30 ms frames (its first 3 s);
- ``amd/03-amd-local-silent`` plays ``silence/10`` only.
"""

from __future__ import annotations

import struct

import pytest

from dialer.amd import AmdVerdict, AppAmdDetector
from tests.support import transcripts

_SILENT_20MS = bytes(320)


def _audio_frames(name: str) -> list[bytes]:
    """The audio payloads (kind 0x10) Asterisk sent in an AudioSocket recording."""
    data = transcripts.read(f"audiosocket/{name}.from-asterisk.bin")
    frames, pos = [], 0
    while pos + 3 <= len(data):
        kind = data[pos]
        (length,) = struct.unpack_from(">H", data, pos + 1)
        if kind == 0x10:
            frames.append(data[pos + 3 : pos + 3 + length])
        pos += 3 + length
    return frames


def _recorded(name: str, first_audio: bytes) -> tuple[str, str, int]:
    """AMDSTATUS, AMDCAUSE and the milliseconds from the first audio to the verdict: from the
    first AMI message holding ``first_audio``."""
    status = cause = None
    for line in transcripts.read("results-amd.txt").decode().splitlines():
        scenario, _, rest = line.partition(": ")
        if scenario == name and rest.startswith("AMDSTATUS="):
            fields = dict(f.split("=", 1) for f in rest.split())
            status, cause = fields["AMDSTATUS"], fields["AMDCAUSE"]
    assert status is not None, name
    assert cause is not None, name
    chunks = transcripts.log_chunks(f"amd/{name}.log.txt")
    started = next(c.at_s for c in chunks if first_audio in c.data)
    decided = next(c.at_s for c in chunks if b"Variable: AMDSTATUS\r\n" in c.data)
    return status, cause, round((decided - started) * 1000)


def _replay(frames: list[bytes]) -> AmdVerdict:
    detector = AppAmdDetector()
    for frame in frames:
        verdict = detector.feed(frame)
        if isinstance(verdict, AmdVerdict):
            return verdict
    raise AssertionError("app_amd did not decide")


# Over a Local channel no frame flows until the far end plays something (AMD() started 0.5 s
# before the far end's Playback and counted that wait only as time, not as silence); over
# PJSIP, SIPp's RTP flows from the answer, before AMD() starts.
_PLAYBACK = b"Application: Playback\r\n"
_AMD = b"Application: AMD\r\n"


@pytest.mark.parametrize(
    ("scenario", "first_audio", "frames", "frame_ms"),
    [
        (
            "01-amd-local-human",
            _PLAYBACK,
            _audio_frames("01-app-playback-then-sendback-tone") + [_SILENT_20MS] * 150,
            20,
        ),
        ("03-amd-local-silent", _PLAYBACK, [_SILENT_20MS] * 150, 20),
        (
            "04-amd-pjsip-sipp-pcap-audio",
            _AMD,
            _audio_frames("07-pjsip-answer-pcap-audiosocket"),
            30,
        ),
    ],
)
def test_the_baseline_says_what_asterisk_said_on_the_same_audio(
    scenario: str, first_audio: bytes, frames: list[bytes], frame_ms: int
) -> None:
    status, cause, decided_after_ms = _recorded(scenario, first_audio)
    verdict = _replay(frames)
    assert (str(verdict.status), verdict.cause) == (status, cause)
    # The AMI log's clock against the audio's: the same moment within one frame.
    assert abs(verdict.decision_ms - decided_after_ms) <= frame_ms


def test_the_recorded_hello_world_ends_with_a_12_sample_frame() -> None:
    # Where HUMAN-801-800's odd millisecond comes from: 12 samples count 1 ms.
    frames = _audio_frames("01-app-playback-then-sendback-tone")
    assert [len(f) for f in frames[-2:]] == [320, 24]
