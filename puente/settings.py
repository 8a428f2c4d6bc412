"""Settings: one frozen dataclass per subsystem, loaded once at start.

Sources, later wins: the dataclass defaults, an optional YAML file (``PUENTE_CONFIG`` or
``--config``) with one mapping per subsystem, then environment variables named
``PUENTE_<SUBSYSTEM>_<FIELD>`` (e.g. ``PUENTE_AMI_HOST``, ``PUENTE_AGI_PORT``) plus the
well-known ``PUENTE_DATABASE_URL``. Bad values stop the process at start with one message
naming every one of them: the variable (or the file, line and key) and the value; secrets are
never echoed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from puente.numerals import INTEGER, NUMBER
from puente.strict_yaml import check_strict

T = TypeVar("T")


class SettingsError(Exception):
    """Settings with bad values; ``problems`` names each one (the setting, where it was given,
    what is wrong), all of them at once: an operator fixing a config file meets every mistake
    in one go, not one per start."""

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        if len(problems) == 1:
            text = problems[0]
        else:
            text = f"{len(problems)} problems with the settings:\n  " + "\n  ".join(problems)
        super().__init__(text)


@dataclass(frozen=True)
class ConfigFile:
    """The YAML config file as read: its sections, and the line of every key in it
    (``{"ami.port": 3}``), so that a bad value is named with its place in the file."""

    path: Path | None = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """``config file PATH:LINE`` for the key ``section.field`` (``config file`` alone when
        there is no file to name)."""
        if self.path is None:
            return "config file"
        line = self.lines.get(key)
        return f"config file {self.path}:{line}" if line else f"config file {self.path}"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _is_secret(f: dataclasses.Field[Any]) -> bool:
    return not f.repr


def _convert(value: Any, typ: Any, where: str, secret: bool) -> Any:
    shown = "<hidden>" if secret else repr(value)
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return _convert(value, args[0], where, secret)
    if value is None:  # an empty YAML value (``host:``): never the text "None"
        name = getattr(typ, "__name__", str(typ))
        raise SettingsError(f"{where}: no value given (expected {name})")
    if origin is tuple:
        (inner, *_rest) = typing.get_args(typ) or (str,)
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return tuple(
            _convert(i.strip() if isinstance(i, str) else i, inner, where, secret)
            for i in items
            if not (isinstance(i, str) and not i.strip())
        )
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError("expected true/false")
        # Numbers as written in ASCII digits (puente.numerals), and finite.
        if typ is int:
            if isinstance(value, bool) or not INTEGER.fullmatch(text := str(value).strip()):
                raise ValueError("expected an integer")
            return int(text)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            if isinstance(value, int | float):  # (from YAML)
                try:
                    v = float(value)
                except OverflowError:  # an integer past float's range
                    raise ValueError("expected a finite number") from None
            elif NUMBER.fullmatch(text := str(value).strip()):
                v = float(text)
            else:
                raise ValueError("expected a number")
            if not math.isfinite(v):
                raise ValueError("expected a finite number")
            return v
        if typ is str:
            if isinstance(value, dict | list):
                raise ValueError("expected a string")
            return str(value)
        if typ is Path:
            return Path(str(value))
    except ValueError as e:
        # The conversion's own message may quote the value: hide it for secrets.
        detail = f"expected {typ.__name__}" if secret else str(e)
        raise SettingsError(f"{where}: bad value {shown}: {detail}") from None
    raise SettingsError(f"{where}: unsupported setting type {typ!r}")


def load(
    cls: type[T],
    section: str,
    *,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    extra_env: Mapping[str, str] | None = None,
    origin: ConfigFile | None = None,
) -> T:
    """Build ``cls`` (a frozen dataclass) from defaults, ``file_values`` and the environment.

    ``extra_env`` maps field names to additional environment variable names
    (e.g. ``{"url": "PUENTE_DATABASE_URL"}``); ``origin``, the file ``file_values`` come from
    (to name the file and line of a bad one). Every bad value of the section is named in the
    one :class:`SettingsError` raised.
    """
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    given_by: dict[str, str] = {}  # field -> where its value came from (the last source wins)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    place = (origin or ConfigFile()).where  # ("config file" alone: no file to name)

    def in_file(key: str) -> str:
        return f"{place(f'{section}.{key}')}: {section}.{key}"

    for key in file_values or {}:
        if key not in names:
            known = ", ".join(sorted(names))
            where = place(f"{section}.{key}")
            problems.append(f"{where}: [{section}] has no setting {key!r} (known: {known})")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        secret = _is_secret(f)
        sources: list[tuple[str, Any]] = []
        if file_values and f.name in file_values:
            sources.append((in_file(f.name), file_values[f.name]))
        for var in (f"PUENTE_{section.upper()}_{f.name.upper()}", (extra_env or {}).get(f.name)):
            if var and var in env:
                sources.append((var, env[var]))
        for where, value in sources:  # (each checked: a bad file value is named, even when an
            try:  # environment variable overrides it)
                kwargs[f.name] = _convert(value, hints[f.name], where, secret)
                given_by[f.name] = where.removesuffix(f": {section}.{f.name}")
            except SettingsError as e:
                problems.extend(e.problems)
    # The section's own checks, on the values that could be read (a bad one left at its
    # default): what else is wrong in it is named now, not on the next start.
    obj = None
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        problems.append(f"{section} settings: {e}")
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            problems.append(f"{section} settings: {e}{_set_by(str(e), given_by)}")
    if problems:
        raise SettingsError(*problems)
    return typing.cast(T, obj)


def _set_by(message: str, given_by: Mapping[str, str]) -> str:
    """`` (port: PUENTE_AMI_PORT)``: where the settings a section's check names were given."""
    named = [
        f"{name}: {where}"
        for name, where in given_by.items()
        if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message)
    ]
    return f" ({'; '.join(named)})" if named else ""


def read_config_file(path: Path | None) -> dict[str, dict[str, Any]]:
    """The YAML config file as ``{section: {field: value}}``; ``{}`` when there is none.
    Every problem in it is named in the one :class:`SettingsError` raised."""
    problems: list[str] = []
    config = read_config(path, problems)
    if problems:
        raise SettingsError(*problems)
    return config.sections


def read_config(path: Path | None, problems: list[str]) -> ConfigFile:
    """The YAML config file (``path``, else ``PUENTE_CONFIG``; none: no sections), with what
    could be read of it; every problem found is appended to ``problems``."""
    if path is None:
        env_path = os.environ.get("PUENTE_CONFIG")
        if not env_path:
            return ConfigFile()
        path = Path(env_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        problems.append(f"config file {path}: {e.strerror}")
        return ConfigFile(path)
    except UnicodeDecodeError as e:
        problems.append(
            f"config file {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
            f"{e.start})"
        )
        return ConfigFile(path)
    # Strictly (as rule packs and IVR flows): a duplicate key or section is refused, not
    # silently replaced by the later one (a second ``ami:`` would wipe the first's host and
    # secret), and neither are YAML 1.1's ``yes``/``off`` booleans nor ``1:30`` (base 60).
    lines: dict[str, int] = {}
    data, errors = check_strict(text, lines) if text.strip() else ({}, [])
    for e in errors:
        if e.problem == "empty document":  # (only comments)
            continue
        where = f"{e.path}: " if e.path else ""
        problems.append(f"config file {path}: {where}{e.problem}")
    data = data or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        problems.append(f"config file {path}: expected a mapping of sections to mappings")
        data = (
            {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}
        )
    return ConfigFile(path, {str(k): v for k, v in data.items()}, lines)


@dataclass(frozen=True)
class NodeSettings:
    """This Puente node."""

    name: str = field(default_factory=lambda: os.uname().nodename)
    log_level: str = "INFO"
    shutdown_grace_s: float = 20.0

    def validate(self) -> None:
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"log_level {self.log_level!r} is not DEBUG/INFO/WARNING/ERROR")
        if not 0 <= self.shutdown_grace_s <= 3600:  # (inf: a stop that never ends)
            raise ValueError(f"shutdown_grace_s {self.shutdown_grace_s} must be in [0, 3600]")
