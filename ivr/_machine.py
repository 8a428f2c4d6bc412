"""The flow machine: a flow, a language and data in; steps out; events back in. Pure.

The adapter (FastAGI, or the CLI's simulator) asks :meth:`FlowMachine.start` for the first
step, performs it, and reports what happened with :meth:`played`, :meth:`collected` or
:meth:`action_done`, each of which returns the next step, until :class:`Transfer` or
:class:`Finish`. No I/O, no clock: the same inputs always give the same dialogue.

Digits collected with ``secret: true`` (card data) go to :attr:`FlowMachine.secrets`, never to
:attr:`data` or :attr:`trail`; the adapter hands them to the payment action and clears them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ivr._flow import Catalog, CollectSpec, Flow, PlayItem, State

MAX_STEPS = 500  # a flow that loops without the caller: end it rather than spin


# -- what the caller hears -------------------------------------------------------------------
@dataclass(frozen=True)
class File:
    candidates: tuple[str, ...]  # sound files to try in order (fallbacks)


@dataclass(frozen=True)
class Number:
    value: int


@dataclass(frozen=True)
class Digits:
    value: str


@dataclass(frozen=True)
class Day:
    value: date


Speech = File | Number | Digits | Day


# -- steps -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Play:
    speech: tuple[Speech, ...]


@dataclass(frozen=True)
class Collect:
    speech: tuple[Speech, ...]  # played with barge-in
    spec: CollectSpec


@dataclass(frozen=True)
class RunAction:
    name: str
    args: Mapping[str, str]
    state: str


@dataclass(frozen=True)
class Transfer:
    target: str


@dataclass(frozen=True)
class Finish:
    outcome: str


Step = Play | Collect | RunAction | Transfer | Finish


class FlowMachine:
    def __init__(
        self,
        flow: Flow,
        catalog: Catalog,
        *,
        entry: str,
        language: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if entry not in flow.entries:
            raise KeyError(f"flow {flow.name!r} has no entry {entry!r}")
        self.flow = flow
        self.catalog = catalog
        self.entry = entry
        self.language = language if language in flow.languages else flow.languages[0]
        self.data: dict[str, Any] = dict(data or {})
        self.secrets: dict[str, str] = {}
        self.trail: list[dict[str, str]] = []
        self.state: State = flow.states[flow.entries[entry]]
        self.steps = 0
        self.outcome: str | None = None
        self._tries = 0

    # -- events ------------------------------------------------------------------------------
    def start(self) -> Step:
        return self._enter(self.state.name)

    def played(self) -> Step:
        """The last :class:`Play` step was heard."""
        return self._proceed(self.state)

    def collected(self, digits: str, timed_out: bool = False) -> Step:
        """The caller's keys for the last :class:`Collect` (``#`` already stripped)."""
        s = self.state
        spec = s.collect
        assert spec is not None
        if not spec.no_agent_key and digits == self.flow.agent_key and self.flow.agent:
            self._note(s.name, "agent key")
            return self._enter(self.flow.agent)
        if digits in s.keys:
            self.data[spec.into] = digits  # (a secret collect takes no keys: validated)
            self._note(s.name, f"key {digits}")
            return self._enter(s.keys[digits])
        if digits and s.next and spec.min_digits <= len(digits) <= spec.max_digits:
            if spec.secret:
                self.secrets[spec.into] = digits
                self._note(s.name, "secret entered")
            else:
                self.data[spec.into] = digits
                self._note(s.name, "entered")
            return self._enter(s.next)
        self._tries += 1
        self._note(s.name, "no input" if not digits else "invalid input")
        if self._tries > spec.retries:
            return self._enter(s.fail or self.flow.on_error)
        retry_prompt = spec.noinput if not digits and spec.noinput else spec.invalid
        prefix = self._speech((PlayItem("prompt", retry_prompt),)) if retry_prompt else ()
        return self._count(Collect(prefix + self._speech(s.play), spec))

    def action_done(self, result: str, updates: Mapping[str, Any] | None = None) -> Step:
        s = self.state
        if updates:
            self.data.update(updates)
        self._note(s.name, f"{s.action}: {result}")
        target = s.results.get(result)
        if target is None:
            return self._enter(self.flow.on_error)
        return self._enter(target)

    def failed(self, why: str) -> Step:
        """The last step could not be carried out on a live call (a channel command failed):
        the flow's ``on_error`` (an apology and an agent), or the end if that failed too."""
        return self._failed(self.state, why)

    def clear_secrets(self) -> None:
        self.secrets.clear()

    # -- internals ---------------------------------------------------------------------------
    def _note(self, state: str, event: str) -> None:
        self.trail.append({"state": state, "event": event})

    def _count(self, step: Step) -> Step:
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.outcome = "loop"
            return Finish("loop")
        return step

    def _enter(self, name: str) -> Step:
        s = self.flow.states[name]
        self.state = s
        self._tries = 0
        if s.kind == "collect":
            return self._count(Collect(self._speech(s.play), s.collect))  # type: ignore[arg-type]
        if s.play:
            try:
                speech = self._speech(s.play)
            except _Missing as e:
                return self._failed(s, str(e))
            return self._count(Play(speech))
        return self._proceed(s)

    def _proceed(self, s: State) -> Step:
        if s.kind == "next":
            assert s.next is not None
            return self._enter(s.next)
        if s.kind == "action":
            assert s.action is not None
            if s.action == "set_language":
                self.language = s.args["language"]
                return self.action_done("ok")
            if s.action == "set":
                return self.action_done("ok", dict(s.args))
            return self._count(RunAction(s.action, self._args(s), s.name))
        if s.kind == "switch":
            assert s.switch is not None
            value = str(self.data.get(s.switch, ""))
            self._note(s.name, f"{s.switch}={value}" if s.switch != "account" else "switch")
            return self._enter(s.cases.get(value) or s.default or self.flow.on_error)
        if s.kind == "transfer":
            assert s.transfer is not None
            self.outcome = "transfer"
            self._note(s.name, "transfer")
            return Transfer(s.transfer)
        assert s.end is not None
        self.outcome = s.end
        self._note(s.name, f"end {s.end}")
        return Finish(s.end)

    def _failed(self, s: State, why: str) -> Step:
        self._note(s.name, why)
        if s.name == self.flow.on_error:  # never loop on the error state itself
            self.outcome = "error"
            return Finish("error")
        return self._enter(self.flow.on_error)

    def _args(self, s: State) -> dict[str, str]:
        out = {}
        for k, v in s.args.items():
            out[k] = str(self.data.get(v[1:], "")) if v.startswith("$") else v
        return out

    def _speech(self, items: tuple[PlayItem, ...]) -> tuple[Speech, ...]:
        out: list[Speech] = []
        lang = self.language
        for item in items:
            if item.kind == "prompt":
                out.append(File(self.catalog.files(item.value, lang)))
                continue
            value = self.data.get(item.value)
            if value is None or value == "":
                raise _Missing(f"no value for {item.value!r}")
            if item.kind == "prompt_var":
                out.append(File(self.catalog.files(str(value), lang)))
            elif item.kind == "number":
                out.append(Number(int(value)))
            elif item.kind == "digits":
                out.append(Digits(str(value)))
            elif item.kind == "date":
                out.append(Day(value if isinstance(value, date) else date.fromisoformat(value)))
            else:  # money
                out += money_speech(int(value), str(self.data.get("currency", "USD")), self)
        return tuple(out)


class _Missing(Exception):
    pass


def money_speech(cents: int, currency: str, machine: FlowMachine) -> list[Speech]:
    """``1234.05 MXN`` -> number 1234, "pesos", "and", number 5, "centavos" (per language)."""
    units, rest = divmod(cents, 100)
    files = machine.catalog.files
    lang = machine.language
    cur = currency.lower()
    unit = f"currency_{cur}" if f"currency_{cur}" in machine.catalog.texts else "currency_units"
    out: list[Speech] = [Number(units), File(files(unit, lang))]
    if rest:
        out += [File(files("and", lang)), Number(rest), File(files("cents", lang))]
    return out
