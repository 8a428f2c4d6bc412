"""The Asterisk side of Puente: sans-I/O protocol cores and their thin asyncio adapters.

- :mod:`pbx.ami`: Asterisk Manager Interface client.
- :mod:`pbx.agi`: FastAGI server.
- :mod:`pbx.audiosocket`: AudioSocket server.
- :mod:`pbx.sim`: a simulated Asterisk speaking all three over TCP.
"""

from pbx._exceptions import (
    LocalProtocolError,
    PbxError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = ["LocalProtocolError", "PbxError", "ProtocolError", "RemoteProtocolError"]
