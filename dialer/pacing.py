"""Predictive pacing: how many lines to open now. Pure: state and a learned model in, a number out.

The question at each tick: if we dial N more numbers now, how many of the people who answer
will find no agent in time? The pacer looks ahead to the moment the new calls' live answers
need an agent (their typical answer delay plus the AMD decision) and compares two random
quantities at that moment, both sums of independent Bernoulli variables:

- **supply**: agents free now, plus each busy agent that will have finished talk and wrap-up
  by then (given how long it has been busy: the talk-time distribution, conditioned);
- **demand**: live calls already waiting for an agent, plus each ringing call that will be
  answered by a person by then (given how long it has rung), plus the N new calls.

The expected overflow ``E[max(0, demand - supply)]`` (normal approximation) over the expected
live answers is the abandonment rate the decision risks; the pacer opens the most lines that
keep it within the target. The target itself is corrected in closed loop from the abandonment
actually realised over the legal window (default 3 % of live answers over 30 days), so a run
of bad luck makes the pacer more careful and a margin lets it work harder.

Everything here is a plain function of its arguments: the service, the tests and
``puente bench pacing`` run the same code.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


def expected_overflow(mean: float, var: float) -> float:
    """``E[max(0, Z)]`` for ``Z ~ N(mean, var)``."""
    if var <= 1e-12:
        return max(0.0, mean)
    sd = math.sqrt(var)
    z = mean / sd
    return sd * _phi(z) + mean * _cdf(z)


def positive_part(mean: float, var: float) -> tuple[float, float]:
    """Mean and variance of ``max(0, Z)`` for ``Z ~ N(mean, var)``."""
    if var <= 1e-12:
        m = max(0.0, mean)
        return m, 0.0
    sd = math.sqrt(var)
    z = mean / sd
    cdf, pdf = _cdf(z), _phi(z)
    m1 = sd * pdf + mean * cdf
    m2 = (mean * mean + var) * cdf + mean * sd * pdf
    return m1, max(0.0, m2 - m1 * m1)


@dataclass(frozen=True)
class Lognormal:
    """A positive duration: ``exp(N(mu, sigma^2))`` seconds, plus a fixed ``shift``."""

    mu: float
    sigma: float
    shift: float = 0.0

    @classmethod
    def from_mean(cls, mean: float, sigma: float, shift: float = 0.0) -> Lognormal:
        return cls(math.log(mean) - sigma * sigma / 2.0, sigma, shift)

    def cdf(self, x: float) -> float:
        x -= self.shift
        if x <= 0:
            return 0.0
        return _cdf((math.log(x) - self.mu) / self.sigma)

    def done_within(self, elapsed: float, horizon: float) -> float:
        """P(duration <= elapsed + horizon | duration > elapsed)."""
        survive = 1.0 - self.cdf(elapsed)
        if survive <= 1e-9:
            return 1.0
        return min(1.0, max(0.0, (self.cdf(elapsed + horizon) - self.cdf(elapsed)) / survive))


@dataclass(frozen=True)
class AnswerModel:
    """What a dial becomes, learned per campaign: live answers and when they answer."""

    p_live: float  # share of dials answered by a person
    # Answer delays (seconds from the Originate) of recent live answers, sorted; their
    # empirical distribution is the answer-time model.
    live_delays: tuple[float, ...]
    ring_timeout_s: float = 25.0
    # How long recent dials of every outcome rang before they ended (answered, busy, failed,
    # timed out), sorted: P(a dial is still ringing at age a). Empty: only live answers end.
    ring_end_delays: tuple[float, ...] = ()

    def answered_by(self, t: float) -> float:
        """P(a live call has answered within t seconds of its Originate | it will answer)."""
        d = self.live_delays
        if not d:
            return 0.0
        return bisect.bisect_right(d, t) / len(d)

    def still_ringing(self, age: float) -> float:
        """P(a dial has not ended by ``age``), whatever its outcome."""
        e = self.ring_end_delays
        if not e:
            return 1.0 - self.p_live * self.answered_by(age)
        return 1.0 - bisect.bisect_right(e, age) / len(e)

    def live_within(self, age: float, horizon: float) -> float:
        """P(a call ringing for ``age`` s is answered by a person in the next ``horizon`` s)."""
        if age >= self.ring_timeout_s:
            return 0.0
        ringing = self.still_ringing(age)
        if ringing <= 1e-9:
            return 0.0
        gain = self.answered_by(age + horizon) - self.answered_by(age)
        return min(1.0, max(0.0, self.p_live * gain / ringing))


@dataclass(frozen=True)
class PacingState:
    now: float
    free_agents: int
    # For every agent on a call or in wrap-up: seconds since that call was connected.
    busy_elapsed: tuple[float, ...]
    # For every call still ringing: seconds since its Originate.
    ringing_ages: tuple[float, ...]
    # Live answers waiting for an agent right now (in AMD or in the queue).
    waiting_live: int
    lines_available: int  # trunk capacity left
    # Realised over the legal window (e.g. 30 days): live answers and abandoned ones.
    window_live: int = 0
    window_abandoned: int = 0


@dataclass(frozen=True)
class PacingSettings:
    abandon_target: float = 0.03
    amd_s: float = 1.5  # from answer to the queue: the detector's decision time
    # How hard the realised rate corrects the target: target' = target * (1 + gain * slack).
    loop_gain: float = 1.5
    min_target_factor: float = 0.25
    max_target_factor: float = 2.0
    # Pseudo-counts that keep the first calls of a window from swinging the target.
    prior_live: int = 200
    max_lines_per_agent: int = 12
    # Agents freeing up add upside-only randomness, which a normal approximation turns into
    # imagined shortfalls; weight their variance down (1: full, 0: means only).
    supply_var_weight: float = 1.0
    step_s: float = 2.0  # look-ahead bins, over a ring timeout and the AMD
    steps: int = 14


@dataclass
class Service:
    """Agent time per connected call: talk (lognormal) then a fixed wrap-up."""

    talk: Lognormal = field(default_factory=lambda: Lognormal.from_mean(180.0, 0.6))
    wrap_s: float = 20.0
    _table: np.ndarray | None = field(default=None, init=False, repr=False)

    TABLE_RES_S = 0.25
    TABLE_MAX_S = 7200.0

    def done_within(self, elapsed: float, horizon: float) -> float:
        shifted = Lognormal(self.talk.mu, self.talk.sigma, self.talk.shift + self.wrap_s)
        return shifted.done_within(elapsed, horizon)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(talk + wrap <= x), vectorised through a table at 0.25 s."""
        if self._table is None:
            shifted = Lognormal(self.talk.mu, self.talk.sigma, self.talk.shift + self.wrap_s)
            n = int(self.TABLE_MAX_S / self.TABLE_RES_S) + 1
            self._table = np.array([shifted.cdf(i * self.TABLE_RES_S) for i in range(n)])
        idx = np.clip((x / self.TABLE_RES_S).astype(np.int64), 0, len(self._table) - 1)
        return self._table[idx]


def effective_target(state: PacingState, s: PacingSettings) -> float:
    live = state.window_live + s.prior_live
    realised = (state.window_abandoned + s.prior_live * s.abandon_target) / live
    slack = (s.abandon_target - realised) / s.abandon_target
    factor = 1.0 + s.loop_gain * slack
    factor = min(s.max_target_factor, max(s.min_target_factor, factor))
    return s.abandon_target * factor


def lines_to_open(
    state: PacingState, model: AnswerModel, service: Service, settings: PacingSettings
) -> int:
    """How many numbers to dial now so the expected abandonment stays within the target.

    The look-ahead cuts the next ring timeout into bins of ``step_s``. In each bin, agents
    free up (busy agents finishing, by the service-time model given how long they have been
    busy) and live answers reach the queue (calls in motion and the new ones, by the answer
    model, ``amd_s`` after answering). Agents wait for calls; calls do not wait for agents
    (the grace is shorter than a bin): idle agents carry over, the answers a bin cannot serve
    are abandoned. Each bin's deficit is taken in expectation under a normal approximation;
    the total over the expected live answers is the abandonment rate the decision risks.
    """
    total_agents = state.free_agents + len(state.busy_elapsed)
    if total_agents == 0 or state.lines_available <= 0 or model.p_live <= 0:
        return 0
    steps = settings.steps
    edges = np.arange(steps + 1) * settings.step_s
    free_mean = np.zeros(steps)
    free_var = np.zeros(steps)
    if state.busy_elapsed:
        e = np.asarray(state.busy_elapsed)[:, None]
        f0 = service.cdf(e)
        survive = np.maximum(1.0 - f0, 1e-9)
        q = np.clip((service.cdf(e + edges[None, :]) - f0) / survive, 0.0, 1.0)
        dq = np.diff(q, axis=1)
        free_mean = dq.sum(axis=0)
        free_var = (dq * (1.0 - dq)).sum(axis=0)
    answer_edges = np.maximum(0.0, edges - settings.amd_s)
    delays = np.asarray(model.live_delays) if model.live_delays else np.array([7.0])

    def answered(x: np.ndarray) -> np.ndarray:
        return np.searchsorted(delays, x, side="right") / len(delays)

    arr_mean = np.zeros(steps)
    arr_var = np.zeros(steps)
    arr_mean[0] += state.waiting_live
    if state.ringing_ages:
        ages = np.asarray(state.ringing_ages)
        ages = ages[ages < model.ring_timeout_s][:, None]
        g0 = answered(ages)
        if model.ring_end_delays:
            ends = np.asarray(model.ring_end_delays)
            still = 1.0 - np.searchsorted(ends, ages, side="right") / len(ends)
        else:
            still = 1.0 - model.p_live * g0
        still = np.maximum(still, 1e-9)
        q = np.clip(model.p_live * (answered(ages + answer_edges[None, :]) - g0) / still, 0, 1)
        dq = np.diff(q, axis=1)
        arr_mean += dq.sum(axis=0)
        arr_var += (dq * (1.0 - dq)).sum(axis=0)
    new_p = np.diff(model.p_live * answered(answer_edges))
    target = effective_target(state, settings)
    cap = min(state.lines_available, settings.max_lines_per_agent * total_agents)
    free_mean_l, free_var_l = free_mean.tolist(), free_var.tolist()
    arr_mean_l, arr_var_l, new_p_l = arr_mean.tolist(), arr_var.tolist(), new_p.tolist()

    def risk(n: int) -> float:
        idle_mean, idle_var = float(state.free_agents), 0.0
        lost = live = 0.0
        for k in range(steps):
            p = new_p_l[k]
            d_mean = arr_mean_l[k] + n * p
            d_var = arr_var_l[k] + n * p * (1.0 - p)
            a_mean = idle_mean + free_mean_l[k]
            a_var = idle_var + settings.supply_var_weight * free_var_l[k]
            # (never more than the bin's arrivals: the normal tail of an idle pool is not loss)
            short = min(d_mean, expected_overflow(d_mean - a_mean, d_var + a_var))
            lost += short
            live += d_mean
            # agents left idle after the bin: max(0, A - D), its first two moments
            idle_mean, idle_var = positive_part(a_mean - d_mean, a_var + d_var)
        return lost / live if live > 0 else 0.0

    # Progressive is always safe: a line per free agent not already spoken for.
    floor = max(0, min(cap, state.free_agents - len(state.ringing_ages) - state.waiting_live))
    if risk(floor) > target:
        return floor
    lo, hi = floor, cap
    while lo < hi:  # the largest n with risk(n) <= target (risk grows with n)
        mid = (lo + hi + 1) // 2
        if risk(mid) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def learn_answer_model(
    dials: int,
    live_answers: int,
    live_delays: Sequence[float],
    ring_timeout_s: float = 25.0,
    prior_dials: int = 50,
    prior_p_live: float = 0.15,
    keep: int = 500,
    ring_end_delays: Sequence[float] = (),
    keep_ends: int = 3000,
) -> AnswerModel:
    """The answer model from a campaign's recent outcomes (with a weak prior)."""
    p = (live_answers + prior_dials * prior_p_live) / (dials + prior_dials)
    recent = sorted(live_delays[-keep:]) if live_delays else [7.0]
    ends = sorted(ring_end_delays[-keep_ends:]) if len(ring_end_delays) >= 50 else []
    return AnswerModel(p, tuple(recent), ring_timeout_s, tuple(ends))
