"""A strict YAML reader for the files people write by hand (rule packs, IVR flows).

PyYAML's ``CSafeLoader`` parses the text into nodes; this module turns the nodes into Python
values itself so that it can name the path of every problem and refuse what YAML 1.1 would
silently reinterpret:

- duplicate keys (the later one would win);
- YAML 1.1 booleans used as keys (``yes:``, ``no:``, ``on:``, ``off:`` become ``True``/``False``)
  and as values other than ``true``/``false`` (``overridable: yes``);
- base-60 numbers (``start: 21:00`` is the integer 1260 in YAML 1.1): times must be quoted;
- merge keys (``<<``), which hide where a value comes from;
- anchors and aliases (``&a``/``*a``): they hide where a value comes from too, and expanding
  nested aliases ("billion laughs") turns a few hundred bytes into billions of values;
- explicit tags (``!foo``, ``!!binary``, ``!!python/...``): only plain YAML values are data.

Every problem is a :class:`StrictYamlError`; nothing else escapes :func:`load_strict`. The
reader does not stop at the first problem: the error it raises is the first one found, and its
``errors`` holds every one (:func:`check_strict` returns them with what could be read), so that
whoever fixes the file meets them all at once.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
#: A YAML 1.1 integer not written in decimal: 030 (octal, 24), 0x1e, 0b11, 0o17.
_NOT_DECIMAL = re.compile(r"[-+]?(?:0[0-7_]*[0-9]|0[xXoObB])")
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_SCALAR_TAGS = frozenset(
    {_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _STR_TAG, _TIMESTAMP_TAG, "tag:yaml.org,2002:null"}
)
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_MAX_DEPTH = 32

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictYamlError(ValueError):
    """A YAML problem at ``path``; ``errors``: every problem found in the document (this one
    first)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        self.errors: tuple[StrictYamlError, ...] = (self,)
        super().__init__(f"{path or '<document>'}: {problem}")


class _Bad:
    """What a value that could not be built stands for (its problem is recorded); a mapping
    leaves its key out, a list the item."""


_BAD = _Bad()


def _line(node: Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Builder:
    def __init__(self, lines: dict[str, int] | None = None) -> None:
        self._scalars = SafeConstructor()
        self._lines = lines
        self.errors: list[StrictYamlError] = []

    def _fail(self, path: str, problem: str) -> _Bad:
        self.errors.append(StrictYamlError(path, problem))
        return _BAD

    def scalar(self, node: ScalarNode, path: str) -> Any:
        if node.tag == _BOOL_TAG and node.value not in ("true", "false"):
            return self._fail(
                path, f"YAML 1.1 boolean {node.value!r} ({_line(node)}); write true or false"
            )
        if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in node.value:
            return self._fail(
                path,
                f"{node.value!r} is a base-60 number in YAML 1.1 ({_line(node)}); "
                'quote times, e.g. "08:00-21:00"',
            )
        if node.tag == _INT_TAG and _NOT_DECIMAL.match(node.value):
            return self._fail(
                path,
                f"{node.value[:40]!r} is an octal, hexadecimal or binary number in YAML 1.1 "
                f"({_line(node)}): 030 reads as 24; write it in decimal, or quote it",
            )
        if node.tag not in _SCALAR_TAGS:
            return self._fail(
                path, f"{node.value!r} is not a plain YAML value ({_line(node)}); quote it"
            )
        if node.tag == _TIMESTAMP_TAG and not SafeConstructor.timestamp_regexp.match(node.value):
            return self._fail(path, f"{node.value!r} is not a date ({_line(node)})")
        try:
            return self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as e:  # e.g. the date 2026-13-45
            what = node.tag.rsplit(":", 1)[-1]
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            why = str(e)[:120]
            return self._fail(path, f"{shown!r} is not a valid {what} ({_line(node)}): {why}")

    def build(self, node: Node, path: str = "", depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            return self._fail(path, "nested too deeply")
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._fail(path, f"a {node.tag} list is not allowed ({_line(node)})")
            items = (
                self.build(item, _join(path, i), depth + 1) for i, item in enumerate(node.value)
            )
            return [item for item in items if item is not _BAD]
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                return self._fail(path, f"a {node.tag} mapping is not allowed ({_line(node)})")
            out: dict[Any, Any] = {}
            seen: set[str] = set()  # (keys whose value could not be built are not in ``out``)
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    where = _line(key_node)
                    self._fail(path, f"merge keys (<<) are not allowed ({where})")
                    continue
                if not isinstance(key_node, ScalarNode):
                    self._fail(path, f"a key must be a plain string ({_line(key_node)})")
                    continue
                if key_node.tag == _BOOL_TAG:
                    self._fail(
                        _join(path, key_node.value),
                        f"key {key_node.value!r} is a YAML 1.1 boolean ({_line(key_node)}); "
                        "quote it or use another name",
                    )
                    continue
                if key_node.tag != _STR_TAG:
                    self._fail(
                        _join(path, key_node.value),
                        f"key {key_node.value!r} is not a string ({_line(key_node)}); quote it",
                    )
                    continue
                key = key_node.value
                if key in seen:
                    self._fail(_join(path, key), f"duplicate key {key!r} ({_line(key_node)})")
                    continue
                seen.add(key)
                if self._lines is not None:
                    self._lines[_join(path, key)] = key_node.start_mark.line + 1
                value = self.build(value_node, _join(path, key), depth + 1)
                if value is not _BAD:
                    out[key] = value
            return out
        return self._fail(path, f"unsupported YAML node {type(node).__name__}")


def _anchors_and_tags(text: str) -> list[StrictYamlError]:
    """Scan the events (cheap: nothing is built) for what :func:`load_strict` refuses before
    composing, so that an alias bomb is never expanded."""
    errors = []
    for event in yaml.parse(text, Loader=_Loader):
        where = f"line {event.start_mark.line + 1}"
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            errors.append(StrictYamlError("", f"anchors and aliases are not allowed ({where})"))
            continue
        tag = getattr(event, "tag", None)
        if tag is not None and isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            errors.append(
                StrictYamlError(
                    "", f"tags such as {shown!r} are not allowed ({where}); write a plain value"
                )
            )
    return errors


def check_strict(
    text: str, lines: dict[str, int] | None = None
) -> tuple[Any, list[StrictYamlError]]:
    """Parse one YAML document strictly: what could be read (``None`` when nothing could) and
    every problem found, in document order. A value that cannot be built is left out (its
    mapping key, its list item). ``lines`` as for :func:`load_strict`."""
    try:
        refused = _anchors_and_tags(text)
        if refused:  # (never composed: an alias bomb would be expanded)
            return None, refused
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        return None, [StrictYamlError("", f"not valid YAML: {problem}{where}")]
    if node is None:
        return None, [StrictYamlError("", "empty document")]
    builder = _Builder(lines)
    value = builder.build(node)
    return (None if value is _BAD else value), builder.errors


def load_strict(text: str, lines: dict[str, int] | None = None) -> Any:
    """Parse one YAML document strictly; raise :class:`StrictYamlError` naming the path (of the
    first problem; its ``errors`` name every one).

    ``lines``, when given, is filled with the line of every mapping key by its path
    (``states.menu.next``): what lets a later check say where a mistake is.
    """
    value, errors = check_strict(text, lines)
    if errors:
        first = errors[0]
        first.errors = tuple(errors)
        raise first
    return value
