"""What the runner hands the pacer: the answer model it learns from its own dials, and what
its status says when it dials nothing. The pacing bench (bench/pacing.py) feeds the same
pure functions from its simulated floor; these check the service feeds them the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from dialer import runner as runner_module
from dialer.agents import Agent
from dialer.campaigns import Campaign
from dialer.outcomes import Disposition, Outcome
from dialer.pacing import PacingSettings, Service
from dialer.runner import AbandonWindow, CampaignRunner, _Call
from dialer.selection import Dial
from pbx.ami import AmiMessage
from tests.dialer.test_abandonment import _runner as bare_runner

CAMPAIGN = Campaign(1, "c", "predictive", "q", "PJSIP/t", None, ("mx",), 60, 0.03, None)


def _runner() -> CampaignRunner:
    r = bare_runner()
    r.c = CAMPAIGN
    r.on_final = None
    r.clock = lambda: None
    r.pool = r.gate = None
    return r


@pytest.fixture
def results_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every result the runner writes is taken as written (no database)."""

    async def written(*args: object, **kwargs: object) -> bool:
        return True

    monkeypatch.setattr(runner_module, "write_result", written)


async def test_the_answer_model_counts_an_answered_call_once_and_learns_the_ring_times(
    results_written: None,
) -> None:
    r = _runner()
    # 100 dials sent 0 s in: 20 answered by a person after 10 s, 80 unanswered after 30 s.
    for i in range(100):
        aid = f"{i:08d}-0000-0000-0000-000000000000"
        r.calls[aid] = _Call(Dial(aid, i, i, i, i, "+525512345678"), 0.0)
        if i < 20:
            r._unanswered_or_answered(Outcome(aid, Disposition.ANSWERED, 4, None, None, 10.0), 10.0)
            amd = [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid)]
            r._on_event(AmiMessage.from_pairs([*amd, ("AMDSTATUS", "HUMAN")]))
            disposition = "agent"
        else:
            r._unanswered_or_answered(
                Outcome(aid, Disposition.NO_ANSWER, 1, 19, "NOANSWER", 30.0), 30.0
            )
            disposition = "no_answer"
        await r._record(r.calls[aid], disposition, None)
    model = r._answer_model()
    # 20 live answers of 100 dials (with the weak prior of 50 dials at 15 %): counting each
    # answered call again when it ended made it 120 dials, and the pacer overdialed.
    assert model.p_live == pytest.approx((20 + 50 * 0.15) / (100 + 50))
    assert model.ring_timeout_s == 60  # the campaign's, not the 25 s default
    assert sorted(set(model.ring_end_delays)) == [10.0, 30.0]
    assert len(model.ring_end_delays) == 100
    assert r.stats.resolved == 100


def test_a_call_taken_over_from_another_run_teaches_no_ring_time() -> None:
    r = _runner()
    aid = "00000001-0000-0000-0000-000000000000"
    r.calls[aid] = _Call(Dial(aid, 1, 1, 1, 1, "+525512345678"), 100.0, adopted=True)
    r._unanswered_or_answered(Outcome(aid, Disposition.ANSWERED, 4, None, None, 101.0), 101.0)
    assert list(r.stats.ring_ends) == []  # it rang since before this run: 1 s would be a lie


def test_with_every_agent_paused_the_status_says_so() -> None:
    r = _runner()
    r.board = SimpleNamespace(
        agents={
            "PJSIP/a1": Agent("PJSIP/a", "A", paused=True),
            "PJSIP/a2": Agent("PJSIP/a", "A", paused=True),
        },
        logged_in=2,
        free=lambda now: 0,
    )
    r.pacing = SimpleNamespace()
    r.queued_others = set()
    r.warmup_calls = 50
    r.window = None
    assert r._lines_wanted(0.0) == 0
    assert r.why == "all 2 agents paused"
    r.board.agents["PJSIP/a2"] = Agent("PJSIP/a2", "B", device_free=False)
    r._lines_wanted(0.0)
    assert r.why == "all agents busy"


async def test_the_runner_learns_each_hours_odds_and_hands_the_pacer_each_calls(
    monkeypatch: pytest.MonkeyPatch, results_written: None
) -> None:
    r = _runner()
    r.clock = lambda: datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # 19:30 in Mexico City
    r.tracker = SimpleNamespace(originated=lambda *a: None, event=lambda *a: [])
    amd = [("Event", "UserEvent"), ("UserEvent", "PuenteAMD")]
    # 300 dials to debtors at 19 h, 30 % answered by a person; 300 at 10 h, 5 %.
    for i in range(600):
        hour = 19 if i < 300 else 10
        live = i % 10 < 3 if hour == 19 else i % 20 == 0
        aid = f"{i:08d}-0000-0000-0000-000000000000"
        r.calls[aid] = _Call(Dial(aid, i, i, i, i, "+525512345678"), 0.0, hour=hour)
        if live:
            r._unanswered_or_answered(Outcome(aid, Disposition.ANSWERED, 4, None, None, 8.0), 8.0)
            r._on_event(AmiMessage.from_pairs([*amd, ("Attempt", aid), ("AMDSTATUS", "HUMAN")]))
        else:
            r._unanswered_or_answered(
                Outcome(aid, Disposition.NO_ANSWER, 1, 19, "NOANSWER", 30.0), 30.0
            )
        await r._record(r.calls.pop(aid), "agent" if live else "no_answer", None)
    assert list(r.hours.dials[[10, 19]]) == [300, 300]
    assert list(r.hours.live[[10, 19]]) == [15, 90]
    # Ringing now: two dials placed at 19:30 local (the zone the gate held them to), one of
    # unknown zone.
    r._spawn = lambda coro: coro.close()
    for i, zone in enumerate(("America/Mexico_City", "America/Mexico_City", None)):
        aid = f"{i:08d}-1111-0000-0000-000000000000"
        r.dial_now(Dial(aid, i, i, i, i, "+525512345678", "", zone))
    assert [c.hour for c in r.calls.values()] == [19, 19, None]
    seen = []

    def pacer(state, model, service, settings) -> int:
        seen.append((state, model))
        return 0

    monkeypatch.setattr(runner_module, "lines_to_open", pacer)
    r.board = SimpleNamespace(
        agents={"PJSIP/a1": Agent("PJSIP/a1", "A")}, logged_in=1, free=lambda now: 1,
        busy_elapsed=lambda now: (), wrap_left=lambda now: (), talk_s=[], wrapup_s=lambda: 5.0,
    )  # fmt: skip
    r.pacing = PacingSettings()
    r.queued_others = set()
    r.warmup_calls = 50
    r.window = AbandonWindow(0, 0, 0, 0)
    r.service, r._service_learnt_at = Service(), 0.0
    r._model, r._model_learnt_at = None, 0.0
    r._lines_wanted(100.0)
    ((state, model),) = seen
    odds = r.hours.table(model.p_live)
    # Mostly each hour's own rate (300 dials against 200 pseudo-dials at the campaign's 17 %).
    assert odds[19] == pytest.approx((90 + 200 * model.p_live) / 500)
    assert odds[10] == pytest.approx((15 + 200 * model.p_live) / 500)
    assert odds[19] > 0.24 > model.p_live > 0.1 > odds[10]
    assert state.ringing_odds == pytest.approx((odds[19], odds[19], model.p_live))
    # A new line: the mix of the latest dials (two at 19 h, one unknown).
    assert state.new_odds == pytest.approx((2 * odds[19] + model.p_live) / 3)
