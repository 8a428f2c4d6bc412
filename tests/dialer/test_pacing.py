"""The predictive pacer: a pure function whose answers move the right way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing import (
    AnswerModel,
    Lognormal,
    PacingSettings,
    PacingState,
    Service,
    effective_target,
    expected_overflow,
    learn_answer_model,
    lines_to_open,
)

MODEL = AnswerModel(0.10, tuple(sorted(5.0 + 0.1 * i for i in range(60))))
SERVICE = Service()
SETTINGS = PacingSettings()


def state(free: int = 0, busy: tuple[float, ...] = (), ringing: tuple[float, ...] = (), **kw):
    base = dict(
        now=0.0,
        free_agents=free,
        busy_elapsed=busy,
        ringing_ages=ringing,
        waiting_live=0,
        lines_available=1000,
    )
    base.update(kw)
    return PacingState(**base)  # type: ignore[arg-type]


def test_expected_overflow_matches_a_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    for mean, var in ((-1.0, 4.0), (0.5, 1.0), (3.0, 0.25)):
        z = rng.normal(mean, math.sqrt(var), 400_000)
        assert expected_overflow(mean, var) == pytest.approx(np.maximum(z, 0).mean(), abs=0.01)
    assert expected_overflow(2.0, 0.0) == 2.0
    assert expected_overflow(-2.0, 0.0) == 0.0


def test_service_time_conditioning() -> None:
    ln = Lognormal.from_mean(180.0, 0.6)
    assert ln.cdf(0) == 0.0
    assert 0.5 < ln.cdf(180.0) < 0.7  # mean above the median
    # someone 10 minutes into a call is likelier to finish in the next minute than at start
    assert ln.done_within(600, 60) > ln.done_within(0, 60)
    table = SERVICE.cdf(np.array([0.0, 20.0, 200.0, 10_000.0]))
    assert table[0] == 0.0
    assert table[1] == 0.0  # wrap-up alone is 20 s
    assert table[-1] == pytest.approx(1.0)


def test_no_agents_or_no_lines_means_no_dials() -> None:
    assert lines_to_open(state(free=0), MODEL, SERVICE, SETTINGS) == 0
    assert lines_to_open(state(free=5, lines_available=0), MODEL, SERVICE, SETTINGS) == 0
    zero = AnswerModel(0.0, MODEL.live_delays)
    assert lines_to_open(state(free=5), zero, SERVICE, SETTINGS) == 0


def test_free_agents_get_several_lines_each_at_a_ten_percent_live_rate() -> None:
    n = lines_to_open(state(free=10), MODEL, SERVICE, SETTINGS)
    assert n > 10  # more than progressive: most dials never reach a person


def test_more_free_agents_more_lines_and_calls_in_flight_fewer() -> None:
    few = lines_to_open(state(free=2), MODEL, SERVICE, SETTINGS)
    many = lines_to_open(state(free=10), MODEL, SERVICE, SETTINGS)
    assert many > few
    busy_line = lines_to_open(state(free=10, ringing=(1.0,) * 40), MODEL, SERVICE, SETTINGS)
    assert busy_line < many


def test_a_realised_overshoot_makes_the_pacer_careful() -> None:
    calm = state(free=10, window_live=5000, window_abandoned=50)  # 1 %
    burnt = state(free=10, window_live=5000, window_abandoned=250)  # 5 %
    assert (
        effective_target(burnt, SETTINGS)
        < SETTINGS.abandon_target
        < effective_target(calm, SETTINGS)
    )
    assert lines_to_open(burnt, MODEL, SERVICE, SETTINGS) < lines_to_open(
        calm, MODEL, SERVICE, SETTINGS
    )


def test_waiting_live_calls_with_no_agent_stop_dialing() -> None:
    assert (
        lines_to_open(state(free=0, busy=(5.0,) * 10, waiting_live=3), MODEL, SERVICE, SETTINGS)
        == 0
    )


def test_agents_likely_to_free_up_soon_are_dialed_for() -> None:
    # 5 free agents, 10 on calls: just connected (none will free up within a ring time)
    # versus five minutes in (about a fifth of them will).
    fresh = lines_to_open(state(free=5, busy=(1.0,) * 10), MODEL, SERVICE, SETTINGS)
    ending = lines_to_open(state(free=5, busy=(300.0,) * 10), MODEL, SERVICE, SETTINGS)
    assert ending > fresh


def test_never_fewer_lines_than_progressive() -> None:
    # However uncertain the rest, a free agent not spoken for always gets a line.
    s = state(free=3, busy=(300.0,) * 10, ringing=(2.0,), window_live=100, window_abandoned=30)
    assert lines_to_open(s, MODEL, SERVICE, SETTINGS) >= 2


@settings(max_examples=60, deadline=None)
@given(
    free=st.integers(0, 30),
    busy=st.lists(st.floats(0, 1200), max_size=30),
    ringing=st.lists(st.floats(0, 30), max_size=60),
    waiting=st.integers(0, 5),
)
def test_more_free_agents_never_mean_fewer_lines(free, busy, ringing, waiting) -> None:
    a = lines_to_open(
        state(free=free, busy=tuple(busy), ringing=tuple(ringing), waiting_live=waiting),
        MODEL,
        SERVICE,
        SETTINGS,
    )
    b = lines_to_open(
        state(free=free + 1, busy=tuple(busy), ringing=tuple(ringing), waiting_live=waiting),
        MODEL,
        SERVICE,
        SETTINGS,
    )
    assert 0 <= a <= b


def test_learned_model_uses_the_prior_until_data_arrives() -> None:
    cold = learn_answer_model(0, 0, [])
    assert cold.p_live == pytest.approx(0.15)
    warm = learn_answer_model(10_000, 1_000, [3.0, 9.0, 6.0])
    assert warm.p_live == pytest.approx((1000 + 7.5) / 10_050)
    assert warm.live_delays == (3.0, 6.0, 9.0)


def test_a_call_still_ringing_late_is_likelier_a_person_once_failures_have_ended() -> None:
    # 10 % people answering at 5-11 s, 12 % failures ending by 2 s, the rest ringing out.
    ends = sorted([1.0] * 12 + [8.0] * 35 + [25.0] * 53)
    informed = AnswerModel(0.10, MODEL.live_delays, 25.0, tuple(ends))
    naive = AnswerModel(0.10, MODEL.live_delays, 25.0)
    assert informed.still_ringing(3.0) == pytest.approx(0.88)
    assert informed.live_within(3.0, 10.0) > naive.live_within(3.0, 10.0)
    assert informed.live_within(30.0, 10.0) == 0.0  # past the ring timeout
