"""Predictive pacing: how many lines to open now. Pure: state and a learned model in, a number out.

The question at each tick: if we dial N more numbers now, how many of the people who answer
will find no agent in time? The pacer looks ahead over the next ring timeout, cut into short
bins, and in each bin compares two random counts, both sums of independent Bernoulli variables:

- **supply**: agents on a call finishing talk and wrap-up within the bin (given how long each
  has talked: the talk-time distribution, conditioned), agents whose wrap-up ends in the bin
  (known), added to the agents left idle so far;
- **demand**: live calls already waiting for an agent, ringing calls answered by a person in
  the bin (given how long each has rung), and the N new calls' live answers.

Their distributions are computed exactly (probability generating functions, one FFT per bin):
counts are small, and the normal approximation used before put imagined shortfalls in the
tails of an upside-only supply. Answers the bin cannot serve are abandoned; idle agents carry
over. This gives the expected abandonment for every N, and the pacer dials while the *last*
line's live answer is unlikely enough to be abandoned (a marginal rule: every live answer is
either connected or abandoned, so equal marginal risk everywhere spends the abandonment budget
where it buys the most connected calls, rather than keeping each decision's average under the
target). That allowed chance is corrected in closed loop from the abandonment
actually realised over the legal window (default 3 % of live answers over 30 days), aiming a
little under the limit: bad luck makes the pacer more careful, a margin lets it work harder.

Everything here is a plain function of its arguments: the service, the tests and
``puente bench pacing`` run the same code.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

SQRT2 = math.sqrt(2.0)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


def log_pgf(p: np.ndarray, w: np.ndarray, order: int = 5) -> np.ndarray:
    """``log E[w**S_k]`` for ``S_k = sum_i Bernoulli(p[i, k])``, at the points ``w``: (K, len(w)).

    ``log(1 + p (w - 1))`` is summed as its power series in ``p`` (power sums of the column,
    cheap for hundreds of agents or calls); the rows with some ``p > 0.2`` (where the series
    converges slowly) are taken exactly: their sum's distribution in each column (the product
    of the ``(1 - p) + p z``, one row at a time), evaluated at ``w``. (A log per row, column
    and point was most of a pacing step: tens of ringing calls past 0.2, times 14 columns,
    times 513 points.) Points on the unit circle: ``|w - 1| <= 2``.
    """
    out = np.zeros((p.shape[1], len(w)), dtype=complex)
    if p.shape[0] == 0:
        return out
    w1 = w - 1.0
    big = p.max(axis=1) > 0.2
    small = p[~big]
    pj = np.ones_like(small)
    w1j = np.ones_like(w1)
    for j in range(1, order + 1):
        pj = pj * small
        w1j = w1j * w1
        out += ((-1) ** (j + 1) / j) * pj.sum(axis=0)[:, None] * w1j[None, :]
    if big.any():  # (a ringing call's odds go over 0.2 as its ringing ages)
        rows = p[big]
        coef = np.zeros((p.shape[1], len(rows) + 1))  # (column, count): P(sum = count)
        coef[:, 0] = 1.0
        for n, q in enumerate(rows, start=1):
            coef[:, 1 : n + 1] = coef[:, 1 : n + 1] * (1.0 - q)[:, None] + coef[:, :n] * q[:, None]
            coef[:, 0] *= 1.0 - q
        # Horner's rule at every point (elementwise: a matrix product here would start the
        # BLAS threads, which spin a core of their own between pacing steps).
        value = np.broadcast_to(coef[:, -1:], (coef.shape[0], len(w))).astype(complex)
        for m in range(coef.shape[1] - 2, -1, -1):
            value *= w
            value += coef[:, m : m + 1]
        with np.errstate(divide="ignore"):  # (a column certain to be 0 at a point: log 0)
            out += np.log(value)
    return out


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


#: A live answer's delay before a campaign has any (seconds from the Originate).
DEFAULT_ANSWER_S = 7.0
#: Talk time before a campaign has its own: a mean of 3 minutes, widely spread.
DEFAULT_TALK = Lognormal.from_mean(180.0, 0.6)


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

    def __post_init__(self) -> None:
        # The delays as arrays, once: searched on every pacing step (a tuple of 3,000 would be
        # converted to an array at each search).
        live = np.asarray(self.live_delays or (DEFAULT_ANSWER_S,), dtype=float)
        object.__setattr__(self, "_live", live)
        object.__setattr__(self, "_ends", np.asarray(self.ring_end_delays, dtype=float))

    def answered_by(self, t: ArrayLike) -> np.ndarray:
        """P(a live call has answered within t seconds of its Originate | it will answer),
        for a time or an array of them (no delays learnt: ``DEFAULT_ANSWER_S``)."""
        d = self._live  # type: ignore[attr-defined]
        return np.searchsorted(d, t, side="right") / len(d)

    def still_ringing(self, age: ArrayLike, p_live: ArrayLike | None = None) -> np.ndarray:
        """P(a dial has not ended by ``age``), whatever its outcome (an age or an array). With
        no ring times learnt, only live answers end a dial: at ``p_live`` (the model's own,
        or each dial's odds)."""
        e = self._ends  # type: ignore[attr-defined]
        if not len(e):
            p = self.p_live if p_live is None else p_live
            return 1.0 - p * self.answered_by(age)
        return 1.0 - np.searchsorted(e, age, side="right") / len(e)

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
    # For every agent on a call: seconds since that call was connected.
    busy_elapsed: tuple[float, ...]
    # For every call still ringing: seconds since its Originate.
    ringing_ages: tuple[float, ...]
    # Live answers waiting for an agent right now (in AMD or in the queue).
    waiting_live: int
    lines_available: int  # trunk capacity left
    # Realised over the legal window (e.g. 30 days): live answers and abandoned ones.
    window_live: int = 0
    window_abandoned: int = 0
    # The same over the last 24 hours (the per-day guard), when known: a day may not spend
    # the window's slack to go over the target on its own.
    day_live: int | None = None
    day_abandoned: int = 0
    # For every agent in wrap-up: seconds until it ends (known: the call ended, the queue's
    # wrap-up time runs from there).
    wrap_left: tuple[float, ...] = ()
    # The live-answer odds of each ringing call (in ``ringing_ages``' order) and of a line
    # opened now, when they differ from the model's single ``p_live`` (:class:`HourlyOdds`:
    # by the debtor's local hour). Empty / None: ``p_live`` for every dial.
    ringing_odds: tuple[float, ...] = ()
    new_odds: float | None = None

    def __post_init__(self) -> None:
        if self.ringing_odds and len(self.ringing_odds) != len(self.ringing_ages):
            raise ValueError(
                f"ringing_odds has {len(self.ringing_odds)} values for "
                f"{len(self.ringing_ages)} ringing calls"
            )


@dataclass(frozen=True)
class PacingSettings:
    abandon_target: float = 0.03  # the legal limit, over the window
    # The loop aims under the limit by this many standard deviations of the window's realised
    # rate, sqrt(target / live answers): the window must stay under the limit whatever the
    # last calls bring, and the loop cannot undo them. Small windows (small floors, the start
    # of a window) are noisier, so they aim lower; the margin fades as the window fills.
    aim_sd: float = 1.0
    amd_s: float = 1.5  # from answer to the queue: the detector's decision time
    # The chance, when on aim, that the last line opened brings a live answer no agent takes.
    # Far above the target: most lines' answers meet an idle agent. Set so that the loop
    # sits near 1 on a 20-agent floor; the loop corrects it per campaign.
    marginal_abandon: float = 0.055
    # How hard the realised rate corrects it: factor = 1 + gain * slack (slack relative to aim).
    loop_gain: float = 3.0
    min_target_factor: float = 0.25
    max_target_factor: float = 2.0
    # Pseudo-counts at the aim that keep the first calls of a window from swinging the loop.
    prior_live: int = 200
    max_lines_per_agent: int = 12
    step_s: float = 2.0  # look-ahead bins, over a ring timeout and the AMD
    steps: int = 14


@dataclass
class Service:
    """Agent time per connected call: talk (lognormal) then a fixed wrap-up."""

    talk: Lognormal = DEFAULT_TALK
    wrap_s: float = 20.0
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    TABLE_RES_S = 0.25
    TABLE_MAX_S = 7200.0

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(talk + wrap <= x), vectorised through a table at 0.25 s."""
        if self._table is None:
            shifted = Lognormal(self.talk.mu, self.talk.sigma, self.talk.shift + self.wrap_s)
            n = int(self.TABLE_MAX_S / self.TABLE_RES_S) + 1
            t = np.arange(n) * self.TABLE_RES_S - shifted.shift
            z = (np.log(np.maximum(t, 1e-12)) - shifted.mu) / (shifted.sigma * SQRT2)
            erf = np.frompyfunc(math.erf, 1, 1)(z).astype(float)
            self._table = np.where(t > 0, 0.5 * (1.0 + erf), 0.0)
        idx = np.clip((x / self.TABLE_RES_S).astype(np.int64), 0, len(self._table) - 1)
        return self._table[idx]


def learn_service(
    talk_s: Sequence[float],
    wrap_s: float,
    prior_calls: int = 100,
    keep: int = 2000,
    default: Lognormal = DEFAULT_TALK,
) -> Service:
    """The agents' time per call from a campaign's recent connected calls: a lognormal fitted
    to their talk times (log-moments), shrunk toward ``default`` (180 s) by ``prior_calls``
    pseudo-calls, then the queue's wrap-up. Rounded (2 decimals) so that the same fit gives
    the same :class:`Service`, whose table is then built once.

    Only finished calls are seen, so a young campaign's fit leans short (long calls have not
    ended yet) until the prior is outweighed; the closed loop covers that early optimism.
    """
    logs = [math.log(x) for x in list(talk_s)[-keep:] if x > 0]
    n = len(logs)
    m0, s0 = default.mu, default.sigma**2 + default.mu**2  # the prior's first two log-moments
    m1 = (prior_calls * m0 + sum(logs)) / (prior_calls + n)
    m2 = (prior_calls * s0 + sum(v * v for v in logs)) / (prior_calls + n)
    sigma = math.sqrt(max(m2 - m1 * m1, 0.01))
    return Service(Lognormal(round(m1, 2), round(sigma, 2)), round(max(0.0, wrap_s), 1))


def loop_factor(state: PacingState, s: PacingSettings) -> float:
    """How much the realised window moves the allowed risk: above 1 under the aim, below after
    an overshoot. The window is seeded with ``prior_live`` answers at the aim. With the last
    24 hours known (``day_live``), the smaller of the two: the per-day guard."""
    if s.abandon_target <= 0:
        return 0.0  # no abandonment allowed: only lines that cannot cause one
    factor = _factor(state.window_live, state.window_abandoned, s)
    if state.day_live is not None:
        factor = min(factor, _factor(state.day_live, state.day_abandoned, s))
    return factor


def _factor(live_answers: int, abandoned: int, s: PacingSettings) -> float:
    live = live_answers + s.prior_live
    noise = s.aim_sd * math.sqrt(s.abandon_target / live)
    aim = max(0.5 * s.abandon_target, s.abandon_target - noise)
    realised = (abandoned + s.prior_live * aim) / live
    slack = (aim - realised) / aim
    return min(s.max_target_factor, max(s.min_target_factor, 1.0 + s.loop_gain * slack))


def effective_target(state: PacingState, s: PacingSettings) -> float:
    """The marginal abandonment chance allowed now (the loop applied)."""
    return s.marginal_abandon * loop_factor(state, s)


@dataclass(frozen=True)
class Outlook:
    """The look-ahead's inputs, per bin ``k``: who may free up, who may answer."""

    free_agents: int
    freeing: np.ndarray  # (agents on a call or in wrap-up, K): P(agent i frees up in bin k)
    answering: np.ndarray  # (ringing calls, K): P(call j reaches the queue live in bin k)
    waiting_live: int  # live answers already there (bin 0)
    new_live: np.ndarray  # (K,): P(a line opened now reaches the queue live in bin k)
    # What expected_abandoned computes of the above for an FFT length, kept for its next call
    # (a pacing step asks it several times, mostly at the same length).
    _by_size: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def total_agents(self) -> int:
        return self.free_agents + self.freeing.shape[0]


def outlook(
    state: PacingState, model: AnswerModel, service: Service, settings: PacingSettings
) -> Outlook:
    """Per-bin probabilities from the service-time and answer models, conditioned on ages.

    The look-ahead covers a ring timeout and the AMD (``settings.steps`` bins, more when the
    ring timeout, or a learnt answer delay, is longer): a line opened now may be answered
    until then, and an answer beyond the look-ahead is demand the pacer would never weigh
    (with answers spread over a 60 s ring, it opened lines for twice the answers it saw).
    """
    # The latest a call may still be answered: its ring timeout, or the latest learnt answer
    # (delays recorded under a longer timeout: the longer one, whichever the model was told).
    latest = model.live_delays[-1] if model.live_delays else DEFAULT_ANSWER_S  # (sorted)
    reach_s = max(model.ring_timeout_s, latest)
    steps = max(settings.steps, math.ceil((reach_s + settings.amd_s) / settings.step_s - 1e-9))
    edges = np.arange(steps + 1) * settings.step_s
    freeing = np.zeros((0, steps))
    if state.busy_elapsed:
        # An agent on a call for e seconds: its talk lasts longer than e, then the wrap-up.
        e = np.asarray(state.busy_elapsed)[:, None]
        f0 = service.cdf(e + service.wrap_s)  # P(talk <= e)
        survive = np.maximum(1.0 - f0, 1e-9)
        q = np.clip((service.cdf(e + edges[None, :]) - f0) / survive, 0.0, 1.0)
        freeing = np.diff(q, axis=1)
    if state.wrap_left:
        # An agent in wrap-up frees up when it ends: a certainty, in its bin.
        left = np.asarray(state.wrap_left)[:, None]
        wrapping = np.diff((left <= edges[None, :]).astype(float), axis=1)
        freeing = np.concatenate([freeing, wrapping])
    answer_edges = np.maximum(0.0, edges - settings.amd_s)
    answered = model.answered_by
    answering = np.zeros((0, steps))
    if state.ringing_ages:
        ages = np.asarray(state.ringing_ages)
        live = ages < reach_s
        if state.ringing_odds:
            p = np.asarray(state.ringing_odds)[live][:, None]
        else:
            p = np.full((int(live.sum()), 1), model.p_live)
        ages = ages[live][:, None]
        g0 = answered(ages)
        still = np.maximum(model.still_ringing(ages, p), 1e-9)
        q = np.clip(p * (answered(ages + answer_edges[None, :]) - g0) / still, 0, 1)
        answering = np.diff(q, axis=1)
    new_live = np.diff(_new_odds(state, model) * answered(answer_edges))
    return Outlook(state.free_agents, freeing, answering, state.waiting_live, new_live)


def _new_odds(state: PacingState, model: AnswerModel) -> float:
    """A line opened now: the odds of a live answer (the state's, else the model's)."""
    return model.p_live if state.new_odds is None else state.new_odds


def expected_abandoned(o: Outlook, lines: np.ndarray) -> np.ndarray:
    """Expected live answers abandoned over the look-ahead if ``lines[b]`` lines open now.

    Bin by bin: the idle pool's distribution plus the agents freeing up minus the answers
    arriving, an exact convolution (in Fourier space: sums of independent counts multiply
    their generating functions; new lines are Binomial(n, p_k)). A negative balance is
    abandoned; what is left is the next bin's idle pool. Agents wait for calls; calls do not
    wait for agents (the grace is shorter than a bin).
    """
    lines = np.asarray(lines, dtype=float)
    total = o.total_agents
    steps = len(o.new_live)
    arrive = o.answering.sum(axis=0) + lines.max() * o.new_live
    arrive[0] += o.waiting_live
    # FFT length: room for the idle pool's reach, a bin's agents freeing up and a bin's largest
    # demand (negligible mass beyond 6 standard deviations), so that the circular convolution
    # does not wrap. Bins are independent in the model, so the pool is capped at its reach
    # (at most the agents there are) rather than let a wrapped balance pass for a shortfall.
    free_k = o.freeing.sum(axis=0)
    free_sum = float(free_k.sum())
    pool_hi = min(total, o.free_agents + int(free_sum + 6.0 * math.sqrt(free_sum) + 4.0))
    reach = pool_hi + int((free_k + 6.0 * np.sqrt(free_k) + 4.0).max())
    demand_hi = int((arrive + 6.0 * np.sqrt(arrive) + 4.0).max())
    size = 1 << max(4, math.ceil(math.log2(reach + demand_hi + 2)))
    cached = o._by_size.get(size)
    if cached is None:
        w = np.exp(-2j * np.pi * np.arange(size // 2 + 1) / size)
        wc = np.conj(w)  # demand counts down
        known = log_pgf(o.freeing, w) + log_pgf(o.answering, wc)
        if o.waiting_live:
            known[0] += o.waiting_live * np.log(wc)
        per_line = np.log1p(o.new_live[:, None] * (wc[None, :] - 1.0))
        cached = o._by_size[size] = (known, per_line)
    known, per_line = cached
    gen = np.exp(known[:, None, :] + lines[None, :, None] * per_line[:, None, :])  # (K, B, .)
    x = np.arange(size)
    below = slice(reach + 1, size)  # wrapped around from below zero: a shortfall of size - x
    short = np.where(x > reach, size - x, 0).astype(float)
    idle = np.zeros((len(lines), size))
    idle[:, o.free_agents] = 1.0
    lost = np.zeros(len(lines))
    for k in range(steps):
        bal = np.fft.irfft(np.fft.rfft(idle, axis=1) * gen[k], n=size, axis=1)
        np.maximum(bal, 0.0, out=bal)  # rounding noise
        lost += bal @ short
        bal[:, 0] += bal[:, below].sum(axis=1)
        bal[:, pool_hi] += bal[:, pool_hi + 1 : reach + 1].sum(axis=1)
        bal[:, below] = 0.0
        bal[:, pool_hi + 1 : reach + 1] = 0.0
        idle = bal
    return lost


def lines_to_open(
    state: PacingState, model: AnswerModel, service: Service, settings: PacingSettings
) -> int:
    """How many numbers to dial now: while the last line's live answer would rarely be lost.

    The n-th line is worth opening if ``(E[abandoned | n] - E[abandoned | n - 1]) / P(live)``
    stays within :func:`effective_target`. That marginal risk grows with n, so the answer is
    bracketed by a few batched evaluations (geometric, then linear).
    """
    total_agents = state.free_agents + len(state.busy_elapsed) + len(state.wrap_left)
    if total_agents == 0 or state.lines_available <= 0 or _new_odds(state, model) <= 0:
        return 0
    o = outlook(state, model, service, settings)
    p_line = float(o.new_live.sum())
    cap = min(state.lines_available, settings.max_lines_per_agent * total_agents)
    # Progressive is always safe: a line per free agent not already spoken for.
    lo = max(0, min(cap, state.free_agents - len(state.ringing_ages) - state.waiting_live))
    hi = cap
    if p_line <= 0 or lo >= hi:
        return lo
    allowed = effective_target(state, settings) * p_line

    def ok(ns: np.ndarray) -> np.ndarray:
        both, where = np.unique(np.concatenate([ns - 1, ns]), return_inverse=True)
        lost = expected_abandoned(o, both)[where]
        return lost[len(ns) :] - lost[: len(ns)] <= allowed

    first = np.array([1, 2, 3, 4, 6, 8, 12, 16])
    cand = lo + first[first <= hi - lo]
    widened = False
    while lo < hi:
        good = ok(cand)
        if good.all():
            lo = int(cand[-1])
            if widened or lo >= hi:
                return lo
            widened = True  # beyond 16 lines: a geometric grid up to the cap
            cand = np.unique(lo + np.round(np.geomspace(1, hi - lo, num=16)).astype(int))
            continue
        bad = int(np.argmax(~good))
        if bad > 0:
            lo = int(cand[bad - 1])
        hi = int(cand[bad]) - 1
        cand = np.arange(lo + 1, hi + 1)
        if len(cand) > 16:
            cand = np.unique(np.linspace(lo + 1, hi, num=16).round().astype(int))
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
    recent = sorted(list(live_delays)[-keep:]) if live_delays else [DEFAULT_ANSWER_S]
    ends = sorted(list(ring_end_delays)[-keep_ends:]) if len(ring_end_delays) >= 50 else []
    return AnswerModel(p, tuple(recent), ring_timeout_s, tuple(ends))


#: Pseudo-dials at the campaign's own rate (shaped by the hour's history) that an hour's dials
#: of this run must outweigh before they move its odds: an hour's rate from a few dozen dials
#: would swing the pacer more than the hour's real difference.
HOUR_PRIOR_DIALS = 200.0


class HourlyOdds:
    """Live-answer odds by the debtor's local hour (0-23), learnt online per campaign.

    People answer more at some hours than at others (after work more than mid-morning), and a
    campaign that dials several zones reaches them at different local hours at once. One odds
    for every dial overdials when the run moves from good hours into poor ones (the closed
    loop then pays for it in abandonment) and underdials the other way. Here:

    - ``shape[h]``: the hour's rate over the campaign's, from its history (the 14 days the
      rescore learns, ``campaign_answer_hours``: ``1 + lift``); 1 without history;
    - the run's own dials and live answers per hour, counted as they resolve;
    - the odds of hour ``h`` given the campaign's overall odds ``p`` (the answer model's):
      ``(live_h + k p0 shape_h) / (dials_h + k)``, where ``p0`` is ``p`` taken back to a
      shape of 1 over the hours this run dialed (a run of good hours does not raise the
      others), and ``k`` = :data:`HOUR_PRIOR_DIALS`.

    A dial of unknown hour (no zone) gets ``p``. A line opened now gets the mean odds of the
    hours the latest dials went to: the next leads are of the same mix. Pure: the caller says
    which hour each dial was in (its zone's local hour when dialed).
    """

    #: The latest dials whose hours make a new line's odds.
    RECENT = 50

    def __init__(self, shape: Sequence[float] | None = None, prior_dials: float = HOUR_PRIOR_DIALS):
        self.shape = np.ones(24)
        if shape is not None:
            self.set_shape(shape)
        self.prior = float(prior_dials)
        self.dials = np.zeros(24)
        self.live = np.zeros(24)
        self.recent: deque[int | None] = deque(maxlen=self.RECENT)

    def set_shape(self, shape: Sequence[float]) -> None:
        """The hours' rates over the campaign's (24 values, each in [0, 2]: ``1 + lift``)."""
        values = np.asarray(shape, dtype=float)
        if values.shape != (24,) or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"an hour shape is 24 non-negative numbers, not {shape!r}")
        self.shape = values

    def placed(self, hour: int | None) -> None:
        """A dial of that hour was placed (its outcome not known yet)."""
        self.recent.append(hour)

    def dialed(self, hour: int | None) -> None:
        """A dial of that hour resolved (answered by anyone, or ended unanswered)."""
        if hour is not None:
            self.dials[hour] += 1

    def answered_live(self, hour: int | None) -> None:
        """A dial of that hour was answered by a person."""
        if hour is not None:
            self.live[hour] += 1

    def table(self, p: float) -> np.ndarray:
        """The 24 hours' odds given the campaign's overall odds ``p``."""
        known = self.dials.sum()
        weighted = float(self.dials @ self.shape)
        p0 = p * known / weighted if known and weighted > 0 else p
        odds = (self.live + self.prior * p0 * self.shape) / (self.dials + self.prior)
        return np.clip(odds, 0.0, 1.0)

    def new_line(self, table: np.ndarray, p: float) -> float | None:
        """A line opened now: the mean odds (``table``'s) of the latest dials' hours; None
        (the model's ``p``) when none of them had a known hour."""
        if not any(h is not None for h in self.recent):
            return None
        return sum(p if h is None else float(table[h]) for h in self.recent) / len(self.recent)
