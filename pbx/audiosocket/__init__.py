"""AudioSocket: the sans-I/O frame core and the asyncio server."""

from pbx.audiosocket._core import (
    HANGUP_FRAME,
    NEED_DATA,
    SILENCE_20MS,
    SILENCE_20MS_FRAME,
    AsteriskSideConnection,
    AudioReceived,
    AudioSocketConnection,
    CallStarted,
    DtmfReceived,
    ErrorReceived,
    PeerHangup,
    ServerAudio,
    ServerHangup,
    State,
    encode_audio_frame,
    encode_dtmf_frame,
    encode_uuid_frame,
)
from pbx.audiosocket._exceptions import AudioSocketError, CallClosed, OutgoingAudioOverflow
from pbx.audiosocket._server import AudioSocketCall, AudioSocketServer, EndReason
from pbx.audiosocket._settings import AudioSocketSettings

__all__ = [
    "HANGUP_FRAME",
    "NEED_DATA",
    "SILENCE_20MS",
    "SILENCE_20MS_FRAME",
    "AsteriskSideConnection",
    "AudioReceived",
    "AudioSocketCall",
    "AudioSocketConnection",
    "AudioSocketError",
    "AudioSocketServer",
    "AudioSocketSettings",
    "CallClosed",
    "CallStarted",
    "DtmfReceived",
    "EndReason",
    "ErrorReceived",
    "OutgoingAudioOverflow",
    "PeerHangup",
    "ServerAudio",
    "ServerHangup",
    "State",
    "encode_audio_frame",
    "encode_dtmf_frame",
    "encode_uuid_frame",
]
