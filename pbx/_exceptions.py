"""The exception tree of :mod:`pbx`.

Every error raised by a protocol core or adapter derives from :class:`PbxError`; third-party
and OS errors are translated at the adapter boundary.
"""


class PbxError(Exception):
    """Root of every error raised by :mod:`pbx`."""


class ProtocolError(PbxError):
    """The byte stream broke a protocol rule. The session that saw it is unusable."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow (e.g. a CR in an AMI header)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (malformed or oversized)."""
