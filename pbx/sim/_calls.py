"""What the simulator keeps per call for tests: variables, FastAGI dialogue, scripted keys.

A :class:`CallRecord` holds the channel's own variable table (the same dict the core and the
scripted FastAGI caller write, so it is still readable after the hangup), every command Puente
sent over FastAGI with the answer the simulator wrote, and the keys the call's scripted caller
presses. A call *ends* when its channel is gone and no FastAGI leg of it is still open (Asterisk
too keeps the channel until ``AGI()`` returns).

:class:`CallBook` keeps the records of live calls and of the last ``history`` ended calls
(older ones are forgotten, oldest first), plus the key scripts queued for outbound numbers
(:meth:`CallBook.script_number`). Plain data; the adapter owns the waiting.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_HISTORY = 10_000


@dataclass
class CallRecord:
    call_id: str
    variables: dict[str, str]  # the channel's table (shared with the core while it lives)
    keys: list[str] | None = None  # this call's scripted caller; None: the global agi_keys
    # (command Puente sent, answer written), in order; ("", "HANGUP") for the notice line.
    dialogue: list[tuple[str, str]] = field(default_factory=list)
    agi_legs_open: int = 0
    gone: bool = False  # the channel hung up
    _ended: asyncio.Event | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.gone and self.agi_legs_open == 0

    async def wait_ended(self) -> None:
        if self.ended:
            return
        if self._ended is None:
            self._ended = asyncio.Event()
        await self._ended.wait()


class CallBook:
    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        if history < 1:
            raise ValueError(f"call history must be at least 1, got {history}")
        self.history = history
        self._calls: dict[str, CallRecord] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()  # ended call ids, oldest first
        self._number_scripts: dict[str, deque[list[str]]] = {}
        self.forgotten_total = 0

    def get(self, call_id: str) -> CallRecord | None:
        return self._calls.get(call_id)

    def open(
        self, call_id: str, variables: dict[str, str], keys: Sequence[str] | None = None
    ) -> CallRecord:
        """The record of a call, created if needed (a reused id starts a fresh record)."""
        rec = self._calls.get(call_id)
        if rec is None or rec.ended:
            self._ended.pop(call_id, None)
            rec = self._calls[call_id] = CallRecord(call_id, variables)
        if keys is not None:
            rec.keys = list(keys)
        return rec

    # -- scripts for outbound numbers -------------------------------------------------------
    def script_number(self, number: str, keys: Sequence[str]) -> None:
        """Queue a key script for the next outbound call to ``number`` that starts AGI()."""
        self._number_scripts.setdefault(number, deque()).append(list(keys))

    def take_number_script(self, number: str) -> list[str] | None:
        scripts = self._number_scripts.get(number)
        if not scripts:
            return None
        keys = scripts.popleft()
        if not scripts:
            del self._number_scripts[number]
        return keys

    # -- lifecycle --------------------------------------------------------------------------
    def agi_leg_opened(self, rec: CallRecord) -> None:
        rec.agi_legs_open += 1

    def agi_leg_closed(self, rec: CallRecord) -> None:
        rec.agi_legs_open -= 1
        self._check_ended(rec)

    def channel_gone(self, call_id: str, variables: dict[str, str]) -> None:
        rec = self._calls.get(call_id)
        if rec is None or rec.ended:
            rec = self.open(call_id, variables)
        rec.variables = variables
        rec.gone = True
        self._check_ended(rec)

    def all_gone(self) -> None:
        """Asterisk restarted: every channel vanished without a Hangup."""
        for rec in list(self._calls.values()):
            if not rec.gone:
                rec.gone = True
                self._check_ended(rec)

    def _check_ended(self, rec: CallRecord) -> None:
        if not rec.ended:
            return
        if rec._ended is not None:
            rec._ended.set()
        self._ended[rec.call_id] = None
        self._ended.move_to_end(rec.call_id)
        while len(self._ended) > self.history:
            old, _ = self._ended.popitem(last=False)
            self._calls.pop(old, None)
            self.forgotten_total += 1
