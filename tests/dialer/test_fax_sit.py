"""An answer AMD finds to be a tone ends by what the tone means (``AMDCAUSE``): a SIT saying the
number is not in service ends ``intercept`` (the number marked disconnected, the count released,
the person's next number now), a SIT of congestion ``congestion`` (soon again), another SIT
``sit_other`` (a second one in a row on the number marks it), a fax ``fax`` (the number never
dialed again for voice). They all used to end ``machine``: tried again in 4 h, for ever."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from compliance import ComplianceGate
from dialer.campaigns import DEFAULT_RETRY_S, Campaign
from dialer.outcomes import AnswerTone, Disposition, SitKind, answer_tone, tone_disposition
from dialer.results import write_result
from dialer.runner import CampaignRunner, _Call
from dialer.selection import Dial, claim_and_gate
from pbx.ami import ActionResult, AmiClient, AmiMessage, AmiSettings
from pbx.audiosocket import AudioSocketCall
from pbx.sim import SimulatedAsterisk
from tests.dialer._floor import NOON, floor, make_campaign, poll_until, running

CAMPAIGN = Campaign(1, "c", "predictive", "q", "PJSIP/t", None, ("mx",), 25, 0.03, None)


# -- AMDCAUSE, read ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cause", "tone"),
    [
        ("FAX-1100-600", AnswerTone(True, None, 1100, 600)),
        ("FAX-2100-3000", AnswerTone(True, None, 2100, 3000)),
        ("SIT-IC-914-274", AnswerTone(False, SitKind.IC, 914, 274)),
        ("SIT-VC-985-380", AnswerTone(False, SitKind.VC, 985, 380)),
        ("SIT-NC-985-380", AnswerTone(False, SitKind.NC, 985, 380)),
        ("SIT-RO-914-274", AnswerTone(False, SitKind.RO, 914, 274)),
        ("SIT-IO-985-274", AnswerTone(False, SitKind.IO, 985, 274)),
        ("SIT-UNK-1400-300", AnswerTone(False, SitKind.UNK, 1400, 300)),
        # the older form, no kind: not resolved
        ("SIT-985-300", AnswerTone(False, SitKind.UNK, 985, 300)),
        # a kind nobody knows, a kind without numbers, a bare prefix: as the dialplan sees them
        ("SIT-XY-985-300", AnswerTone(False, SitKind.UNK, None, None)),
        ("SIT-VC", AnswerTone(False, SitKind.VC, None, None)),
        ("SIT-", AnswerTone(False, SitKind.UNK, None, None)),
        ("FAX-", AnswerTone(True, None, None, None)),
        ("FAX-x-y", AnswerTone(True, None, None, None)),
    ],
)
def test_fax_and_sit_causes_are_read(cause: str, tone: AnswerTone) -> None:
    assert answer_tone(cause) == tone


@pytest.mark.parametrize(
    "cause",
    [None, "", "BEEP-2100", "LONGGREETING-5000-3500", "HUMAN-800-600", "TOOLONG-4000",
     "PUENTE-NO-VERDICT", "FAX", "SIT", "sit-vc-985-380", "FAXED-1", "SITE-1"],
)  # fmt: skip
def test_other_causes_are_no_tone(cause: str | None) -> None:
    # (the dialplan's ${AMDCAUSE:0:4} test is case-sensitive: "sit-..." got the message)
    assert answer_tone(cause) is None


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ("SIT-IC-914-274", Disposition.INTERCEPT),
        ("SIT-VC-985-380", Disposition.INTERCEPT),
        ("SIT-NC-985-380", Disposition.CONGESTION),
        ("SIT-RO-914-274", Disposition.CONGESTION),
        ("SIT-IO-985-274", Disposition.SIT_OTHER),
        ("SIT-UNK-985-274", Disposition.SIT_OTHER),
        ("SIT-985-300", Disposition.SIT_OTHER),
        ("FAX-1100-600", Disposition.FAX),
        ("BEEP-2100", None),
    ],
)
def test_each_tone_has_its_disposition(cause: str, expected: Disposition | None) -> None:
    assert tone_disposition("MACHINE", cause) is expected
    # Only a MACHINE verdict: a person's path was taken on any other.
    assert tone_disposition("NOTSURE", cause) is None
    assert tone_disposition("HUMAN", cause) is None


def test_the_retry_schedule_knows_the_new_dispositions() -> None:
    assert DEFAULT_RETRY_S["intercept"] == DEFAULT_RETRY_S["unallocated"] == 0
    assert DEFAULT_RETRY_S["fax"] == 0
    assert DEFAULT_RETRY_S["sit_other"] == DEFAULT_RETRY_S["unreachable"]


# -- the runner, fed events ----------------------------------------------------------------------
class _NotesPool:
    """Takes the runner's writes of a call in progress (its answer, its verdict)."""

    def __init__(self) -> None:
        self.notes: list[tuple[object, ...]] = []

    async def execute(self, *args: object) -> None:
        self.notes.append(args)


def _runner() -> tuple[CampaignRunner, str, _NotesPool]:
    pool = _NotesPool()
    runner = CampaignRunner(pool, None, None, CAMPAIGN, node="n", pbx="p")  # type: ignore[arg-type]
    aid = str(uuid.uuid4())
    runner.calls[aid] = _Call(Dial(aid, 1, 1, 1, 1, "+525512345678"), 0.0)
    runner.tracker.originated(aid, 0.0)
    return runner, aid, pool


def _varset(aid: str, name: str, value: str) -> list[tuple[str, str]]:
    return [("Event", "VarSet"), ("Privilege", "dialplan,all"),
            ("Channel", "PJSIP/trunk-00000001"), ("Uniqueid", aid), ("Variable", name),
            ("Value", value)]  # fmt: skip


@pytest.mark.parametrize(
    ("cause", "disposition"),
    [
        ("SIT-VC-985-380", "intercept"),
        ("SIT-IC-914-274", "intercept"),
        ("SIT-NC-985-380", "congestion"),
        ("SIT-RO-914-274", "congestion"),
        ("SIT-IO-985-274", "sit_other"),
        ("SIT-985-300", "sit_other"),
        ("FAX-1100-600", "fax"),
        ("BEEP-1000-2100", "machine"),
    ],
)
@pytest.mark.parametrize("cause_first", [True, False])
async def test_the_runner_ends_a_tone_answer_by_its_cause(
    cause: str, disposition: str, cause_first: bool
) -> None:
    # What real Asterisk sends an AMI user granted `dialplan` (ours is not: manager.conf) for
    # AMD's two Setvars, in either order, and the dialplan's own Set()s before them; then the
    # UserEvent(PuenteAMD) the dialplan reports both variables with. Whatever came before,
    # the verdict and its cause are the UserEvent's.
    runner, aid, pool = _runner()
    setvars = [_varset(aid, "AMDCAUSE", cause), _varset(aid, "AMDSTATUS", "MACHINE")]
    if not cause_first:
        setvars.reverse()
    for pairs in (
        [("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
         ("Reason", "4"), ("Uniqueid", aid)],
        _varset(aid, "AMDSTATUS", "NOTSURE"),
        _varset(aid, "AMDCAUSE", "PUENTE-NO-VERDICT"),
        *setvars,
        [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid),
         ("AMDSTATUS", "MACHINE"), ("AMDCAUSE", cause)],
        [("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16")],
    ):  # fmt: skip
        runner._on_event(AmiMessage.from_pairs(pairs))
    assert runner._finals.get_nowait() == (aid, disposition, None)
    assert runner.calls[aid].amd_cause == cause
    await asyncio.gather(*runner._sends)
    # written down with the verdict, for a restart that finds the call ended unheard
    assert [n[1:] for n in pool.notes if "amd_status" in str(n[0])] == [(aid, "MACHINE", cause)]


async def test_a_tone_wins_over_a_message_reported_played() -> None:
    # (an older dialplan, without the FAX-/SIT- test, played the message to the tone)
    runner, aid, _ = _runner()
    for pairs in (
        [("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success"),
         ("Reason", "4"), ("Uniqueid", aid)],
        [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", aid),
         ("AMDSTATUS", "MACHINE"), ("AMDCAUSE", "SIT-VC-985-380")],
        [("Event", "UserEvent"), ("UserEvent", "PuenteVoicemail"), ("Attempt", aid),
         ("PLAYBACKSTATUS", "SUCCESS")],
        [("Event", "Hangup"), ("Uniqueid", aid), ("Cause", "16")],
    ):  # fmt: skip
        runner._on_event(AmiMessage.from_pairs(pairs))
    assert runner._finals.get_nowait() == (aid, "intercept", None)


# -- end to end: the simulated Asterisk, its dialplan, the database ------------------------------
class ToneAmd:
    """Puente's AMD as Asterisk sees it: an AudioSocket peer that sets ``AMDCAUSE`` and
    ``AMDSTATUS`` on the channel with AMI ``Setvar`` (in the order given), then ends the
    socket. The dialplan then reports them (``UserEvent(PuenteAMD)``) and skips the message
    for a fax or a SIT."""

    def __init__(self, cause: str, cause_first: bool = True) -> None:
        self.cause = cause
        self.cause_first = cause_first
        self.sim: SimulatedAsterisk | None = None
        self.ami: AmiClient | None = None
        self.done: list[str] = []

    async def __call__(self, call: AudioSocketCall) -> None:
        assert self.sim is not None
        assert self.ami is not None
        assert call.uuid is not None
        aid = str(call.uuid)
        channel = self.sim.core.channels[aid].snap.name
        pairs = [("AMDCAUSE", self.cause), ("AMDSTATUS", "MACHINE")]
        if not self.cause_first:
            pairs.reverse()
        for name, value in pairs:
            r = await self.ami.send_action(
                "Setvar", [("Channel", channel), ("Variable", name), ("Value", value)],
                timeout_s=5,
            )  # fmt: skip
            assert r.ok, r
        self.done.append(aid)
        await call.hangup()


async def _second_number(pool, cid: int, e164: str) -> tuple[int, int]:
    """The campaign's (one) person gets a second number: (first number's id, second's)."""
    first, person = await pool.fetchrow(
        "SELECT n.id, n.person_id FROM phone_numbers n JOIN leads l ON l.person_id = n.person_id"
        " WHERE l.campaign_id = $1",
        cid,
    )
    second = await pool.fetchval(
        "INSERT INTO phone_numbers (person_id, e164, kind) VALUES ($1, $2, 'mobile') RETURNING id",
        person,
        e164,
    )
    return first, second


def _model(second: str) -> dict:
    # Every call answered (AMD decides what answered), but the second number: busy at once.
    return {
        "seed": 3, "outcomes": {"human": 1.0}, "numbers": {second: "busy"},
        "ring_s": {"dist": "fixed", "value": 0.2}, "fail_after_s": {"dist": "fixed", "value": 0.1},
        "patience_s": {"dist": "fixed", "value": 60.0},
    }  # fmt: skip


async def _run_one_tone(
    db_pool, tmp_path: Path, cause: str, *, cause_first: bool = True, attempts: int
) -> tuple[int, int, int, list]:
    """A one-lead campaign whose first answer is the tone ``cause``: runs until ``attempts``
    attempts are final. (cid, first number, second number, the attempts in order)."""
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    second_e164 = f"+5255{uuid.uuid4().int % 89_999_999 + 10_000_000}"
    first, second = await _second_number(db_pool, cid, second_e164)
    # The earlier tests' campaigns off the queue: the runner's check for another pacer on its
    # queue reads pg_locks, which is the whole server's, and a test database next door (another
    # run on the same server) may hold the pacing lock of a campaign with the same id.
    await db_pool.execute(
        "UPDATE campaigns SET queue_name = 'parked' WHERE id <> $1 AND queue_name = 'collections'",
        cid,
    )
    amd = ToneAmd(cause, cause_first)
    async with floor(db_pool, model=_model(second_e164), agents=1, audio_handler=amd) as f:
        amd.sim = f.sim
        amd.ami = AmiClient(
            AmiSettings(port=f.sim.ami_port, username="puente", secret="x"), queue_events=False
        )
        amd.ami.start()
        try:
            await amd.ami.wait_connected(5)
            runner = await f.runner_for(code, tick_s=0.1)

            async def ended() -> bool:
                n = await db_pool.fetchval(
                    "SELECT count(*) FROM call_attempts WHERE campaign_id = $1 AND state = 'final'",
                    cid,
                )
                return n >= attempts

            async with running(runner, f.clients[0]):
                await poll_until(ended)
        finally:
            await amd.ami.close()
    assert len(amd.done) == 1  # the tone answered once: nothing else was answered
    rows = await db_pool.fetch(
        "SELECT a.id::text AS id, a.phone_id, a.state, a.disposition, a.amd_status, a.amd_cause,"
        " a.answered_at, a.finalized_at, l.state AS lead, l.next_try_at, l.last_outcome,"
        " (SELECT array_agg(o.outcome) FROM compliance_outcomes o WHERE o.attempt_id = a.id)"
        " AS ledger FROM call_attempts a JOIN leads l ON l.id = a.lead_id"
        " WHERE a.campaign_id = $1 ORDER BY a.created_at",
        cid,
    )
    return cid, first, second, rows


async def _status(pool, phone_id: int) -> str:
    return await pool.fetchval("SELECT status FROM phone_numbers WHERE id = $1", phone_id)


@pytest.mark.parametrize("cause_first", [True, False])
async def test_a_sit_vacant_code_marks_the_number_dead_and_the_next_number_is_dialed(
    db_pool, tmp_path: Path, cause_first: bool
) -> None:
    _, first, second, rows = await _run_one_tone(
        db_pool, tmp_path, "SIT-VC-985-380", cause_first=cause_first, attempts=2
    )
    tone, after = rows[0], rows[1]
    assert tone["phone_id"] == first
    assert (tone["disposition"], tone["amd_status"], tone["amd_cause"]) == (
        "intercept", "MACHINE", "SIT-VC-985-380",
    )  # fmt: skip
    assert tone["answered_at"] is not None
    assert tone["ledger"] == ["not_in_service"]  # released, as an unallocated number's is
    assert await _status(db_pool, first) == "disconnected"
    # the person's next number, at once (not in 4 h as a machine)
    assert after["phone_id"] == second
    assert after["disposition"] == "busy"
    assert await _status(db_pool, second) == "active"


async def test_a_fax_is_never_dialed_again_for_voice(db_pool, tmp_path: Path) -> None:
    cid, first, second, rows = await _run_one_tone(db_pool, tmp_path, "FAX-1100-600", attempts=2)
    fax, after = rows[0], rows[1]
    assert (fax["phone_id"], fax["disposition"], fax["amd_cause"]) == (
        first, "fax", "FAX-1100-600",
    )  # fmt: skip
    assert fax["ledger"] == ["machine"]  # answered, no person: it counts
    assert await _status(db_pool, first) == "fax"
    assert after["phone_id"] == second  # the next number at once
    # Later, the lead due again: the rotation would take the fax number first (the longest
    # since it was dialed), but it is not dialed for voice any more.
    code = await db_pool.fetchval("SELECT code FROM campaigns WHERE id = $1", cid)
    dials, denied = await claim_and_gate(
        db_pool, ComplianceGate(db_pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=1, node="n1", pbx="sim", now=NOON + timedelta(hours=2),
    )  # fmt: skip
    assert [d.phone_id for d in dials] == [second], denied


async def test_a_sit_of_congestion_is_retried_soon_like_congestion(db_pool, tmp_path: Path) -> None:
    _, first, _, rows = await _run_one_tone(db_pool, tmp_path, "SIT-NC-985-380", attempts=1)
    (tone,) = rows
    assert (tone["disposition"], tone["amd_cause"]) == ("congestion", "SIT-NC-985-380")
    assert tone["ledger"] == ["network_failure"]  # as a congestion's
    assert await _status(db_pool, first) == "active"  # not a dead number
    assert (tone["lead"], tone["last_outcome"]) == ("ready", "congestion")
    assert tone["next_try_at"] - tone["finalized_at"] == timedelta(
        seconds=DEFAULT_RETRY_S["congestion"]
    )


# -- SIT IO / unresolved: a second one in a row -------------------------------------------------
async def _claim(pool, cid: int, code: str, now) -> Dial:
    dials, denied = await claim_and_gate(
        pool, ComplianceGate(pool), campaign_id=cid, campaign_code=code, packs=["mx"], want=1,
        node="n1", pbx="sim", now=now,
    )  # fmt: skip
    assert len(dials) == 1, denied
    return dials[0]


async def _write(pool, campaign: Campaign, d: Dial, disposition: str, cause: str, now) -> None:
    assert await write_result(
        pool, ComplianceGate(pool), campaign, d, disposition, None, amd="MACHINE",
        answered=True, now=now, amd_cause=cause,
    )  # fmt: skip


async def test_one_sit_does_not_kill_the_number_two_resolved_in_a_row_do(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    campaign = await Campaign.load(db_pool, code)
    d1 = await _claim(db_pool, cid, code, NOON)
    await _write(db_pool, campaign, d1, "sit_other", "SIT-IO-985-274", NOON)
    lead = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", d1.lead_id)
    assert await _status(db_pool, d1.phone_id) == "active"
    assert lead["state"] == "ready"
    assert lead["next_try_at"] == NOON + timedelta(seconds=DEFAULT_RETRY_S["sit_other"])
    ledger = "SELECT array_agg(outcome) FROM compliance_outcomes WHERE attempt_id = $1::uuid"
    assert await db_pool.fetchval(ledger, d1.attempt_id) == ["no_answer"]  # it counts

    later = lead["next_try_at"] + timedelta(minutes=1)
    d2 = await _claim(db_pool, cid, code, later)
    assert d2.phone_id == d1.phone_id  # (the person's only number)
    await _write(db_pool, campaign, d2, "sit_other", "SIT-IO-985-274", later)
    # Two network announcements in a row: not in service. The count is kept all the same.
    assert await _status(db_pool, d1.phone_id) == "disconnected"
    assert await db_pool.fetchval(ledger, d2.attempt_id) == ["no_answer"]
    lead = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", d1.lead_id)
    assert (lead["state"], lead["next_try_at"]) == ("ready", later)  # its next number now


async def test_unresolved_sits_never_kill_the_number(db_pool, tmp_path: Path) -> None:
    # An answering machine whose greeting opens on a tone in a SIT band: the detector hears a
    # SIT it cannot resolve on every dial. Before, the second marked the number disconnected.
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    campaign = await Campaign.load(db_pool, code)
    at = NOON
    for cause in ("SIT-UNK-985-300", "SIT-UNK-985-300", "SIT-IO-985-274"):
        d = await _claim(db_pool, cid, code, at)
        await _write(db_pool, campaign, d, "sit_other", cause, at)
        # (the last, resolved, follows an unresolved one: still no evidence of a dead number)
        assert await _status(db_pool, d.phone_id) == "active", cause
        lead = await db_pool.fetchrow("SELECT next_try_at FROM leads WHERE id = $1", d.lead_id)
        assert lead["next_try_at"] == at + timedelta(seconds=DEFAULT_RETRY_S["sit_other"])
        at += timedelta(days=1)  # (within the calling hours and the daily caps)
    d = await _claim(db_pool, cid, code, at)
    await _write(db_pool, campaign, d, "sit_other", "SIT-IO-985-274", at)
    assert await _status(db_pool, d.phone_id) == "disconnected"  # two resolved in a row


async def test_an_unresolved_sit_after_another_answer_does_not_kill_the_number(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    campaign = await Campaign.load(db_pool, code)
    d1 = await _claim(db_pool, cid, code, NOON)
    await _write(db_pool, campaign, d1, "machine", "LONGGREETING-5000-3500", NOON)
    later = NOON + timedelta(hours=5)
    d2 = await _claim(db_pool, cid, code, later)
    await _write(db_pool, campaign, d2, "sit_other", "SIT-UNK-985-300", later)
    assert await _status(db_pool, d2.phone_id) == "active"


# -- a restart that finds the call ended unheard -----------------------------------------------
async def test_a_restart_settles_a_tone_answer_from_what_was_written(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    d = await _claim(db_pool, cid, code, NOON)
    async with floor(db_pool, model={"outcomes": {"human": 1.0}}, agents=0) as f:
        before = await f.runner_for(code)  # the run that saw the verdict, then died
        after = await f.runner_for(code)  # the node after its restart
    before.calls[d.attempt_id] = _Call(d, 0.0)
    before.tracker.originated(d.attempt_id, 0.0)
    for pairs in (
        [("Event", "OriginateResponse"), ("ActionID", d.attempt_id), ("Response", "Success"),
         ("Reason", "4")],
        [("Event", "UserEvent"), ("UserEvent", "PuenteAMD"), ("Attempt", d.attempt_id),
         ("AMDSTATUS", "MACHINE"), ("AMDCAUSE", "SIT-IC-914-274")],
    ):  # fmt: skip
        before._on_event(AmiMessage.from_pairs(pairs))
    await asyncio.gather(*before._sends)
    row = await db_pool.fetchrow(
        "SELECT state, amd_status, amd_cause FROM call_attempts WHERE id = $1::uuid",
        d.attempt_id,
    )
    assert row["state"] != "final"
    assert (row["amd_status"], row["amd_cause"]) == ("MACHINE", "SIT-IC-914-274")

    async def no_channels(action: str, fields=()) -> ActionResult:  # the call is gone
        assert action == "CoreShowChannels"
        return ActionResult(action, "x", AmiMessage.from_pairs([("Response", "Success")]), [])

    after.ami = SimpleNamespace(send_action=no_channels, connects_total=1)
    await after._reconcile(all_nodes=False)
    if after._sends:
        await asyncio.gather(*after._sends)
    await after._drain_finals()
    row = await db_pool.fetchrow(
        "SELECT disposition, amd_cause, (SELECT array_agg(outcome) FROM compliance_outcomes o"
        " WHERE o.attempt_id = a.id) AS ledger FROM call_attempts a WHERE id = $1::uuid",
        d.attempt_id,
    )
    assert (row["disposition"], row["amd_cause"], row["ledger"]) == (
        "intercept", "SIT-IC-914-274", ["not_in_service"],
    )  # fmt: skip
    assert await _status(db_pool, d.phone_id) == "disconnected"
