"""asterisk_conf/ agrees with itself, with the simulator and with the code that talks to it."""

from __future__ import annotations

import re

import pytest

from ivr import ACTIONS, Catalog, load_flows
from pbx.agi import AgiSettings
from pbx.ami import AmiSettings
from pbx.audiosocket import AudioSocketSettings
from pbx.sim._core import KNOWN_APPS, SimSettings
from pbx.sim._dialplan import pattern_matches
from tests.asterisk_conf._conf import (
    CONF_DIR,
    ROOT,
    ConfError,
    ami_actions,
    dialplan_lines,
    event_passes,
    header_variables,
    load_conf,
    parse_conf,
    parse_eventfilter,
    python_files,
    string_literals,
    transcript_events,
)

# The write classes an action needs: ANY one of them (Asterisk checks `writeperm & authority`).
# From Asterisk 22's main/manager.c (__init_manager, ast_manager_register_xml_core) and
# apps/app_queue.c (load_module). An empty set: no class needed.
ACTION_CLASSES: dict[str, set[str]] = {
    "Login": set(),
    "Logoff": set(),
    "Ping": set(),
    "Challenge": set(),
    "Events": set(),
    "Originate": {"originate"},
    "Setvar": {"call"},
    "Getvar": {"call", "reporting"},
    "Hangup": {"system", "call"},
    "Redirect": {"call"},
    "Status": {"system", "call", "reporting"},
    "CoreShowChannels": {"system", "reporting"},
    "CoreStatus": {"system", "reporting"},
    "CoreSettings": {"system", "reporting"},
    "UserEvent": {"user"},
    "QueueStatus": set(),
    "QueueSummary": set(),
    "QueueAdd": {"agent"},
    "QueueRemove": {"agent"},
    "QueuePause": {"agent"},
    "QueuePenalty": {"agent"},
}
# Granted for the agent desktop and operators, even before code sends them.
PLANNED_ACTIONS = {"Getvar", "Status", "Hangup", "Redirect", "QueueAdd", "QueueRemove",
                   "QueuePause"}  # fmt: skip
# What a stolen AMI secret must never be able to do.
FORBIDDEN_CLASSES = {"all", "system", "command", "config", "dialplan"}
# Events that are answers to actions (EventList entries), not asynchronous events: neither read
# classes nor eventfilter lines apply to them. (`Status` entries carry `Privilege: Call`.)
LIST_EVENTS = {
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "QueueParams",
    "QueueMember",
    "QueueEntry",
    "QueueStatusComplete",
    "QueueSummary",
    "QueueSummaryComplete",
    "Status",
    "StatusComplete",
}

# Contexts the simulator only writes into events' Context field, never sends a call to.
SIM_LABELS = {
    # Agent channels' Context. A real agent channel shows its endpoint's context (pjsip.conf:
    # puente-ivr); Puente never reads it.
    "puente-agents": "agent channels' Context field",
}

EXTENSIONS_TEXT = (CONF_DIR / "extensions.conf").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def extensions():
    return load_conf("extensions.conf")


@pytest.fixture(scope="module")
def manager():
    return load_conf("manager.conf")


@pytest.fixture(scope="module")
def pjsip():
    return load_conf("pjsip.conf")


@pytest.fixture(scope="module")
def queues():
    return load_conf("queues.conf")


@pytest.fixture(scope="module")
def events():
    return transcript_events()


def _classes(text: str | None) -> set[str]:
    return {c.strip() for c in (text or "").split(",") if c.strip()}


# -- the reader itself ----------------------------------------------------------------------------
def test_reader_handles_templates_comments_and_arrows() -> None:
    conf = parse_conf(
        "; header\n[general]\nenabled = yes ; trailing\n"
        "[tmpl](!)\ntype = endpoint\nallow = ulaw\n"
        "[x](tmpl)\nallow = alaw\ncontext = a\\;b\n"
        "[x]\ntype = aor\n"
        "[ctx]\nexten => s,1,Set(A=B)\n same => n(l),NoOp(x = y)\n#include other.conf\n"
    )
    assert conf.section("general").get("enabled") == "yes"
    x = conf.section("x", type="endpoint")
    assert x.all("allow") == ["ulaw", "alaw"]
    assert x.get("context") == "a;b"
    assert conf.has("x", type="aor")
    lines = dialplan_lines(conf)
    assert [(ln.exten, ln.app, ln.args) for ln in lines] == [
        ("s", "Set", "A=B"),
        ("s", "NoOp", "x = y"),
    ]
    assert conf.directives == [(15, "#include other.conf")]
    with pytest.raises(ConfError, match="3"):
        parse_conf("[a]\nok = 1\nnonsense\n")


@pytest.mark.parametrize("name", sorted(p.name for p in CONF_DIR.glob("*.conf")))
def test_every_conf_file_parses(name: str) -> None:
    conf = load_conf(name)
    assert conf.sections
    for s in conf.sections:
        for t in s.templates:
            assert any(o.name == t and o.is_template for o in conf.sections), (s.name, t)


# -- extensions.conf ------------------------------------------------------------------------------
def test_contexts_and_extensions_the_dialplan_and_simulator_rely_on(extensions) -> None:
    lines = dialplan_lines(extensions)
    by_context: dict[str, set[str]] = {}
    for ln in lines:
        by_context.setdefault(ln.context, set()).add(ln.exten)
    assert {"s", "agent", "abandon", "machine", "agentless", "hangup"} <= by_context[
        "puente-outbound"
    ]
    assert {"_X.", "_+X."} <= by_context["puente-inbound"]
    assert by_context["puente-ivr"]
    # Every context named in Puente's code and the simulator ("puente-..." literals) exists.
    named = {
        s
        for s in string_literals(python_files((*_CODE, "pbx/sim")))
        if re.fullmatch(r"puente-[a-z]+", s)
    }
    assert {"puente-outbound", "puente-inbound"} <= named
    assert named - set(SIM_LABELS) <= set(by_context), named - set(by_context)
    # Every Goto/GotoIf target exists.
    for ln in lines:
        if ln.app not in ("Goto", "GotoIf"):
            continue
        for target in re.findall(r"(?:\?|:|^)((?:[a-z-]+,)?[a-z]+),1\b", ln.args):
            ctx, _, ext = target.rpartition(",")
            assert ext in by_context[ctx or ln.context], (ln.line, target)


_CODE = ("pbx/ami", "pbx/agi", "pbx/audiosocket", "dialer", "ivr", "puente")

# Asterisk 22's dialplan applications the contract may use, with the module that provides each
# (`core show application X`): a name Asterisk does not have hangs the call up at that priority
# ("No application 'X' for extension", main/pbx.c).
ASTERISK_APPS = {
    "AGI": "res_agi",
    "Answer": "core (pbx_builtins)",
    "AudioSocket": "app_audiosocket",
    "Goto": "core (pbx_builtins)",
    "GotoIf": "core (pbx_builtins)",
    "Hangup": "core (pbx_builtins)",
    "NoOp": "core (pbx_builtins)",
    "Playback": "app_playback",
    "Queue": "app_queue",
    "SayDigits": "core (pbx_builtins)",
    "Set": "core (pbx_builtins)",
    "TryExec": "app_exec",
    "UserEvent": "app_userevent",
    "Verbose": "app_verbose",
    "Wait": "core (pbx_builtins)",
}


def _apps(ln) -> list[tuple[str, str]]:
    """The application of a priority, and the one TryExec() runs, with their arguments."""
    apps = [(ln.app, ln.args)]
    if ln.app == "TryExec":
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)\((.*)\)", ln.args)
        assert m, f"extensions.conf:{ln.line}: TryExec needs App(args), got {ln.args!r}"
        apps.append((m.group(1), m.group(2)))
    return apps


def test_every_application_exists_in_asterisk_and_in_the_simulator(extensions) -> None:
    for ln in dialplan_lines(extensions):
        for app, _ in _apps(ln):
            assert app in ASTERISK_APPS, f"extensions.conf:{ln.line}: {app}() is no Asterisk app"
            assert app.lower() in KNOWN_APPS, f"extensions.conf:{ln.line}: sim lacks {app}()"


def test_audiosocket_failures_keep_the_answered_person_in_the_dialplan(extensions) -> None:
    """AudioSocket() returns -1 when it cannot connect, cannot parse the UUID, has no frame
    either way for 2 s or gets a frame kind it refuses (apps/app_audiosocket.c); a -1 ends the
    PBX and hangs the answered person up. Only TryExec() turns it into TRYSTATUS=FAILED and the
    next priority, where the NOTSURE set before it sends the person to an agent."""
    lines = dialplan_lines(extensions)
    uses = [(ln, args) for ln in lines for app, args in _apps(ln)[1:] if app == "AudioSocket"]
    bare = [ln.line for ln in lines if ln.app == "AudioSocket"]
    assert not bare, f"extensions.conf:{bare}: AudioSocket() outside TryExec()"
    assert len(uses) == 1
    ln, args = uses[0]
    assert ln.app == "TryExec"
    # AudioSocket(uuid,host:port): the attempt id (a UUID, Originate ChannelId) first.
    assert args == "${PUENTE_ATTEMPT},${PUENTE_AUDIOSOCKET}"
    before = [x for x in lines if x.context == ln.context and x.exten == ln.exten
              and x.line < ln.line]  # fmt: skip
    assert ("Set", "AMDSTATUS=NOTSURE") in [(x.app, x.args) for x in before]


def test_every_header_variable_is_used_and_every_originate_variable_is_documented() -> None:
    documented = header_variables(EXTENSIONS_TEXT)
    assert {"PUENTE_ATTEMPT", "AMDSTATUS", "AMDCAUSE", "PUENTE_QUEUE_TIMEOUT_S"} <= set(documented)
    body = "\n".join(ln for ln in EXTENSIONS_TEXT.splitlines() if not ln.startswith(";"))
    literals = string_literals(python_files(_CODE))
    for var in documented:
        in_dialplan = re.search(r"\$\{" + var + r"[}:]", body) is not None
        read_by_puente = var in literals  # e.g. PUENTE_LANG: the IVR reads it over FastAGI
        assert in_dialplan or read_by_puente, f"{var} is documented but nothing uses it"
    # What the dialer puts in the Originate's Variable: headers is documented.
    originate_vars = {
        m.group(1)
        for s in string_literals(python_files(("dialer",)))
        if (m := re.fullmatch(r"(PUENTE_[A-Z_]+)=", s))
    }
    assert "PUENTE_ATTEMPT" in originate_vars
    assert originate_vars <= set(documented), originate_vars - set(documented)
    # What AMD sets over AMI (Setvar) is documented too.
    amd_literals = string_literals([ROOT / "dialer" / "amd" / "_call.py"])
    for var in ("AMDSTATUS", "AMDCAUSE", "PUENTE_QUEUE_TIMEOUT_S"):
        assert var in amd_literals
        assert var in documented


def test_agi_scripts_are_entries_of_the_shipped_flows(extensions) -> None:
    flows = load_flows(None, Catalog.load(), ACTIONS)
    entries = {e for f in flows.values() for e in f.entries}
    scripts = []
    for ln in dialplan_lines(extensions):
        if ln.app == "AGI":
            m = re.match(r"agi://\$\{PUENTE_AGI\}/([^,]+)", ln.args)
            assert m, f"extensions.conf:{ln.line}: AGI not through ${{PUENTE_AGI}}: {ln.args}"
            scripts.append((ln.context, m.group(1)))
    names = {s for _, s in scripts}
    assert {"abandon-save", "inbound", "${PUENTE_FLOW}", "${EXTEN}"} <= names
    for _, name in scripts:
        if not name.startswith("${"):
            assert name in entries, f"AGI script {name!r} is no flow's entry ({sorted(entries)})"
    # ${EXTEN} in [puente-ivr]: every entry can be reached by name through its pattern, and so
    # can every agentless flow (${PUENTE_FLOW} names an entry too).
    ivr_patterns = {ln.exten for ln in dialplan_lines(extensions) if ln.context == "puente-ivr"}
    for entry in entries:
        assert any(pattern_matches(p, entry) for p in ivr_patterns), entry


def test_globals_point_at_puentes_default_ports(extensions) -> None:
    g = extensions.section("globals")
    assert g.get("PUENTE_AGI") == f"127.0.0.1:{AgiSettings().port}" == "127.0.0.1:4573"
    assert g.get("PUENTE_AUDIOSOCKET") == f"127.0.0.1:{AudioSocketSettings().port}"
    assert AudioSocketSettings().port == 9092
    sim = SimSettings()
    assert (sim.agi_default, sim.audiosocket_default) == (
        g.get("PUENTE_AGI"),
        g.get("PUENTE_AUDIOSOCKET"),
    )
    assert g.get("PUENTE_INBOUND_QUEUE") == "collections"
    assert g.get("PUENTE_QUEUE_TIMEOUT_S") == "2"


# -- manager.conf ---------------------------------------------------------------------------------
def test_ami_listens_on_loopback_for_a_least_privilege_user(manager) -> None:
    general = manager.section("general")
    assert general.get("enabled") == "yes"
    assert general.get("bindaddr") == "127.0.0.1"
    assert int(general.get("port")) == AmiSettings().port == 5038
    user = manager.section(AmiSettings().username)
    assert "CHANGE_ME" in user.get("secret"), "ship a placeholder, never a real secret"
    assert user.all("deny") == ["0.0.0.0/0.0.0.0"]
    assert user.all("permit") == ["127.0.0.1/255.255.255.255"]
    read, write = _classes(user.get("read")), _classes(user.get("write"))
    assert not (read | write) & FORBIDDEN_CLASSES, (read | write) & FORBIDDEN_CLASSES
    assert write == {"originate", "call", "reporting", "agent"}
    assert read == {"call", "agent", "user"}


def test_the_ami_user_may_send_every_action_puente_sends(manager) -> None:
    sent = ami_actions(python_files())
    # The scanner works: these are certainly sent (client, dialer, AMD).
    assert {"Login", "Logoff", "Ping", "Originate", "Setvar", "CoreShowChannels",
            "QueueStatus"} <= set(sent)  # fmt: skip
    write = _classes(manager.section("puente").get("write"))
    for action in sorted(set(sent) | PLANNED_ACTIONS):
        assert action in ACTION_CLASSES, (
            f"{action} (sent from {sent.get(action)}): add its write class from Asterisk's "
            "source to ACTION_CLASSES and grant it in manager.conf"
        )
        needed = ACTION_CLASSES[action]
        assert not needed or needed & write, f"{action} needs one of {sorted(needed)}"


def _handled_events(events: dict[str, list[str]]) -> set[str]:
    """Asynchronous AMI events Puente's code names (string literals equal to an event name)."""
    async_events = {name for name in events if name not in LIST_EVENTS}
    return string_literals(python_files()) & async_events


def test_read_classes_and_eventfilter_keep_every_event_puente_handles(manager, events) -> None:
    handled = _handled_events(events)
    assert {"OriginateResponse", "Newchannel", "Hangup", "DialEnd", "UserEvent", "AgentConnect",
            "AgentComplete", "QueueMemberStatus", "QueueMemberPause"} <= handled  # fmt: skip
    user = manager.section("puente")
    read = _classes(user.get("read"))
    filters = [parse_eventfilter(e.key, e.value) for e in user.entries
               if e.key.startswith("eventfilter")]  # fmt: skip
    assert filters
    for name in sorted(handled):
        if name == "UserEvent":
            continue  # only Puente's own, below
        for payload in events[name]:
            privilege = dict(h.split(": ", 1) for h in payload.split("\r\n") if ": " in h)
            cls = privilege["Privilege"].split(",")[0]
            assert cls in read, f"{name} is class {cls!r}: not in read = {sorted(read)}"
            assert event_passes(filters, payload), f"eventfilter drops {name}"
    # Every UserEvent the dialplan emits reaches Puente, with the user class.
    assert "user" in read
    emitted = {m.group(1) for m in re.finditer(r"UserEvent\((\w+),", EXTENSIONS_TEXT)}
    assert emitted == {"PuenteAMD", "PuenteQueueResult", "PuenteQueueWait", "PuenteVoicemail"}
    for name in emitted:
        payload = f"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: {name}\r\nAttempt: x\r\n"
        assert event_passes(filters, payload), name
        assert name in string_literals(python_files(("dialer",))), f"nobody handles {name}"


def test_the_noisy_events_puente_ignores_are_not_sent(manager, events) -> None:
    user = manager.section("puente")
    read = _classes(user.get("read"))
    filters = [parse_eventfilter(e.key, e.value) for e in user.entries
               if e.key.startswith("eventfilter")]  # fmt: skip
    handled = _handled_events(events)
    noisy = ("VarSet", "Newexten", "Newstate", "DeviceStateChange", "NewCallerid", "DialBegin",
             "DialState", "BridgeEnter", "HangupRequest", "AGIExecStart")  # fmt: skip
    for name in noisy:
        assert name not in handled
        payload = events[name][0]
        cls = re.search(r"Privilege: (\w+)", payload).group(1)
        assert cls not in read or not event_passes(filters, payload), name
    # Another program's UserEvent (the rig's AMDResult) is filtered out too.
    foreign = "Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: AMDResult\r\n"
    assert not event_passes(filters, foreign)


def test_eventfilter_reader_follows_asterisk_semantics() -> None:
    newchannel = "Event: Newchannel\r\nChannel: Local/x-1;1\r\n"
    hangup = "Event: Hangup\r\nChannel: PJSIP/trunk-1\r\n"
    inc = parse_eventfilter("eventfilter(action(include),name(Newchannel))", "")
    exc = parse_eventfilter(
        "eventfilter(action(exclude),header(Channel),method(starts_with))", "Local/"
    )
    assert event_passes([], hangup)
    assert event_passes([inc], newchannel)
    assert not event_passes([inc], hangup)
    assert not event_passes([inc, exc], newchannel)
    assert event_passes([exc], hangup)
    legacy = parse_eventfilter("eventfilter", "!Channel: Local/")
    assert not event_passes([legacy], newchannel)
    assert event_passes([legacy], hangup)
    with pytest.raises(ConfError):
        parse_eventfilter("eventfilter(action(maybe))", "")


# -- queues.conf ----------------------------------------------------------------------------------
def test_the_default_queue_exists_and_decides_within_the_two_second_rule(
    queues, extensions
) -> None:
    migration = (ROOT / "db" / "migrations" / "0001_core.sql").read_text(encoding="utf-8")
    default = re.search(r"queue_name\s+text NOT NULL DEFAULT '([^']+)'", migration).group(1)
    assert default == "collections"
    assert extensions.section("globals").get("PUENTE_INBOUND_QUEUE") == default
    q = queues.section(default)
    budget_s = int(extensions.section("globals").get("PUENTE_QUEUE_TIMEOUT_S"))
    assert int(q.get("timeout")) <= budget_s
    assert q.get("timeoutpriority", "app") == "app"  # the Queue() timeout argument wins
    assert int(q.get("retry")) >= 1
    for key in ("announce-frequency", "periodic-announce-frequency", "min-announce-frequency"):
        assert q.get(key) == "0", key
    assert q.get("announce-position") == "no"
    assert q.get("announce-holdtime") == "no"
    assert q.get("ringinuse") == "no"
    for key in ("joinempty", "leavewhenempty"):
        factors = _classes(q.get(key))
        # Members who cannot answer within seconds make the queue "empty" at once...
        assert {"paused", "unavailable", "invalid"} <= factors, key
        # ...but never one who is about to be free: the pacer dialed for exactly that agent.
        assert not factors & {"inuse", "ringing", "wrapup"}, key
    # Removed in Asterisk 12 (the events are always sent): setting them logs a warning.
    for s in queues.sections:
        assert s.get("eventwhencalled") is None
        assert s.get("eventmemberstatus") is None
    # Every status but CONTINUE (the call reached an agent) goes to the safe-harbor message:
    # TIMEOUT, JOINEMPTY, LEAVEEMPTY, FULL, and UNKNOWN for a queue queues.conf lacks.
    statuses = re.findall(r'"\$\{QUEUESTATUS\}" (!?=) "(\w+)"\]\?(\w+),1', EXTENSIONS_TEXT)
    assert statuses == [("!=", "CONTINUE", "abandon")]
    # Nothing else ever sends it to the queue without that (auto-pause is Puente's own).
    assert q.get("autopause") == "no"


# -- pjsip.conf -----------------------------------------------------------------------------------
def test_the_trunk_endpoint_matches_the_dial_strings_puente_builds(pjsip, extensions) -> None:
    migration = (ROOT / "db" / "migrations" / "0001_core.sql").read_text(encoding="utf-8")
    default_trunk = re.search(r"trunk\s+text NOT NULL DEFAULT '([^']+)'", migration).group(1)
    tech, _, endpoint = default_trunk.partition("/")
    assert (tech, endpoint) == ("PJSIP", SimSettings().trunk_endpoint) == ("PJSIP", "trunk")
    trunk = pjsip.section(endpoint, type="endpoint")
    assert trunk.get("context") == "puente-inbound"
    assert trunk.get("direct_media") == "no"  # AudioSocket and the queue need the media
    contexts = {s.name for s in extensions.sections}
    assert trunk.get("context") in contexts
    aor = pjsip.section(trunk.get("aors"), type="aor")
    assert aor.get("contact", "").startswith("sip:")
    if trunk.get("outbound_auth"):
        assert pjsip.has(trunk.get("outbound_auth"), type="auth")
    identify = [s for s in pjsip.of_type("identify") if s.get("endpoint") == endpoint]
    assert identify
    assert all(s.all("match") for s in identify)


def test_agent_endpoints_match_the_agents_interfaces(pjsip, extensions) -> None:
    migration = (ROOT / "db" / "migrations" / "0001_core.sql").read_text(encoding="utf-8")
    assert "e.g. PJSIP/agent101" in migration
    contexts = {s.name for s in extensions.sections}
    for name in ("agent101", "agent102"):
        ep = pjsip.section(name, type="endpoint")
        assert ep.get("context") in contexts
        assert ep.get("direct_media") == "no"
        assert pjsip.section(ep.get("aors"), type="aor").get("max_contacts") == "1"
        assert (
            pjsip.section(ep.get("auth"), type="auth").get("password", "").startswith("CHANGE_ME")
        )
    transports = {s.name for s in pjsip.of_type("transport")}
    for ep in pjsip.of_type("endpoint"):
        assert ep.get("transport") in transports, ep.name
    # The queue's commented static members, if enabled, name the same interfaces.
    queues_text = (CONF_DIR / "queues.conf").read_text(encoding="utf-8")
    assert ";member => PJSIP/agent101," in queues_text
