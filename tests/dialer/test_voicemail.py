"""A machine that got the campaign's message ends as ``voicemail`` (the ledger records it);
one that did not (no message configured, or the playback failed) ends as ``machine``."""

from __future__ import annotations

import uuid

import pytest

from dialer.campaigns import Campaign
from dialer.runner import CampaignRunner, _Call
from dialer.selection import Dial
from pbx.ami import AmiMessage

CAMPAIGN = Campaign(1, "c", "predictive", "q", "PJSIP/t", None, ("mx",), 25, 0.03, None)


def feed(runner: CampaignRunner, *events: list[tuple[str, str]]) -> None:
    for pairs in events:
        runner._on_event(AmiMessage.from_pairs(pairs))


@pytest.mark.parametrize(
    ("playback", "disposition"),
    [("SUCCESS", "voicemail"), ("FAILED", "machine"), (None, "machine")],
)
def test_a_machine_with_and_without_the_message(playback: str | None, disposition: str) -> None:
    runner = CampaignRunner(None, None, None, CAMPAIGN, node="n", pbx="p")  # type: ignore[arg-type]
    aid = str(uuid.uuid4())
    runner.calls[aid] = _Call(Dial(aid, 1, 1, 1, 1, "+525512345678"), 0.0)
    runner.tracker.originated(aid, 0.0)
    feed(
        runner,
        [("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
         ("Reason", "4"), ("Uniqueid", aid)],
        [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid),
         ("AMDSTATUS", "MACHINE"), ("AMDCAUSE", "BEEP-2100")],
    )  # fmt: skip
    assert runner.calls[aid].answered_at is not None
    if playback is not None:
        feed(runner, [("Event", "UserEvent"), ("UserEvent", "PuenteVoicemail"),
                      ("Attempt", aid), ("PLAYBACKSTATUS", playback)])  # fmt: skip
    feed(runner, [("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16")])
    assert runner._finals.get_nowait() == (aid, disposition, None)
    assert runner.stats.machines == 1
