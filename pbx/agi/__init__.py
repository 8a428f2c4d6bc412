"""FastAGI: the sans-I/O core and the asyncio server."""

from pbx.agi._core import (
    NEED_DATA,
    AgiEnvironment,
    AgiResponse,
    AgiServerConnection,
    CommandReader,
    HangupNotice,
    State,
    encode_environment,
    quote,
)
from pbx.agi._exceptions import (
    AgiCommandError,
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiSessionClosed,
    AgiTimeout,
)
from pbx.agi._server import AgiServer, AgiSession, GetDataResult
from pbx.agi._settings import AgiSettings

__all__ = [
    "NEED_DATA",
    "AgiCommandError",
    "AgiCommandFailed",
    "AgiEnvironment",
    "AgiError",
    "AgiHangup",
    "AgiResponse",
    "AgiServer",
    "AgiServerConnection",
    "AgiSession",
    "AgiSessionClosed",
    "AgiSettings",
    "AgiTimeout",
    "CommandReader",
    "GetDataResult",
    "HangupNotice",
    "State",
    "encode_environment",
    "quote",
]
