"""The trunk guard: a campaign whose trunk refuses call after call stops dialing for a while.

A trunk whose credentials changed, whose account ran out or whose provider bars the route
refuses every call at once: SIP 401, 402 or 407 (only the trunk's own provider challenges or
bills Puente: ``trunk_refused``, never routed toward the debtor) or 403. Each refusal is quick,
so a predictive campaign would go on claiming leads at its full pace and burn through them:
every lead's next try is pushed back, and a 403, which may come from the far end too and so
counts as a dial (``rejected``), uses up debtors' call budgets for nothing.

After ``trip_after`` such refusals in a row (no other end of a dial between them) the guard
trips: no new line for ``cool_off_s``, then one test call at a time. A test call refused again
doubles the pause (up to ``max_cool_off_s``); any other end of a dial (it rang, was answered,
busy, not answered...) shows the trunk carries calls, and closes the guard.

Pure: each dial's end and the time come in as arguments (dialer/runner.py feeds it).
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.outcomes import TRUNK_FAULT_TECH_CAUSES


@dataclass
class TrunkGuard:
    trip_after: int = 5
    cool_off_s: float = 30.0
    max_cool_off_s: float = 600.0
    refused_in_row: int = 0
    tripped: bool = False
    held_until: float = 0.0
    last_tech_cause: int | None = None
    trips_total: int = 0
    _pause_s: float = 0.0

    def __post_init__(self) -> None:
        if self.trip_after < 1 or not 0 < self.cool_off_s <= self.max_cool_off_s:
            raise ValueError(
                "trunk guard: trip_after must be at least 1 and 0 < cool_off_s <= max_cool_off_s"
            )

    def ended(self, tech_cause: int | None, now: float) -> bool:
        """A dial ended (``tech_cause``: its Hangup's TechCause, None when it had none, e.g.
        answered); True when this trips the guard (or trips it again, after a test call)."""
        if tech_cause not in TRUNK_FAULT_TECH_CAUSES:  # the trunk carries calls
            self.refused_in_row = 0
            self.tripped = False
            self._pause_s = 0.0
            return False
        self.refused_in_row += 1
        self.last_tech_cause = tech_cause
        if not self.tripped and self.refused_in_row < self.trip_after:
            return False
        if self.tripped and now < self.held_until:
            return False  # a dial sent before the pause: the pause stands
        self._pause_s = (
            min(2 * self._pause_s, self.max_cool_off_s) if self.tripped else self.cool_off_s
        )
        self.tripped = True
        self.held_until = now + self._pause_s
        self.trips_total += 1
        return True

    def lines(self, lines: int, in_flight: int, now: float) -> int:
        """How many of ``lines`` new lines the trunk may take now, with ``in_flight`` dials of
        the campaign not yet answered or ended: none while paused, then one test call at a
        time."""
        if not self.tripped:
            return lines
        if now < self.held_until or in_flight:
            return 0
        return min(lines, 1)

    def describe(self, now: float) -> str:
        """Why the campaign is not dialing at full pace (for its status line)."""
        what = (
            f"the trunk refused {self.refused_in_row} calls in a row (SIP {self.last_tech_cause})"
        )
        if now < self.held_until:
            return f"{what}: paused, one test call in {self.held_until - now:.0f} s"
        return f"{what}: one test call at a time"
