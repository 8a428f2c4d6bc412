"""AudioSocket: the real Asterisk 22 byte streams through the cores, frame for frame."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx import LocalProtocolError, RemoteProtocolError
from pbx.audiosocket import (
    NEED_DATA,
    AsteriskSideConnection,
    AudioReceived,
    AudioSocketConnection,
    CallStarted,
    DtmfReceived,
    PeerHangup,
    ServerAudio,
    ServerHangup,
)
from tests.support import transcripts

NAMES = [
    "01-app-playback-then-sendback-tone",
    "02-server-sends-hangup-frame",
    "03-far-end-dtmf-then-server-closes-tcp",
    "04-caller-hangs-up",
    "05-server-sends-dtmf-frame",
    "06-chan-audiosocket-dial",
    "07-pjsip-answer-pcap-audiosocket",
]
_ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([<>])\s+(0x[0-9a-f]{2}|----)\s+\S+\s*(\d*)")


def listing(name: str, direction: str) -> list[tuple[int, int]]:
    """(kind, length) per frame in one direction, from the recorder's .frames.txt."""
    rows = []
    for line in transcripts.read(f"audiosocket/{name}.frames.txt").decode().splitlines():
        m = _ROW.match(line)
        if m and m.group(3) == direction and m.group(4) != "----":
            rows.append((int(m.group(4), 16), int(m.group(5) or 0)))
    return rows


def parse_all(data: bytes, chunks: list[int] | None = None, eof: bool = True) -> list[object]:
    conn = AudioSocketConnection()
    events: list[object] = []
    pieces = [data] if chunks is None else _split(data, chunks)
    for piece in [*pieces, b""] if eof else pieces:
        conn.receive_data(piece)
        while (ev := conn.next_event()) is not NEED_DATA:
            events.append(ev)
    return events


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return [p for p in out if p]


def as_rows(events: list[object]) -> list[tuple[int, int]]:
    rows = []
    for ev in events:
        if isinstance(ev, CallStarted):
            rows.append((0x01, 16))
        elif isinstance(ev, AudioReceived):
            rows.append((0x10, len(ev.pcm)))
        elif isinstance(ev, DtmfReceived):
            rows.append((0x03, 1))
    return rows


@pytest.mark.parametrize("name", NAMES)
def test_stream_from_asterisk_matches_the_frame_listing(name: str) -> None:
    events = parse_all(transcripts.read(f"audiosocket/{name}.from-asterisk.bin"))
    assert as_rows(events) == listing(name, "<")
    # A caller hang-up or the end after our 0x00 is a TCP close: no 0x00 from Asterisk.
    assert events[-1] == PeerHangup(by_frame=False)
    started = events[0]
    assert isinstance(started, CallStarted)
    expected = (
        "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"
        if name.startswith("07")
        else ("7d3f1e2a-0b4c-4d5e-8f60-718293a4b5c6")
    )
    assert started.uuid == uuid.UUID(expected)


def test_recorded_facts() -> None:
    local = as_rows(parse_all(transcripts.read(f"audiosocket/{NAMES[0]}.from-asterisk.bin")))
    sizes = [n for k, n in local if k == 0x10]
    assert set(sizes[:-1]) == {320}
    assert sizes[-1] == 24  # the short last frame of a file playback
    pjsip = [
        n
        for k, n in as_rows(
            parse_all(transcripts.read(f"audiosocket/{NAMES[6]}.from-asterisk.bin"))
        )
        if k == 0x10
    ]
    assert set(pjsip) == {480}  # 30 ms RTP packetisation
    assert len(pjsip) == 101
    dtmf = [
        e.digit
        for e in parse_all(transcripts.read(f"audiosocket/{NAMES[2]}.from-asterisk.bin"))
        if isinstance(e, DtmfReceived)
    ]
    assert dtmf == ["1", "2", "#"]


@pytest.mark.parametrize("name", NAMES)
def test_stream_to_asterisk_as_app_audiosocket_sees_it(name: str) -> None:
    conn = AsteriskSideConnection(uuid.uuid4())
    conn.start()
    conn.receive_data(transcripts.read(f"audiosocket/{name}.to-asterisk.bin"))
    rows: list[tuple[int, int]] = []
    with pytest.raises(RemoteProtocolError) if name.startswith("05") else _nothing():
        while (ev := conn.next_event()) is not NEED_DATA:
            rows.append((0x10, len(ev.pcm)) if isinstance(ev, ServerAudio) else (0x00, 0))
            if isinstance(ev, ServerHangup):
                break
    expected = listing(name, ">")
    if name.startswith("05"):
        expected = expected[:-1]  # the 0x03 is what Asterisk rejected
    assert rows == expected


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


@pytest.mark.parametrize("name", [NAMES[2], NAMES[6]])
def test_every_split_offset_gives_the_same_events(name: str) -> None:
    data = transcripts.read(f"audiosocket/{name}.from-asterisk.bin")
    prefix = data[:4096]  # ends mid-frame: no EOF is fed, the tail just waits
    whole = parse_all(prefix, eof=False)
    assert len(whole) > 5
    for cut in range(1, len(prefix)):
        assert parse_all(prefix, [cut], eof=False) == whole, cut


@pytest.mark.parametrize("name", NAMES)
def test_byte_by_byte_equals_whole(name: str) -> None:
    data = transcripts.read(f"audiosocket/{name}.from-asterisk.bin")[:20000]
    conn = AudioSocketConnection()
    got: list[object] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        while (ev := conn.next_event()) is not NEED_DATA:
            got.append(ev)
    ref_conn = AudioSocketConnection()
    ref_conn.receive_data(data)
    ref = []
    while (ev := ref_conn.next_event()) is not NEED_DATA:
        ref.append(ev)
    assert got == ref


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200000), max_size=40))
def test_random_chunkings_of_a_whole_call(cuts: list[int]) -> None:
    data = transcripts.read(f"audiosocket/{NAMES[2]}.from-asterisk.bin")
    assert parse_all(data, cuts) == parse_all(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_raises_only_remote_protocol_errors(blob: bytes) -> None:
    for prefix in (b"", b"\x01\x00\x10" + bytes(16)):
        conn = AudioSocketConnection(max_frame_bytes=512)
        try:
            conn.receive_data(prefix + blob)
            conn.receive_data(b"")
            for _ in range(1000):
                if conn.next_event() is NEED_DATA:
                    break
        except RemoteProtocolError:
            assert conn.state.value == "ERROR"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=700).map(lambda b: b[: len(b) - len(b) % 2]), max_size=10),
    st.uuids(),
)
def test_round_trip_through_both_cores(payloads: list[bytes], call_uuid: uuid.UUID) -> None:
    ast = AsteriskSideConnection(call_uuid)
    wire = ast.start() + b"".join(ast.send_audio(p) for p in payloads) + ast.send_dtmf("#")
    events = parse_all(wire)
    assert events[0] == CallStarted(call_uuid)
    assert [e.pcm for e in events if isinstance(e, AudioReceived)] == payloads
    assert isinstance(events[-2], DtmfReceived)


def test_we_never_send_dtmf_or_odd_audio_and_frame_caps_hold() -> None:
    conn = AudioSocketConnection(max_frame_bytes=960)
    assert not hasattr(conn, "send_dtmf")
    with pytest.raises(LocalProtocolError):
        conn.send_audio(bytes(320))  # before the UUID frame
    conn = AudioSocketConnection(max_frame_bytes=960)
    conn.receive_data(b"\x01\x00\x10" + bytes(16) + b"\x10\x03\xc1")
    assert isinstance(conn.next_event(), CallStarted)
    with pytest.raises(RemoteProtocolError, match="over the 960-byte cap"):
        conn.next_event()
    conn = AudioSocketConnection()
    conn.receive_data(b"\x01\x00\x10" + bytes(16) + b"\x10\x00\x03abc")
    conn.next_event()
    with pytest.raises(RemoteProtocolError, match="odd length"):
        conn.next_event()
    conn = AudioSocketConnection()
    conn.receive_data(b"\x10\x00\x02ab")
    with pytest.raises(RemoteProtocolError, match="not the UUID frame"):
        conn.next_event()
    conn = AudioSocketConnection()
    conn.receive_data(b"\x01\x00\x10" + bytes(16) + b"\x10\x01")
    conn.receive_data(b"")
    conn.next_event()
    with pytest.raises(RemoteProtocolError, match="middle of a frame"):
        conn.next_event()
