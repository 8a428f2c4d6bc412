"""Agents as the queue reports them (pure): who is free, who is busy and since when.

Fed with Asterisk's queue events (``QueueMemberAdded/Status/Pause/Removed``, ``AgentConnect``,
``AgentComplete``) or the ``QueueMember`` entries of a ``QueueStatus``; time is an argument.
An agent is free when logged in, not paused, its device ringable, on no call (of this queue or,
with ``shared_lastcall``, of another queue it is in) and past its wrap-up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_MEMBER_EVENTS = {"QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMember"}
_CALL_EVENTS = {"AgentConnect", "AgentComplete"}
# The device states app_queue rings a member in (is_member_available: AST_DEVICE_NOT_INUSE and
# AST_DEVICE_UNKNOWN; the in-use states too only with ringinuse, which Puente's queues do not
# set). UNKNOWN is what a PJSIP endpoint reports before Asterisk has qualified it (after a
# restart): the queue rings it, so it is free.
_RINGABLE = {"0", "1"}


@dataclass(frozen=True)
class _Call:
    connected_at: float
    ours: bool  # a call of the board's queue (not of another queue the member is in)
    linkedid: str


@dataclass
class Agent:
    interface: str
    name: str
    paused: bool = False
    in_call: bool = False
    device_free: bool = True
    # The queue calls it is connected to, between AgentConnect and AgentComplete, by the
    # caller channel's Uniqueid: when each was connected, and whether it is this board's
    # queue's (only those teach the pacer talk times). More than one at once is real: a member
    # rung by two callers (Asterisk 22, recorded: load/01-mixed-campaign, calls load-029 and
    # load-041 on agent101), and a member of two queues. Member events do not clear them:
    # Asterisk sets the member's InCall just before AgentConnect, and a device-state
    # QueueMemberStatus racing with it may still say InCall: 0 (recorded: load/01, load-029).
    calls: dict[str, _Call] = field(default_factory=dict)
    wrapup_s: float = 0.0  # the member's own wrap-up time (Wrapuptime; 0: the queue's)
    wrap_until: float = 0.0

    @property
    def talking(self) -> bool:
        return bool(self.calls)

    @property
    def connected_at(self) -> float | None:
        """When its latest call still going was connected (None: on no queue call)."""
        return max((c.connected_at for c in self.calls.values()), default=None)

    def free(self, now: float) -> bool:
        return self._idle() and now >= self.wrap_until

    def wrapping(self, now: float) -> bool:
        """In wrap-up: its call ended, and it frees up at ``wrap_until`` (known)."""
        return self._idle() and now < self.wrap_until

    def status(self, now: float) -> str:
        """``paused``, ``busy`` (on a call, or its device in use), ``wrapup`` or ``free``."""
        if self.paused:
            return "paused"
        if not self._idle():
            return "busy"
        return "wrapup" if now < self.wrap_until else "free"

    def _idle(self) -> bool:
        return not self.paused and not self.in_call and not self.calls and self.device_free


#: A member's own wrap-up past this is not a wrap-up (app_queue takes seconds; an hour is ample).
_MAX_WRAPUP_S = 3600.0


def _seconds(value: str | None, most: float) -> float:
    """A number of seconds from an event field: 0 when missing, not a finite number >= 0, or
    past ``most`` (``inf`` as a wrap-up left the agent never free again)."""
    try:
        x = float(value or 0)
    except ValueError:
        return 0.0
    return x if 0.0 <= x <= most else 0.0


@dataclass
class AgentBoard:
    queue: str
    # The queue's own wrap-up (queues.conf ``wrapuptime``), which no event carries: it applies
    # to every member whose ``Wrapuptime`` is 0, as app_queue's get_wrapuptime() does.
    queue_wrapup_s: float = 0.0
    agents: dict[str, Agent] = field(default_factory=dict)
    # Talk times (connect to complete) of the calls that ended, latest last: the pacer's
    # service-time model is fitted to them (dialer.pacing.learn_service).
    talk_s: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    # queues.conf ``shared_lastcall`` (asterisk_conf sets it): a call a member takes from
    # another queue (the inbound queue, a preview queue) ends in a wrap-up in this one too
    # (app_queue's update_queue() sets the member's lastcall in every queue). Its
    # AgentConnect/AgentComplete are the only news of it: this queue's member events say
    # nothing of the wrap-up.
    shared_lastcall: bool = True

    def event(
        self, name: str, f: Mapping[str, str], now: float, wall_now: float | None = None
    ) -> bool:
        """Apply one queue event; True when it made an agent free.

        ``wall_now`` (the epoch time of ``now``), given with the ``QueueMember`` entries of a
        QueueStatus, puts back the wrap-up of an agent whose call ended (``LastCall``) before
        the board was rebuilt."""
        interface = f.get("Interface") or f.get("Location") or ""
        ours = f.get("Queue") in (None, self.queue)
        if not ours and (name not in _CALL_EVENTS or interface not in self.agents):
            return False  # (a call of another queue matters for a member of this one)
        if name == "QueueMemberRemoved":
            self.agents.pop(interface, None)
            return False
        a = self.agents.get(interface)
        was_free = a is not None and a.free(now)
        if a is None:
            if name not in _MEMBER_EVENTS:
                return False
            # (QueueStatus entries say Name, events MemberName)
            member = f.get("MemberName") or f.get("Name") or interface
            a = self.agents[interface] = Agent(interface, member)
        if name in _MEMBER_EVENTS:
            a.paused = f.get("Paused") == "1"
            a.in_call = f.get("InCall") == "1"
            a.device_free = f.get("Status", "1") in _RINGABLE
            a.wrapup_s = _seconds(f.get("Wrapuptime"), _MAX_WRAPUP_S)
            if wall_now is not None and name == "QueueMember" and not a.in_call:
                last_call = _seconds(f.get("LastCall"), wall_now + _MAX_WRAPUP_S)
                if last_call > 0:  # (app_queue's lastcall: when its last call ended)
                    a.wrap_until = now + max(0.0, last_call + self._wrapup(a) - wall_now)
        elif name == "AgentConnect":
            a.calls[f.get("Uniqueid") or ""] = _Call(now, ours, f.get("Linkedid") or "")
            a.in_call = True
        elif name == "AgentComplete":  # wrap-up starts when the call ends, as in app_queue
            call = a.calls.pop(_call_of(a, f), None)
            if call is not None and call.ours:
                self.talk_s.append(now - call.connected_at)
            a.in_call = bool(a.calls)
            if ours or self.shared_lastcall:
                a.wrap_until = max(a.wrap_until, now + self._wrapup(a))
        return not was_free and a.free(now)

    def free(self, now: float) -> int:
        return sum(1 for a in self.agents.values() if a.free(now))

    def busy_elapsed(self, now: float) -> tuple[float, ...]:
        """For each agent on a queue call (not paused: it stays away after it): seconds since
        that call was connected. Not an agent whose device is busy with no queue call (its
        phone unplugged or ringing, a call of its own): nothing says when it frees up."""
        return tuple(
            now - at
            for a in self.agents.values()
            if not a.paused and (at := a.connected_at) is not None
        )

    def wrap_left(self, now: float) -> tuple[float, ...]:
        """For each agent in wrap-up: seconds until it ends."""
        return tuple(a.wrap_until - now for a in self.agents.values() if a.wrapping(now))

    def next_free_at(self, now: float) -> float | None:
        """When the first wrap-up in progress ends (an agent frees up then, and no event says
        so): the pacer's next step is due then. None: no wrap-up in progress."""
        return min((a.wrap_until for a in self.agents.values() if a.wrapping(now)), default=None)

    def _wrapup(self, a: Agent) -> float:
        return a.wrapup_s or self.queue_wrapup_s

    def wrapup_s(self) -> float:
        """The agents' mean wrap-up time (their own, else the queue's)."""
        if not self.agents:
            return self.queue_wrapup_s
        return sum(self._wrapup(a) for a in self.agents.values()) / len(self.agents)

    @property
    def logged_in(self) -> int:
        return len(self.agents)


def _call_of(a: Agent, f: Mapping[str, str]) -> str:
    """Which of ``a``'s calls an AgentComplete ends: the one of its caller's Uniqueid, else the
    one of its Linkedid (a Local channel optimization replaces the caller's channel, not the
    call's Linkedid)."""
    uid = f.get("Uniqueid") or ""
    if uid in a.calls:
        return uid
    linked = f.get("Linkedid")
    return next((k for k, c in a.calls.items() if linked and c.linkedid == linked), uid)


# -- the actions that change a member (AMI), for the desktop and the pacer ---------------------
# app_queue's answers (apps/app_queue.c manager_add_queue_member, manager_remove_queue_member,
# manager_pause_queue_member; the first two recorded from Asterisk 22.10.1 in ami/11-queue).
# These Errors mean the membership already is as asked.
ALREADY_THERE = "Unable to add interface: Already there"
NOT_THERE = "Unable to remove interface: Not there"
NO_QUEUE_TO_LEAVE = "Unable to remove interface from queue: No such queue"
NOT_A_MEMBER = "Interface not found"  # QueuePause: the interface is in no queue
# This one is a configuration error: the queue is not in queues.conf.
NO_SUCH_QUEUE = "Unable to add interface to queue: No such queue"


@dataclass(frozen=True)
class QueueMember:
    """An agent as app_queue knows it: its phone (``agents.interface``) and its name."""

    interface: str
    name: str


@dataclass(frozen=True)
class QueueStep:
    """One AMI action on an agent's queue membership.

    ``what`` names it in errors and logs; ``already`` are the Error messages that mean it is
    so already (nothing changed); ``undo`` takes it back when a later step fails.
    """

    action: str
    fields: tuple[tuple[str, str], ...]
    what: str
    queue: str | None = None
    already: tuple[str, ...] = ()
    undo: QueueStep | None = None


def queue_add(
    m: QueueMember,
    queue: str,
    *,
    paused: bool = False,
    reason: str | None = None,
    undoable: bool = True,
) -> QueueStep:
    fields = [("Queue", queue), ("Interface", m.interface), ("MemberName", m.name),
              ("Paused", "true" if paused else "false")]  # fmt: skip
    if paused and reason:
        fields.append(("Reason", reason))
    undo = queue_remove(m, queue, undoable=False) if undoable else None
    return QueueStep("QueueAdd", tuple(fields), f"QueueAdd to queue {queue}", queue,
                     (ALREADY_THERE,), undo)  # fmt: skip


def queue_remove(
    m: QueueMember,
    queue: str,
    *,
    paused: bool = False,
    reason: str | None = None,
    undoable: bool = True,
) -> QueueStep:
    """``paused``/``reason``: how to put the member back (``undo``)."""
    undo = queue_add(m, queue, paused=paused, reason=reason, undoable=False) if undoable else None
    return QueueStep("QueueRemove", (("Queue", queue), ("Interface", m.interface)),
                     f"QueueRemove from queue {queue}", queue, (NOT_THERE, NO_QUEUE_TO_LEAVE),
                     undo)  # fmt: skip


def queue_pause(
    m: QueueMember,
    paused: bool,
    reason: str | None = None,
    *,
    undo: QueueStep | None = None,
    queue: str | None = None,
) -> QueueStep:
    """In ``queue``, or in every queue the member is in (no ``Queue`` header)."""
    fields = [("Interface", m.interface), ("Paused", "true" if paused else "false")]
    if queue is not None:
        fields.insert(0, ("Queue", queue))
    if paused and reason:
        fields.append(("Reason", reason))
    what = "QueuePause (pause)" if paused else "QueuePause (unpause)"
    return QueueStep("QueuePause", tuple(fields), what, queue, (NOT_A_MEMBER,), undo)


#: How long a queue membership added after its agent's logout is taken for a login under way
#: (the desktop adds the queues first, then writes the new state): past it, it is a leftover.
LOGIN_UNDER_WAY_S = 30.0


def login_under_way(
    member: Mapping[str, str],
    logged_out_at: Mapping[str, float],
    now: float,
    window_s: float = LOGIN_UNDER_WAY_S,
) -> bool:
    """Whether a ``QueueMember`` entry of a logged-out agent was added after its logout, less
    than ``window_s`` ago: the desktop logging the agent in again, its state not yet written.

    ``logged_out_at``: each logged-out agent's logout, by interface (Unix seconds, like the
    entry's ``LoginTime``: when app_queue added the member). An entry without a usable
    ``LoginTime``, or older than its logout, or past the window, is a leftover."""
    interface = member.get("Location") or member.get("Interface") or ""
    at = logged_out_at.get(interface)
    try:
        added = int(member.get("LoginTime", ""))
    except ValueError:
        return False
    return at is not None and added > at and now - added < window_s


def leftover_removals(
    members: Iterable[Mapping[str, str]], logged_out: Mapping[str, QueueMember]
) -> list[tuple[QueueMember, QueueStep]]:
    """The ``QueueRemove`` of every queue a logged-out agent is still a member of.

    ``members``: the ``QueueMember`` entries of a ``QueueStatus`` (every queue); ``logged_out``:
    the logged-out agents by interface. Whatever the queue (its campaign's, the inbound queue,
    its own preview queue, one it left a campaign for): an agent logged out elsewhere than on
    its desktop (``puente users disable``, a node without a PBX link) takes calls from none.
    Static members (queues.conf) are not Puente's to remove, and app_queue would refuse."""
    out = []
    for f in members:
        interface = f.get("Location") or f.get("Interface") or ""
        m = logged_out.get(interface)
        if m is None or f.get("Membership", "dynamic") == "static" or not f.get("Queue"):
            continue
        out.append((m, queue_remove(m, f["Queue"], undoable=False)))
    return out
