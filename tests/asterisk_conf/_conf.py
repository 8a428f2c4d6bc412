"""A tiny reader of Asterisk's ``.conf`` format, and of the code facts the configs must match.

Enough of the format for Puente's files: ``[name]`` sections, templates ``[name](!)`` and
sections built on them ``[name](tmpl, ...)``, ``key = value`` and ``key => value`` lines
(``exten``/``same`` included), ``;`` comments (``\\;`` is a literal semicolon) and ``#include``
lines (kept as directives). Sections of the same name are kept apart: ``pjsip.conf`` names an
endpoint, its aor and its auth alike and tells them apart by ``type``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "asterisk_conf"
TRANSCRIPTS = ROOT / "tests" / "data" / "asterisk-transcripts"
# Puente's own code (what talks to Asterisk); the simulator and the benchmarks are not Puente.
CODE_DIRS = ("pbx/ami", "pbx/agi", "pbx/audiosocket", "dialer", "ivr", "puente", "compliance",
             "db", "web")  # fmt: skip


class ConfError(ValueError):
    """A line the reader does not understand; the message names file and line."""


@dataclass(frozen=True)
class Entry:
    key: str
    op: str  # "=" or "=>"
    value: str
    line: int


@dataclass
class Section:
    name: str
    line: int
    is_template: bool = False
    templates: tuple[str, ...] = ()
    entries: list[Entry] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key`` in this section alone (templates not applied)."""
        values = self.all(key)
        return values[-1] if values else default

    def all(self, key: str) -> list[str]:
        return [e.value for e in self.entries if e.key == key]


@dataclass
class Conf:
    path: str
    sections: list[Section]
    directives: list[tuple[int, str]]

    def named(self, name: str) -> list[Section]:
        return [s for s in self.sections if s.name == name]

    def section(self, name: str, *, type: str | None = None) -> Section:
        """The one section called ``name`` (of pjsip ``type``), templates applied."""
        found = [s for s in self.named(name) if type is None or self.value(s, "type") == type]
        if len(found) != 1:
            raise KeyError(f"{self.path}: {len(found)} sections [{name}] of type {type!r}")
        return self.resolved(found[0])

    def has(self, name: str, *, type: str | None = None) -> bool:
        return any(type is None or self.value(s, "type") == type for s in self.named(name))

    def resolved(self, section: Section) -> Section:
        """``section`` with its templates' entries first (templates of templates too)."""
        entries: list[Entry] = []
        for t in section.templates:
            candidates = [s for s in self.sections if s.name == t and s.is_template]
            if not candidates:
                raise KeyError(f"{self.path}:{section.line}: no template [{t}](!)")
            entries.extend(self.resolved(candidates[-1]).entries)
        return Section(section.name, section.line, section.is_template, section.templates,
                       entries + section.entries)  # fmt: skip

    def value(self, section: Section, key: str) -> str | None:
        return self.resolved(section).get(key)

    def of_type(self, type: str) -> Iterator[Section]:
        for s in self.sections:
            if not s.is_template and self.value(s, "type") == type:
                yield self.resolved(s)


_SECTION = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?\s*$")
_KEY = re.compile(r"^([A-Za-z0-9_.+\-]+(?:\(.*\))?)\s*$")


def strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if c == ";":
            break
        out.append(c)
        i += 1
    return "".join(out).rstrip()


def parse_conf(text: str, path: str = "<text>") -> Conf:
    sections: list[Section] = []
    directives: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("#"):
            directives.append((n, line))
            continue
        m = _SECTION.match(line)
        if m:
            opts = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            sections.append(
                Section(
                    m.group(1).strip(),
                    n,
                    is_template="!" in opts,
                    templates=tuple(o for o in opts if o != "!"),
                )
            )
            continue
        eq = _find_assignment(line)
        if eq < 0:
            raise ConfError(f"{path}:{n}: not a section, an assignment or a directive: {raw!r}")
        op = "=>" if line[eq : eq + 2] == "=>" else "="
        key = line[:eq].strip()
        value = line[eq + len(op) :].strip()
        if not _KEY.match(key):
            raise ConfError(f"{path}:{n}: bad key {key!r}")
        if not sections:
            raise ConfError(f"{path}:{n}: {key} outside any section")
        sections[-1].entries.append(Entry(key, op, value, n))
    return Conf(path, sections, directives)


def _find_assignment(line: str) -> int:
    """Index of the ``=`` (or ``=>``) that ends the key: the first one outside parentheses."""
    depth = 0
    for i, c in enumerate(line):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "=" and depth == 0:
            return i
    return -1


def load_conf(name: str) -> Conf:
    path = CONF_DIR / name
    return parse_conf(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


# -- the dialplan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DialplanLine:
    context: str
    exten: str
    app: str
    args: str
    line: int


_APP = re.compile(r"^(?:n|\d+)(?:\([a-z0-9_-]+\))?,([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$")


def dialplan_lines(conf: Conf) -> list[DialplanLine]:
    """Every priority of every extension (``exten =>`` and the ``same =>`` after it)."""
    out = []
    for s in conf.sections:
        exten = None
        for e in s.entries:
            if e.key == "exten":
                exten, _, rest = e.value.partition(",")
            elif e.key == "same" and exten is not None:
                rest = e.value
            else:
                continue
            m = _APP.match(rest.strip())
            if m is None:
                raise ConfError(f"{conf.path}:{e.line}: cannot read priority {e.value!r}")
            out.append(DialplanLine(s.name, exten, m.group(1), m.group(2) or "", e.line))
    return out


def header_variables(text: str) -> list[str]:
    """The variables the comment block at the top of extensions.conf documents."""
    names: list[str] = []
    for raw in text.splitlines():
        if not raw.startswith(";"):
            break
        m = re.match(r"^;\s{2,}([A-Z][A-Z0-9_]*(?:\s*/\s*[A-Z][A-Z0-9_]*)*)\s", raw)
        if m:
            names += [n.strip() for n in m.group(1).split("/")]
    return names


# -- the code -------------------------------------------------------------------------------------
def python_files(dirs: Iterable[str] = CODE_DIRS) -> Iterator[Path]:
    for d in dirs:
        base = ROOT / d
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def string_literals(paths: Iterable[Path]) -> set[str]:
    """Every string constant in these files (f-string parts included)."""
    found: set[str] = set()
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"), str(p))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


_SENDERS = {"send_action", "_send", "action"}


def ami_actions(paths: Iterable[Path]) -> dict[str, list[str]]:
    """AMI actions the code sends: ``x.send_action("Name", ...)``, ``x._send("Name", ...)``
    and ``x.originate(...)`` (Originate), each with where it is sent from."""
    found: dict[str, list[str]] = {}
    for p in paths:
        tree = ast.parse(p.read_text(encoding="utf-8"), str(p))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = None
            if node.func.attr == "originate":
                name = "Originate"
            elif node.func.attr in _SENDERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    name = first.value
            if name and re.fullmatch(r"[A-Z][A-Za-z]+", name):
                where = f"{p.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(name, []).append(where)
    return found


# -- recorded AMI events --------------------------------------------------------------------------
def transcript_events() -> dict[str, list[str]]:
    """Every AMI event Asterisk 22 sent in the recorded transcripts: name -> payloads."""
    events: dict[str, list[str]] = {}
    for f in sorted(TRANSCRIPTS.rglob("*.s2c.txt")):
        text = f.read_bytes().decode("utf-8", "replace")
        for block in text.split("\r\n\r\n"):
            lines = [ln for ln in block.split("\r\n") if ln]
            if lines and lines[0].startswith("Event: "):
                events.setdefault(lines[0][7:].strip(), []).append("\r\n".join(lines) + "\r\n")
    return events


def headers(payload: str) -> list[tuple[str, str]]:
    out = []
    for ln in payload.split("\r\n"):
        k, sep, v = ln.partition(":")
        if sep:
            out.append((k.strip(), v.strip()))
    return out


# -- manager.conf event filters -------------------------------------------------------------------
@dataclass(frozen=True)
class EventFilter:
    include: bool
    name: str | None
    header: str | None
    method: str  # regex | exact | starts_with | ends_with | contains | none
    expression: str

    def matches(self, payload: str) -> bool:
        hs = headers(payload)
        event = hs[0][1] if hs and hs[0][0] == "Event" else ""
        if self.name is not None and event != self.name:
            return False
        if self.header is not None:
            values = [v for k, v in hs if k == self.header]
            if not values:
                return False
            return any(self._match(v) for v in values)
        return self._match(payload)

    def _match(self, data: str) -> bool:
        m, x = self.method, self.expression
        if m == "none":
            return True
        if m == "regex":
            return re.search(x, data) is not None
        if m == "exact":
            return data == x
        if m == "starts_with":
            return data.startswith(x)
        if m == "ends_with":
            return data.endswith(x)
        if m == "contains":
            return x in data
        raise ValueError(f"unknown eventfilter method {m!r}")


_CRITERION = re.compile(r"(action|name|header|method)\(([^()]*)\)")


def parse_eventfilter(key: str, value: str) -> EventFilter:
    """One ``eventfilter`` line: legacy (``eventfilter = [!]regex``) or advanced
    (``eventfilter(action(..),name(..),header(..),method(..)) = expression``)."""
    if key == "eventfilter":
        include = not value.startswith("!")
        return EventFilter(include, None, None, "regex", value.lstrip("!"))
    inner = key[len("eventfilter(") : -1] if key.startswith("eventfilter(") else None
    if inner is None or not key.endswith(")"):
        raise ConfError(f"not an eventfilter: {key!r}")
    crit = dict(_CRITERION.findall(inner))
    rest = _CRITERION.sub("", inner).replace(",", "").strip()
    if rest:
        raise ConfError(f"eventfilter {key!r}: cannot read {rest!r}")
    action = crit.get("action", "include")
    if action not in ("include", "exclude"):
        raise ConfError(f"eventfilter {key!r}: action must be include or exclude")
    method = crit.get("method", "none")
    if method not in ("regex", "exact", "starts_with", "ends_with", "contains", "none"):
        raise ConfError(f"eventfilter {key!r}: unknown method {method!r}")
    if method != "none" and not value:
        raise ConfError(f"eventfilter {key!r}: method {method} needs an expression")
    return EventFilter(action == "include", crit.get("name"), crit.get("header"), method, value)


def event_passes(filters: list[EventFilter], payload: str) -> bool:
    """Asterisk's order: no filters, all pass; includes first (any), then excludes (any)."""
    includes = [f for f in filters if f.include]
    excludes = [f for f in filters if not f.include]
    if includes and not any(f.matches(payload) for f in includes):
        return False
    return not any(f.matches(payload) for f in excludes)
