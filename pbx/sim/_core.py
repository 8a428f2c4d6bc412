"""The simulated Asterisk's brain: a discrete-event machine with time as an argument.

``SimCore`` owns channels, queues and agents. It takes AMI actions, inbound calls
(:meth:`SimCore.call_in`) and media notifications in and returns :class:`Output` facts (AMI
replies and events, media sessions to open or close, channels gone); it never reads a clock and
does no I/O. The asyncio adapter (:mod:`pbx.sim._server`) feeds it real time; tests and
benchmarks can feed it virtual time.

Outbound channels are AMI Originates to the PJSIP trunk, played by the callee model. Inbound
channels are calls from the trunk (``PJSIP/trunk-0000000N`` in state Ring, caller id = the
caller's number, exten = the dialed number) run through the dialplan from priority 1; their
caller hangs up when its FastAGI script says so, or when the agent's talk time ends (no
patience clock).

What it emits for each outcome follows ``tests/data/asterisk-transcripts`` (see
:mod:`pbx.sim._callees` for the outcome table and :mod:`pbx.sim._events` for event layouts).
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from pbx.sim import _events as ev
from pbx.sim._agi_caller import agi_environment
from pbx.sim._callees import ANSWERED, WIRE, CalleeModel, CallFate
from pbx.sim._dialplan import (
    DEFAULT_LANGUAGE,
    Dialplan,
    DialplanCursor,
    DialplanError,
    Step,
    load_endpoint_languages,
    load_queue_names,
    split_args,
)

Pairs = ev.Pairs


# -- outputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """A response (or EventList item) for one AMI connection."""

    conn: int
    pairs: Pairs


@dataclass(frozen=True)
class Broadcast:
    """An event for every logged-in AMI connection."""

    pairs: Pairs


@dataclass(frozen=True)
class StartAudioSocket:
    call_id: str
    uuid: str
    address: str
    fate: CallFate


@dataclass(frozen=True)
class StartAgi:
    call_id: str
    url: str
    args: tuple[str, ...]
    env: Pairs
    fate: CallFate
    # Read-only values GET VARIABLE also finds: globals, CHANNEL, UNIQUEID, CALLERID(num)...
    builtins: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndMedia:
    """The far end hung up while a media session (AudioSocket or AGI) was open."""

    call_id: str


@dataclass(frozen=True)
class ChannelGone:
    """A channel hung up (its Hangup event is out). ``variables`` is its variable table."""

    call_id: str
    variables: dict[str, str]


Output = Reply | Broadcast | StartAudioSocket | StartAgi | EndMedia | ChannelGone


#: The dialplan applications the simulator runs (lower case). Any other one is what Asterisk
#: does with an application it does not have: "No application 'X' for extension", and the
#: channel hangs up (main/pbx.c pbx_extension_helper).
KNOWN_APPS = frozenset(
    {"agi", "answer", "audiosocket", "goto", "gotoif", "hangup", "noop", "playback", "queue",
     "saydigits", "set", "tryexec", "userevent", "verbose", "wait"}
)  # fmt: skip
_NOT_UNDER_TRYEXEC = frozenset({"tryexec", "goto", "gotoif", "hangup"})


# -- state -----------------------------------------------------------------------------------
@dataclass
class Channel:
    id: str
    snap: ev.ChannelSnapshot
    device: str
    number: str
    fate: CallFate
    created_at: float
    variables: dict[str, str] = field(default_factory=dict)
    cursor: DialplanCursor | None = None
    blocked_on: str | None = None  # "audiosocket", "agi", "queue", "wait", "ring"
    # The blocking application runs inside TryExec(): its failure sets TRYSTATUS=FAILED and the
    # dialplan goes on, where on its own the failure would hang the channel up.
    in_tryexec: bool = False
    answered_at: float | None = None
    queue_entry: QueueEntry | None = None
    queue_name: str = ""
    agent: Member | None = None
    gone: bool = False
    # The device left NOT_INUSE (RINGING, or INUSE for an inbound call): NOT_INUSE at the end.
    device_used: bool = False
    generation: int = 0  # bumps when the channel leaves a blocking state (stale timers)
    inbound: bool = False  # a call from the trunk (call_in), not an Originate
    dnid: str = "unknown"  # the number the caller dialed (inbound calls)


@dataclass
class Member:
    snap: ev.MemberSnapshot
    busy_until: float = 0.0
    channel: Channel | None = None  # the caller it is talking to
    ring: tuple[float, ev.ChannelSnapshot] | None = None  # ringing: since when, its leg


@dataclass
class QueueEntry:
    channel: Channel
    queue: str
    joined_at: float
    position: int
    timeout_at: float | None


@dataclass
class Queue:
    name: str
    strategy: str = "leastrecent"
    # queues.conf ``wrapuptime``: applies to every member without one of its own (a member
    # added by AMI QueueAdd has none, and its events say ``Wrapuptime: 0``), as app_queue's
    # get_wrapuptime() does.
    wrapuptime: float = 0
    members: dict[str, Member] = field(default_factory=dict)
    entries: list[QueueEntry] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class SimSettings:
    trunk_endpoint: str = "trunk"
    # PJSIP endpoints that exist (pjsip.conf); others fail at once, as PJSIP/no-such-endpoint.
    endpoints: tuple[str, ...] = ("trunk",)
    # Each endpoint's ``language`` (pjsip.conf; default: asterisk_conf's, where the trunk and
    # the agents' phones say ``es``): its channels' language, until the dialplan (or an AGI)
    # sets CHANNEL(language). An endpoint not named: asterisk.conf's default language (en).
    languages: tuple[tuple[str, str], ...] = field(
        default_factory=lambda: tuple(sorted(load_endpoint_languages().items()))
    )
    trunk_context: str = "from-trunk"
    trunk_capacity: int = 1000
    audiosocket_default: str = "127.0.0.1:9092"
    agi_default: str = "127.0.0.1:4573"
    agent_ring_s: float = 1.0
    playback_s: float = 8.0
    machine_linger_s: float = 30.0
    epoch_s: int = 1795335254  # Uniqueid prefix (seconds), as Asterisk does

    def language_of(self, endpoint: str) -> str:
        """The language of a channel of PJSIP ``endpoint`` when it is created."""
        return dict(self.languages).get(endpoint, DEFAULT_LANGUAGE)


class SimCore:
    """All channels of one simulated Asterisk."""

    def __init__(
        self,
        dialplan: Dialplan,
        model: CalleeModel,
        settings: SimSettings | None = None,
        queues: Iterable[str] | None = None,
    ) -> None:
        """``queues``: the queues its queues.conf defines (default: asterisk_conf's). AMI and
        Queue() know no other, as Asterisk; :meth:`queue` defines one (the simulator's own
        agents, a deployment's extra queues)."""
        self.dialplan = dialplan
        self.model = model
        self.s = settings or SimSettings()
        self.channels: dict[str, Channel] = {}
        self.by_name: dict[str, Channel] = {}
        self.queues: dict[str, Queue] = {
            name: Queue(name) for name in (load_queue_names() if queues is None else queues)
        }
        self.globals: dict[str, str] = dict(dialplan.globals)
        self._timers: list[tuple[float, int, Callable[[float], list[Output]]]] = []
        self._seq = itertools.count()
        self._chan_seq = itertools.count()
        self._uid_seq = itertools.count(1)
        # caller channel id -> (agent leg, connected at, hold seconds)
        self._agent_legs: dict[str, tuple[ev.ChannelSnapshot, float, int]] = {}
        # The Unix time of the core's time 0 (the server sets it when it starts): a queue
        # member's LoginTime, LastCall and LastPause are Unix seconds in Asterisk (ami/11).
        self.wall_zero = 0.0

    # -- timers ------------------------------------------------------------------------------
    def _at(self, when: float, fn: Callable[[float], list[Output]]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), fn))

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def advance(self, now: float) -> list[Output]:
        """Run every timer due at or before ``now``."""
        out: list[Output] = []
        while self._timers and self._timers[0][0] <= now:
            when, _, fn = heapq.heappop(self._timers)
            out.extend(fn(when))
        return out

    # -- public helpers ------------------------------------------------------------------------
    def unix_s(self, now: float) -> int:
        """The core's time ``now`` as Asterisk's whole Unix seconds."""
        return int(self.wall_zero + now)

    def queue(self, name: str) -> Queue:
        """Queue ``name``, defined now if queues.conf did not (as if it had)."""
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    @property
    def live_channels(self) -> int:
        return sum(1 for c in self.channels.values() if not c.gone)

    def restart(self) -> None:
        """Asterisk restarted: every channel is gone, no event for them (the TCP link died)."""
        self.channels.clear()
        self.by_name.clear()
        self._timers.clear()
        for q in self.queues.values():
            q.entries.clear()
            for m in q.members.values():
                m.channel = None
                m.ring = None
                m.busy_until = 0.0
                m.snap.in_call = 0
                m.snap.status = 1

    # -- originate ---------------------------------------------------------------------------
    def originate(
        self, conn: int, fields: dict[str, str], variables: list[str], now: float
    ) -> list[Output]:
        action_id = fields.get("actionid")
        asynchronous = fields.get("async", "false").lower() in ("true", "yes", "1")
        dial = fields.get("channel", "")
        resp: Pairs = [("Response", "Success")]
        if action_id is not None:
            resp.append(("ActionID", action_id))

        def reply(pairs: Pairs) -> Reply:
            if action_id is not None:
                pairs = [pairs[0], ("ActionID", action_id), *pairs[1:]]
            return Reply(conn, pairs)

        if "/" not in dial:
            return [reply([("Response", "Error"), ("Message", "Invalid channel")])]
        tech, _, resource = dial.partition("/")
        context = fields.get("context", "")
        exten = fields.get("exten", "s")
        caller_num, caller_name = _parse_callerid(fields.get("callerid", ""))
        try:
            timeout_s = int(fields.get("timeout", "30000")) / 1000.0
        except ValueError:
            timeout_s = 30.0
        number, endpoint = _split_pjsip(resource)
        if tech.upper() != "PJSIP" or not resource or endpoint not in self.s.endpoints:
            # What Asterisk does for a technology it cannot request (ami/07).
            if not asynchronous:
                return [reply([("Response", "Error"), ("Message", "Originate failed")])]
            return [
                reply([("Response", "Success"), ("Message", "Originate successfully queued")]),
                Broadcast(
                    ev.originate_response(
                        action_id,
                        "Failure",
                        dial,
                        context,
                        exten,
                        0,
                        "<unknown>",
                        caller_num or "<unknown>",
                        caller_name or "<unknown>",
                    )
                ),
            ]
        seq = next(self._chan_seq)
        name = f"PJSIP/{endpoint}-{seq:08x}"
        uniqueid = fields.get("channelid") or f"{self.s.epoch_s}.{next(self._uid_seq)}"
        fate = self.model.fate(number, uniqueid)
        if sum(1 for c in self.channels.values() if not c.gone) >= self.s.trunk_capacity:
            fate = _with_outcome(fate, "congestion")
        if fate.outcome in ANSWERED and fate.ring_s >= timeout_s:
            fate = _with_outcome(fate, "no_answer")
        snap = ev.ChannelSnapshot(
            name=name,
            uniqueid=uniqueid,
            linkedid=uniqueid,
            language=self.s.language_of(endpoint),  # the endpoint's (pjsip.conf)
            context=self.s.trunk_context,
        )
        ch = Channel(uniqueid, snap, f"PJSIP/{endpoint}", number, fate, now)
        for v in variables:
            k, _, val = v.partition("=")
            if k.strip() == "CHANNEL(language)":  # a function write, as Set() does it
                snap.language = val
            else:
                ch.variables[k.strip()] = val
        self.channels[ch.id] = ch
        self.by_name[name] = ch
        out: list[Output] = []
        if asynchronous:
            out.append(
                reply([("Response", "Success"), ("Message", "Originate successfully queued")])
            )
        out.append(Broadcast(ev.channel_event("Newchannel", snap)))
        out.append(Broadcast(ev.newexten(snap, "AppDial2", "(Outgoing Line)")))
        for k, val in ch.variables.items():
            out.append(Broadcast(ev.varset(snap, k, val)))
        if caller_num or caller_name:
            snap.caller_num = caller_num or "<unknown>"
            snap.caller_name = caller_name or "<unknown>"
            out.append(
                Broadcast(
                    ev.channel_event(
                        "NewCallerid",
                        snap,
                        ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"),
                    )
                )
            )
            snap.connected_num, snap.connected_name = snap.caller_num, snap.caller_name
            out.append(Broadcast(ev.channel_event("NewConnectedLine", snap)))
        out.append(Broadcast(ev.dial_begin(snap, resource)))
        origin = _Origin(
            conn, action_id, asynchronous, dial, context, exten, fields.get("priority", "1")
        )
        if fate.outcome in ANSWERED or fate.outcome == "no_answer":
            out.append(Broadcast(ev.dial_state(snap, "RINGING")))
            snap.state = 5
            out.append(Broadcast(ev.channel_event("Newstate", snap)))
            out.append(Broadcast(ev.device_state_change(ch.device, "RINGING")))
            ch.device_used = True
            ch.blocked_on = "ring"
            if fate.outcome == "no_answer":
                self._at(now + timeout_s, lambda t, c=ch: self._no_answer(c, origin, t))
            else:
                self._at(now + fate.ring_s, lambda t, c=ch: self._answer(c, origin, t))
        else:
            self._at(now + fate.ring_s, lambda t, c=ch: self._fail(c, origin, t))
        return out

    # -- inbound ------------------------------------------------------------------------------
    def call_in(
        self,
        exten: str,
        now: float,
        *,
        caller: str,
        context: str = "puente-inbound",
        variables: Mapping[str, str] | None = None,
    ) -> tuple[Channel, list[Output]]:
        """A call from the trunk to ``exten``: the new channel, and what its dialplan did.

        ``variables`` become channel variables (as an endpoint's ``set_var`` would set them);
        ``CHANNEL(language)`` sets the channel's language. Raises :class:`DialplanError` when
        ``exten`` has no match in ``context`` (chan_pjsip answers 404 and creates no channel).
        """
        if self.dialplan.find_extension(context, exten) is None:
            raise DialplanError(f"no extension {exten!r} in [{context}]: the trunk would get 404")
        seq = next(self._chan_seq)
        uniqueid = f"{self.s.epoch_s}.{next(self._uid_seq)}"
        snap = ev.ChannelSnapshot(
            name=f"PJSIP/{self.s.trunk_endpoint}-{seq:08x}",
            uniqueid=uniqueid,
            linkedid=uniqueid,
            state=4,  # chan_pjsip creates incoming channels in Ring
            caller_num=caller or "<unknown>",
            language=self.s.language_of(self.s.trunk_endpoint),
            context=context,
            exten=exten,
        )
        # The caller's own timings (talk time with an agent); an inbound caller is a person.
        fate = _with_outcome(self.model.fate(caller, uniqueid), "human")
        device = f"PJSIP/{self.s.trunk_endpoint}"
        ch = Channel(uniqueid, snap, device, caller, fate, now, inbound=True, dnid=exten)
        for k, val in (variables or {}).items():
            if k == "CHANNEL(language)":
                snap.language = val
            else:
                ch.variables[k] = val
        self.channels[ch.id] = ch
        self.by_name[snap.name] = ch
        out: list[Output] = [Broadcast(ev.channel_event("Newchannel", snap))]
        out += [Broadcast(ev.varset(snap, k, val)) for k, val in ch.variables.items()]
        out.append(Broadcast(ev.device_state_change(device, "INUSE")))
        ch.device_used = True
        ch.cursor = DialplanCursor(self.dialplan, context, exten, 1)
        out += self._run(ch, now)
        return ch, out

    def answer(self, call_id: str, now: float) -> list[Output]:
        """``Answer()`` or the AGI ``ANSWER`` command: an unanswered channel goes Up."""
        ch = self.channels.get(call_id)
        if ch is None or ch.gone or ch.snap.state == 6:
            return []
        ch.answered_at = now
        ch.snap.state = 6
        return [Broadcast(ev.channel_event("Newstate", ch.snap))]

    def set_variable(self, call_id: str, name: str, value: str) -> list[Output]:
        """An application (AGI ``SET VARIABLE``, ``EXEC Set``) set a channel variable."""
        ch = self.channels.get(call_id)
        if ch is None or ch.gone:
            return []
        if name == "CHANNEL(language)":  # a function write: the channel's language, no VarSet
            ch.snap.language = value
            return []
        ch.variables[name] = value
        return [Broadcast(ev.varset(ch.snap, name, value))]

    def _originate_done(self, origin: _Origin, ok: bool) -> list[Output]:
        if origin.asynchronous:
            return []
        pairs: Pairs = (
            [("Response", "Success"), ("Message", "Originate successfully queued")]
            if ok
            else [("Response", "Error"), ("Message", "Originate failed")]
        )
        if origin.action_id is not None:
            pairs.insert(1, ("ActionID", origin.action_id))
        return [Reply(origin.conn, pairs)]

    def _fail(self, ch: Channel, origin: _Origin, now: float) -> list[Output]:
        if ch.gone:
            return []
        w = ch.fate.wire
        out = self._originate_done(origin, ok=False)
        out.append(Broadcast(ev.hangup_request(ch.snap, w.cause, w.tech_cause)))
        if w.dial_status:
            out.append(Broadcast(ev.dial_end(ch.snap, w.dial_status)))
        if origin.asynchronous:
            out.append(Broadcast(self._failed_response(ch, origin, w.reason)))
        out += self._destroy(ch, w.cause, w.cause_txt, w.tech_cause, now)
        return out

    def _no_answer(self, ch: Channel, origin: _Origin, now: float) -> list[Output]:
        if ch.gone:
            return []
        out = self._originate_done(origin, ok=False)
        if origin.asynchronous:
            out.append(Broadcast(self._failed_response(ch, origin, 3)))
        out += self._destroy(ch, 19, "User alerting, no answer", None, now)
        return out

    def _failed_response(self, ch: Channel, origin: _Origin, reason: int) -> Pairs:
        return ev.originate_response(
            origin.action_id,
            "Failure",
            origin.dial,
            origin.context,
            origin.exten,
            reason,
            "<unknown>",
            ch.snap.caller_num,
            ch.snap.caller_name,
        )

    def _answer(self, ch: Channel, origin: _Origin, now: float) -> list[Output]:
        if ch.gone:
            return []
        ch.answered_at = now
        ch.blocked_on = None
        out = self._originate_done(origin, ok=True)
        if origin.asynchronous:
            out.append(
                Broadcast(
                    ev.originate_response(
                        origin.action_id,
                        "Success",
                        ch.snap.name,
                        origin.context,
                        origin.exten,
                        4,
                        ch.snap.uniqueid,
                        ch.snap.caller_num,
                        ch.snap.caller_name,
                    )
                )
            )
        ch.snap.state = 6
        out.append(Broadcast(ev.channel_event("Newstate", ch.snap)))
        out.append(Broadcast(ev.dial_end(ch.snap, "ANSWER")))
        try:
            priority = int(origin.priority)
        except ValueError:
            priority = 1
        ch.cursor = DialplanCursor(self.dialplan, origin.context, origin.exten, priority)
        ch.snap.context, ch.snap.exten, ch.snap.priority = origin.context, origin.exten, priority
        # The far end's own clock: when it hangs up if nothing else ends the call first.
        linger = ch.fate.patience_s if ch.fate.outcome == "human" else self.s.machine_linger_s
        if ch.fate.outcome == "machine":
            linger = ch.fate.greeting_s + self.s.machine_linger_s
        gen = ch.generation
        self._at(now + linger, lambda t, c=ch, g=gen: self._far_end_leaves(c, g, t))
        out += self._run(ch, now)
        out.append(Broadcast(ev.device_state_change(ch.device, "INUSE")))
        return out

    # -- dialplan ----------------------------------------------------------------------------
    def _scope(self, ch: Channel) -> dict[str, str]:
        return {
            **self.globals,
            **ch.variables,
            "CHANNEL": ch.snap.name,
            "UNIQUEID": ch.snap.uniqueid,
        }

    def _run(self, ch: Channel, now: float) -> list[Output]:
        """Run the channel's dialplan until it blocks or ends."""
        out: list[Output] = []
        assert ch.cursor is not None
        for _ in range(200):
            if ch.gone:
                return out
            step = ch.cursor.step(self._scope(ch))
            if step is None:
                return out + self._hangup_by_dialplan(ch, now)
            ch.snap.context, ch.snap.exten, ch.snap.priority = (
                step.context,
                step.exten,
                step.priority,
            )
            out.append(Broadcast(ev.newexten(ch.snap, step.app, step.data)))
            blocked = self._execute(ch, step, now, out)
            if blocked or ch.gone:
                return out
            try:
                ch.cursor.advance(step)
            except DialplanError:
                return out + self._hangup_by_dialplan(ch, now)
        return out + self._hangup_by_dialplan(ch, now)

    def _execute(self, ch: Channel, step: Step, now: float, out: list[Output]) -> bool:
        """Run one application; True when the channel now waits for something."""
        app = step.app.lower()
        if app == "tryexec":
            return self._try_exec(ch, step, now, out)
        if app not in KNOWN_APPS:
            # pbx.c: "No application 'X' for extension": the PBX stops and hangs up.
            out.extend(self._hangup_by_dialplan(ch, now))
            return True
        if app == "set":
            k, _, v = step.data.partition("=")
            if k.strip() == "CHANNEL(language)":  # a function write: no VarSet
                ch.snap.language = v
            else:
                ch.variables[k.strip()] = v
                out.append(Broadcast(ev.varset(ch.snap, k.strip(), v)))
        elif app == "answer":
            out.extend(self.answer(ch.id, now))
        elif app == "userevent":
            parts = split_args(step.data)
            body = []
            for p in parts[1:]:
                k, _, v = p.partition(":")
                body.append((k.strip(), v.strip()))
            out.append(Broadcast(ev.user_event(ch.snap, parts[0], body)))
        elif app == "hangup":
            out.extend(self._hangup_by_dialplan(ch, now))
            return True
        elif app == "audiosocket":
            args = split_args(step.data)
            uuid = args[0] if args else ""
            address = args[1] if len(args) > 1 and args[1] else self.s.audiosocket_default
            ch.blocked_on = "audiosocket"
            out.append(StartAudioSocket(ch.id, uuid, address, ch.fate))
            return True
        elif app == "agi":
            url, *agi_args = split_args(step.data)
            ch.blocked_on = "agi"
            out.append(
                StartAgi(
                    ch.id,
                    url,
                    tuple(agi_args),
                    self._agi_env(ch, url, agi_args),
                    ch.fate,
                    self._agi_builtins(ch),
                )
            )
            return True
        elif app == "queue":
            return self._queue_join(ch, step, now, out)
        elif app in ("playback", "wait"):
            try:
                secs = float(step.data) if app == "wait" else self.s.playback_s
            except ValueError:
                secs = 0.0
            ch.blocked_on = "wait"
            gen = ch.generation
            self._at(now + secs, lambda t, c=ch, g=gen: self._resume(c, g, t))
            return True
        # NoOp, Verbose, SayDigits, Goto, GotoIf: nothing more to do here.
        return False

    def _try_exec(self, ch: Channel, step: Step, now: float, out: list[Output]) -> bool:
        """``TryExec(App(args))`` (app_exec.c): run the application; whatever it returns, the
        dialplan goes on, with ``TRYSTATUS`` SUCCESS (it returned 0), FAILED (non-zero) or
        NOAPP (no such application). Only media applications can fail here; they report it
        through :meth:`media_failed` and :meth:`media_ended`."""
        m = re.fullmatch(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", step.data, re.S)
        inner = m.group(1).lower() if m else ""
        # (Goto, GotoIf and Hangup inside TryExec() are legal in Asterisk but would need the
        # cursor's jump logic here; the contract does not use them: NOAPP, loudly in tests.)
        if m is None or inner not in KNOWN_APPS or inner in _NOT_UNDER_TRYEXEC:
            ch.variables["TRYSTATUS"] = "NOAPP"
            out.append(Broadcast(ev.varset(ch.snap, "TRYSTATUS", "NOAPP")))
            return False
        inner_step = replace(step, app=m.group(1), data=m.group(2) or "")
        blocked = self._execute(ch, inner_step, now, out)
        if blocked and ch.blocked_on in ("audiosocket", "agi"):
            ch.in_tryexec = True
        elif not ch.gone and not blocked:
            ch.variables["TRYSTATUS"] = "SUCCESS"
            out.append(Broadcast(ev.varset(ch.snap, "TRYSTATUS", "SUCCESS")))
        return blocked

    def _resume(self, ch: Channel, generation: int, now: float) -> list[Output]:
        if ch.gone or ch.generation != generation:
            return []
        ch.blocked_on = None
        ch.in_tryexec = False
        ch.generation += 1
        assert ch.cursor is not None
        step = ch.cursor.step(self._scope(ch))
        if step is None:
            return self._hangup_by_dialplan(ch, now)
        out: list[Output] = []
        if step.app.lower() == "playback":
            # app_playback sets PLAYBACKSTATUS as it returns (VarSet, recorded in amd/02 and
            # agi/01); the machine path reports it in UserEvent(PuenteVoicemail), from which
            # the attempt's disposition says whether the message was left.
            ch.variables["PLAYBACKSTATUS"] = "SUCCESS"
            out.append(Broadcast(ev.varset(ch.snap, "PLAYBACKSTATUS", "SUCCESS")))
        ch.cursor.advance(step)
        return out + self._run(ch, now)

    def media_ended(self, call_id: str, now: float, agi_status: str = "SUCCESS") -> list[Output]:
        """Puente ended AudioSocket()/AGI() on a live channel: the dialplan continues.

        ``agi_status``: ``SUCCESS`` (Puente closed the socket) or ``FAILURE`` (no connection).
        """
        ch = self.channels.get(call_id)
        if ch is None or ch.gone or ch.blocked_on not in ("audiosocket", "agi"):
            return []
        out: list[Output] = []
        if ch.blocked_on == "agi":
            ch.variables["AGISTATUS"] = agi_status
            out.append(Broadcast(ev.varset(ch.snap, "AGISTATUS", agi_status)))
        if ch.in_tryexec:  # AudioSocket()/AGI() returned 0
            ch.variables["TRYSTATUS"] = "SUCCESS"
            out.append(Broadcast(ev.varset(ch.snap, "TRYSTATUS", "SUCCESS")))
        return out + self._resume(ch, ch.generation, now)

    def media_failed(self, call_id: str, now: float) -> list[Output]:
        """``AudioSocket()`` failed on a live channel (no connection, a UUID it cannot parse,
        2 s without a frame either way, a frame kind it refuses): app_audiosocket returns -1.

        On its own that ends the PBX and the channel hangs up; inside ``TryExec()`` the dialplan
        goes on with ``TRYSTATUS=FAILED``.
        """
        ch = self.channels.get(call_id)
        if ch is None or ch.gone or ch.blocked_on != "audiosocket":
            return []
        if not ch.in_tryexec:
            return self.far_end_hangup(call_id, now)
        ch.variables["TRYSTATUS"] = "FAILED"
        out: list[Output] = [Broadcast(ev.varset(ch.snap, "TRYSTATUS", "FAILED"))]
        return out + self._resume(ch, ch.generation, now)

    def _agi_env(self, ch: Channel, url: str, args: list[str]) -> Pairs:
        # agi_language is the channel's language (its endpoint's, or what CHANNEL(language) set),
        # whatever PUENTE_LANG says; agi_callerid of an originated call is the Originate's
        # CallerID (agi/01), not the callee's number.
        callerid = ch.snap.caller_num
        return agi_environment(
            url,
            args,
            channel=ch.snap.name,
            language=ch.snap.language,
            uniqueid=ch.snap.uniqueid,
            callerid=callerid if callerid and callerid != "<unknown>" else "unknown",
            calleridname="unknown",
            dnid=ch.dnid,
            context=ch.snap.context,
            extension=ch.snap.exten,
            priority=ch.snap.priority,
            threadid=140000000000000 + hash(ch.id) % 1000000,
        )

    def _agi_builtins(self, ch: Channel) -> dict[str, str]:
        return {
            **self.globals,
            "CHANNEL": ch.snap.name,
            "UNIQUEID": ch.snap.uniqueid,
            "CALLERID(num)": ch.snap.caller_num,
            "CALLERID(name)": ch.snap.caller_name,
            "CHANNEL(language)": ch.snap.language,
            "EXTEN": ch.snap.exten,
            "CONTEXT": ch.snap.context,
        }

    # -- hangups ------------------------------------------------------------------------------
    def _hangup_by_dialplan(self, ch: Channel, now: float) -> list[Output]:
        if ch.gone:
            return []
        out: list[Output] = [Broadcast(ev.soft_hangup_request(ch.snap, 16))]
        return out + self._destroy(ch, 16, "Normal Clearing", None, now)

    def _far_end_leaves(self, ch: Channel, generation: int, now: float) -> list[Output]:
        """The callee hangs up (a human tired of waiting, a machine done)."""
        if ch.gone or ch.agent is not None:
            return []
        return self.far_end_hangup(ch.id, now)

    def far_end_hangup(self, call_id: str, now: float) -> list[Output]:
        ch = self.channels.get(call_id)
        if ch is None or ch.gone:
            return []
        out: list[Output] = []
        in_agi = ch.blocked_on == "agi"
        if ch.blocked_on in ("audiosocket", "agi"):
            out.append(EndMedia(ch.id))
        if ch.queue_entry is not None:
            out += self._queue_abandon(ch, now)
        if ch.agent is not None:
            out += self._agent_complete(ch, "caller", now)
        out.append(Broadcast(ev.hangup_request(ch.snap, 16)))
        if in_agi:  # AGI() returns on the dead channel (agi/02: after the HangupRequest)
            ch.variables["AGISTATUS"] = "HANGUP"
            out.append(Broadcast(ev.varset(ch.snap, "AGISTATUS", "HANGUP")))
        return out + self._destroy(ch, 16, "Normal Clearing", None, now)

    def _destroy(
        self, ch: Channel, cause: int, cause_txt: str, tech: int | None, now: float
    ) -> list[Output]:
        ch.gone = True
        ch.generation += 1
        out: list[Output] = []
        if ch.answered_at is not None:
            for k in (
                "RTPAUDIOQOS",
                "RTPAUDIOQOSJITTER",
                "RTPAUDIOQOSLOSS",
                "RTPAUDIOQOSRTT",
                "RTPAUDIOQOSMES",
            ):
                out.append(Broadcast(ev.varset(ch.snap, k, "")))
        out.append(Broadcast(ev.hangup(ch.snap, cause, cause_txt, tech)))
        if ch.device_used:
            out.append(Broadcast(ev.device_state_change(ch.device, "NOT_INUSE")))
        self.channels.pop(ch.id, None)
        self.by_name.pop(ch.snap.name, None)
        out.append(ChannelGone(ch.id, ch.variables))
        return out

    def redirect(
        self, call_id: str, context: str, exten: str, priority: str, now: float
    ) -> list[Output]:
        """AMI Redirect: leave whatever the channel waits on, run the dialplan from there."""
        ch = self.channels.get(call_id)
        if ch is None or ch.gone:
            return []
        out: list[Output] = []
        if ch.blocked_on in ("audiosocket", "agi"):
            out.append(EndMedia(ch.id))
        if ch.queue_entry is not None:
            out += self._queue_abandon(ch, now)
        ch.generation += 1
        ch.blocked_on = None
        ch.cursor = DialplanCursor(
            self.dialplan, context, exten, int(priority) if priority.isdigit() else 1
        )
        return out + self._run(ch, now)

    def add_member(
        self,
        queue: str,
        interface: str,
        name: str,
        now: float,
        *,
        paused: bool = False,
        wrapup_s: int = 0,
        reason: str = "",
    ) -> list[Output]:
        """A queue member logs in (AMI QueueAdd, or the simulator's own agent model)."""
        q = self.queue(queue)
        snap = ev.MemberSnapshot(
            queue=queue,
            name=name,
            interface=interface,
            state_interface=interface,
            login_time=self.unix_s(now),
            paused=int(paused),
            paused_reason=reason,
            wrapuptime=wrapup_s,
        )
        q.members[interface] = Member(snap)
        return [Broadcast(ev.member_event("QueueMemberAdded", snap)), *self._dispatch(q, now)]

    def dispatch(self, queue: str, now: float) -> list[Output]:
        """Offer waiting callers of ``queue`` to free members (after an add or an unpause)."""
        return self._dispatch(self.queue(queue), now)

    # -- queues -------------------------------------------------------------------------------
    def _queue_join(self, ch: Channel, step: Step, now: float, out: list[Output]) -> bool:
        args = split_args(step.data)
        q = self.queues.get(args[0].strip() if args else "")
        if q is None:  # not in queues.conf: Queue() returns at once (app_queue QUEUE_UNKNOWN)
            ch.variables["QUEUESTATUS"] = "UNKNOWN"
            out.append(Broadcast(ev.varset(ch.snap, "QUEUESTATUS", "UNKNOWN")))
            return False
        timeout = None
        if len(args) > 4 and args[4].strip():
            try:
                timeout = float(args[4])
            except ValueError:
                timeout = None
        entry = QueueEntry(ch, q.name, now, len(q.entries) + 1, now + timeout if timeout else None)
        q.entries.append(entry)
        ch.queue_entry = entry
        ch.queue_name = q.name
        ch.blocked_on = "queue"
        out.append(
            Broadcast(
                ev.queue_caller("QueueCallerJoin", ch.snap, q.name, entry.position, len(q.entries))
            )
        )
        if entry.timeout_at is not None:
            gen = ch.generation
            self._at(entry.timeout_at, lambda t, c=ch, g=gen: self._queue_timeout(c, g, t))
        out.extend(self._dispatch(q, now))
        return True

    def _available(self, q: Queue, now: float) -> list[Member]:
        free = [
            m
            for m in q.members.values()
            if not m.snap.paused and m.channel is None and m.busy_until <= now
        ]
        return sorted(free, key=lambda m: (m.snap.last_call, m.snap.name))

    def _dispatch(self, q: Queue, now: float) -> list[Output]:
        out: list[Output] = []
        for entry in list(q.entries):
            free = self._available(q, now)
            if not free:
                break
            out += self._ring_agent(q, entry, free[0], now)
        return out

    def _ring_agent(self, q: Queue, entry: QueueEntry, m: Member, now: float) -> list[Output]:
        ch = entry.channel
        m.channel = ch
        agent_snap = self._agent_snapshot(m, ch)
        out: list[Output] = [
            Broadcast(ev.channel_event("Newchannel", agent_snap)),
            Broadcast(
                ev.agent_event(
                    "AgentCalled", ch.snap, agent_snap, q.name, m.snap.interface, m.snap.name
                )
            ),
        ]
        m.snap.status = 6  # ringing
        m.ring = (now, agent_snap)
        out.append(Broadcast(ev.member_event("QueueMemberStatus", m.snap)))
        gen = ch.generation
        self._at(
            now + self.s.agent_ring_s,
            lambda t: self._agent_answers(q, entry, m, agent_snap, gen, t),
        )
        return out

    def _agent_snapshot(self, m: Member, caller: Channel) -> ev.ChannelSnapshot:
        seq = next(self._chan_seq)
        uid = f"{self.s.epoch_s}.{next(self._uid_seq)}"
        tech, _, resource = m.snap.interface.partition("/")
        return ev.ChannelSnapshot(
            name=f"{m.snap.interface}-{seq:08x}",
            uniqueid=uid,
            linkedid=caller.snap.linkedid,
            # A PJSIP phone's channel speaks its endpoint's language; another (Local/...) the
            # default one.
            language=self.s.language_of(resource) if tech.upper() == "PJSIP" else DEFAULT_LANGUAGE,
            context="puente-agents",
        )

    def _agent_answers(
        self,
        q: Queue,
        entry: QueueEntry,
        m: Member,
        agent_snap: ev.ChannelSnapshot,
        gen: int,
        now: float,
    ) -> list[Output]:
        ch = entry.channel
        if m.ring is None or m.ring[1] is not agent_snap:  # rung out already (ring no answer)
            return []
        m.ring = None
        if ch.gone or ch.generation != gen or entry not in q.entries:
            m.channel = None
            m.snap.status = 1
            return [
                Broadcast(ev.hangup(agent_snap, 16, "Normal Clearing")),
                Broadcast(ev.member_event("QueueMemberStatus", m.snap)),
            ]
        q.entries.remove(entry)
        for i, e in enumerate(q.entries, start=1):
            e.position = i
        ch.queue_entry = None
        ch.agent = m
        agent_snap.state = 6
        m.snap.status = 2  # in use
        m.snap.in_call = 1
        hold = int(now - entry.joined_at)
        out: list[Output] = [
            Broadcast(
                ev.queue_caller("QueueCallerLeave", ch.snap, q.name, entry.position, len(q.entries))
            ),
            Broadcast(
                ev.agent_event(
                    "AgentConnect",
                    ch.snap,
                    agent_snap,
                    q.name,
                    m.snap.interface,
                    m.snap.name,
                    ("HoldTime", str(hold)),
                    ("RingTime", str(int(self.s.agent_ring_s))),
                )
            ),
            Broadcast(ev.member_event("QueueMemberStatus", m.snap)),
        ]
        self._agent_legs[ch.id] = (agent_snap, now, hold)
        self._at(now + ch.fate.talk_s, lambda t: self._talk_done(ch, t))
        return out

    def _talk_done(self, ch: Channel, now: float) -> list[Output]:
        if ch.gone or ch.agent is None:
            return []
        return self.far_end_hangup(ch.id, now)

    def _agent_complete(self, ch: Channel, reason: str, now: float) -> list[Output]:
        m = ch.agent
        assert m is not None
        agent_snap, connected_at, hold = self._agent_legs.pop(ch.id)
        q = self.queue(ch.queue_name)
        ch.agent = None
        m.channel = None
        m.snap.in_call = 0
        m.snap.status = 1
        m.snap.calls_taken += 1
        m.snap.last_call = self.unix_s(now)
        wrapup = m.snap.wrapuptime or q.wrapuptime
        m.busy_until = now + wrapup
        q.completed += 1
        out: list[Output] = [
            Broadcast(
                ev.agent_event(
                    "AgentComplete",
                    ch.snap,
                    agent_snap,
                    q.name,
                    m.snap.interface,
                    m.snap.name,
                    ("HoldTime", str(hold)),
                    ("TalkTime", str(int(now - connected_at))),
                    ("Reason", reason),
                )
            ),
            Broadcast(ev.hangup(agent_snap, 16, "Normal Clearing")),
            Broadcast(ev.member_event("QueueMemberStatus", m.snap)),
        ]
        if wrapup:
            self._at(m.busy_until, lambda t, qq=q: self._dispatch(qq, t))
        else:
            out += self._dispatch(q, now)
        return out

    def _queue_timeout(self, ch: Channel, gen: int, now: float) -> list[Output]:
        if ch.gone or ch.generation != gen or ch.queue_entry is None:
            return []
        out = self._ring_no_answer(ch, now) + self._queue_abandon(ch, now)
        ch.variables["QUEUESTATUS"] = "TIMEOUT"
        return out + self._resume(ch, gen, now)

    def _ring_no_answer(self, ch: Channel, now: float) -> list[Output]:
        """The caller's time ran out while a member rang (app_queue's rna()): the member's
        leg hangs up, with AgentRingNoAnswer (RingTime in ms). The queues of asterisk_conf
        have autopause = no: the member is not paused."""
        entry = ch.queue_entry
        assert entry is not None
        q = self.queue(entry.queue)
        out: list[Output] = []
        for m in q.members.values():
            if m.channel is not ch or m.ring is None:
                continue
            rang_at, leg = m.ring
            m.ring = None
            m.channel = None
            m.snap.status = 1
            out += [
                Broadcast(
                    ev.agent_event(
                        "AgentRingNoAnswer", ch.snap, leg, q.name, m.snap.interface, m.snap.name,
                        ("RingTime", str(round((now - rang_at) * 1000))),
                    )
                ),
                Broadcast(ev.hangup(leg, 16, "Normal Clearing")),
                Broadcast(ev.member_event("QueueMemberStatus", m.snap)),
            ]  # fmt: skip
        return out

    def _queue_abandon(self, ch: Channel, now: float) -> list[Output]:
        entry = ch.queue_entry
        assert entry is not None
        q = self.queue(entry.queue)
        if entry in q.entries:
            q.entries.remove(entry)
        ch.queue_entry = None
        q.abandoned += 1
        return [
            Broadcast(
                ev.queue_caller_abandon(
                    ch.snap, q.name, entry.position, entry.position, int(now - entry.joined_at)
                )
            ),
            Broadcast(
                ev.queue_caller("QueueCallerLeave", ch.snap, q.name, entry.position, len(q.entries))
            ),
        ]


@dataclass(frozen=True)
class _Origin:
    conn: int
    action_id: str | None
    asynchronous: bool
    dial: str
    context: str
    exten: str
    priority: str


def _with_outcome(fate: CallFate, outcome: str) -> CallFate:
    """The same call with another outcome (trunk full, or ringing past the Originate Timeout)."""
    ring_s = min(fate.ring_s, 0.5) if outcome == "congestion" else fate.ring_s
    return replace(fate, outcome=outcome, wire=WIRE[outcome], ring_s=ring_s)


def _split_pjsip(resource: str) -> tuple[str, str]:
    """(number, endpoint) from ``+5215..@trunk`` or ``trunk/sip:+5215..@host``."""
    if "/" in resource:
        endpoint, _, uri = resource.partition("/")
        user = uri.split(":", 1)[-1].split("@", 1)[0]
        return user, endpoint
    number, _, endpoint = resource.partition("@")
    return number, endpoint or number


def _parse_callerid(text: str) -> tuple[str, str]:
    """``"Name" <num>`` -> (num, name)."""
    text = text.strip()
    if not text:
        return "", ""
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].partition("<")
        return num.strip(), name.strip().strip('"')
    return text, ""
