"""Who answers a simulated call, and how: a seeded callee model, as data.

A model file (YAML) gives outcome probabilities, timing distributions and per-number
overrides. Every draw for a call comes from a ``random.Random`` seeded by (model seed, number,
attempt), so the same call always has the same fate whatever else runs concurrently.

Outcomes and what a real Asterisk 22 with a PJSIP trunk shows for them (recorded in
``tests/data/asterisk-transcripts``, README table "OriginateResponse Reason codes"):

======================  ===================  ============  ============
outcome                 OriginateResponse    Hangup cause  DialEnd
======================  ===================  ============  ============
human / machine / fax   Success, Reason 4    16            ANSWER
busy (486)              Failure, Reason 0    17            BUSY
congestion (503)        Failure, Reason 0    34            CONGESTION
rejected (603)          Failure, Reason 0    21            NOANSWER
no_answer (timeout)     Failure, Reason 3    19            (none)
unreachable (timer B)   Failure, Reason 0    18            NOANSWER
unallocated (404)       Failure, Reason 0    1             NOANSWER (*)
forbidden (403)         Failure, Reason 0    21            NOANSWER (*)
unauthorized (401)      Failure, Reason 0    21            NOANSWER (*)
======================  ===================  ============  ============

(*) not recorded: a 404 maps to cause 1 (Q.850 "unallocated number"); a 401 or 403 to 21
(chan_pjsip's hangup_sip2cause, as a 603); the DialEnd status is assumed to follow the 603
pattern. Every failure's Hangup carries the SIP code as ``TechCause`` (recorded for 408, 480,
486, 503 and 603). ``forbidden`` and ``unauthorized`` are the trunk's provider refusing the
call: the Hangup comes at once (``fail_after_s``), without ringing.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from pbx._exceptions import PbxError

OUTCOMES = (
    "human",
    "machine",
    "fax",
    "busy",
    "congestion",
    "rejected",
    "no_answer",
    "unreachable",
    "unallocated",
    "forbidden",
    "unauthorized",
)
ANSWERED = frozenset({"human", "machine", "fax"})


class CalleeModelError(PbxError):
    """A callee model file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class WireOutcome:
    """What Asterisk reports for an outcome (see the module docstring)."""

    response: str
    reason: int
    cause: int
    cause_txt: str
    tech_cause: int | None
    dial_status: str | None


WIRE: dict[str, WireOutcome] = {
    "human": WireOutcome("Success", 4, 16, "Normal Clearing", None, "ANSWER"),
    "machine": WireOutcome("Success", 4, 16, "Normal Clearing", None, "ANSWER"),
    "fax": WireOutcome("Success", 4, 16, "Normal Clearing", None, "ANSWER"),
    "busy": WireOutcome("Failure", 0, 17, "User busy", 486, "BUSY"),
    "congestion": WireOutcome("Failure", 0, 34, "Circuit/channel congestion", 503, "CONGESTION"),
    "rejected": WireOutcome("Failure", 0, 21, "Call Rejected", 603, "NOANSWER"),
    "no_answer": WireOutcome("Failure", 3, 19, "User alerting, no answer", 487, None),
    "unreachable": WireOutcome("Failure", 0, 18, "No user responding", 408, "NOANSWER"),
    "unallocated": WireOutcome("Failure", 0, 1, "Unallocated (unassigned) number", 404, "NOANSWER"),
    "forbidden": WireOutcome("Failure", 0, 21, "Call Rejected", 403, "NOANSWER"),
    "unauthorized": WireOutcome("Failure", 0, 21, "Call Rejected", 401, "NOANSWER"),
}


class Distribution(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A positive duration in seconds: ``fixed``, ``uniform`` or ``lognormal``."""

    dist: str = "fixed"
    value: float = 0.0  # fixed
    low: float = 0.0  # uniform
    high: float = 0.0
    median: float = 0.0  # lognormal: median and sigma (of the underlying normal)
    sigma: float = 0.5
    min: float = 0.0
    max: float = 3600.0

    def check(self, where: str) -> None:
        if self.dist not in ("fixed", "uniform", "lognormal"):
            raise CalleeModelError(f"{where}.dist: {self.dist!r} is not fixed/uniform/lognormal")
        for name in ("value", "low", "high", "median", "sigma", "min", "max"):
            if not math.isfinite(getattr(self, name)):  # (NaN passes every comparison below)
                raise CalleeModelError(f"{where}.{name}: {getattr(self, name)} is not a number")
        if self.dist == "fixed" and self.value < 0:
            raise CalleeModelError(f"{where}: fixed needs value >= 0 (seconds)")
        if self.dist == "uniform" and not 0 <= self.low <= self.high:
            raise CalleeModelError(f"{where}: uniform needs 0 <= low <= high")
        if self.dist == "lognormal" and (self.median <= 0 or self.sigma < 0):
            raise CalleeModelError(f"{where}: lognormal needs median > 0 and sigma >= 0")
        if self.min < 0 or self.max < self.min:
            raise CalleeModelError(f"{where}: needs 0 <= min <= max")

    def sample(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            v = self.value
        elif self.dist == "uniform":
            v = rng.uniform(self.low, self.high)
        else:
            try:
                v = self.median * math.exp(rng.gauss(0.0, self.sigma))
            except OverflowError:  # (a huge sigma: beyond any max)
                v = self.max
        return min(self.max, max(self.min, v))


def _fixed(v: float) -> Distribution:
    return Distribution(dist="fixed", value=v)


class ModelFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    seed: int = 1
    outcomes: dict[str, float] = msgspec.field(
        default_factory=lambda: {
            "human": 0.15,
            "machine": 0.25,
            "busy": 0.06,
            "congestion": 0.03,
            "rejected": 0.04,
            "no_answer": 0.40,
            "unallocated": 0.04,
            "unreachable": 0.01,
            "fax": 0.02,
        }
    )
    ring_s: Distribution = Distribution(dist="lognormal", median=7.0, sigma=0.5, min=1.0, max=40)
    fail_after_s: Distribution = Distribution(dist="uniform", low=0.3, high=2.0)
    unreachable_after_s: Distribution = _fixed(32.0)
    # How long a human talks once connected to an agent, and how long before hanging up
    # if nobody comes.
    talk_s: Distribution = Distribution(dist="lognormal", median=150.0, sigma=0.6, min=10)
    patience_s: Distribution = Distribution(dist="uniform", low=3.0, high=20.0)
    # Greeting lengths (speech), for the audio the simulator plays after answer.
    human_greeting_s: Distribution = Distribution(dist="uniform", low=0.4, high=1.4)
    machine_greeting_s: Distribution = Distribution(dist="uniform", low=4.0, high=10.0)
    machine_beep: float = 0.8  # share of machines that beep after the greeting
    # Exact E.164 numbers, or prefixes ending in '*', forced to an outcome.
    numbers: dict[str, str] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class CallFate:
    """Everything the simulator needs to play one call, drawn once."""

    outcome: str
    ring_s: float  # until answer, or until the failure is signalled
    talk_s: float
    patience_s: float
    greeting_s: float
    beep: bool
    wire: WireOutcome = field(repr=False)


class CalleeModel:
    def __init__(self, spec: ModelFile, source: str = "<defaults>") -> None:
        self.spec = spec
        self.source = source
        total = 0.0
        for name, p in spec.outcomes.items():
            if name not in OUTCOMES:
                raise CalleeModelError(
                    f"{source}: outcomes.{name}: unknown outcome (known: {', '.join(OUTCOMES)})"
                )
            if not 0 <= p <= 1:
                raise CalleeModelError(f"{source}: outcomes.{name}: {p} is not in [0, 1]")
            total += p
        if abs(total - 1.0) > 1e-6:
            raise CalleeModelError(f"{source}: outcomes: probabilities sum to {total}, not 1")
        for fname in (
            "ring_s",
            "fail_after_s",
            "unreachable_after_s",
            "talk_s",
            "patience_s",
            "human_greeting_s",
            "machine_greeting_s",
        ):
            getattr(spec, fname).check(f"{source}: {fname}")
        if not 0 <= spec.machine_beep <= 1:  # (NaN is not either)
            raise CalleeModelError(f"{source}: machine_beep: {spec.machine_beep} is not in [0, 1]")
        for number, outcome in spec.numbers.items():
            if outcome not in OUTCOMES:
                raise CalleeModelError(f"{source}: numbers.{number}: unknown outcome {outcome!r}")
        self._outcomes = sorted(spec.outcomes.items())
        self._exact = {k: v for k, v in spec.numbers.items() if not k.endswith("*")}
        self._prefixes = sorted(
            ((k[:-1], v) for k, v in spec.numbers.items() if k.endswith("*")),
            key=lambda kv: -len(kv[0]),
        )

    @classmethod
    def from_file(cls, path: Path) -> CalleeModel:
        try:
            raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise CalleeModelError(f"{path}: {e}") from e
        except ValueError as e:  # a value YAML cannot build: the date 2026-02-30, a huge number
            raise CalleeModelError(f"{path}: {str(e)[:120]}") from e
        try:
            spec = msgspec.convert(raw or {}, ModelFile, strict=False)
        except msgspec.ValidationError as e:
            raise CalleeModelError(f"{path}: {e}") from e
        return cls(spec, str(path))

    def _rng(self, number: str, attempt: str) -> random.Random:
        digest = hashlib.sha256(f"{self.spec.seed}|{number}|{attempt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def fate(self, number: str, attempt: str) -> CallFate:
        rng = self._rng(number, attempt)
        outcome = self._exact.get(number)
        if outcome is None:
            for prefix, forced in self._prefixes:
                if number.startswith(prefix):
                    outcome = forced
                    break
        x = rng.random()
        if outcome is None:
            acc = 0.0
            outcome = self._outcomes[-1][0]
            for name, p in self._outcomes:
                acc += p
                if x < acc:
                    outcome = name
                    break
        s = self.spec
        if outcome in ANSWERED or outcome == "no_answer":
            ring = s.ring_s.sample(rng)
        elif outcome == "unreachable":
            ring = s.unreachable_after_s.sample(rng)
        else:
            ring = s.fail_after_s.sample(rng)
        greeting = (
            s.machine_greeting_s.sample(rng)
            if outcome == "machine"
            else s.human_greeting_s.sample(rng)
        )
        return CallFate(
            outcome=outcome,
            ring_s=ring,
            talk_s=s.talk_s.sample(rng),
            patience_s=s.patience_s.sample(rng),
            greeting_s=greeting,
            beep=outcome == "machine" and rng.random() < s.machine_beep,
            wire=WIRE[outcome],
        )


DEFAULT_MODEL = CalleeModel(ModelFile())
