"""Audio frames from the server, as app_audiosocket takes them (res_audiosocket.c
``ast_audiosocket_receive_frame_with_hangup``): a length below 1 is refused ("Invalid message
length received from AudioSocket server") and AudioSocket() fails."""

from __future__ import annotations

import uuid

import pytest

from pbx._exceptions import LocalProtocolError, RemoteProtocolError
from pbx.audiosocket import (
    AsteriskSideConnection,
    AudioSocketConnection,
    ServerAudio,
    State,
    encode_uuid_frame,
)


def _streaming_server() -> AudioSocketConnection:
    conn = AudioSocketConnection()
    conn.receive_data(encode_uuid_frame(uuid.uuid4()))
    conn.next_event()
    assert conn.state is State.STREAMING
    return conn


def test_the_server_never_sends_an_empty_audio_frame() -> None:
    conn = _streaming_server()
    with pytest.raises(LocalProtocolError, match="must not be empty"):
        conn.send_audio(b"")
    assert conn.state is State.ERROR


def test_asterisk_side_refuses_an_empty_audio_frame_as_app_audiosocket_does() -> None:
    side = AsteriskSideConnection(uuid.uuid4())
    side.start()
    side.receive_data(b"\x10\x00\x02\x01\x00")
    assert side.next_event() == ServerAudio(b"\x01\x00")
    side.receive_data(b"\x10\x00\x00")
    with pytest.raises(RemoteProtocolError, match="Invalid message length"):
        side.next_event()
    assert side.state is State.ERROR
