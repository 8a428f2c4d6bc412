"""AMI (Asterisk Manager Interface): the sans-I/O core and the asyncio client."""

from pbx.ami._client import AmiClient, EventsLost, OriginateHandle
from pbx.ami._exceptions import (
    ActionFateUnknown,
    ActionTimeout,
    AmiAuthenticationError,
    AmiError,
    NotConnected,
)
from pbx.ami._message import (
    BANNER,
    AmiMessage,
    MessageFramer,
    encode_message,
    iter_fields,
)
from pbx.ami._protocol import (
    NEED_DATA,
    ActionResult,
    AmiClientProtocol,
    Banner,
    ConnectionClosed,
    State,
    Unsolicited,
)
from pbx.ami._settings import AmiSettings

__all__ = [
    "BANNER",
    "NEED_DATA",
    "ActionFateUnknown",
    "ActionResult",
    "ActionTimeout",
    "AmiAuthenticationError",
    "AmiClient",
    "AmiClientProtocol",
    "AmiError",
    "AmiMessage",
    "AmiSettings",
    "Banner",
    "ConnectionClosed",
    "EventsLost",
    "MessageFramer",
    "NotConnected",
    "OriginateHandle",
    "State",
    "Unsolicited",
    "encode_message",
    "iter_fields",
]
