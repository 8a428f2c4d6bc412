"""AudioSocket, sans-I/O: frames in, events out; actions in, bytes out.

Wire format (recorded from Asterisk 22.10.1, ``tests/data/asterisk-transcripts/audiosocket``):
a frame is 1 byte kind, 2 bytes big-endian payload length, then the payload.

=====  ==========  ==========================================================================
kind   direction   payload
=====  ==========  ==========================================================================
0x00   both        none: hang up. From us, Asterisk closes the socket and the dialplan goes on.
0x01   Ast -> us   the call's UUID, 16 raw bytes; always the first frame
0x03   Ast -> us   one ASCII DTMF digit. Never sent by us: Asterisk tears the call down.
0x10   both        signed 16-bit little-endian PCM, 8 kHz mono; any even length (320 B per
                   20 ms on Local channels, 480 B per 30 ms with 30 ms RTP, short last frames)
0xff   Ast -> us   an error code
=====  ==========  ==========================================================================

:class:`AudioSocketConnection` is the server (Puente) side; :class:`AsteriskSideConnection`
is Asterisk's side, used by the simulator. Both raise :class:`RemoteProtocolError` for what the
peer got wrong and :class:`LocalProtocolError` for what we tried to do wrong, and then stay in
``ERROR``.
"""

from __future__ import annotations

import enum
import struct
import uuid as uuid_mod
from dataclasses import dataclass

from pbx._exceptions import LocalProtocolError, RemoteProtocolError

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF

SAMPLE_RATE = 8000
FRAME_20MS_BYTES = 320
DEFAULT_MAX_FRAME_BYTES = 2048
_HEADER = struct.Struct(">BH")
DTMF_DIGITS = frozenset("0123456789*#ABCD")


def _frame(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def encode_uuid_frame(call_uuid: uuid_mod.UUID) -> bytes:
    return _frame(KIND_UUID, call_uuid.bytes)


def encode_audio_frame(pcm: bytes) -> bytes:
    if len(pcm) % 2:
        raise LocalProtocolError(f"audio payload of {len(pcm)} bytes is not whole 16-bit samples")
    if len(pcm) > 0xFFFF:
        raise LocalProtocolError(f"audio payload of {len(pcm)} bytes does not fit in one frame")
    return _frame(KIND_AUDIO, pcm)


def encode_dtmf_frame(digit: str) -> bytes:
    """DTMF as Asterisk sends it to the server (the simulator's side only)."""
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        raise LocalProtocolError(f"{digit!r} is not a DTMF digit")
    return _frame(KIND_DTMF, digit.encode("ascii"))


HANGUP_FRAME = _frame(KIND_HANGUP)
_AUDIO_20MS_HEADER = _HEADER.pack(KIND_AUDIO, FRAME_20MS_BYTES)
_FRAME_20MS_WIRE = 3 + FRAME_20MS_BYTES
SILENCE_20MS = bytes(FRAME_20MS_BYTES)
SILENCE_20MS_FRAME = encode_audio_frame(SILENCE_20MS)


# -- events ----------------------------------------------------------------------------------
class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


@dataclass(frozen=True, slots=True)
class CallStarted:
    uuid: uuid_mod.UUID


@dataclass(frozen=True, slots=True)
class AudioReceived:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    code: bytes


@dataclass(frozen=True, slots=True)
class PeerHangup:
    """The peer sent 0x00 or closed TCP at a frame boundary (a caller hang-up closes TCP)."""

    by_frame: bool


Event = CallStarted | AudioReceived | DtmfReceived | ErrorReceived | PeerHangup


class State(enum.Enum):
    AWAIT_UUID = "AWAIT_UUID"
    STREAMING = "STREAMING"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


# (state, frame kind received) -> next state. Anything else is a protocol error.
_SERVER_RECEIVE: dict[tuple[State, int], State] = {
    (State.AWAIT_UUID, KIND_UUID): State.STREAMING,
    (State.AWAIT_UUID, KIND_HANGUP): State.CLOSED,
    (State.STREAMING, KIND_AUDIO): State.STREAMING,
    (State.STREAMING, KIND_DTMF): State.STREAMING,
    (State.STREAMING, KIND_ERROR): State.STREAMING,
    (State.STREAMING, KIND_HANGUP): State.CLOSED,
}
# (state, what we send) -> next state.
_SERVER_SEND: dict[tuple[State, int], State] = {
    (State.STREAMING, KIND_AUDIO): State.STREAMING,
    (State.STREAMING, KIND_HANGUP): State.CLOSED,
    (State.AWAIT_UUID, KIND_HANGUP): State.CLOSED,
}


class _FrameReader:
    """Frame first: whole frames out of an arbitrary chunking, payloads as bytes."""

    __slots__ = ("_buf", "_pos", "eof", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.eof = False
        self.max_frame_bytes = max_frame_bytes

    def feed(self, data: bytes) -> None:
        if self.eof:
            raise LocalProtocolError("data received after EOF")
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> tuple[int, bytes] | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 3:
            return None
        kind, length = _HEADER.unpack_from(buf, pos)
        if length > self.max_frame_bytes:
            raise RemoteProtocolError(
                f"frame of kind 0x{kind:02x} announces {length} bytes, over the "
                f"{self.max_frame_bytes}-byte cap"
            )
        end = pos + 3 + length
        if len(buf) < end:
            return None
        payload = bytes(buf[pos + 3 : end])
        self._pos = end
        return kind, payload

    @property
    def pending(self) -> int:
        return len(self._buf) - self._pos


class AudioSocketConnection:
    """The server (Puente) side of one AudioSocket connection."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.state = State.AWAIT_UUID
        self.uuid: uuid_mod.UUID | None = None
        self._reader = _FrameReader(max_frame_bytes)
        self._eof_reported = False

    def _fail(self, error: Exception) -> Exception:
        self.state = State.ERROR
        return error

    def receive_data(self, data: bytes) -> None:
        """Bytes from Asterisk; ``b""`` means EOF."""
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        if not data:
            self._reader.eof = True
            return
        self._reader.feed(data)

    def receive_audio_frames(self, data: bytes) -> list[bytes] | None:
        """Hot path: the payloads of ``data`` when it is whole audio frames of a streaming call.

        Nearly every read of a live call is one or a few whole 0x10 frames with nothing left
        buffered; those return their payloads (valid: even length within the cap) without the
        event machinery. Anything else returns None and nothing is consumed: the caller then
        uses :meth:`receive_data` and :meth:`next_event`, which handle every case.
        """
        if self.state is not State.STREAMING or self._reader.pending:
            return None
        cap = self._reader.max_frame_bytes
        size = len(data)
        # The usual reads: one tick's 20 ms frames (320 bytes) from Asterisk, two or one.
        if size == 2 * _FRAME_20MS_WIRE:
            if data.startswith(_AUDIO_20MS_HEADER) and data.startswith(
                _AUDIO_20MS_HEADER, _FRAME_20MS_WIRE
            ):
                if cap >= FRAME_20MS_BYTES:
                    return [data[3:_FRAME_20MS_WIRE], data[_FRAME_20MS_WIRE + 3 :]]
                return None
        elif size > 3 and data[0] == 0x10:  # exactly one frame
            length = (data[1] << 8) | data[2]
            if length == size - 3 and not length & 1 and length <= cap:
                return [data[3:]]
        out = []
        pos = 0
        while pos < size:
            if size - pos < 3 or data[pos] != 0x10:
                return None
            length = (data[pos + 1] << 8) | data[pos + 2]
            end = pos + 3 + length
            if end > size or length & 1 or length > cap:
                return None
            out.append(data[pos + 3 : end])
            pos = end
        return out or None

    def next_event(self) -> Event | _NeedData:
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        if self.state is State.CLOSED:
            return NEED_DATA
        try:
            frame = self._reader.next_frame()
        except RemoteProtocolError as e:
            raise self._fail(e) from None
        if frame is None:
            if self._reader.eof:
                if self._reader.pending:
                    raise self._fail(
                        RemoteProtocolError(
                            f"connection closed in the middle of a frame ({self._reader.pending} "
                            "bytes left over)"
                        )
                    )
                if not self._eof_reported:
                    self._eof_reported = True
                    self.state = State.CLOSED
                    return PeerHangup(by_frame=False)
            return NEED_DATA
        kind, payload = frame
        nxt = _SERVER_RECEIVE.get((self.state, kind))
        if nxt is None:
            if self.state is State.AWAIT_UUID:
                problem = f"first frame is kind 0x{kind:02x}, not the UUID frame (0x01)"
            elif kind == KIND_UUID:
                problem = "a second UUID frame"
            else:
                problem = f"unknown frame kind 0x{kind:02x}"
            raise self._fail(RemoteProtocolError(problem))
        event: Event
        if kind == KIND_AUDIO:
            if len(payload) % 2:
                raise self._fail(
                    RemoteProtocolError(f"audio frame of odd length {len(payload)} bytes")
                )
            event = AudioReceived(payload)
        elif kind == KIND_UUID:
            if len(payload) != 16:
                raise self._fail(
                    RemoteProtocolError(f"UUID frame of {len(payload)} bytes, expected 16")
                )
            self.uuid = uuid_mod.UUID(bytes=payload)
            event = CallStarted(self.uuid)
        elif kind == KIND_DTMF:
            digit = payload.decode("ascii", "replace")
            if len(digit) != 1 or digit not in DTMF_DIGITS:
                raise self._fail(RemoteProtocolError(f"DTMF frame with payload {payload!r}"))
            event = DtmfReceived(digit)
        elif kind == KIND_ERROR:
            event = ErrorReceived(payload)
        else:
            event = PeerHangup(by_frame=True)
        self.state = nxt
        return event

    def _send(self, kind: int) -> None:
        nxt = _SERVER_SEND.get((self.state, kind))
        if nxt is None:
            raise self._fail(
                LocalProtocolError(f"cannot send kind 0x{kind:02x} in state {self.state.value}")
            )
        self.state = nxt

    def send_audio(self, pcm: bytes) -> bytes:
        if not pcm:
            # res_audiosocket: "Invalid message length received from AudioSocket server";
            # AudioSocket() fails and, outside TryExec(), the channel hangs up.
            raise self._fail(LocalProtocolError("an audio frame from the server must not be empty"))
        data = encode_audio_frame(pcm)
        self._send(KIND_AUDIO)
        return data

    def send_hangup(self) -> bytes:
        """Ends ``AudioSocket()``: Asterisk closes the socket and the dialplan continues."""
        self._send(KIND_HANGUP)
        return HANGUP_FRAME


# -- Asterisk's side (for the simulator) ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServerAudio:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class ServerHangup:
    pass


class AsteriskSideConnection:
    """What app_audiosocket does with a server's frames: audio is played, 0x00 ends the app,
    anything else is rejected (the channel is hung up)."""

    def __init__(self, call_uuid: uuid_mod.UUID, max_frame_bytes: int = 65535) -> None:
        self.uuid = call_uuid
        self.state = State.AWAIT_UUID
        self._reader = _FrameReader(max_frame_bytes)

    def start(self) -> bytes:
        if self.state is not State.AWAIT_UUID:
            raise LocalProtocolError("the UUID frame is sent once, first")
        self.state = State.STREAMING
        return encode_uuid_frame(self.uuid)

    def send_audio(self, pcm: bytes) -> bytes:
        if self.state is not State.STREAMING:
            raise LocalProtocolError(f"cannot send audio in state {self.state.value}")
        return encode_audio_frame(pcm)

    def send_dtmf(self, digit: str) -> bytes:
        if self.state is not State.STREAMING:
            raise LocalProtocolError(f"cannot send DTMF in state {self.state.value}")
        return encode_dtmf_frame(digit)

    def receive_data(self, data: bytes) -> None:
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        self._reader.feed(data)

    def next_event(self) -> ServerAudio | ServerHangup | _NeedData:
        if self.state is State.ERROR:
            raise LocalProtocolError("connection is in ERROR")
        try:
            frame = self._reader.next_frame()
        except RemoteProtocolError:
            self.state = State.ERROR
            raise
        if frame is None:
            return NEED_DATA
        kind, payload = frame
        if kind == KIND_HANGUP:
            self.state = State.CLOSED
            return ServerHangup()
        if kind == KIND_AUDIO and payload and not len(payload) % 2:
            return ServerAudio(payload)
        self.state = State.ERROR
        if kind != KIND_AUDIO:
            raise RemoteProtocolError(
                f"Received AudioSocket message other than hangup or audio (kind 0x{kind:02x})"
            )
        if not payload:  # res_audiosocket refuses a length below 1: AudioSocket() fails
            raise RemoteProtocolError("Invalid message length received from AudioSocket server")
        raise RemoteProtocolError(f"audio frame of odd length {len(payload)} bytes")
