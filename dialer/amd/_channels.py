"""Which channel is an AudioSocket call on: Uniqueid -> channel name, learnt from AMI events.

AMI ``Setvar`` needs the channel's name (``PJSIP/trunk-0000002a``); the AudioSocket call only
gives its UUID. Puente originates every call with ``ChannelId`` = the attempt's UUID, and the
dialplan passes that same UUID to ``AudioSocket()``, so the channel's ``Uniqueid`` is the call's
UUID. Asterisk announces the pair in ``Newchannel`` (recorded from Asterisk 22.10.1 in
``audiosocket/07-pjsip-answer-pcap-audiosocket``: ``Channel: PJSIP/sipp-00000000`` with
``Uniqueid: 3b6f0c2e-...``, at originate time, long before the answer) and the channel's end
in ``Hangup``.

Only channels whose Uniqueid is a UUID are kept (an agent's leg, ``1795335254.12``, is never on
an AudioSocket of ours), and at most ``max_channels`` of them: an entry whose ``Hangup`` was
lost with a dropped AMI connection is evicted, oldest first, with a warning, instead of
growing without limit.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

_UUID_LENGTH = 36


class _Event(Protocol):
    """What the registry needs of an event: ``get(header)`` (an ``AmiMessage``, a dict)."""

    def get(self, name: str, default: None = None, /) -> str | None: ...


class ChannelRegistry:
    """Channel names of live channels by Uniqueid (lower case); fed with AMI events."""

    __slots__ = ("_names", "evicted_total", "max_channels")

    def __init__(self, max_channels: int = 20_000) -> None:
        if max_channels < 1:
            raise ValueError("max_channels must be >= 1")
        self.max_channels = max_channels
        self._names: dict[str, str] = {}
        self.evicted_total = 0

    def __len__(self) -> int:
        return len(self._names)

    def channel(self, uniqueid: str) -> str | None:
        """The channel name of ``uniqueid`` (an AudioSocket call's UUID), if known."""
        return self._names.get(uniqueid.lower())

    def on_newchannel(self, event: _Event) -> None:
        uid = event.get("Uniqueid") or ""
        name = event.get("Channel") or ""
        if len(uid) != _UUID_LENGTH or uid.count("-") != 4 or not name:
            return
        names = self._names
        names[uid.lower()] = name
        if len(names) > self.max_channels:
            oldest = next(iter(names))
            del names[oldest]
            self.evicted_total += 1
            if self.evicted_total == 1 or self.evicted_total % 1000 == 0:
                log.warning(
                    "AMD channel registry full (%d channels): evicted %s, the oldest "
                    "(%d evictions so far; Hangup events lost?)",
                    self.max_channels,
                    oldest,
                    self.evicted_total,
                )

    def on_hangup(self, event: _Event) -> None:
        uid = event.get("Uniqueid") or ""
        if len(uid) == _UUID_LENGTH:
            self._names.pop(uid.lower(), None)
