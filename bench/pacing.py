"""``puente bench pacing``: dialing policies on simulated floors, with the service's pacing code.

A discrete-event simulation of a collections floor: agents, a trunk, dials that end busy,
unanswered, on a machine or with a person (ring times, talk time lognormal with mean 180 s,
wrap-up 20 s, AMD deciding 1.5 s after answer). A live answer is **abandoned** when no agent
takes it within 2 s of the end of the person's greeting (1 s): the queue gets what AMD leaves.

Policies, in the same run on the same callee draws:

- ``progressive``: one line per free agent;
- ``vicidial``: VICIdial's ADAPT_TAPERED with default settings, re-implemented from its
  description (dial level x agents minus calls in progress; every 15 s the level moves by the
  mean agents waiting minus answered calls waiting over agents logged in; kept in [1, 3];
  halved when over half of the last minute's live answers dropped; tapered toward 1.0 past the
  3 % drop cap since midnight);
- ``best_fixed_ratio``: the best fixed dial level found by grid search after the fact
  (highest occupancy with abandonment <= 3 %);
- ``clairvoyant``: knows every outcome in advance and dials only the people who will answer,
  each timed to reach an agent the moment one frees up: an upper bound;
- ``puente``: :func:`dialer.pacing.lines_to_open` with its model learned online.

One JSON object per scenario and policy: ``occupancy`` ((talk + wrap) / logged-in time) and
``abandon_rate`` (abandoned / live answers) as fractions, ``talk_min_per_agent_hour``,
``idle_s_between_calls``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from bench._common import emit
from dialer.pacing import (
    PacingSettings,
    PacingState,
    Service,
    learn_answer_model,
    learn_service,
    lines_to_open,
)

TICK_S = 1.0
GREETING_S = 1.0
AMD_S = 1.5
RULE_S = 2.0  # from the end of the greeting
RING_TIMEOUT_S = 25.0
WRAP_S = 20.0
TALK_MEAN_S = 180.0
TALK_SIGMA = 0.6
MACHINE_SHARE = 0.25
FAIL_SHARE = 0.12
TARGET = 0.03


@dataclass
class Lead:
    outcome: str  # live, machine, no_answer, fail
    ring_s: float
    talk_s: float


class Leads:
    """The same callee draws for every policy: lead i is the same person for all of them."""

    def __init__(self, seed: int, live_rate: float) -> None:
        self.rng = random.Random(seed)
        self.live_rate = live_rate
        self.items: list[Lead] = []

    def __getitem__(self, i: int) -> Lead:
        while len(self.items) <= i:
            self.items.append(self._draw())
        return self.items[i]

    def _draw(self) -> Lead:
        r = self.rng
        x = r.random()
        mu = math.log(TALK_MEAN_S) - TALK_SIGMA**2 / 2
        talk = r.lognormvariate(mu, TALK_SIGMA)
        answer = min(RING_TIMEOUT_S - 0.5, max(1.5, r.lognormvariate(math.log(7.0), 0.5)))
        if x < self.live_rate:
            return Lead("live", answer, talk)
        if x < self.live_rate + MACHINE_SHARE:
            return Lead("machine", answer, talk)
        if x < self.live_rate + MACHINE_SHARE + FAIL_SHARE:
            return Lead("fail", r.uniform(0.3, 2.0), talk)
        return Lead("no_answer", RING_TIMEOUT_S, talk)


@dataclass
class Floor:
    agents: int
    hours: float
    leads: Leads
    free: int = 0
    busy_since: dict[int, float] = field(default_factory=dict)  # agent -> connected at
    wrap_until: dict[int, float] = field(default_factory=dict)  # agent in wrap-up -> its end
    ringing: dict[int, float] = field(default_factory=dict)  # call -> dialed at
    waiting: deque[tuple[int, float]] = field(default_factory=deque)  # (call, deadline)
    events: list[tuple[float, int, str, int]] = field(default_factory=list)
    seq: int = 0
    next_lead: int = 0
    in_amd: int = 0  # live answers between the answer and the queue
    # stats
    dials: int = 0
    live: int = 0
    abandoned: int = 0
    busy_time: float = 0.0
    talk_time: float = 0.0
    connects: int = 0
    live_delays: list[float] = field(default_factory=list)
    ring_ends: list[float] = field(default_factory=list)  # every dial: how long it rang
    talks: list[float] = field(default_factory=list)  # every finished call's talk time
    recent: deque[tuple[float, int, int]] = field(default_factory=deque)  # (t, live, dropped)
    waiting_samples: deque[tuple[int, int, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.free = self.agents

    def at(self, t: float, kind: str, ref: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, ref))

    def dial(self, now: float, lead_index: int | None = None) -> None:
        i = self.next_lead if lead_index is None else lead_index
        if lead_index is None:
            self.next_lead += 1
        lead = self.leads[i]
        self.dials += 1
        self.ringing[i] = now
        self.at(now + lead.ring_s, "ring_end", i)

    def _connect(self, now: float, call: int) -> None:
        self.free -= 1
        self.connects += 1
        talk = self.leads[call].talk_s
        agent = call
        self.busy_since[agent] = now
        self.talk_time += talk
        self.busy_time += talk + WRAP_S
        self.at(now + talk, "talk_end", agent)  # the queue's AgentComplete
        self.at(now + talk + WRAP_S, "agent_free", agent)

    def handle(self, t: float, kind: str, ref: int) -> None:
        if kind == "ring_end":
            dialed = self.ringing.pop(ref)
            self.ring_ends.append(t - dialed)
            lead = self.leads[ref]
            if lead.outcome == "live":
                self.live += 1
                self.live_delays.append(t - dialed)
                self.in_amd += 1
                self.at(t + AMD_S, "to_queue", ref)
        elif kind == "to_queue":
            self.in_amd -= 1
            deadline = t - AMD_S + GREETING_S + RULE_S
            if self.free > 0:
                self._connect(t, ref)
                self.recent.append((t, 1, 0))
            else:
                self.waiting.append((ref, deadline))
                self.at(deadline, "deadline", ref)
        elif kind == "deadline":
            for i, (call, _) in enumerate(self.waiting):
                if call == ref:
                    del self.waiting[i]
                    self.abandoned += 1
                    self.recent.append((t, 1, 1))
                    break
        elif kind == "talk_end":
            self.talks.append(t - self.busy_since[ref])
            self.wrap_until[ref] = t + WRAP_S
        elif kind == "agent_free":
            del self.busy_since[ref], self.wrap_until[ref]
            self.free += 1
            if self.waiting:
                call, _ = self.waiting.popleft()
                self._connect(t, call)
                self.recent.append((t, 1, 0))

    def run(self, policy: Policy) -> dict[str, float]:
        end = self.hours * 3600.0
        t = 0.0
        while t < end:
            while self.events and self.events[0][0] <= t:
                when, _, kind, ref = heapq.heappop(self.events)
                self.handle(when, kind, ref)
            policy.tick(self, t)
            t += TICK_S
        logged = self.agents * end
        busy = min(self.busy_time, logged)
        return {
            "occupancy": round(busy / logged, 4),
            "abandon_rate": round(self.abandoned / self.live, 4) if self.live else 0.0,
            "talk_min_per_agent_hour": round(self.talk_time / 60 / (logged / 3600), 2),
            "idle_s_between_calls": round((logged - busy) / max(1, self.connects), 1),
            "dials": self.dials,
            "live_answers": self.live,
        }


class Policy:
    name = "?"

    def tick(self, f: Floor, now: float) -> None:
        raise NotImplementedError


class Progressive(Policy):
    name = "progressive"

    def tick(self, f: Floor, now: float) -> None:
        for _ in range(f.free - len(f.ringing) - f.in_amd - len(f.waiting)):
            f.dial(now)


class FixedRatio(Policy):
    name = "fixed_ratio"

    def __init__(self, level: float) -> None:
        self.level = level

    def tick(self, f: Floor, now: float) -> None:
        in_progress = len(f.ringing) + f.in_amd + len(f.waiting) + (f.agents - f.free)
        for _ in range(math.ceil(self.level * f.agents) - in_progress):
            f.dial(now)


class Vicidial(FixedRatio):
    """ADAPT_TAPERED, default settings (adaptive_dl_diff_target 0, intensity 0, max 3.0)."""

    name = "vicidial"

    def __init__(self) -> None:
        super().__init__(1.0)
        self.samples: deque[tuple[int, int, int]] = deque(maxlen=15)

    def tick(self, f: Floor, now: float) -> None:
        self.samples.append((f.free, len(f.waiting), f.agents))
        if int(now) % 15 == 0 and now > 0 and self.samples:
            n = len(self.samples)
            agents_waiting = sum(s[0] for s in self.samples) / n
            calls_waiting = sum(s[1] for s in self.samples) / n
            logged_in = sum(s[2] for s in self.samples) / n
            m = (agents_waiting - calls_waiting + 0.0) / max(1.0, logged_in)
            self.level *= 1.0 + m
            while f.recent and f.recent[0][0] < now - 60:
                f.recent.popleft()
            live = sum(r[1] for r in f.recent)
            dropped = sum(r[2] for r in f.recent)
            if live and dropped / live > 0.5:
                self.level /= 2.0
            day_rate = f.abandoned / f.live if f.live else 0.0
            if day_rate > TARGET:  # past the drop cap since midnight: taper toward 1.0
                self.level = 1.0 + (self.level - 1.0) * 0.5
            self.level = min(3.0, max(1.0, self.level))
        super().tick(f, now)


class Clairvoyant(Policy):
    """Dials only live leads, each timed to reach the agent who frees up at that moment."""

    name = "clairvoyant"

    def tick(self, f: Floor, now: float) -> None:
        # Every agent's next free moment, earliest first; calls already on their way take the
        # earliest ones; each of the rest gets the next live lead, dialed so that it reaches
        # the queue as that agent frees up.
        slots = [now] * f.free + sorted(
            since + f.leads[agent].talk_s + WRAP_S for agent, since in f.busy_since.items()
        )
        outstanding = len(f.ringing) + f.in_amd + len(f.waiting)
        for slot in slots[outstanding:]:
            lead = self._next_live(f)
            if slot - (f.leads[lead].ring_s + AMD_S) > now + TICK_S:
                break
            f.next_lead = lead
            f.dial(now)

    @staticmethod
    def _next_live(f: Floor) -> int:
        i = f.next_lead
        while f.leads[i].outcome != "live":
            i += 1  # known not to answer: never dialed
        return i


class Puente(Policy):
    name = "puente"

    def __init__(self) -> None:
        self.settings = PacingSettings(abandon_target=TARGET, amd_s=AMD_S)
        self.service = Service()
        self.model = learn_answer_model(0, 0, [])
        self.last_learn = -1e9

    def tick(self, f: Floor, now: float) -> None:
        if now - self.last_learn >= 60:  # the service relearns every minute
            self.model = learn_answer_model(
                f.dials - len(f.ringing), f.live, f.live_delays, ring_end_delays=f.ring_ends
            )
            learnt = learn_service(f.talks, WRAP_S)  # as the runner: AgentComplete, Wrapuptime
            if learnt != self.service:
                self.service = learnt
            self.last_learn = now
        state = PacingState(
            now=now,
            free_agents=f.free,
            busy_elapsed=tuple(now - s for a, s in f.busy_since.items() if a not in f.wrap_until),
            wrap_left=tuple(w - now for w in f.wrap_until.values()),
            ringing_ages=tuple(now - d for d in f.ringing.values()),
            waiting_live=len(f.waiting) + f.in_amd,
            lines_available=10_000,
            window_live=f.live,
            window_abandoned=f.abandoned,
            day_live=f.live,  # a run is one day: the window and the day are the same
            day_abandoned=f.abandoned,
        )
        for _ in range(lines_to_open(state, self.model, self.service, self.settings)):
            f.dial(now)


def scenario(agents: int, live_rate: float, seed: int, hours: float, grid: list[float]) -> None:
    common = {"agents": agents, "answer_rate": live_rate, "seed": seed, "hours": hours}
    results = {}
    for policy in (Progressive(), Vicidial(), Clairvoyant(), Puente()):
        results[policy.name] = Floor(agents, hours, Leads(seed, live_rate)).run(policy)
    best: tuple[float, float, dict[str, float]] | None = None
    for level in grid:
        r = Floor(agents, hours, Leads(seed, live_rate)).run(FixedRatio(level))
        if r["abandon_rate"] <= TARGET and (best is None or r["occupancy"] > best[1]):
            best = (level, r["occupancy"], r)
    if best is not None:
        results["best_fixed_ratio"] = {**best[2], "level": best[0]}
    for name in ("progressive", "vicidial", "best_fixed_ratio", "clairvoyant", "puente"):
        if name in results:
            emit("pacing", policy=name, **common, **results[name])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="puente bench pacing", description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--answer-rates", type=float, nargs="+", default=[0.10, 0.25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument(
        "--grid", type=float, nargs="+", default=[1.0 + 0.25 * i for i in range(17)]
    )
    args = parser.parse_args(argv)
    for agents in args.agents:
        for rate in args.answer_rates:
            for seed in args.seeds:
                scenario(agents, rate, seed, args.hours, args.grid)
    return 0
