"""An abandoned call stays abandoned: counted once, whatever happens after the 2 s rule failed.

A live answer that reached no agent in time hears the safe-harbor message; from there the
person may ask for an agent, wait again (PuenteQueueWait) and reach one. The call's disposition
is then ``agent`` (a conversation), and its ``abandoned`` flag keeps it in the abandonment
rate, which the pacer's window, the wallboard and the reports all count.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from compliance import ComplianceGate
from dialer import runner as runner_module
from dialer.amd import AmdStatus, AmdVerdict
from dialer.amd._call import greeting_end
from dialer.campaigns import LIVE_DISPOSITIONS, Campaign
from dialer.pacing import HourlyOdds
from dialer.results import write_result
from dialer.runner import _WINDOW_SQL, CampaignRunner, GreetingEnds, RunnerStats, _Call
from dialer.selection import Dial
from dialer.trunk_guard import TrunkGuard
from pbx.ami import AmiMessage
from tests.dialer import test_selection
from tests.dialer.test_callbacks import claim
from tests.dialer.test_selection import NOON

campaign = test_selection.campaign
ATTEMPT = "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"


def _event(name: str, *pairs: tuple[str, str]) -> AmiMessage:
    return AmiMessage.from_pairs([("Event", name), *pairs])


def _user_event(kind: str, *pairs: tuple[str, str]) -> AmiMessage:
    return _event("UserEvent", ("UserEvent", kind), ("Attempt", ATTEMPT), *pairs)


def _runner() -> CampaignRunner:
    """The runner's event handling alone (no database, no AMI): a bare instance."""
    r = CampaignRunner.__new__(CampaignRunner)
    r.stats = RunnerStats()
    r.calls = {}
    r.board = SimpleNamespace(event=lambda *a: False)
    r.tracker = SimpleNamespace(event=lambda *a: [])
    r._finals = asyncio.Queue()
    r._spawn = lambda coro: coro.close()
    r._board_replay = None
    r.greetings = None
    r.hours = HourlyOdds()
    r.trunk = TrunkGuard()
    return r


def test_abandoned_then_with_an_agent_is_counted_once_and_stays_abandoned() -> None:
    r = _runner()
    call = r.calls[ATTEMPT] = SimpleNamespace(
        answered_at=1.0, sent_at=0.0, amd=None, connected=False, abandoned=False,
        requeued=False, voicemail_left=False, ending=False, adopted=False, hour=None,
    )  # fmt: skip
    r._on_event(_user_event("PuenteAMD", ("AMDSTATUS", "HUMAN")))
    r._on_event(_user_event("PuenteQueueResult", ("QUEUESTATUS", "TIMEOUT")))
    assert (r.stats.live, r.stats.abandoned, call.abandoned) == (1, 1, True)
    # The safe-harbor menu: "an agent, please". Waiting again: the pacer counts it waiting.
    r._on_event(_user_event("PuenteQueueWait"))
    assert call.requeued
    r._on_event(_user_event("PuenteQueueResult", ("QUEUESTATUS", "TIMEOUT")))
    assert (r.stats.abandoned, call.requeued) == (1, False)  # the same abandonment, once
    r._on_event(_user_event("PuenteQueueWait"))
    r._on_event(_event("AgentConnect", ("Uniqueid", ATTEMPT), ("Interface", "PJSIP/a1")))
    r._on_event(_event("Hangup", ("Uniqueid", ATTEMPT), ("Cause", "16")))
    assert r._finals.get_nowait() == (ATTEMPT, "agent", None)
    assert call.abandoned  # what _record hands to write_result(abandoned=...)


async def test_the_flag_is_written_and_every_count_of_abandonment_sees_it(
    db_pool, campaign
) -> None:
    cid, _ = campaign
    c = Campaign.from_row(await db_pool.fetchrow("SELECT * FROM campaigns WHERE id = $1", cid))
    gate = ComplianceGate(db_pool)
    (talked, dropped), _ = await claim(db_pool, campaign, 2)
    end = NOON
    assert await write_result(
        db_pool, gate, c, talked, "agent", None, amd="HUMAN", answered=True, now=end,
        abandoned=True,
    )  # fmt: skip
    assert await write_result(
        db_pool, gate, c, dropped, "abandoned", None, amd="HUMAN", answered=True, now=end
    )
    rows = await db_pool.fetch(
        "SELECT disposition, abandoned FROM call_attempts WHERE campaign_id = $1 ORDER BY 1",
        cid,
    )
    assert [tuple(r) for r in rows] == [("abandoned", True), ("agent", True)]
    # A conversation: the lead is done, not retried as an abandoned call would be.
    lead = await db_pool.fetchval("SELECT state FROM leads WHERE id = $1", talked.lead_id)
    assert lead == "done"
    window = await db_pool.fetchrow(_WINDOW_SQL, cid, 30, list(LIVE_DISPOSITIONS))
    assert (window["live"], window["abandoned"]) == (2, 2)
    assert (window["day_live"], window["day_abandoned"]) == (2, 2)


async def test_the_abandonment_is_written_when_it_happens_and_survives_a_takeover(
    db_pool, campaign
) -> None:
    # Noted on the attempt at the queue's result: a node that adopts the call after a crash
    # knows nothing of it, and its final write must not undo it.
    cid, _ = campaign
    c = Campaign.from_row(await db_pool.fetchrow("SELECT * FROM campaigns WHERE id = $1", cid))
    (dial,), _ = await claim(db_pool, campaign, 1)
    r = _runner()
    r.pool, r.c = db_pool, c
    await r._mark_abandoned(dial.attempt_id)
    flag = "SELECT abandoned FROM call_attempts WHERE id = $1"
    assert await db_pool.fetchval(flag, dial.attempt_id) is True
    assert await write_result(
        db_pool, ComplianceGate(db_pool), c, dial, "hangup", None, amd="HUMAN", answered=True,
        now=NOON, abandoned=False,  # the adopting node's fresh view of the call
    )  # fmt: skip
    assert await db_pool.fetchval(flag, dial.attempt_id) is True


@pytest.mark.parametrize(("after_s", "abandoned"), [(1.5, False), (2.6, True)])
def test_an_agent_connecting_past_the_2_s_rule_counts_the_call_abandoned(
    monkeypatch: pytest.MonkeyPatch, after_s: float, abandoned: bool
) -> None:
    # Queue() takes whole seconds (rounded up: nobody is cut off early), so an agent may
    # connect up to a second past the rule's two seconds: the person has an agent, and the
    # call still counts as abandoned (TSR 16 CFR 310.4(b)(4)(i)).
    r = _runner()
    r.c = SimpleNamespace(code="c")
    r.greetings = GreetingEnds()
    call = r.calls[ATTEMPT] = _Call(Dial(ATTEMPT, 1, 1, 1, 1, "+525512345678"), 0.0)
    call.answered_at = 1.0
    r.greetings.note(ATTEMPT, 100.0)  # the greeting ended at 100 s (monotonic)
    monkeypatch.setattr(runner_module.time, "monotonic", lambda: 100.0 + after_s)
    r._on_event(_event("AgentConnect", ("Uniqueid", ATTEMPT), ("Interface", "PJSIP/a1")))
    assert (call.connected, call.abandoned, r.stats.abandoned) == (True, abandoned, int(abandoned))
    assert r.greetings.pop(ATTEMPT) is None  # used once


def test_the_greeting_end_is_dated_from_the_verdict() -> None:
    verdict = AmdVerdict(AmdStatus.HUMAN, "HUMAN-580-580", 1780, 400, 1200)
    assert greeting_end(verdict, started=50.0, decided_at=52.0) == pytest.approx(51.42)
    silent = AmdVerdict(AmdStatus.NOTSURE, "INITIALSILENCE-2500-2500", 2500)
    assert greeting_end(silent, started=50.0, decided_at=52.5) == 50.0  # the answer
