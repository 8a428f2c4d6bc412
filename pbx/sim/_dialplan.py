"""A small interpreter of the Asterisk dialplan subset that ``asterisk_conf/extensions.conf`` uses.

The simulated Asterisk runs Puente's real dialplan file rather than a hand-kept copy, so the
two cannot drift apart. Supported, as Asterisk does them:

- ``[context]`` sections, ``exten => EXT,PRIO,App(args)`` and ``same => n[(label)],App(args)``;
  ``[general]`` and ``[globals]`` (``NAME = value``);
- extension patterns ``_`` with ``X`` ``Z`` ``N`` ``[...]`` ``.`` ``!`` (a lower-case ``n`` in a
  pattern is the ``N`` class, as Asterisk reads it; literal matches win over patterns);
- ``${VAR}``, ``${VAR:offset}``, ``${VAR:offset:length}``, ``${EXTEN}``, ``${CONTEXT}``, nested;
  ``$[ "a" = "b" ]`` expressions with ``=``, ``!=``, ``&``, ``|`` and quoted or bare operands;
- ``Goto([[context,]exten,]priority|label)``, ``GotoIf(cond?[dest1][:dest2])``.

Other applications are returned to the caller (the simulator) as :class:`AppCall` steps. This
module is pure: no I/O except :func:`load_dialplan` reading the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pbx._exceptions import PbxError


class DialplanError(PbxError):
    """The dialplan file is malformed, or a call reached a place that does not exist."""


@dataclass(frozen=True)
class Priority:
    number: int
    label: str | None
    app: str
    args: str
    line: int


@dataclass
class Extension:
    name: str
    priorities: dict[int, Priority] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)


@dataclass(frozen=True)
class Dialplan:
    contexts: dict[str, Context]
    globals: dict[str, str]
    source: str

    def find_extension(self, context: str, exten: str) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None:
            return None
        if exten in ctx.extensions:
            return ctx.extensions[exten]
        for name, ext in ctx.extensions.items():
            if name.startswith("_") and pattern_matches(name, exten):
                return ext
        return None


_EXTEN_RE = re.compile(r"^(exten|same)\s*=>?\s*(.*)$")
_APP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\((.*)\)\s*$|^([A-Za-z][A-Za-z0-9_]*)\s*$")


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            out.append(line[i : i + 2])
            i += 2
            continue
        if c == ";":
            break
        out.append(c)
        i += 1
    return "".join(out).rstrip()


def parse_dialplan(text: str, source: str = "<string>") -> Dialplan:
    contexts: dict[str, Context] = {}
    globals_: dict[str, str] = {}
    section: str | None = None
    current: Extension | None = None
    last_prio = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        if line.startswith("["):
            m = re.match(r"^\[([^\]]+)\]", line)
            if not m:
                raise DialplanError(f"{where}: malformed section header {line!r}")
            section = m.group(1).strip()
            current = None
            if section not in ("general", "globals"):
                if section in contexts:
                    raise DialplanError(f"{where}: context [{section}] defined twice")
                contexts[section] = Context(section)
            continue
        if section is None:
            raise DialplanError(f"{where}: line outside any section")
        if section in ("general", "globals"):
            name, sep, value = line.partition("=")
            if not sep:
                raise DialplanError(f"{where}: expected NAME = value in [{section}]")
            if section == "globals":
                globals_[name.strip()] = value.strip()
            continue
        m = _EXTEN_RE.match(line)
        if not m:
            raise DialplanError(f"{where}: expected 'exten =>' or 'same =>', got {line!r}")
        kind, rest = m.group(1), m.group(2).lstrip(">").strip()
        if kind == "exten":
            parts = rest.split(",", 2)
            if len(parts) != 3:
                raise DialplanError(f"{where}: expected exten => EXT,PRIO,App(args)")
            ext_name, prio_s, app_s = (p.strip() for p in parts)
            ctx = contexts[section]
            current = ctx.extensions.setdefault(ext_name, Extension(ext_name))
        else:
            if current is None:
                raise DialplanError(f"{where}: 'same =>' with no preceding 'exten =>'")
            prio_s, sep, app_s = rest.partition(",")
            if not sep:
                raise DialplanError(f"{where}: expected same => n,App(args)")
            prio_s, app_s = prio_s.strip(), app_s.strip()
        label = None
        lm = re.match(r"^(n|[0-9]{1,9})(?:\(([A-Za-z0-9_-]+)\))?\Z", prio_s)
        if not lm:
            raise DialplanError(f"{where}: bad priority {prio_s!r}")
        number = last_prio + 1 if lm.group(1) == "n" else int(lm.group(1))
        if kind == "exten" and lm.group(1) == "n":
            raise DialplanError(f"{where}: 'exten =>' needs a numeric first priority")
        label = lm.group(2)
        am = _APP_RE.match(app_s)
        if not am:
            raise DialplanError(f"{where}: malformed application {app_s!r}")
        app, args = (am.group(1), am.group(2)) if am.group(1) else (am.group(3), "")
        assert current is not None
        if number in current.priorities:
            raise DialplanError(f"{where}: priority {number} of {current.name} defined twice")
        current.priorities[number] = Priority(number, label, app, args, lineno)
        if label:
            current.labels[label] = number
        last_prio = number
    return Dialplan(contexts, globals_, source)


def load_dialplan(path: Path) -> Dialplan:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DialplanError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_dialplan(text, source=str(path))


#: The queues of the shipped configuration.
DEFAULT_QUEUES_CONF = Path(__file__).resolve().parents[2] / "asterisk_conf" / "queues.conf"


def load_queue_names(path: Path = DEFAULT_QUEUES_CONF) -> frozenset[str]:
    """The queues a ``queues.conf`` defines: its sections but ``[general]`` and templates
    (``[name](!)``); a section made from a template (``[name](template)``) is a queue."""
    names = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        m = re.fullmatch(r"\[([^\]]+)\]\s*(?:\(([^)]*)\))?", line)
        if m is None:
            continue
        name, options = m.group(1).strip(), (m.group(2) or "")
        if name.lower() == "general" or "!" in options.split(","):
            continue
        names.add(name)
    return frozenset(names)


#: The PJSIP configuration of the shipped configuration.
DEFAULT_PJSIP_CONF = Path(__file__).resolve().parents[2] / "asterisk_conf" / "pjsip.conf"
#: asterisk.conf ``defaultlanguage``, unset (asterisk_conf ships no asterisk.conf): a channel's
#: language when its endpoint sets none (the recorded rig's Local channels: agi_language en).
DEFAULT_LANGUAGE = "en"


def load_endpoint_languages(path: Path = DEFAULT_PJSIP_CONF) -> dict[str, str]:
    """The ``language`` of every endpoint a ``pjsip.conf`` defines (its own, else its
    templates', as ``[name](template)`` inherits them); endpoints that set none are left out
    (their channels get :data:`DEFAULT_LANGUAGE`)."""
    sections: dict[str, tuple[bool, list[str], dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        m = re.fullmatch(r"\[([^\]]+)\]\s*(?:\(([^)]*)\))?", line)
        if m is not None:
            name = m.group(1).strip()
            options = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            template = "!" in options
            parents = [o for o in options if o not in ("!", "+")]
            if name in sections and not template:  # (a second [trunk]: the aor, the auth...)
                name = f"{name}\x00{len(sections)}"
            current = {}
            sections[name] = (template, parents, current)
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()

    def lookup(name: str, key: str, depth: int = 0) -> str | None:
        if name not in sections or depth > 16:
            return None
        _, parents, values = sections[name]
        if key in values:
            return values[key]
        for parent in reversed(parents):  # (the last template wins, as Asterisk applies them)
            found = lookup(parent, key, depth + 1)
            if found is not None:
                return found
        return None

    languages = {}
    for name, (template, _, _) in sections.items():
        if template or lookup(name, "type") != "endpoint":
            continue
        language = lookup(name, "language")
        if language:
            languages[name.split("\x00", 1)[0]] = language
    return languages


# -- patterns --------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    body = pattern[1:]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "X" or c == "x":
            out.append("[0-9]")
        elif c in "Zz":
            out.append("[1-9]")
        elif c in "Nn":
            out.append("[2-9]")
        elif c == ".":
            out.append(".+")
        elif c == "!":
            out.append(".*")
        elif c == "[":
            j = body.index("]", i)
            out.append("[" + re.sub(r"([\\^])", r"\\\1", body[i + 1 : j]) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def pattern_matches(pattern: str, exten: str) -> bool:
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None:
        rx = _PATTERN_CACHE[pattern] = _pattern_regex(pattern)
    return rx.match(exten) is not None


# -- substitution and expressions --------------------------------------------------------------
def substitute(text: str, lookup: Mapping[str, str]) -> str:
    """Expand ``${...}`` and ``$[...]`` (innermost first), as pbx_substitute_variables does."""
    for _ in range(100):
        m = _innermost(text)
        if m is None:
            return text
        start, end, kind, inner = m
        value = _variable(inner, lookup) if kind == "{" else evaluate_expression(inner)
        text = text[:start] + value + text[end:]
    raise DialplanError(f"substitution does not terminate: {text[:80]!r}")


def _innermost(text: str) -> tuple[int, int, str, str] | None:
    """The first ``${...}`` or ``$[...]`` that contains no other one."""
    stack: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text) and text[i + 1] in "{[":
            stack.append((i, text[i + 1]))
            i += 2
            continue
        if stack and text[i] == ("}" if stack[-1][1] == "{" else "]"):
            start, kind = stack.pop()
            inner = text[start + 2 : i]
            if "${" not in inner and "$[" not in inner:
                return start, i + 1, kind, inner
        i += 1
    return None


def _variable(spec: str, lookup: Mapping[str, str]) -> str:
    name, _, rest = spec.partition(":")
    value = lookup.get(name.strip(), "")
    if not _:
        return value
    parts = rest.split(":")
    try:
        offset = int(parts[0]) if parts[0] else 0
        length = int(parts[1]) if len(parts) > 1 and parts[1] else None
    except ValueError as e:
        raise DialplanError(f"bad substring in ${{{spec}}}") from e
    # Negative offsets count from the end; a negative length drops that many from the end.
    sub = value[offset:]
    return sub if length is None else sub[:length]


_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|!=|=|&|\||[^\s"=!&|]+)')


def evaluate_expression(expr: str) -> str:
    """``$[...]`` for the operators the contract uses; returns "1"/"0" for comparisons."""
    tokens = [t for t in _TOKEN.findall(expr) if t.strip()]
    if not tokens:
        return ""

    def operand(tok: str) -> str:
        return tok[1:-1] if len(tok) >= 2 and tok[0] == tok[-1] == '"' else tok

    def truthy(v: str) -> bool:
        return v not in ("", "0")

    # Precedence: comparisons bind tighter than & which binds tighter than |.
    def parse_or(ts: list[str]) -> str:
        parts = _split(ts, "|")
        return (
            "1"
            if any(truthy(parse_and(p)) for p in parts)
            else ("0" if len(parts) > 1 else parse_and(parts[0]))
        )

    def parse_and(ts: list[str]) -> str:
        parts = _split(ts, "&")
        if len(parts) == 1:
            return parse_cmp(parts[0])
        return "1" if all(truthy(parse_cmp(p)) for p in parts) else "0"

    def parse_cmp(ts: list[str]) -> str:
        if len(ts) == 3 and ts[1] in ("=", "!="):
            eq = operand(ts[0]) == operand(ts[2])
            return "1" if eq == (ts[1] == "=") else "0"
        if len(ts) == 2 and ts[0] in ("=", "!="):  # empty left operand: $[ = "x"]
            eq = operand(ts[1]) == ""
            return "1" if eq == (ts[0] == "=") else "0"
        if len(ts) == 2 and ts[1] in ("=", "!="):  # empty right operand: $["x" = ]
            eq = operand(ts[0]) == ""
            return "1" if eq == (ts[1] == "=") else "0"
        if len(ts) == 1:
            return operand(ts[0])
        raise DialplanError(f"unsupported expression $[{expr}]")

    return parse_or(tokens)


def _split(tokens: list[str], op: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for t in tokens:
        if t == op:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def split_args(args: str) -> list[str]:
    """Split application arguments on commas, honouring quotes and parentheses."""
    out, cur, depth, quote = [], [], 0, False
    for c in args:
        if c == '"':
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
        if c == "," and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return out


# -- execution -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One priority about to run: where it is, and its application with substituted data."""

    context: str
    exten: str
    priority: int
    app: str
    data: str


class DialplanCursor:
    """Where a channel is in the dialplan; Goto and GotoIf are resolved here.

    ``lookup`` gives the channel's variables (globals included; channel variables shadow
    globals, as in Asterisk). After :meth:`step` returns a step, the caller runs the
    application and then calls :meth:`advance` (which performs jumps for Goto/GotoIf).
    """

    def __init__(self, dialplan: Dialplan, context: str, exten: str, priority: int = 1) -> None:
        self.dialplan = dialplan
        self.context = context
        self.exten = exten
        self.priority = priority

    def step(self, lookup: Mapping[str, str]) -> Step | None:
        """The step at the cursor, or None when the extension has no such priority."""
        ext = self.dialplan.find_extension(self.context, self.exten)
        if ext is None:
            return None
        prio = ext.priorities.get(self.priority)
        if prio is None:
            return None
        scope = {**lookup, "EXTEN": self.exten, "CONTEXT": self.context}
        data = substitute(prio.args, scope)
        return Step(self.context, self.exten, self.priority, prio.app, data)

    def advance(self, step: Step) -> None:
        app = step.app.lower()
        if app == "goto":
            self._goto(step.data)
        elif app == "gotoif":
            cond, _, dests = step.data.partition("?")
            if_true, _, if_false = dests.partition(":")
            dest = if_true if cond.strip() not in ("", "0") else if_false
            if dest.strip():
                self._goto(dest)
            else:
                self.priority += 1
        else:
            self.priority += 1

    def _goto(self, dest: str) -> None:
        parts = [p.strip() for p in split_args(dest)]
        if len(parts) == 1:
            context, exten, prio = self.context, self.exten, parts[0]
        elif len(parts) == 2:
            context, exten, prio = self.context, parts[0], parts[1]
        elif len(parts) == 3:
            context, exten, prio = parts
        else:
            raise DialplanError(f"bad Goto destination {dest!r}")
        ext = self.dialplan.find_extension(context, exten)
        if ext is None:
            raise DialplanError(f"Goto to a missing extension {context},{exten}")
        if prio.isdigit():
            number = int(prio)
        elif prio in ext.labels:
            number = ext.labels[prio]
        else:
            raise DialplanError(f"Goto to a missing priority/label {context},{exten},{prio}")
        self.context, self.exten, self.priority = context, exten, number
