"""The learned best hour: smoothing (pure), the debtor's primary zone, and the rescore's bounded
boost on the real database."""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from compliance import Contact
from dialer.campaigns import (
    Campaign,
    CampaignError,
    answer_rate_by_hour,
    hour_lift,
    overall_answer_rate,
    primary_zone,
    rescore,
)
from dialer.pacing import HourlyOdds
from dialer.runner import CampaignRunner

# Wednesday 2 December 2026, 18:00 UTC: 12:00 in Mexico City (UTC-6), 10:00 in Tijuana (UTC-8),
# 19:00 in Madrid (UTC+1).
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


# -- pure ------------------------------------------------------------------------------------
def test_rates_are_smoothed_toward_the_campaigns_rate() -> None:
    counts = {10: (30, 50), 20: (1, 10)}  # hour -> (answers, dials)
    assert overall_answer_rate(counts) == pytest.approx(31 / 60)
    rates = answer_rate_by_hour(counts, 20)
    assert sorted(rates) == list(range(24))
    assert rates[10] == pytest.approx(0.5761905, abs=1e-7)  # (30 + 20 * 31/60) / 70
    assert rates[20] == pytest.approx(0.3777778, abs=1e-7)  # (1 + 20 * 31/60) / 30
    assert rates[3] == pytest.approx(0.5166667, abs=1e-7)  # never dialed: the campaign's rate
    assert rates[10] < 30 / 50  # pulled toward 31/60 ...
    assert rates[20] > 1 / 10  # ... from both sides


def test_a_sparse_hour_does_not_swing() -> None:
    counts = {9: (20, 100), 5: (1, 1)}  # one lucky dial at 05:00
    rates = answer_rate_by_hour(counts, 20)
    assert rates[5] == pytest.approx((1 + 20 * 21 / 101) / 21)
    assert rates[5] == pytest.approx(0.2456, abs=1e-4)  # not 100 %
    assert answer_rate_by_hour(counts, 1)[5] == pytest.approx((1 + 21 / 101) / 2)  # weaker prior


def test_nothing_to_learn_without_dials() -> None:
    assert answer_rate_by_hour({}, 20) == {}
    assert answer_rate_by_hour({4: (0, 0)}, 20) == {}
    assert overall_answer_rate({}) is None


@pytest.mark.parametrize(
    ("counts", "k"),
    [({24: (1, 2)}, 20), ({-1: (1, 2)}, 20), ({3: (3, 2)}, 20), ({3: (-1, 2)}, 20), ({}, 0)],
)
def test_bad_counts_are_refused(counts: dict, k: float) -> None:
    with pytest.raises(ValueError, match=r"bad count|prior_k"):
        answer_rate_by_hour(counts, k)


def test_the_lift_is_relative_and_bounded() -> None:
    assert hour_lift(0.3, 0.2) == pytest.approx(0.5)
    assert hour_lift(0.1, 0.2) == pytest.approx(-0.5)
    assert hour_lift(0.9, 0.2) == 1.0
    assert hour_lift(0.0, 0.2) == -1.0
    assert hour_lift(0.5, 0.0) == 0.0


@pytest.mark.parametrize(
    ("contact", "e164", "zone"),
    [
        (Contact(country="MX", region="CMX"), "+525512345678", "America/Mexico_City"),
        (Contact(country="MX", region="BCN"), "+526641234567", "America/Tijuana"),
        # A stated zone overrides the address and the number.
        (
            Contact(country="MX", region="CMX", stated_timezone="Europe/Madrid"),
            None,
            "Europe/Madrid",
        ),
        # Texas spans Central and Mountain time: the state's main zone.
        (Contact(country="US", region="TX"), "+12145551234", "America/Chicago"),
        # No region: the number's zone among the country's.
        (Contact(country="US"), "+12125551234", "America/New_York"),
        (Contact(), "+525512345678", "America/Mexico_City"),  # the number alone
        (Contact(), "+18005551234", None),  # toll-free says nothing
        (Contact(), None, None),
    ],
)
def test_the_primary_zone(contact: Contact, e164: str | None, zone: str | None) -> None:
    assert primary_zone(contact, e164) == zone


def row(settings: dict) -> dict[str, Any]:
    return {
        "id": 1, "code": "c1", "mode": "predictive", "queue_name": "q", "trunk": "PJSIP/t",
        "caller_id": None, "compliance_packs": ["mx"], "ring_timeout_s": 25,
        "abandon_target": 0.03, "agentless_flow": None, "settings": json.dumps(settings),
        "retry_schedule": "{}", "state": "running", "abandon_window_days": 30,
    }  # fmt: skip


def test_the_best_hour_weight_is_a_priority_weight() -> None:
    c = Campaign.from_row(row({"priority": {"balance": 2, "best_hour": 7.5}}))
    assert c.priority_weights == (2.0, 0.0, 0.0, 0.0, 7.5)
    assert c.best_hour_weight == 7.5
    assert Campaign.from_row(row({"priority": {"balance": 2}})).best_hour_weight == 0.0
    assert Campaign.from_row(row({})).best_hour_weight == 0.0
    for bad in ("soon", True, math.nan, math.inf):
        with pytest.raises(CampaignError, match=r"settings\.priority must map some of .*best_hour"):
            Campaign.from_row(row({"priority": {"best_hour": bad}}))


# -- the rescore ------------------------------------------------------------------------------
async def seed(db_pool) -> dict[str, Any]:
    """A campaign and four debtors: Mexico City, Tijuana, Madrid (stated) and one whose zone
    is unknown (a toll-free number, no address); priorities recomputed from best_hour only."""
    code = f"c{os.urandom(4).hex()}"
    cred = await db_pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency)
           VALUES ($1, 'Acme', 'Acme', '+525500000000', 'MXN') RETURNING id""",
        code,
    )
    cid = await db_pool.fetchval(
        """INSERT INTO campaigns (code, name, creditor_id, compliance_packs, state, settings)
           VALUES ($1, 'T', $2, '{mx}', 'running', '{"priority": {"best_hour": 10}}')
           RETURNING id""",
        code,
        cred,
    )
    out: dict[str, Any] = {"cid": cid, "code": code}
    people = {
        "cdmx": ("MX", "CMX", None, "+5255"),
        "tijuana": ("MX", "BCN", None, "+52664"),
        "madrid": ("MX", "CMX", "Europe/Madrid", "+5255"),
        "unknown": (None, None, None, "+1800"),
    }
    for name, (country, region, stated, prefix) in people.items():
        person = await db_pool.fetchval(
            "INSERT INTO persons (full_name, country, region, stated_timezone) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            name,
            country,
            region,
            stated,
        )
        e164 = prefix + f"{int.from_bytes(os.urandom(3), 'big') % 10_000_000:07d}"
        if prefix == "+1800":
            e164 = "+18005551234"
        await db_pool.execute(
            "INSERT INTO phone_numbers (person_id, e164) VALUES ($1, $2)", person, e164
        )
        debt = await db_pool.fetchval(
            "INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency) "
            "VALUES ($1, $2, $3, 10000, 'MXN') RETURNING id",
            person,
            cred,
            f"{code}-{name}",
        )
        lead = await db_pool.fetchval(
            "INSERT INTO leads (campaign_id, person_id, debt_id, priority) "
            "VALUES ($1, $2, $3, 0) RETURNING id",
            cid,
            person,
            debt,
        )
        out[name] = {"person": person, "debt": debt, "lead": lead}
    return out


async def attempts(db_pool, s: dict, who: str, at: datetime, dispositions: dict, cid=None) -> None:
    """Final attempts to ``who`` dialed at ``at`` (one per disposition count)."""
    p = s[who]
    for disposition, n in dispositions.items():
        for i in range(n):
            dialed = at - timedelta(days=i % 10)  # spread over the days, same time of day
            await db_pool.execute(
                """INSERT INTO call_attempts (id, lead_id, campaign_id, person_id, debt_id, node,
                       pbx, state, disposition, abandoned, originated_at, finalized_at)
                   VALUES ($1, $2, $3, $4, $5, 'n1', 'sim', 'final', $6, $6 = 'abandoned', $7,
                           $8)""",
                uuid.uuid4(),
                p["lead"],
                cid or s["cid"],
                p["person"],
                p["debt"],
                disposition,
                dialed,
                dialed + timedelta(seconds=40),
            )


async def priorities(db_pool, cid: int) -> dict[int, int]:
    rows = await db_pool.fetch("SELECT id, priority FROM leads WHERE campaign_id = $1", cid)
    return {r["id"]: r["priority"] for r in rows}


async def test_a_lead_whose_hour_answers_well_goes_first(db_pool) -> None:
    s = await seed(db_pool)
    # 18:10 UTC on earlier days: 12:10 in Mexico City and 10:10 in Tijuana, the hours of now.
    day = NOW - timedelta(days=1) + timedelta(minutes=10)
    await attempts(db_pool, s, "cdmx", day, {"agent": 20, "abandoned": 6, "hangup": 4,
                                             "no_answer": 6, "machine": 4})  # fmt: skip
    await attempts(db_pool, s, "tijuana", day, {"agent": 4, "no_answer": 30, "busy": 6})
    # Not counted: never dialed, fate unknown, too old, another campaign, an unknown zone.
    await attempts(db_pool, s, "cdmx", day, {"failed": 50, "lost": 5})
    await attempts(db_pool, s, "tijuana", NOW - timedelta(days=15), {"agent": 100})
    other = await db_pool.fetchval(
        "INSERT INTO campaigns (code, name) VALUES ($1, 'other') RETURNING id", s["code"] + "x"
    )
    await attempts(db_pool, s, "tijuana", day, {"agent": 100}, cid=other)
    await attempts(db_pool, s, "unknown", day, {"agent": 100})
    c = await Campaign.load(db_pool, s["code"])
    await rescore(db_pool, c, NOW)

    zones = {r["person_id"]: r["zone"] for r in await db_pool.fetch("SELECT * FROM person_zones")}
    assert zones[s["cdmx"]["person"]] == "America/Mexico_City"
    assert zones[s["tijuana"]["person"]] == "America/Tijuana"
    assert zones[s["madrid"]["person"]] == "Europe/Madrid"
    assert zones[s["unknown"]["person"]] is None
    learned = {
        r["hour"]: r
        for r in await db_pool.fetch(
            "SELECT * FROM campaign_answer_hours WHERE campaign_id = $1", s["cid"]
        )
    }
    assert sorted(learned) == list(range(24))
    assert (learned[12]["answers"], learned[12]["dials"]) == (30, 40)
    assert (learned[10]["answers"], learned[10]["dials"]) == (4, 40)
    assert learned[19]["dials"] == 0
    p = 34 / 80
    good = (30 + 20 * p) / 60
    bad = (4 + 20 * p) / 60
    assert learned[12]["rate"] == pytest.approx(good)
    assert learned[10]["rate"] == pytest.approx(bad)
    assert learned[12]["lift"] == pytest.approx((good - p) / p)  # +0.5098
    assert learned[10]["lift"] == pytest.approx((bad - p) / p)  # -0.5098
    got = await priorities(db_pool, s["cid"])
    assert got[s["cdmx"]["lead"]] == round(10 * (good - p) / p) == 5
    assert got[s["tijuana"]["lead"]] == round(10 * (bad - p) / p) == -5
    assert got[s["madrid"]["lead"]] == 0  # 19:00 in Madrid: never dialed, the campaign's rate
    assert got[s["unknown"]["lead"]] == 0  # no zone: no adjustment
    # The pacer's hour odds take the same shape: the hours' rates over the campaign's.
    runner = CampaignRunner.__new__(CampaignRunner)
    runner.pool, runner.c, runner.hours, runner._hours_read_at = db_pool, c, HourlyOdds(), 0.0
    await runner._read_hours()
    assert runner.hours.shape[12] == pytest.approx(good / p)
    assert runner.hours.shape[10] == pytest.approx(bad / p)
    assert runner.hours.shape[19] == pytest.approx(1.0)

    # An hour later it is 13:00 in Mexico City and 11:00 in Tijuana: hours with no history.
    await rescore(db_pool, c, NOW + timedelta(hours=1))
    assert set((await priorities(db_pool, s["cid"])).values()) == {0}


async def test_a_new_address_is_resolved_again(db_pool) -> None:
    s = await seed(db_pool)
    day = NOW - timedelta(days=1)
    await attempts(db_pool, s, "cdmx", day, {"agent": 30, "no_answer": 10})  # 12:00 CDMX
    await attempts(db_pool, s, "tijuana", day, {"no_answer": 40})  # 10:00 Tijuana
    c = await Campaign.load(db_pool, s["code"])
    await rescore(db_pool, c, NOW)
    got = await priorities(db_pool, s["cid"])
    assert (got[s["cdmx"]["lead"]], got[s["tijuana"]["lead"]]) == (7, -7)
    # Tijuana's debtor says they live in Mexico City now: their hour is 12:00 too.
    await db_pool.execute(
        "UPDATE persons SET stated_timezone = 'America/Mexico_City' WHERE id = $1",
        s["tijuana"]["person"],
    )
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM person_zones WHERE person_id = $1", s["tijuana"]["person"]
        )
        == 0
    )
    await rescore(db_pool, c, NOW)
    got = await priorities(db_pool, s["cid"])
    # Their history now counts at 12:00 too: 30 answers of 80 dials at 12:00, all there is.
    assert got[s["tijuana"]["lead"]] == got[s["cdmx"]["lead"]] == 0


async def test_without_the_weight_nothing_is_learned(db_pool) -> None:
    s = await seed(db_pool)
    await db_pool.execute(
        """UPDATE campaigns SET settings = '{"priority": {"balance": 1}}' WHERE id = $1""",
        s["cid"],
    )
    await attempts(db_pool, s, "cdmx", NOW - timedelta(days=1), {"agent": 30})
    c = await Campaign.load(db_pool, s["code"])
    await rescore(db_pool, c, NOW)
    assert set((await priorities(db_pool, s["cid"])).values()) == {round(math.log(101))}
    learned = "SELECT count(*) FROM campaign_answer_hours WHERE campaign_id = $1"
    assert await db_pool.fetchval(learned, s["cid"]) == 0


@pytest.mark.parametrize("mode", ["predictive", "agentless"])
async def test_a_paced_campaign_learns_the_hours_for_its_pacer_without_the_weight(
    db_pool, mode: str
) -> None:
    # Before, only the best_hour weight made the rescore learn the hours: a predictive campaign
    # without it paced every hour on one answer rate, its history's shape unused.
    s = await seed(db_pool)
    await db_pool.execute(
        """UPDATE campaigns SET mode = $2, agentless_flow = 'collections', settings = '{}'
           WHERE id = $1""",
        s["cid"],
        mode,
    )
    day = NOW - timedelta(days=1)
    await attempts(db_pool, s, "cdmx", day, {"agent": 30, "no_answer": 10})  # 12:00 CDMX
    await attempts(db_pool, s, "tijuana", day, {"no_answer": 40})  # 10:00 Tijuana
    c = await Campaign.load(db_pool, s["code"])
    assert c.priority_weights is None
    assert c.learns_hours
    await rescore(db_pool, c, NOW)
    rows = await db_pool.fetch(
        "SELECT hour, answers, dials FROM campaign_answer_hours WHERE campaign_id = $1", s["cid"]
    )
    counts = {r["hour"]: (r["answers"], r["dials"]) for r in rows}
    assert counts[12] == (30, 40)
    assert counts[10] == (0, 40)
    # No weights: the imported priorities stand.
    assert set((await priorities(db_pool, s["cid"])).values()) == {0}
    runner = CampaignRunner.__new__(CampaignRunner)
    runner.pool, runner.c, runner.hours, runner._hours_read_at = db_pool, c, HourlyOdds(), 0.0
    await runner._read_hours()
    assert runner.hours.shape[12] > 1.0 > runner.hours.shape[10]
