"""AMI actions of the simulated Asterisk, answered as Asterisk 22.10.1 answered them.

``handle_action`` takes one parsed action (ordered header pairs) from connection ``conn`` and
returns outputs from :class:`~pbx.sim._core.SimCore`. Login and Logoff are the adapter's (they
touch the connection itself); everything else is here. Messages are the recorded ones.
"""

from __future__ import annotations

from collections.abc import Callable

from pbx.sim import _events as ev
from pbx.sim._core import Broadcast, Output, Pairs, Reply, SimCore


def _fields(pairs: Pairs) -> dict[str, str]:
    """Case-insensitive single-valued view (the last value wins, as in astman_get_header)."""
    return {k.lower(): v for k, v in pairs}


def _resp(conn: int, action_id: str | None, response: str, *rest: tuple[str, str]) -> Reply:
    pairs: Pairs = [("Response", response)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    pairs.extend(rest)
    return Reply(conn, pairs)


def handle_action(core: SimCore, conn: int, pairs: Pairs, now: float) -> list[Output]:
    f = _fields(pairs)
    name = f.get("action", "")
    handler = _HANDLERS.get(name.lower())
    aid = f.get("actionid")
    if handler is None:
        return [
            _resp(
                conn,
                aid,
                "Error",
                (
                    "Message",
                    f"Invalid/unknown command: {name}. "
                    "Use Action: ListCommands to show available commands.",
                ),
            )
        ]
    return handler(core, conn, pairs, f, aid, now)


Handler = Callable[[SimCore, int, Pairs, dict[str, str], "str | None", float], list[Output]]


def _ping(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    return [_resp(conn, aid, "Success", ("Ping", "Pong"), ("Timestamp", f"{now:.6f}"))]


def _originate(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    variables: list[str] = []
    for k, v in pairs:
        if k.lower() == "variable":
            variables.extend(part for part in v.split(",") if part)
    return core.originate(conn, f, variables, now)


def _setvar(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    var, value = f.get("variable", ""), f.get("value", "")
    if not var:
        return [_resp(conn, aid, "Error", ("Message", "No variable specified"))]
    chan_name = f.get("channel")
    if not chan_name:
        core.globals[var] = value
        return [
            _resp(conn, aid, "Success", ("Message", "Variable Set")),
            Broadcast(ev.global_varset(var, value)),
        ]
    ch = core.by_name.get(chan_name)
    if ch is None or ch.gone:
        return [_resp(conn, aid, "Error", ("Message", "No such channel"))]
    ch.variables[var] = value
    return [
        _resp(conn, aid, "Success", ("Message", "Variable Set")),
        Broadcast(ev.varset(ch.snap, var, value)),
    ]


def _getvar(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    var = f.get("variable", "")
    chan_name = f.get("channel")
    if not chan_name:
        return [
            _resp(conn, aid, "Success", ("Variable", var), ("Value", core.globals.get(var, "")))
        ]
    ch = core.by_name.get(chan_name)
    if ch is None or ch.gone:
        return [_resp(conn, aid, "Error", ("Message", "No such channel"))]
    if var == "CHANNEL(state)":
        value = ch.snap.state_desc
    else:
        value = ch.variables.get(var, core.globals.get(var, ""))
    return [_resp(conn, aid, "Success", ("Variable", var), ("Value", value))]


def _hangup(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    ch = core.by_name.get(f.get("channel", ""))
    if ch is None or ch.gone:
        return [_resp(conn, aid, "Error", ("Message", "No such channel"))]
    return [
        _resp(conn, aid, "Success", ("Message", "Channel Hungup")),
        *core.far_end_hangup(ch.id, now),
    ]


def _redirect(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    name = f.get("channel", "")
    ch = core.by_name.get(name)
    if ch is None or ch.gone:
        return [_resp(conn, aid, "Error", ("Message", f"Channel does not exist: {name}"))]
    out: list[Output] = [_resp(conn, aid, "Success", ("Message", "Redirect successful"))]
    out += core.redirect(
        ch.id, f.get("context", ""), f.get("exten", "s"), f.get("priority", "1"), now
    )
    return out


def _list(
    conn: int, aid: str | None, message: str, items: list[Pairs], complete: str, extra: Pairs = ()
) -> list[Output]:
    out: list[Output] = [_resp(conn, aid, "Success", ("EventList", "start"), ("Message", message))]
    for item in items:
        out.append(Reply(conn, [*item, *([("ActionID", aid)] if aid is not None else [])]))
    done: Pairs = [("Event", complete)]
    if aid is not None:
        done.append(("ActionID", aid))
    done += [("EventList", "Complete"), ("ListItems", str(len(items))), *extra]
    out.append(Reply(conn, done))
    return out


def _core_show_channels(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    items = []
    for ch in core.channels.values():
        if ch.gone:
            continue
        app = {
            "audiosocket": "AudioSocket",
            "agi": "AGI",
            "queue": "Queue",
            "ring": "AppDial2",
        }.get(ch.blocked_on or "", "Wait")
        items.append(
            [
                ("Event", "CoreShowChannel"),
                *ch.snap.fields(),
                ("Application", app),
                ("ApplicationData", ""),
                ("Duration", _hms(now - ch.created_at)),
                ("BridgeId", ""),
            ]
        )
    return _list(conn, aid, "Channels will follow", items, "CoreShowChannelsComplete")


def _status(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    wanted = f.get("channel")
    items = []
    for ch in core.channels.values():
        if ch.gone or (wanted and ch.snap.name != wanted):
            continue
        items.append(
            [
                ("Event", "Status"),
                ("Privilege", "Call"),
                *ch.snap.fields(),
                ("Type", "PJSIP"),
                ("DNID", ""),
                ("EffectiveConnectedLineNum", ch.snap.connected_num),
                ("EffectiveConnectedLineName", ch.snap.connected_name),
                ("TimeToHangup", "0"),
                ("BridgeID", ""),
                ("Application", ch.blocked_on or ""),
                ("Data", ""),
                ("Nativeformats", "(ulaw)"),
                ("Readformat", "ulaw"),
                ("Readtrans", ""),
                ("Writeformat", "ulaw"),
                ("Writetrans", ""),
                ("Callgroup", "0"),
                ("Pickupgroup", "0"),
                ("Seconds", str(int(now - ch.created_at))),
            ]
        )
    if wanted and not items:
        return [_resp(conn, aid, "Error", ("Message", "No such channel"))]
    return _list(
        conn,
        aid,
        "Channel status will follow",
        items,
        "StatusComplete",
        [("Items", str(len(items)))],
    )


def _queue_summary(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    wanted = f.get("queue")
    items = []
    for q in core.queues.values():
        if wanted and q.name != wanted:
            continue
        logged = len(q.members)
        avail = len([m for m in q.members.values() if not m.snap.paused and m.channel is None])
        items.append(
            [
                ("Event", "QueueSummary"),
                ("Queue", q.name),
                ("LoggedIn", str(logged)),
                ("Available", str(avail)),
                ("Callers", str(len(q.entries))),
                ("HoldTime", "0"),
                ("TalkTime", "0"),
                (
                    "LongestHoldTime",
                    str(int(max((now - e.joined_at for e in q.entries), default=0))),
                ),
            ]
        )
    return _list(conn, aid, "Queue summary will follow", items, "QueueSummaryComplete")


def _queue_status(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    wanted = f.get("queue")
    items: list[Pairs] = []
    for q in core.queues.values():
        if wanted and q.name != wanted:
            continue
        items.append(
            [
                ("Event", "QueueParams"),
                ("Queue", q.name),
                ("Max", "0"),
                ("Strategy", "ringall"),
                ("Calls", str(len(q.entries))),
                ("Holdtime", "0"),
                ("TalkTime", "0"),
                ("Completed", str(q.completed)),
                ("Abandoned", str(q.abandoned)),
                ("ServiceLevel", "0"),
                ("ServicelevelPerf", "0.0"),
                ("ServicelevelPerf2", "0.0"),
                ("Weight", "0"),
            ]
        )
        for m in q.members.values():
            s = m.snap
            items.append(
                [
                    ("Event", "QueueMember"),
                    ("Queue", q.name),
                    ("Name", s.name),
                    ("Location", s.interface),
                    ("StateInterface", s.state_interface),
                    ("Membership", s.membership),
                    ("Penalty", str(s.penalty)),
                    ("CallsTaken", str(s.calls_taken)),
                    ("LastCall", str(s.last_call)),
                    ("LastPause", str(s.last_pause)),
                    ("LoginTime", str(s.login_time)),
                    ("InCall", str(s.in_call)),
                    ("Status", str(s.status)),
                    ("Paused", str(s.paused)),
                    ("PausedReason", s.paused_reason),
                    ("Wrapuptime", str(s.wrapuptime)),
                ]
            )
        for e in q.entries:
            c = e.channel.snap
            items.append(
                [
                    ("Event", "QueueEntry"),
                    ("Queue", q.name),
                    ("Position", str(e.position)),
                    ("Channel", c.name),
                    ("Uniqueid", c.uniqueid),
                    ("CallerIDNum", c.caller_num),
                    ("CallerIDName", c.caller_name),
                    ("ConnectedLineNum", c.connected_num),
                    ("ConnectedLineName", c.connected_name),
                    ("Wait", str(int(now - e.joined_at))),
                    ("Priority", "0"),
                ]
            )
    return _list(conn, aid, "Queue status will follow", items, "QueueStatusComplete")


def _queue_add(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    qname, iface = f.get("queue", ""), f.get("interface", "")
    if not qname or not iface:
        return [_resp(conn, aid, "Error", ("Message", "'Queue' and 'Interface' not set."))]
    q = core.queues.get(qname)
    if q is None:  # (app_queue: RES_NOSUCHQUEUE)
        return [
            _resp(
                conn, aid, "Error", ("Message", "Unable to add interface to queue: No such queue")
            )
        ]
    if iface in q.members:
        return [_resp(conn, aid, "Error", ("Message", "Unable to add interface: Already there"))]
    paused = f.get("paused", "false").lower() in ("true", "1", "yes")
    # (Asterisk 22's QueueAdd has no Wrapuptime: the member gets the queue's.)
    out = core.add_member(
        qname, iface, f.get("membername") or iface, now, paused=paused,
        reason=f.get("reason", "") if paused else "",
    )  # fmt: skip
    return [_resp(conn, aid, "Success", ("Message", "Added interface to queue")), *out]


def _queue_remove(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    q = core.queues.get(f.get("queue", ""))
    iface = f.get("interface", "")
    if q is None:
        message = "Unable to remove interface from queue: No such queue"
        return [_resp(conn, aid, "Error", ("Message", message))]
    if iface not in q.members:
        return [_resp(conn, aid, "Error", ("Message", "Unable to remove interface: Not there"))]
    m = q.members.pop(iface)
    return [
        _resp(conn, aid, "Success", ("Message", "Removed interface from queue")),
        Broadcast(ev.member_event("QueueMemberRemoved", m.snap)),
    ]


def _queue_pause(
    core: SimCore, conn: int, pairs: Pairs, f: dict[str, str], aid: str | None, now: float
) -> list[Output]:
    iface = f.get("interface", "")
    paused = f.get("paused", "").lower() in ("true", "1", "yes")
    qname = f.get("queue")
    targets = [
        (q, q.members[iface])
        for q in core.queues.values()
        if iface in q.members and (not qname or q.name == qname)
    ]
    if not targets:
        return [_resp(conn, aid, "Error", ("Message", "Interface not found"))]
    out: list[Output] = [
        _resp(
            conn,
            aid,
            "Success",
            (
                "Message",
                "Interface paused successfully" if paused else "Interface unpaused successfully",
            ),
        )
    ]
    for q, m in targets:
        m.snap.paused = int(paused)
        m.snap.paused_reason = f.get("reason", "") if paused else ""
        m.snap.last_pause = core.unix_s(now) if paused else m.snap.last_pause
        out.append(Broadcast(ev.member_event("QueueMemberPause", m.snap)))
        if not paused:
            out += core.dispatch(q.name, now)
    return out


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


_HANDLERS: dict[str, Handler] = {
    "ping": _ping,
    "originate": _originate,
    "setvar": _setvar,
    "getvar": _getvar,
    "hangup": _hangup,
    "redirect": _redirect,
    "coreshowchannels": _core_show_channels,
    "status": _status,
    "queuesummary": _queue_summary,
    "queuestatus": _queue_status,
    "queueadd": _queue_add,
    "queueremove": _queue_remove,
    "queuepause": _queue_pause,
}
