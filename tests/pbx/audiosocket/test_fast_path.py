"""The audio fast path gives exactly what the general path gives, or declines."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from pbx.audiosocket import (
    NEED_DATA,
    AudioReceived,
    AudioSocketConnection,
    encode_audio_frame,
    encode_uuid_frame,
)


def streaming() -> AudioSocketConnection:
    conn = AudioSocketConnection(max_frame_bytes=1024)
    conn.receive_data(encode_uuid_frame(uuid.uuid4()))
    conn.next_event()
    return conn


def general_path(data: bytes) -> list[bytes] | str:
    conn = streaming()
    try:
        conn.receive_data(data)
        out = []
        while (ev := conn.next_event()) is not NEED_DATA:
            if not isinstance(ev, AudioReceived):
                return "other"
            out.append(ev.pcm)
        return out if conn._reader.pending == 0 else "partial"
    except Exception:
        return "error"


@given(st.lists(st.binary(max_size=700).map(lambda b: b[: len(b) & ~1]), min_size=1, max_size=4))
def test_whole_frames_match_the_general_path(payloads: list[bytes]) -> None:
    data = b"".join(encode_audio_frame(p) if len(p) <= 1024 else b"" for p in payloads)
    fast = streaming().receive_audio_frames(data)
    slow = general_path(data)
    if not data:
        assert fast is None
    else:  # whole valid frames are never declined
        assert fast == slow


@given(st.binary(max_size=40))
def test_anything_else_is_declined_or_identical(data: bytes) -> None:
    fast = streaming().receive_audio_frames(data)
    if fast is not None:
        assert fast == general_path(data)


def test_declines_before_the_uuid_partial_frames_and_other_kinds() -> None:
    frame = encode_audio_frame(b"\x01\x00" * 160)
    assert AudioSocketConnection().receive_audio_frames(frame) is None  # no UUID yet
    assert streaming().receive_audio_frames(frame[:100]) is None  # partial
    assert streaming().receive_audio_frames(b"\x03\x00\x011") is None  # DTMF
    assert streaming().receive_audio_frames(b"\x10\x00\x03abc") is None  # odd length
    assert streaming().receive_audio_frames(encode_audio_frame(bytes(2000))) is None  # over cap
    conn = streaming()
    conn.receive_data(frame[:10])  # something buffered: the general path must finish it
    assert conn.receive_audio_frames(frame) is None
    assert streaming().receive_audio_frames(frame + frame) == [frame[3:], frame[3:]]


def test_a_tick_of_two_20ms_frames_the_usual_read() -> None:
    a, b = bytes(range(256)) + bytes(64), b"\x7f\x00" * 160
    data = encode_audio_frame(a) + encode_audio_frame(b)
    assert len(data) == 646
    assert streaming().receive_audio_frames(data) == [a, b] == general_path(data)
    small_cap = AudioSocketConnection(max_frame_bytes=200)  # 320-byte frames are over it
    small_cap.receive_data(encode_uuid_frame(uuid.uuid4()))
    small_cap.next_event()
    assert small_cap.receive_audio_frames(data) is None


@given(st.integers(min_value=0, max_value=320), st.binary(min_size=640, max_size=640))
def test_other_reads_of_the_same_size_match_the_general_path(half: int, pcm: bytes) -> None:
    # 646 bytes as two audio frames split elsewhere than 320/320: the general loop's answer.
    cut = 2 * half
    data = encode_audio_frame(pcm[:cut]) + encode_audio_frame(pcm[cut:])
    assert len(data) == 646
    assert streaming().receive_audio_frames(data) == general_path(data)


@given(st.binary(min_size=646, max_size=646))
def test_any_646_bytes_are_declined_or_identical(data: bytes) -> None:
    for candidate in (data, b"\x10\x01\x40" + data[3:], data[:323] + b"\x10\x01\x40" + data[326:]):
        fast = streaming().receive_audio_frames(candidate)
        if fast is not None:
            assert fast == general_path(candidate)
