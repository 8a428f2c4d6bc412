"""IVR flows: the YAML format, loading and validation (pure; reading the file is the only I/O).

A flow file holds named states. Each state may ``play`` prompts first, then does exactly one
thing: ``next`` (go on), ``collect`` (read keys, then branch on ``keys`` or go ``next``),
``action`` (run a named action and branch on its ``results``), ``switch`` (branch on a data
value), ``transfer`` (to an agent, with the IVR context attached) or ``end`` (an outcome).

::

    flow: collections
    languages: [es, en]
    entries: {inbound: welcome, abandon-save: safe_harbor}   # script name -> first state
    agent: to_agent          # where the agent key leads, from any collect
    agent_key: "0"
    on_error: apology        # an action that failed, a value that is missing
    states:
      welcome:
        play: [welcome]
        next: ask_account
      ask_account:
        play: [enter_account]
        collect: {into: account, min_digits: 4, max_digits: 16, invalid: invalid_entry}
        next: find_account
        fail: apology

Play items: a prompt id (``welcome``); ``{prompt_var: key}`` (the prompt id is a data value);
``{number: key}``, ``{digits: key}``, ``{money: key}`` (cents, in the call's currency),
``{date: key}`` (ISO date). Loading refuses, with file and line: unknown keys, references to
undefined states, prompts or actions, prompts without a text in every language of the flow,
action results left unhandled, states no entry reaches, states from which no end is reachable,
and (through :mod:`puente.strict_yaml`) duplicate keys and YAML 1.1 booleans such as ``yes:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr._exceptions import FlowError
from puente.strict_yaml import StrictYamlError, load_strict

FLOW_DIR = Path(__file__).with_name("flows")
LANGUAGES = ("es", "en")
SAY_KINDS = ("prompt_var", "number", "digits", "money", "date")
KINDS = ("next", "collect", "action", "switch", "transfer", "end")
_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
_ENTRY = re.compile(r"^[a-z][a-z0-9-]*\Z")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOP = {"flow", "description", "languages", "entries", "agent", "agent_key", "on_error", "states"}
_STATE_KEYS = {
    "play",
    "next",
    "collect",
    "keys",
    "fail",
    "action",
    "args",
    "results",
    "switch",
    "cases",
    "default",
    "transfer",
    "end",
    "note",
}
_COLLECT_KEYS = {
    "into",
    "min_digits",
    "max_digits",
    "timeout_ms",
    "retries",
    "invalid",
    "noinput",
    "secret",
    "no_agent_key",
}
# Actions the machine runs itself (no I/O): their outcomes.
BUILTIN_ACTIONS: dict[str, tuple[str, ...]] = {"set_language": ("ok",), "set": ("ok",)}


@dataclass(frozen=True)
class PlayItem:
    kind: str  # "prompt" or one of SAY_KINDS
    value: str  # the prompt id or the data key


@dataclass(frozen=True)
class CollectSpec:
    into: str
    min_digits: int = 1
    max_digits: int = 1
    timeout_ms: int = 5000
    retries: int = 2  # tries after the first
    invalid: str | None = None  # prompt for a wrong entry
    noinput: str | None = None  # prompt when nothing was pressed
    secret: bool = False  # card data: never in the data, the trail or a log
    no_agent_key: bool = False  # the agent key is an ordinary digit here (e.g. a card number)


@dataclass(frozen=True)
class State:
    name: str
    line: int
    kind: str
    play: tuple[PlayItem, ...] = ()
    next: str | None = None
    collect: CollectSpec | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    fail: str | None = None
    action: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    results: Mapping[str, str] = field(default_factory=dict)
    switch: str | None = None
    cases: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None
    transfer: str | None = None
    end: str | None = None

    def refs(self) -> list[tuple[str, str]]:
        """(key path within the state, target state) of every way out."""
        out = [(k, t) for k, t in (("next", self.next), ("fail", self.fail)) if t]
        out += [("default", self.default)] if self.default else []
        for name, mapping in (
            ("keys", self.keys),
            ("results", self.results),
            ("cases", self.cases),
        ):
            out += [(f"{name}.{k}", t) for k, t in mapping.items()]
        return out

    def targets(self) -> list[str]:
        return [t for _, t in self.refs()]


@dataclass(frozen=True)
class Flow:
    name: str
    path: str
    languages: tuple[str, ...]
    entries: Mapping[str, str]
    agent: str | None
    agent_key: str
    on_error: str
    states: Mapping[str, State]


@dataclass(frozen=True)
class Catalog:
    """Prompt texts by id and language; the sound file is ``puente/<lang>/<id>``."""

    texts: Mapping[str, Mapping[str, str]]
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def files(self, prompt: str, language: str) -> tuple[str, ...]:
        return (f"puente/{language}/{prompt}", *self.fallbacks.get(prompt, ()))

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        path = path or Path(__file__).with_name("prompts.yaml")
        try:
            raw = load_strict(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise FlowError(f"{path}: not UTF-8 text ({_utf8_problem(e)})") from e
        except OSError as e:
            raise FlowError(f"{path}: cannot read: {e.strerror or e}") from e
        except StrictYamlError as e:
            raise FlowError(f"{path}: {e}") from e
        if not isinstance(raw, dict):
            raise FlowError(f"{path}: expected a mapping of prompt ids")
        texts: dict[str, dict[str, str]] = {}
        fallbacks: dict[str, tuple[str, ...]] = {}
        for pid, entry in raw.items():
            if not isinstance(pid, str) or not _NAME.match(pid) or not isinstance(entry, dict):
                raise FlowError(f"{path}: prompt {pid!r}: expected an id and a mapping")
            fb = entry.get("fallback", [])
            fb = fb if isinstance(fb, list) else [fb]
            if not all(isinstance(f, str) and f for f in fb):
                raise FlowError(f"{path}: prompt {pid!r}: fallback: expected sound file names")
            fallbacks[pid] = tuple(fb)
            texts[pid] = {}
            for lang, text in entry.items():
                if lang == "fallback":
                    continue
                if lang not in LANGUAGES:
                    raise FlowError(f"{path}: prompt {pid!r}: unknown language {lang!r}")
                if not isinstance(text, str) or not text.strip():
                    raise FlowError(
                        f"{path}: prompt {pid!r}: {lang}: expected a text, got {text!r}"
                    )
                texts[pid][lang] = text
        return cls(texts, fallbacks)


class _Problems:
    def __init__(self, path: str, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines
        self.items: list[tuple[int, str]] = []

    def line(self, key: str) -> int:
        while key and key not in self.lines:
            key = key.rpartition(".")[0]
        return self.lines.get(key, 1)

    def add(self, key: str, message: str) -> None:
        self.items.append((self.line(key), message))

    def raise_if_any(self) -> None:
        if self.items:
            text = "\n".join(f"{self.path}:{n}: {m}" for n, m in sorted(set(self.items)))
            raise FlowError(text)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _utf8_problem(e: UnicodeDecodeError) -> str:
    return f"byte 0x{e.object[e.start]:02x} at offset {e.start}"


def _name_of(raw: Mapping[str, Any], key: str, where: str, what: str, p: _Problems) -> str | None:
    """``raw[key]`` when it is a non-empty string; anything else present is reported."""
    if key not in raw:
        return None
    v = raw[key]
    # (A name goes to the dialplan, e.g. an end's outcome in a channel variable: a space or a
    # newline there failed the call at run time, not the flow at validation.)
    if isinstance(v, str) and _TOKEN.fullmatch(v):
        return v
    p.add(f"{where}.{key}" if where else key, f"{what}, got {v!r}")
    return None


def _play(raw: Any, where: str, p: _Problems) -> tuple[PlayItem, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[PlayItem] = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item:
            out.append(PlayItem("prompt", item))
        elif isinstance(item, dict) and len(item) == 1:
            ((kind, value),) = item.items()
            if kind not in SAY_KINDS or not isinstance(value, str):
                p.add(where, f"{where}[{i}]: unknown play item {item!r} (use one of {SAY_KINDS})")
            else:
                out.append(PlayItem(kind, value))
        else:
            p.add(where, f"{where}[{i}]: a play item is a prompt id or one {SAY_KINDS} key")
    return tuple(out)


def _collect(raw: Any, where: str, p: _Problems) -> CollectSpec | None:
    if not isinstance(raw, dict):
        p.add(where, f"{where}: expected a mapping")
        return None
    for k in set(raw) - _COLLECT_KEYS:
        p.add(f"{where}.{k}", f"{where}: unknown key {k!r}")
    into = raw.get("into")
    if not isinstance(into, str) or not _NAME.match(into):
        got = "" if into is None else f" (lower_case_with_underscores), got {into!r}"
        p.add(f"{where}.into", f"{where}.into: a data name is required{got}")
        return None
    ints = {}
    for k, lo, hi, dflt in (
        ("min_digits", 0, 32, 1),
        ("max_digits", 1, 32, 1),
        ("timeout_ms", 500, 60000, 5000),
        ("retries", 0, 5, 2),
    ):
        v = raw.get(k, dflt)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            p.add(f"{where}.{k}", f"{where}.{k}: expected an integer {lo}-{hi}, got {v!r}")
            v = dflt
        ints[k] = v
    if ints["min_digits"] > ints["max_digits"]:
        p.add(where, f"{where}: min_digits is over max_digits")
    flags = {}
    for k in ("secret", "no_agent_key"):
        v = raw.get(k, False)
        if not isinstance(v, bool):
            p.add(f"{where}.{k}", f"{where}.{k}: expected true or false")
        flags[k] = bool(v)
    return CollectSpec(
        into=into,
        invalid=_name_of(raw, "invalid", where, f"{where}.invalid: expected a prompt id", p),
        noinput=_name_of(raw, "noinput", where, f"{where}.noinput: expected a prompt id", p),
        **ints,
        **flags,
    )


def _map(raw: Any, where: str, p: _Problems) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        p.add(where, f"{where}: expected a mapping of values to state names")
        return {}
    return {str(k): v for k, v in raw.items()}


def _state(name: Any, raw: Any, p: _Problems) -> State | None:
    where = f"states.{name}"
    line = p.line(where)
    if not isinstance(name, str) or not _NAME.match(name):
        p.add(where, f"state {name!r}: names are lower_case_with_underscores")
    if not isinstance(raw, dict):
        p.add(where, f"state {name!r}: expected a mapping")
        return None
    for k in set(raw) - _STATE_KEYS:
        p.add(f"{where}.{k}", f"state {name!r}: unknown key {k!r}")
    primary = [k for k in ("collect", "action", "switch", "transfer", "end") if k in raw]
    if not primary:
        primary = ["next"] if "next" in raw else []
    if len(primary) != 1:
        p.add(where, f"state {name!r}: needs exactly one of {', '.join(KINDS)}; has {primary}")
        return None
    kind = primary[0]
    args = raw.get("args", {})
    if not isinstance(args, dict):
        p.add(f"{where}.args", f"state {name!r}: args must be a mapping")
        args = {}
    for k, v in args.items():
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            p.add(
                f"{where}.args", f"state {name!r}: args.{k}: expected a text or a number, got {v!r}"
            )

    def named(key: str, what: str) -> str | None:
        return _name_of(raw, key, where, f"state {name!r}: {key} {what}", p)

    state_name = "expects a state name"
    return State(
        name=name,
        line=line,
        kind=kind,
        play=_play(raw["play"], f"{where}.play", p) if "play" in raw else (),
        next=named("next", state_name),
        collect=_collect(raw["collect"], f"{where}.collect", p) if kind == "collect" else None,
        keys=_map(raw.get("keys"), f"{where}.keys", p),
        fail=named("fail", state_name),
        action=named("action", "needs an action name"),
        args={str(k): str(v) for k, v in args.items()},
        results=_map(raw.get("results"), f"{where}.results", p),
        switch=named("switch", "needs a data name"),
        cases=_map(raw.get("cases"), f"{where}.cases", p),
        default=named("default", state_name),
        transfer=named("transfer", "needs a target ('agent')"),
        end=named("end", "needs an outcome name"),
    )


def _check_state(
    s: State, flow: Flow, catalog: Catalog, actions: Mapping[str, tuple[str, ...]], p: _Problems
) -> None:
    where = f"states.{s.name}"
    for key, t in s.refs():
        if t not in flow.states:
            p.add(f"{where}.{key}", f"state {s.name!r}: goes to undefined state {t!r}")
    if s.kind == "collect":
        if s.collect is None:  # reported by _collect
            pass
        elif not s.keys and not s.next:
            p.add(where, f"state {s.name!r}: a collect needs keys or next")
        if s.collect is not None:
            for k in s.keys:
                if not re.fullmatch(r"[0-9*#]+", k) or len(k) > s.collect.max_digits:
                    p.add(f"{where}.keys", f"state {s.name!r}: key {k!r} cannot be entered here")
            if s.collect.secret and (s.keys or not s.collect.no_agent_key):
                p.add(where, f"state {s.name!r}: a secret collect takes no keys and no agent key")
    elif s.kind == "action" and s.action is None:
        pass  # reported by _state
    elif s.kind == "action":
        declared = BUILTIN_ACTIONS.get(s.action) or actions.get(s.action)
        if declared is None:
            p.add(f"{where}.action", f"state {s.name!r}: undefined action {s.action!r}")
        else:
            for r in set(s.results) - set(declared):
                p.add(f"{where}.results", f"state {s.name!r}: {s.action} has no result {r!r}")
            for r in set(declared) - set(s.results) - {"error"}:
                p.add(f"{where}.results", f"state {s.name!r}: result {r!r} of {s.action} unhandled")
        if s.action == "set_language" and s.args.get("language") not in flow.languages:
            p.add(f"{where}.args", f"state {s.name!r}: set_language needs one of {flow.languages}")
    elif s.kind == "switch" and s.switch is None:
        pass  # reported by _state
    elif s.kind == "switch" and (not s.cases or not s.default):
        p.add(where, f"state {s.name!r}: a switch needs cases and a default")
    elif s.kind == "transfer" and s.transfer is not None and s.transfer != "agent":
        p.add(where, f"state {s.name!r}: transfer to 'agent' is the only target")
    prompts = [i.value for i in s.play if i.kind == "prompt"]
    if s.collect is not None:
        prompts += [x for x in (s.collect.invalid, s.collect.noinput) if x]
    for prompt in prompts:
        texts = catalog.texts.get(prompt)
        if texts is None:
            p.add(where, f"state {s.name!r}: undefined prompt {prompt!r}")
            continue
        for lang in flow.languages:
            if not texts.get(lang):
                p.add(where, f"state {s.name!r}: prompt {prompt!r} has no {lang!r} translation")


def _graph_checks(flow: Flow, p: _Problems) -> None:
    roots = [*flow.entries.values(), flow.on_error, *([flow.agent] if flow.agent else [])]
    seen: set[str] = set()
    todo = [r for r in roots if r in flow.states]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [t for t in flow.states[name].targets() if t in flow.states]
    for name in flow.states.keys() - seen:
        p.add(f"states.{name}", f"state {name!r}: unreachable from every entry")
    # Dead ends: states from which no transfer or end can be reached.
    ending = {n for n, s in flow.states.items() if s.kind in ("transfer", "end")}
    changed = True
    while changed:
        changed = False
        for n, s in flow.states.items():
            if n not in ending and any(t in ending for t in s.targets()):
                ending.add(n)
                changed = True
    for name in flow.states.keys() - ending:
        p.add(f"states.{name}", f"state {name!r}: dead end (no way to an end or a transfer)")


def parse_flow(
    text: str,
    path: str,
    catalog: Catalog,
    actions: Mapping[str, tuple[str, ...]],
) -> Flow:
    """Parse and validate one flow; raise :class:`FlowError` listing every problem with its line."""
    lines: dict[str, int] = {}
    try:
        raw = load_strict(text, lines)
    except StrictYamlError as e:
        m = re.search(r"line (\d+)", str(e))
        raise FlowError(f"{path}:{m.group(1) if m else 1}: {e}") from e
    p = _Problems(path, lines)
    if not isinstance(raw, dict):
        raise FlowError(f"{path}:1: a flow is a mapping")
    for k in set(raw) - _TOP:
        p.add(k, f"unknown top-level key {k!r}")
    name = _name_of(raw, "flow", "", "flow: expected a flow name", p) or Path(path).stem
    langs = raw.get("languages", list(LANGUAGES))
    if not isinstance(langs, list) or not langs or any(x not in LANGUAGES for x in langs):
        p.add("languages", f"languages: a list drawn from {LANGUAGES}")
        langs = list(LANGUAGES)
    for lang in sorted({x for x in langs if langs.count(x) > 1}):
        p.add("languages", f"languages: {lang!r} is listed more than once")
    langs = list(dict.fromkeys(langs))
    entries = _map(raw.get("entries"), "entries", p)
    if not entries:
        p.add("entries", "entries: at least one script name -> state")
    for e in entries:
        if not _ENTRY.match(e):
            p.add(f"entries.{e}", f"entries: {e!r} is not a valid script name")
    agent_key = raw.get("agent_key", "0")
    if isinstance(agent_key, int) and not isinstance(agent_key, bool) and 0 <= agent_key <= 9:
        agent_key = str(agent_key)
    if not isinstance(agent_key, str) or len(agent_key) != 1 or agent_key not in "0123456789*#":
        p.add("agent_key", f"agent_key: one key (0-9, * or #), got {agent_key!r}")
        agent_key = "0"
    raw_states = raw.get("states")
    if not isinstance(raw_states, dict) or not raw_states:
        p.add("states", "states: a mapping of state names")
        p.raise_if_any()
    states = {n: st for n, r in raw_states.items() if (st := _state(n, r, p)) is not None}
    on_error = _name_of(raw, "on_error", "", "on_error: expected a state name", p) or ""
    if "on_error" not in raw:
        p.add("on_error", "on_error: a state name is required (it runs when things fail)")
    flow = Flow(
        name=name,
        path=path,
        languages=tuple(langs),
        entries=entries,
        agent=_name_of(raw, "agent", "", "agent: expected a state name", p),
        agent_key=agent_key,
        on_error=on_error,
        states=states,
    )
    for key, target in [
        *((f"entries.{e}", t) for e, t in entries.items()),
        ("on_error", on_error),
        ("agent", flow.agent or ""),
    ]:
        if target and target not in states:
            p.add(key, f"{key}: undefined state {target!r}")
    if on_error in states and states[on_error].kind not in ("transfer", "end", "next"):
        p.add(
            "on_error",
            "on_error: must be a state that ends, transfers or goes on (it runs when things fail)",
        )
    for s in states.values():
        _check_state(s, flow, catalog, actions, p)
    p.raise_if_any()
    _graph_checks(flow, p)
    p.raise_if_any()
    return flow


def load_flow(path: Path, catalog: Catalog, actions: Mapping[str, tuple[str, ...]]) -> Flow:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FlowError(f"{path}: not UTF-8 text ({_utf8_problem(e)})") from e
    except OSError as e:
        raise FlowError(f"{path}: cannot read: {e.strerror}") from e
    return parse_flow(text, str(path), catalog, actions)


def check_unique(flows: list[Flow]) -> list[str]:
    """Problems of flows loaded together: a flow name or a script name used twice."""
    problems: list[str] = []
    by_name: dict[str, str] = {}
    by_entry: dict[str, str] = {}
    for flow in flows:
        if flow.name in by_name:
            problems.append(f"{flow.path}:1: flow {flow.name!r} is also in {by_name[flow.name]}")
        else:
            by_name[flow.name] = flow.path
        for entry in flow.entries:
            if entry in by_entry:
                problems.append(f"{flow.path}:1: script {entry!r} is also in {by_entry[entry]}")
            else:
                by_entry[entry] = flow.path
    return problems


def load_flows(
    directory: Path | None, catalog: Catalog, actions: Mapping[str, tuple[str, ...]]
) -> dict[str, Flow]:
    """Every ``*.yaml`` flow of a directory; script names must be unique across them."""
    directory = directory or FLOW_DIR
    try:
        if not directory.is_dir():
            what = "is not a directory" if directory.exists() else "no such directory"
            raise FlowError(f"{directory}: {what}")
    except OSError as e:  # (a name too long, a directory we may not read)
        raise FlowError(f"{str(directory)[:200]}: {e.strerror or e}") from None
    loaded: list[Flow] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            loaded.append(load_flow(path, catalog, actions))
        except FlowError as e:
            problems.append(str(e))
    problems += check_unique(loaded)
    if problems:
        raise FlowError("\n".join(problems))
    return {flow.name: flow for flow in loaded}
