"""What the runner does with AMI events a well-behaved Asterisk would not send: out of order,
duplicated, for unknown calls, with fields missing or of the wrong type. Each attempt still
ends exactly once, with no exception escaping the event path."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.runner import CampaignRunner, _Call
from dialer.selection import Dial
from pbx import LocalProtocolError
from pbx.ami import ActionResult, AmiMessage, NotConnected
from tests.dialer._floor import floor, make_campaign

MODEL = {
    "seed": 5,
    "outcomes": {"human": 1.0},
    "ring_s": {"dist": "fixed", "value": 0.3},
    "fail_after_s": {"dist": "fixed", "value": 0.1},
    "talk_s": {"dist": "fixed", "value": 1.0},
    "patience_s": {"dist": "fixed", "value": 30.0},
    "machine_greeting_s": {"dist": "fixed", "value": 0.5},
}


def _track(runner: CampaignRunner) -> str:
    """An attempt as dial_now leaves it, without sending anything."""
    aid = str(uuid.uuid4())
    now = time.monotonic()
    runner.calls[aid] = _Call(Dial(aid, 1, 1, 1, 1, "+525512345678"), now)
    runner.tracker.originated(aid, now)
    return aid


def _event(runner: CampaignRunner, *pairs: tuple[str, str]) -> None:
    runner._on_event(AmiMessage.from_pairs(list(pairs)))


def _finals(runner: CampaignRunner) -> list[tuple[str, str]]:
    out = []
    while not runner._finals.empty():
        aid, disposition, _ = runner._finals.get_nowait()
        out.append((aid, disposition))
    return out


@pytest.fixture
async def runner(db_pool, tmp_path: Path):
    _, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    async with floor(db_pool, model=MODEL, agents=0) as f:
        yield await f.runner_for(code)


async def test_an_answer_with_an_odd_reason_is_an_answer_not_a_dial_never_placed(runner) -> None:
    # Response: Success is Asterisk's word that the call was answered. Ending it as 'failed'
    # would release its compliance count (not_placed) while the debtor is on the line.
    for reason in ("99", "abc", None):
        aid = _track(runner)
        fields = [("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success")]
        if reason is not None:
            fields.append(("Reason", reason))
        _event(runner, *fields)
        assert runner.calls[aid].answered_at is not None, reason
        assert _finals(runner) == []
        _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16"))
        assert _finals(runner) == [(aid, "hangup")]


async def test_amd_verdict_before_the_answer_is_no_traceback(runner) -> None:
    aid = _track(runner)
    _event(runner, ("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid),
           ("AMDSTATUS", "HUMAN"))  # fmt: skip
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
           ("Reason", "4"))  # fmt: skip
    _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16"))
    assert _finals(runner) == [(aid, "hangup")]


async def test_hangup_before_the_answers_originate_response_still_ends_the_call(runner) -> None:
    aid = _track(runner)
    _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16"))
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
           ("Reason", "4"))  # fmt: skip
    assert _finals(runner) == [(aid, "hangup")]


async def test_duplicates_strays_and_garbage_end_each_attempt_once(runner) -> None:
    aid = _track(runner)
    other = str(uuid.uuid4())  # never sent
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", other), ("Response", "Failure"),
           ("Reason", "0"))  # fmt: skip
    _event(runner, ("Event", "Hangup"), ("Cause", "abc"))  # no Uniqueid
    _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "abc"))
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Failure"),
           ("Reason", "5"))  # fmt: skip
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Failure"),
           ("Reason", "3"))  # fmt: skip
    _event(runner, ("Event", "DialEnd"), ("DestUniqueid", aid), ("DialStatus", "ANSWER"))
    _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "17"))
    assert _finals(runner) == [(aid, "busy")]


async def test_queue_events_with_garbage_fields_are_logged_not_raised(
    runner, caplog: pytest.LogCaptureFixture
) -> None:
    aid = _track(runner)
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
           ("Reason", "4"))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        _event(runner, ("Event", "QueueMemberStatus"), ("Queue", "collections"),
               ("Interface", "Local/9@agents"), ("Status", "1"), ("Wrapuptime", "abc"))  # fmt: skip
        _event(runner, ("Event", "AgentConnect"), ("Queue", "collections"), ("Uniqueid", aid),
               ("Interface", "Local/8@agents"), ("HoldTime", "x"))  # fmt: skip
        _event(runner, ("Event", "AgentComplete"), ("Queue", "collections"),
               ("Interface", "Local/unknown@agents"), ("TalkTime", "x"))  # fmt: skip
        _event(runner, ("Event", "QueueMemberPause"), ("Queue", "collections"))
    assert runner.calls[aid].connected
    # (the board reads a garbage Wrapuptime as none; whatever else a bad field raises is
    # logged by the runner in one line, never raised)
    assert runner.board.agents["Local/9@agents"].wrapup_s == 0.0
    assert not [r for r in caplog.records if r.exc_info]
    _event(runner, ("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16"))
    assert _finals(runner) == [(aid, "agent")]


async def test_a_queue_caller_without_uniqueid_is_not_a_phantom_waiting_caller(runner) -> None:
    _event(runner, ("Event", "QueueCallerJoin"), ("Queue", "collections"))
    assert runner.queued_others == set()


async def test_an_amd_verdict_the_result_cannot_store_is_cleaned(runner) -> None:
    # amd_status is a text column: a NUL failed the result's write on every try.
    aid = _track(runner)
    _event(runner, ("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
           ("Reason", "4"))  # fmt: skip
    _event(runner, ("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid),
           ("AMDSTATUS", "MACH\x00INE"))  # fmt: skip
    _event(
        runner,
        ("Event", "UserEvent"),
        ("UserEvent", "PuenteAMD"),
        ("Attempt", aid),
        ("AMDSTATUS", "MACHINE"),
    )  # a duplicate: not a second machine
    assert runner.calls[aid].amd == "MACHINE"
    assert runner.stats.machines == 1


async def test_a_queue_member_with_garbage_fields_does_not_stop_the_resync(runner) -> None:
    # After each (re)connect the runner loads the queue's members from QueueStatus. A member
    # whose Wrapuptime was not a number raised out of it, every tick: no reconcile, and not a
    # single dial again.
    def member(interface: str, wrapup: str) -> AmiMessage:
        return AmiMessage.from_pairs(
            [("Event", "QueueMember"), ("Queue", "collections"), ("Name", interface),
             ("Location", interface), ("Status", "1"), ("Paused", "0"), ("InCall", "0"),
             ("Wrapuptime", wrapup), ("LastCall", "zz")]
        )  # fmt: skip

    async def send_action(action: str, fields=()) -> ActionResult:
        ok = AmiMessage.from_pairs([("Response", "Success")])
        if action == "QueueStatus":
            events = [member("Local/1@agents", "abc"), member("Local/2@agents", "0")]
            return ActionResult(action, "x", ok, events)
        return ActionResult(action, "y", ok, [])

    runner.ami = SimpleNamespace(connects_total=1, send_action=send_action)
    await runner._sync_agents()
    assert runner._synced_at_connect == 1
    assert "Local/2@agents" in runner.board.agents


@pytest.mark.parametrize(
    "error", [NotConnected("link down"), LocalProtocolError("CR or LF in CallerID")]
)
async def test_an_originate_never_written_to_asterisk_ends_now_as_not_placed(
    runner, error: Exception
) -> None:
    # Such an attempt waited stale_after_s and ended 'lost', which the compliance ledger keeps
    # counting: a bad caller id (or a link drop between the claim and the send) used up the
    # debtors' attempt caps with calls that were never made.
    async def originate(fields, *, action_id: str, timeout_s=None):
        raise error

    runner.ami = SimpleNamespace(originate=originate)
    aid = _track(runner)
    await runner._originate(runner.calls[aid].dial)
    assert _finals(runner) == [(aid, "failed")]
    assert aid not in runner.tracker.pending


async def test_a_board_fault_on_a_queue_event_is_one_log_line(
    runner, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    def broken(*_args, **_kwargs):
        raise ValueError("a field nothing foresaw (test)")

    monkeypatch.setattr(runner.board, "event", broken)
    with caplog.at_level(logging.WARNING):
        _event(runner, ("Event", "QueueMemberStatus"), ("Queue", "collections"),
               ("Interface", "Local/9@agents"), ("Status", "1"))  # fmt: skip
    (record,) = [r for r in caplog.records if "bad field" in r.getMessage()]
    assert "QueueMemberStatus" in record.getMessage()
    assert record.exc_info is None
