"""Live-answer odds by the debtor's local hour: learnt online, and weighed by the pacer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest

from dialer.pacing import HourlyOdds, lines_to_open, outlook
from dialer.selection import local_hour
from tests.dialer.test_pacing import MODEL, SERVICE, SETTINGS, state


def test_without_dials_an_hour_has_the_campaigns_odds_shaped_by_its_history() -> None:
    assert np.allclose(HourlyOdds().table(0.2), 0.2)
    shape = [1.0] * 24
    shape[10], shape[19] = 0.5, 1.5
    odds = HourlyOdds(shape).table(0.2)
    assert odds[10] == pytest.approx(0.1)
    assert odds[19] == pytest.approx(0.3)
    assert odds[3] == pytest.approx(0.2)


def test_an_hours_own_dials_move_its_odds_and_not_the_other_hours() -> None:
    hours = HourlyOdds()
    for i in range(1000):  # 1,000 dials at 19 h, a third answered by a person
        hours.dialed(19)
        if i % 3 == 0:
            hours.answered_live(19)
    for i in range(1000):  # 1,000 at 10 h, one in twenty
        hours.dialed(10)
        if i % 20 == 0:
            hours.answered_live(10)
    p = (334 + 50) / 2000  # the campaign's odds, as the answer model learns them
    odds = hours.table(p)
    # Mostly the hour's own rate (1,000 dials against 200 pseudo-dials at the campaign's).
    assert odds[19] == pytest.approx((334 + 200 * p) / 1200)
    assert odds[10] == pytest.approx((50 + 200 * p) / 1200)
    assert odds[19] > 0.3 > p > 0.1 > odds[10]
    assert odds[3] == pytest.approx(p)  # never dialed: the campaign's


def test_a_run_of_good_hours_does_not_raise_the_others() -> None:
    # History says 19 h answers at 1.5 times the campaign's rate; the run dialed only then,
    # so its overall 30 % is a good hour's: a poor hour's odds come from the base under it.
    shape = [1.0] * 24
    shape[19] = 1.5
    hours = HourlyOdds(shape)
    for i in range(500):
        hours.dialed(19)
        if i % 10 < 3:
            hours.answered_live(19)
    odds = hours.table(0.3)
    assert odds[19] == pytest.approx(0.3)
    assert odds[11] == pytest.approx(0.2)  # 0.3 / 1.5: not the good hour's 0.3


def test_a_dial_of_unknown_hour_counts_nowhere() -> None:
    hours = HourlyOdds()
    hours.dialed(None)
    hours.answered_live(None)
    assert hours.dials.sum() == hours.live.sum() == 0


@pytest.mark.parametrize(
    "shape", [[1.0] * 23, [1.0] * 23 + [float("nan")], [1.0] * 23 + [-0.5], [[1.0] * 24]]
)
def test_a_bad_shape_is_refused_by_name(shape: list) -> None:
    with pytest.raises(ValueError, match="hour shape is 24 non-negative numbers"):
        HourlyOdds(shape)


def test_the_local_hour_of_a_zone() -> None:
    at = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert local_hour("America/Mexico_City", at) == 17
    assert local_hour("Europe/Madrid", at) == 0
    assert local_hour(None, at) is None
    assert local_hour("Mars/Olympus_Mons", at) is None


def test_odds_equal_to_the_models_change_nothing() -> None:
    s = state(free=6, busy=(30.0, 120.0, 200.0), ringing=(1.0, 4.0, 9.0))
    same = dataclasses.replace(s, ringing_odds=(0.10,) * 3, new_odds=0.10)
    assert lines_to_open(same, MODEL, SERVICE, SETTINGS) == lines_to_open(
        s, MODEL, SERVICE, SETTINGS
    )


def test_ringing_calls_of_good_hours_leave_room_for_fewer_new_lines() -> None:
    s = state(free=8, busy=(30.0, 120.0), ringing=tuple(float(a) for a in range(1, 21)))
    poor = dataclasses.replace(s, ringing_odds=(0.05,) * 20)
    good = dataclasses.replace(s, ringing_odds=(0.40,) * 20)
    o_poor, o_good = (outlook(x, MODEL, SERVICE, SETTINGS) for x in (poor, good))
    # Eight times the odds: eight times the answers, a little more (a poor hour's call still
    # ringing is less likely to be answered later than one of a good hour).
    assert 8 * o_poor.answering.sum() < o_good.answering.sum() < 9 * o_poor.answering.sum()
    assert lines_to_open(good, MODEL, SERVICE, SETTINGS) < lines_to_open(
        poor, MODEL, SERVICE, SETTINGS
    )


def test_new_lines_of_a_poor_hour_are_opened_in_greater_number() -> None:
    s = state(free=10)
    poor = dataclasses.replace(s, new_odds=0.05)
    good = dataclasses.replace(s, new_odds=0.25)
    assert (
        lines_to_open(poor, MODEL, SERVICE, SETTINGS)
        > lines_to_open(s, MODEL, SERVICE, SETTINGS)
        > lines_to_open(good, MODEL, SERVICE, SETTINGS)
    )
    assert lines_to_open(dataclasses.replace(s, new_odds=0.0), MODEL, SERVICE, SETTINGS) == 0


def test_odds_for_some_ringing_calls_only_are_refused() -> None:
    with pytest.raises(ValueError, match="ringing_odds has 1 values for 2 ringing calls"):
        state(ringing=(1.0, 2.0), ringing_odds=(0.1,))
