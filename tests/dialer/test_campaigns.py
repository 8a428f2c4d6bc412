"""Campaign rows and retry schedules: parsed, validated, and every mistake named."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dialer.campaigns import (
    DEFAULT_RETRY_S,
    PRIORITY_SQL,
    Campaign,
    CampaignError,
    RetrySchedule,
)
from tests.dialer._floor import make_campaign


def row(**over: Any) -> dict[str, Any]:
    r = {
        "id": 1, "code": "c1", "mode": "predictive", "queue_name": "q", "trunk": "PJSIP/t",
        "caller_id": None, "compliance_packs": ["mx"], "ring_timeout_s": 25,
        "abandon_target": 0.03, "agentless_flow": None, "settings": "{}",
        "retry_schedule": "{}", "state": "running", "abandon_window_days": 30,
    }  # fmt: skip
    r.update(over)
    return r


def test_defaults_when_the_schedule_is_empty() -> None:
    c = Campaign.from_row(row())
    assert c.retry.retry_after_s("busy", 1) == DEFAULT_RETRY_S["busy"] == 900
    assert c.retry.retry_after_s("agent", 1) is None
    assert c.channel == "autodialed_voice"
    assert c.max_lines == 200
    assert c.language == "es"
    assert c.queue_wrapup_s == 5.0  # the shipped queues.conf's wrapuptime
    assert Campaign.from_row(row(settings='{"queue_wrapup_s": 12}')).queue_wrapup_s == 12.0


def test_a_schedule_in_units_with_a_default_and_max_attempts() -> None:
    s = RetrySchedule.parse(
        {"busy": "5m", "no_answer": "3h", "machine": None, "default": 60, "max_attempts": 3}
    )
    assert s.retry_after_s("busy", 1) == 300
    assert s.retry_after_s("no_answer", 2) == 3 * 3600
    assert s.retry_after_s("machine", 1) is None  # null: the lead ends
    assert s.retry_after_s("congestion", 1) == 60  # the default
    assert s.retry_after_s("agent", 1) is None  # an agent's call is never rescheduled by default
    assert s.retry_after_s("busy", 3) is None  # the third dial was the last


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"busy": "soon"}, "retry_schedule.busy: expected seconds"),
        ({"busy": -5}, "retry_schedule.busy"),
        ({"busy": True}, "retry_schedule.busy"),
        ({"busy": "9" * 4301}, "retry_schedule.busy: expected seconds"),  # was a ValueError: 500
        ({"busy": "\uff11\uff15m"}, "retry_schedule.busy: expected seconds"),  # fullwidth 15
        ({"bussy": 60}, "unknown key 'bussy'"),
        ({"max_attempts": 0}, "max_attempts: expected an integer from 1 to 1000"),
        ({"max_attempts": "3"}, "max_attempts"),
    ],
)
def test_bad_schedules_are_named(raw: dict, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        RetrySchedule.parse(raw)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"settings": "{not json"}, "campaign 'c1': settings: not JSON"),
        ({"settings": '{"max_lines": -1}'}, "settings.max_lines"),
        ({"settings": '{"lines": 3}'}, r"settings has unknown keys \['lines'\]"),
        ({"settings": '{"language": "fr"}'}, "settings.language"),
        ({"settings": '{"queue_wrapup_s": -1}'}, "settings.queue_wrapup_s must be seconds"),
        ({"settings": '{"queue_wrapup_s": "5"}'}, "settings.queue_wrapup_s"),
        ({"retry_schedule": '{"busy": "x"}'}, "campaign 'c1': retry_schedule.busy"),
        ({"retry_schedule": "[1]"}, "retry_schedule: expected a JSON object"),
        ({"mode": "agentless"}, "needs agentless_flow"),
    ],
)
def test_bad_rows_are_named(over: dict, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        Campaign.from_row(row(**over))


def test_an_agentless_campaign_plays_prerecorded_prompts() -> None:
    c = Campaign.from_row(row(mode="agentless", agentless_flow="reminder"))
    assert c.channel == "prerecorded"


def test_bad_priority_weights_are_named() -> None:
    with pytest.raises(CampaignError, match=r"settings\.priority must map some of balance"):
        Campaign.from_row(row(settings='{"priority": {"balanse": 1}}'))
    with pytest.raises(CampaignError, match=r"settings\.priority"):
        Campaign.from_row(row(settings='{"priority": {"balance": "high"}}'))
    for mistake in ("false", "0", "[]", '""'):  # (not "no weights": those are absent or null)
        with pytest.raises(CampaignError, match=r"settings\.priority must map"):
            Campaign.from_row(row(settings=f'{{"priority": {mistake}}}'))
    assert Campaign.from_row(row(settings='{"priority": null}')).priority_weights is None


async def test_priorities_from_the_debt_and_its_history(db_pool, tmp_path) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="predictive", leads=4)
    await db_pool.execute(
        """UPDATE campaigns SET settings = '{"priority": {"balance": 10, "days_past_due": 5,
               "broken_promises": 50, "days_since_contact": 1}}' WHERE id = $1""",
        cid,
    )
    c = await Campaign.load(db_pool, code)
    leads = await db_pool.fetch(
        "SELECT l.id, l.debt_id, l.person_id FROM leads l WHERE l.campaign_id = $1 ORDER BY l.id",
        cid,
    )
    big, old, broken, contacted = leads
    now = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
    await db_pool.execute("UPDATE debts SET balance_cents = 10000000 WHERE id = $1", big["debt_id"])
    await db_pool.execute("UPDATE debts SET days_past_due = 690 WHERE id = $1", old["debt_id"])
    await db_pool.execute(
        """INSERT INTO promises (debt_id, source, plan, total_cents, status, confirmation_code)
           VALUES ($1, 'ivr', '[]', 500, 'broken', gen_random_uuid()::text),
                  ($1, 'agent', '[]', 500, 'broken', gen_random_uuid()::text)""",
        broken["debt_id"],
    )
    await db_pool.execute(
        """INSERT INTO compliance_outcomes (attempt_id, person_id, outcome, at)
           VALUES (gen_random_uuid(), $1, 'conversation', $2)""",
        contacted["person_id"],
        now - timedelta(days=2),
    )
    await db_pool.execute(PRIORITY_SQL, cid, *c.priority_weights, now)
    got = {
        r["id"]: r["priority"]
        for r in await db_pool.fetch("SELECT id, priority FROM leads WHERE campaign_id = $1", cid)
    }
    base = round(10 * math.log(1 + 10) + 60)  # balance 10.00, never contacted (60 days)
    assert got[contacted["id"]] == round(10 * math.log(1 + 10) + 2)  # spoken to 2 days ago
    assert got[broken["id"]] == base + 100
    assert got[old["id"]] == round(10 * math.log(11) + 5 * 690 / 30 + 60)
    assert got[big["id"]] == round(10 * math.log(1 + 100000) + 60)
    assert sorted(got, key=got.get) == [contacted["id"], big["id"], broken["id"], old["id"]]
    # Rescored again with nothing changed: no lead is written (same row versions).
    versions = "SELECT id, xmin::text FROM leads WHERE campaign_id = $1 ORDER BY id"
    before = await db_pool.fetch(versions, cid)
    assert await db_pool.execute(PRIORITY_SQL, cid, *c.priority_weights, now) == "UPDATE 0"
    assert await db_pool.fetch(versions, cid) == before


def test_the_default_voicemail_is_the_limited_content_message() -> None:
    acme = {"creditor_code": "Acme", "creditor_number": "+1 (512) 555-0100"}
    c = Campaign.from_row(row(settings={"language": "en"}, creditor_contact="Ana Ruiz", **acme))
    assert c.voicemail == (
        "puente/en/voicemail_limited&puente/en/company_acme&puente/en/voicemail_ask_for"
        "&puente/en/contact_acme&puente/en/voicemail_callback"
    )
    assert (c.voicemail_number, c.voicemail_problem) == ("15125550100", None)


@pytest.mark.parametrize(
    ("creditor", "problem"),
    [
        ({}, "the campaign has no creditor to name"),
        ({"creditor_code": "Acme", "creditor_number": "+15125550100"}, "has no contact_name"),
        (
            {"creditor_code": "Acme", "creditor_number": "+15125550100", "creditor_contact": " "},
            "has no contact_name",
        ),
        ({"creditor_code": "Acme", "creditor_contact": "Ana"}, "has no callback_number"),
    ],
)
def test_no_limited_message_without_all_its_elements(creditor: dict, problem: str) -> None:
    # A message missing the business name, the person to ask for or the number is not Reg F's
    # limited-content message: machines get none (fail closed), and the status says why.
    c = Campaign.from_row(row(**creditor))
    assert (c.voicemail, c.voicemail_number) == ("", "")
    assert c.voicemail_problem is not None
    assert problem in c.voicemail_problem


def test_own_or_no_voicemail_message() -> None:
    assert Campaign.from_row(row(settings={"voicemail": ""})).voicemail == ""
    own = Campaign.from_row(row(settings={"voicemail": {"es": "acme/vm-es", "en": "acme/vm-en"}}))
    assert (own.voicemail, own.voicemail_number) == ("acme/vm-es", "")
    with pytest.raises(CampaignError, match=r"settings\.voicemail must be"):
        Campaign.from_row(row(settings={"voicemail": "bad file; rm -rf"}))
    # A language the service does not speak left machines without a message, silently.
    with pytest.raises(CampaignError, match=r"settings\.voicemail: 'fr' is not a language"):
        Campaign.from_row(row(settings={"voicemail": {"fr": "acme/vm-fr"}}))
    one = Campaign.from_row(row(settings={"voicemail": {"en": "acme/vm-en"}}))
    assert one.voicemail == ""  # (a Spanish campaign with an English message only: none)


def test_values_past_what_the_service_can_use_are_refused_with_the_field() -> None:
    # A retry delay of 10**15 s was accepted and then crashed the service at the first result
    # (timedelta overflow); a weight of 10**400 made a 500 (float overflow).
    for raw, where in (
        ({"default": 10**15}, "retry_schedule.default"),
        ({"busy": "99999999999999d"}, "retry_schedule.busy"),
        ({"no_answer": f"{366 * 86400 + 1}"}, "retry_schedule.no_answer"),
        ({"max_attempts": 1001}, "retry_schedule.max_attempts"),
    ):
        with pytest.raises(CampaignError, match=where.replace(".", r"\.")) as e:
            RetrySchedule.parse(raw)
        assert len(str(e.value)) < 300  # names the value, does not echo all of it
    assert RetrySchedule.parse({"default": "366d"}).delays_s["busy"] == 366 * 86400
    for weight in (10**400, float("nan"), float("inf"), 1e7):
        bad = row(settings=json.dumps({"priority": {"balance": weight}}))
        with pytest.raises(CampaignError, match=r"settings\.priority") as e:
            Campaign.from_row(bad)
        assert len(str(e.value)) < 300


def test_trunk_caller_id_and_max_lines_the_originate_cannot_carry_are_refused() -> None:
    # A CR or LF in trunk or caller_id was accepted, and the AMI encoder then refused every
    # Originate (header injection): each dial ended 'lost' minutes later, still counted by the
    # ledger against the debtor's call caps. max_lines had no upper bound.
    for over, where in (
        ({"trunk": "PJSIP/trunk\r\nAction: Hangup"}, "trunk"),
        ({"trunk": "PJSIP/tr unk"}, "trunk"),
        ({"trunk": "PJSIP/a@b"}, "trunk"),
        ({"trunk": "/trunk"}, "trunk"),
        ({"trunk": "PJSIP/trunk\n"}, "trunk"),  # ($ in a pattern also matches before a final \n)
        ({"caller_id": 'Demo\r\nX: "y"'}, "caller_id"),
        ({"caller_id": "Demo\x00"}, "caller_id"),
        ({"settings": '{"max_lines": 1000000000000000000000}'}, r"settings\.max_lines"),
        ({"settings": '{"max_lines": 10001}'}, r"settings\.max_lines"),
    ):
        with pytest.raises(CampaignError, match=rf"campaign 'c1': {where}") as e:
            Campaign.from_row(row(**over))
        assert len(str(e.value)) < 300
    ok = Campaign.from_row(
        row(trunk="PJSIP", caller_id='"Financiera Demo" <+525500000000>',
            settings='{"max_lines": 10000}')
    )  # fmt: skip
    assert (ok.trunk, ok.max_lines) == ("PJSIP", 10000)
    assert Campaign.from_row(row(trunk="PJSIP/trunk-mx_2")).trunk == "PJSIP/trunk-mx_2"


def test_a_voicemail_sound_cannot_leave_its_directory() -> None:
    for path in ("../../etc/passwd", "custom/../../../etc/shadow", "..", "custom/msg\n"):
        bad = row(settings=json.dumps({"voicemail": path}))
        with pytest.raises(CampaignError, match=r"settings\.voicemail must be"):
            Campaign.from_row(bad)
    ok = Campaign.from_row(row(settings=json.dumps({"voicemail": "custom/mensaje-v2"})))
    assert ok.voicemail == "custom/mensaje-v2"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"abandon_target": -0.01}, "abandon_target"),
        ({"abandon_target": 1.5}, "abandon_target"),
        ({"abandon_target": float("nan")}, "abandon_target"),
        ({"abandon_target": "3%"}, "abandon_target"),
        ({"abandon_window_days": 0}, "abandon_window_days"),
        ({"abandon_window_days": -30}, "abandon_window_days"),
        ({"abandon_window_days": 30.5}, "abandon_window_days"),
        ({"ring_timeout_s": 0}, "ring_timeout_s"),
        ({"ring_timeout_s": 600}, "ring_timeout_s"),
        ({"ring_timeout_s": "25"}, "ring_timeout_s"),
        ({"queue_name": ""}, "queue_name"),
        ({"queue_name": "collections,x"}, "queue_name"),
        ({"queue_name": "q\r\nAction: Hangup"}, "queue_name"),
        ({"queue_name": "preview-a101"}, "queue_name"),  # an agent's own preview queue
        ({"queue_name": "collections\n"}, "queue_name"),
        ({"queue_name": None}, "queue_name"),
    ],
)
def test_pacing_fields_out_of_range_are_refused_with_the_field(over: dict, field: str) -> None:
    # Each was loaded as it was: a negative or NaN target, a window of no days, a ring timeout
    # of 0 s went to the pacer and the Originate as they were, and the runner dialed on them.
    with pytest.raises(CampaignError, match=rf"^campaign 'c1': {field} "):
        Campaign.from_row(row(**over))


def test_a_us_campaign_is_held_to_the_abandonment_safe_harbor() -> None:
    # 16 CFR 310.4(b)(4)(i)-(ii), 47 CFR 64.1200(a)(6)-(7): at most 3 % of live answers over
    # each 30-day period, and 15 s of ringing before giving up on an unanswered call.
    us = {"compliance_packs": ["us_federal", "us_fl"]}
    for over, field in (
        ({"abandon_target": 0.05}, "abandon_target"),
        ({"abandon_window_days": 90}, "abandon_window_days"),
        ({"ring_timeout_s": 10}, "ring_timeout_s"),
    ):
        with pytest.raises(CampaignError, match=rf"^campaign 'c1': {field} .*us_federal"):
            Campaign.from_row(row(**us, **over))
        Campaign.from_row(row(**over))  # (no US pack: the campaign's own choice)
    ok = Campaign.from_row(
        row(**us, abandon_target=Decimal("0.0300"), abandon_window_days=30, ring_timeout_s=15)
    )
    assert (ok.abandon_target, ok.abandon_window_days, ok.ring_timeout_s) == (0.03, 30, 15)
    assert isinstance(ok.abandon_target, float)
