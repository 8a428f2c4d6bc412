"""A stand-in for Puente's AMI client in front of a real Asterisk's app_queue.

It answers QueueAdd, QueueRemove and QueuePause as Asterisk 22 does: the messages
are apps/app_queue.c's (manager_add_queue_member, manager_remove_queue_member,
manager_pause_queue_member), the ones recorded in ``ami/11-queue`` of the transcripts
("Added interface to queue", "Unable to add interface: Already there", "Removed interface from
queue", "Unable to remove interface: Not there", "Interface paused successfully", ...)
byte for byte. Unlike the simulator it knows which queues queues.conf defines: a queue that is
not there is refused ("Unable to add interface to queue: No such queue").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pbx.ami import ActionFateUnknown, ActionResult, ActionTimeout, AmiMessage, NotConnected


@dataclass
class Member:
    name: str
    paused: bool = False
    reason: str = ""
    dynamic: bool = True


@dataclass
class AppQueue:
    """``queues``: the queues defined in queues.conf, each ``{interface: Member}``."""

    queues: dict[str, dict[str, Member]] = field(default_factory=dict)
    connected: bool = True
    sent: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # action, Response, Message
    # The n-th action (1-based) gets no answer in time / loses the link while in flight.
    stall_at: int | None = None
    drop_at: int | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def defining(cls, *names: str) -> AppQueue:
        return cls({n: {} for n in names})

    def subscribe(self, callback: object, event: str | None = None) -> None:
        """The desktop's hub listens for AgentConnect: none come from here."""

    def actions(self, name: str) -> list[dict[str, str]]:
        return [f for a, f in self.sent if a == name]

    def member(self, queue: str, interface: str) -> Member | None:
        return self.queues.get(queue, {}).get(interface)

    async def send_action(
        self,
        action: str,
        fields: object = (),
        *,
        action_id: str | None = None,
        timeout_s: float | None = None,
    ) -> ActionResult:
        if not self.connected:
            raise NotConnected(f"AMI fake is not connected; {action} not sent")
        f = dict(fields)  # type: ignore[call-overload]
        self.sent.append((action, f))
        n = len(self.sent)
        if n == self.stall_at:
            raise ActionTimeout(f"AMI fake: no answer to {action} within {timeout_s} s")
        if n == self.drop_at:
            self.connected = False
            raise ActionFateUnknown(f"AMI fake: connection lost during {action}")
        aid = action_id or f"fake-{next(self._ids)}"
        ok, message = getattr(self, "_" + action.lower())(f)
        response = "Success" if ok else "Error"
        self.answers.append((action, response, message))
        msg = AmiMessage.from_pairs(
            [("Response", response), ("ActionID", aid), ("Message", message)]
        )
        return ActionResult(action, aid, msg)

    def _queueadd(self, f: dict[str, str]) -> tuple[bool, str]:
        queue, interface = f.get("Queue", ""), f.get("Interface", "")
        if not queue:
            return False, "'Queue' not specified."
        if not interface:
            return False, "'Interface' not specified."
        members = self.queues.get(queue)
        if members is None:
            return False, "Unable to add interface to queue: No such queue"
        if interface in members:
            return False, "Unable to add interface: Already there"
        paused = f.get("Paused", "").lower() in ("yes", "true", "y", "t", "1", "on")
        members[interface] = Member(
            f.get("MemberName") or interface, paused, f.get("Reason", "") if paused else ""
        )
        return True, "Added interface to queue"

    def _queueremove(self, f: dict[str, str]) -> tuple[bool, str]:
        queue, interface = f.get("Queue", ""), f.get("Interface", "")
        if not queue or not interface:
            return False, "Need 'Queue' and 'Interface' parameters."
        members = self.queues.get(queue)
        if members is None:
            return False, "Unable to remove interface from queue: No such queue"
        m = members.get(interface)
        if m is None:
            return False, "Unable to remove interface: Not there"
        if not m.dynamic:
            return False, "Member not dynamic"
        del members[interface]
        return True, "Removed interface from queue"

    def _queuepause(self, f: dict[str, str]) -> tuple[bool, str]:
        interface, paused_s = f.get("Interface", ""), f.get("Paused", "")
        if not interface or not paused_s:
            return False, "Need 'Interface' and 'Paused' parameters."
        paused = paused_s.lower() in ("yes", "true", "y", "t", "1", "on")
        queue = f.get("Queue")
        found = [
            members[interface]
            for name, members in self.queues.items()
            if interface in members and (not queue or name == queue)
        ]
        if not found:
            return False, "Interface not found"
        for m in found:
            m.paused, m.reason = paused, f.get("Reason", "") if paused else ""
        return True, f"Interface {'paused' if paused else 'unpaused'} successfully"
