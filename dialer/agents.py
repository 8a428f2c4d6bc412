"""Agents as the queue reports them (pure): who is free, who is busy and since when.

Fed with Asterisk's queue events (``QueueMemberAdded/Status/Pause/Removed``, ``AgentConnect``,
``AgentComplete``) or the ``QueueMember`` entries of a ``QueueStatus``; time is an argument.
An agent is free when logged in, not paused, not on a call and past its wrap-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_MEMBER_EVENTS = {"QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMember"}
_NOT_INUSE = {"1"}  # AST_DEVICE_NOT_INUSE


@dataclass
class Agent:
    interface: str
    name: str
    paused: bool = False
    in_call: bool = False
    device_free: bool = True
    connected_at: float | None = None  # the current (or last) call's connect time
    wrap_until: float = 0.0

    def free(self, now: float) -> bool:
        return not self.paused and not self.in_call and self.device_free and now >= self.wrap_until


@dataclass
class AgentBoard:
    queue: str
    agents: dict[str, Agent] = field(default_factory=dict)

    def event(self, name: str, f: Mapping[str, str], now: float) -> None:
        if f.get("Queue") not in (None, self.queue):
            return
        interface = f.get("Interface") or f.get("Location") or ""
        if name in _MEMBER_EVENTS:
            a = self.agents.get(interface)
            if a is None:
                a = self.agents[interface] = Agent(interface, f.get("MemberName", interface))
            a.paused = f.get("Paused") == "1"
            a.in_call = f.get("InCall") == "1"
            a.device_free = f.get("Status", "1") in _NOT_INUSE
            wrap = f.get("Wrapuptime")
            if name == "QueueMemberStatus" and not a.in_call and a.connected_at is not None:
                a.wrap_until = max(a.wrap_until, now + float(wrap or 0)) if wrap else a.wrap_until
        elif name == "QueueMemberRemoved":
            self.agents.pop(interface, None)
        elif name == "AgentConnect":
            a = self.agents.get(interface)
            if a is not None:
                a.in_call = True
                a.connected_at = now
        elif name == "AgentComplete":
            a = self.agents.get(interface)
            if a is not None:
                a.in_call = False

    def free(self, now: float) -> int:
        return sum(1 for a in self.agents.values() if a.free(now))

    def busy_elapsed(self, now: float) -> tuple[float, ...]:
        """For each agent on a call or in wrap-up: seconds since that call was connected."""
        return tuple(
            now - a.connected_at
            for a in self.agents.values()
            if not a.paused and not a.free(now) and a.connected_at is not None
        )

    @property
    def logged_in(self) -> int:
        return len(self.agents)
