"""Settings: one frozen dataclass per subsystem, loaded once at start.

Sources, later wins: the dataclass defaults, an optional YAML file (``PUENTE_CONFIG`` or
``--config``) with one mapping per subsystem, then environment variables named
``PUENTE_<SUBSYSTEM>_<FIELD>`` (e.g. ``PUENTE_AMI_HOST``, ``PUENTE_AGI_PORT``) plus the
well-known ``PUENTE_DATABASE_URL``. A bad value stops the process at start with a message
naming the variable (or file key) and the value; secrets are never echoed.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from puente.strict_yaml import StrictYamlError, load_strict

T = TypeVar("T")


class SettingsError(Exception):
    """A setting has a bad value; the message names it."""


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
        if typ is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            try:
                return int(str(value).strip())
            except ValueError:
                raise ValueError("expected an integer") from None
        if typ is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            try:
                v = float(str(value).strip())
            except ValueError:
                raise ValueError("expected a number") from None
            if v != v:
                raise ValueError("expected a number")
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
) -> T:
    """Build ``cls`` (a frozen dataclass) from defaults, ``file_values`` and the environment.

    ``extra_env`` maps field names to additional environment variable names
    (e.g. ``{"url": "PUENTE_DATABASE_URL"}``).
    """
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in file_values or {}:
        if key not in names:
            known = ", ".join(sorted(names))
            raise SettingsError(f"config file: [{section}] has no setting {key!r} (known: {known})")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        secret = _is_secret(f)
        if file_values and f.name in file_values:
            kwargs[f.name] = _convert(
                file_values[f.name], hints[f.name], f"config file: {section}.{f.name}", secret
            )
        for var in (f"PUENTE_{section.upper()}_{f.name.upper()}", (extra_env or {}).get(f.name)):
            if var and var in env:
                kwargs[f.name] = _convert(env[var], hints[f.name], var, secret)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{section} settings: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise SettingsError(f"{section} settings: {e}") from None
    return obj


def read_config_file(path: Path | None) -> dict[str, dict[str, Any]]:
    """The YAML config file as ``{section: {field: value}}``; ``{}`` when there is none."""
    if path is None:
        env_path = os.environ.get("PUENTE_CONFIG")
        if not env_path:
            return {}
        path = Path(env_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise SettingsError(
            f"config file {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
            f"{e.start})"
        ) from None
    # Strictly (as rule packs and IVR flows): a duplicate key or section is refused, not
    # silently replaced by the later one (a second ``ami:`` would wipe the first's host and
    # secret), and neither are YAML 1.1's ``yes``/``off`` booleans nor ``1:30`` (base 60).
    try:
        data = load_strict(text) if text.strip() else {}
    except StrictYamlError as e:
        if e.problem == "empty document":  # (only comments)
            data = {}
        else:
            where = f"{e.path}: " if e.path else ""
            raise SettingsError(f"config file {path}: {where}{e.problem}") from None
    data = data or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SettingsError(f"config file {path}: expected a mapping of sections to mappings")
    return {str(k): v for k, v in data.items()}


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
