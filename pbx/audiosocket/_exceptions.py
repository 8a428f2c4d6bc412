"""AudioSocket errors."""

from pbx._exceptions import PbxError


class AudioSocketError(PbxError):
    """Root of AudioSocket adapter errors."""


class CallClosed(AudioSocketError):
    """The call's socket is closed: nothing more can be sent."""


class OutgoingAudioOverflow(AudioSocketError):
    """The app queued more audio than ``max_outgoing_s``."""
