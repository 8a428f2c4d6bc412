"""AMI events as Asterisk 22 writes them: names, privileges and field order as recorded.

Every builder returns an ordered list of ``(header, value)`` pairs, ready for the AMI encoder.
The field lists were read off ``tests/data/asterisk-transcripts/*/*.s2c.txt`` (the most common
layout of each event); ``tests/pbx/sim/test_events.py`` checks them against the recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Pairs = list[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

PRIVILEGE = {
    "Newchannel": "call,all",
    "Newstate": "call,all",
    "Newexten": "dialplan,all",
    "VarSet": "dialplan,all",
    "DialBegin": "call,all",
    "DialState": "call,all",
    "DialEnd": "call,all",
    "OriginateResponse": "call,all",
    "HangupRequest": "call,all",
    "SoftHangupRequest": "call,all",
    "Hangup": "call,all",
    "DeviceStateChange": "call,all",
    "UserEvent": "user,all",
    "QueueCallerJoin": "agent,all",
    "QueueCallerLeave": "agent,all",
    "QueueCallerAbandon": "agent,all",
    "AgentCalled": "agent,all",
    "AgentConnect": "agent,all",
    "AgentComplete": "agent,all",
    "QueueMemberStatus": "agent,all",
    "QueueMemberPause": "agent,all",
    "QueueMemberAdded": "agent,all",
    "QueueMemberRemoved": "agent,all",
    "AGIExecStart": "agi,all",
    "AGIExecEnd": "agi,all",
    "FullyBooted": "system,all",
    "SuccessfulAuth": "security,all",
    "RequestBadFormat": "security,all",
}


@dataclass
class ChannelSnapshot:
    """The channel fields every call-class event carries (ast_manager_build_channel_state)."""

    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""
    context: str = ""
    exten: str = "s"
    priority: int = 1
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def state_desc(self) -> str:
        return STATE_DESC.get(self.state, "Unknown")

    def fields(self, prefix: str = "") -> Pairs:
        p = prefix
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", self.state_desc),
            (f"{p}CallerIDNum", self.caller_num),
            (f"{p}CallerIDName", self.caller_name),
            (f"{p}ConnectedLineNum", self.connected_num),
            (f"{p}ConnectedLineName", self.connected_name),
            (f"{p}Language", self.language),
            (f"{p}AccountCode", self.accountcode),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid),
        ]


def event(name: str, *parts: Pairs | tuple[str, str]) -> Pairs:
    out: Pairs = [("Event", name), ("Privilege", PRIVILEGE.get(name, "call,all"))]
    for part in parts:
        if isinstance(part, tuple):
            out.append(part)
        else:
            out.extend(part)
    return out


def channel_event(name: str, ch: ChannelSnapshot, *extra: tuple[str, str]) -> Pairs:
    return event(name, ch.fields(), *extra)


def newexten(ch: ChannelSnapshot, app: str, data: str) -> Pairs:
    return channel_event(
        "Newexten", ch, ("Extension", ch.exten), ("Application", app), ("AppData", data)
    )


def varset(ch: ChannelSnapshot, variable: str, value: str) -> Pairs:
    return channel_event("VarSet", ch, ("Variable", variable), ("Value", value))


def global_varset(variable: str, value: str) -> Pairs:
    """``Setvar`` without a channel sets a global: ``VarSet`` with ``Channel: none``."""
    return event(
        "VarSet",
        ("Channel", "none"),
        ("Uniqueid", "none"),
        ("Variable", variable),
        ("Value", value),
    )


def dial_begin(dest: ChannelSnapshot, dial_string: str) -> Pairs:
    """An Originate's dial: no caller channel, only ``Dest*`` fields (as recorded)."""
    return event("DialBegin", dest.fields("Dest"), ("DialString", dial_string))


def dial_state(dest: ChannelSnapshot, status: str) -> Pairs:
    return event("DialState", dest.fields("Dest"), ("DialStatus", status))


def dial_end(dest: ChannelSnapshot, status: str) -> Pairs:
    return event("DialEnd", dest.fields("Dest"), ("DialStatus", status))


def hangup_request(ch: ChannelSnapshot, cause: int, tech_cause: int | None = None) -> Pairs:
    extra = [("TechCause", str(tech_cause))] if tech_cause is not None else []
    return channel_event("HangupRequest", ch, ("Cause", str(cause)), *extra)


def soft_hangup_request(ch: ChannelSnapshot, cause: int) -> Pairs:
    return channel_event("SoftHangupRequest", ch, ("Cause", str(cause)))


def hangup(ch: ChannelSnapshot, cause: int, cause_txt: str, tech_cause: int | None = None) -> Pairs:
    extra = [("TechCause", str(tech_cause))] if tech_cause is not None else []
    return channel_event("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", cause_txt), *extra)


def originate_response(
    action_id: str | None,
    response: str,
    channel: str,
    context: str,
    exten: str,
    reason: int,
    uniqueid: str,
    caller_num: str,
    caller_name: str,
) -> Pairs:
    pairs: Pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    pairs += [
        ("Response", response),
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Reason", str(reason)),
        ("Uniqueid", uniqueid),
        ("CallerIDNum", caller_num),
        ("CallerIDName", caller_name),
    ]
    return pairs


def device_state_change(device: str, state: str) -> Pairs:
    return event("DeviceStateChange", ("Device", device), ("State", state))


def user_event(ch: ChannelSnapshot, user_event_name: str, body: Pairs) -> Pairs:
    return channel_event("UserEvent", ch, ("UserEvent", user_event_name), *body)


# -- queues ----------------------------------------------------------------------------------
@dataclass
class MemberSnapshot:
    queue: str
    name: str
    interface: str
    state_interface: str
    membership: str = "dynamic"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: int = 0
    status: int = 1  # AST_DEVICE_NOT_INUSE
    paused: int = 0
    paused_reason: str = ""
    ringinuse: int = 1
    wrapuptime: int = 0

    def fields(self) -> Pairs:
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", str(self.in_call)),
            ("Status", str(self.status)),
            ("Paused", str(self.paused)),
            ("PausedReason", self.paused_reason),
            ("Ringinuse", str(self.ringinuse)),
            ("Wrapuptime", str(self.wrapuptime)),
        ]


def member_event(name: str, m: MemberSnapshot) -> Pairs:
    """QueueMemberStatus, QueueMemberPause, QueueMemberAdded, QueueMemberRemoved."""
    return event(name, m.fields())


def queue_caller(name: str, ch: ChannelSnapshot, queue: str, position: int, count: int) -> Pairs:
    """QueueCallerJoin / QueueCallerLeave."""
    return channel_event(
        name, ch, ("Queue", queue), ("Position", str(position)), ("Count", str(count))
    )


def queue_caller_abandon(
    ch: ChannelSnapshot, queue: str, position: int, original_position: int, hold_s: int
) -> Pairs:
    return channel_event(
        "QueueCallerAbandon",
        ch,
        ("Queue", queue),
        ("Position", str(position)),
        ("OriginalPosition", str(original_position)),
        ("HoldTime", str(hold_s)),
    )


def agent_event(
    name: str,
    caller: ChannelSnapshot,
    agent: ChannelSnapshot,
    queue: str,
    interface: str,
    member_name: str,
    *extra: tuple[str, str],
) -> Pairs:
    """AgentCalled, AgentConnect (+HoldTime, RingTime), AgentComplete (+TalkTime, Reason)."""
    return event(
        name,
        caller.fields(),
        agent.fields("Dest"),
        ("Queue", queue),
        ("Interface", interface),
        ("MemberName", member_name),
        *extra,
    )
