"""A machine that got the campaign's message ends as ``voicemail`` (the ledger records it);
one that did not (no message configured, or the playback failed) ends as ``machine``."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from dialer.campaigns import Campaign
from dialer.runner import CampaignRunner, _Call
from dialer.selection import Dial
from pbx.ami import AmiMessage
from tests.dialer._floor import floor, make_campaign, poll_until, running

CAMPAIGN = Campaign(1, "c", "predictive", "q", "PJSIP/t", None, ("mx",), 25, 0.03, None)


class _NotesPool:
    """Takes the runner's writes of a call in progress (its answer, its verdict)."""

    async def execute(self, *args: object) -> None:
        return None


def feed(runner: CampaignRunner, *events: list[tuple[str, str]]) -> None:
    for pairs in events:
        runner._on_event(AmiMessage.from_pairs(pairs))


@pytest.mark.parametrize(
    ("playback", "disposition"),
    [("SUCCESS", "voicemail"), ("FAILED", "machine"), (None, "machine")],
)
async def test_a_machine_with_and_without_the_message(
    playback: str | None, disposition: str
) -> None:
    # (in a loop, with a pool that takes the runner's notes of a call in progress)
    runner = CampaignRunner(_NotesPool(), None, None, CAMPAIGN, node="n", pbx="p")  # type: ignore[arg-type]
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


async def test_each_debtor_gets_the_prompts_and_message_in_their_language(
    db_pool, tmp_path
) -> None:
    # A Spanish campaign with an English-speaking debtor: the voicemail (and the prompts'
    # PUENTE_LANG) followed the campaign, so the debtor heard a message they may not
    # understand. Each dial now carries its person's language.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=2)
    english = await db_pool.fetchval(
        "UPDATE persons SET language = 'en' WHERE id = (SELECT min(person_id) FROM leads"
        " WHERE campaign_id = $1) RETURNING id",
        cid,
    )
    model = {"seed": 2, "outcomes": {"no_answer": 1.0}, "ring_s": {"dist": "fixed", "value": 5}}
    async with floor(db_pool, model=model, agents=2) as f:
        runner = await f.runner_for(code, tick_s=0.1)

        async def both_dialed() -> bool:
            return len(f.sim.core.channels) >= 2

        async with running(runner, f.clients[0]):
            await poll_until(both_dialed)
            seen = {
                ch.variables["PUENTE_ATTEMPT"]: (
                    ch.variables["PUENTE_LANG"],
                    ch.variables["PUENTE_VM"],
                    ch.variables["PUENTE_VM_NUMBER"],
                )
                for ch in f.sim.core.channels.values()
            }
            await asyncio.sleep(0)
    persons = dict(
        await db_pool.fetch(
            "SELECT id::text, person_id FROM call_attempts WHERE campaign_id = $1", cid
        )
    )
    by_person = {persons[a]: v for a, v in seen.items()}
    assert len(by_person) == 2
    for person, (lang, vm, number) in by_person.items():
        want = "en" if person == english else "es"
        assert lang == want
        assert vm.startswith(f"puente/{want}/voicemail_limited&")
        assert f"puente/{want}/voicemail_callback" in vm
        assert number == "525500000000"


def test_a_campaign_message_in_one_language_only_is_left_for_every_debtor() -> None:
    # {"es": "mensaje-es"} and an English-speaking debtor: the campaign's own message, not
    # silence (no message in that language).
    c = Campaign.from_row(
        {
            "id": 1, "code": "c", "mode": "predictive", "queue_name": "q", "trunk": "PJSIP/t",
            "caller_id": None, "compliance_packs": ["mx"], "ring_timeout_s": 25,
            "abandon_target": 0.03, "agentless_flow": None, "state": "running",
            "abandon_window_days": 30, "retry_schedule": None,
            "settings": {"voicemail": {"es": "mensaje-es"}}, "creditor_code": "acme",
            "creditor_number": "+525500000000", "creditor_contact": "Ana",
        }
    )  # fmt: skip
    assert c.voicemail_for("es") == ("mensaje-es", "")
    assert c.voicemail_for("en") == ("mensaje-es", "")
