"""The demo's data and clock: started at any hour, the demo dials (on the real database, through
the real compliance gate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest

from compliance import ComplianceGate
from dialer.demo import (
    CAMPAIGNS,
    DEBTORS_PER_CAMPAIGN,
    OPEN_FROM_UTC,
    OPEN_UNTIL_UTC,
    DemoClock,
    demo_offset,
    ensure_demo_campaigns,
)

FRIDAY_0417 = datetime(2026, 11, 27, 4, 17, tzinfo=UTC)  # nobody in MX, CO, ES, US callable
WEDNESDAY_1600 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
WINTER, SUMMER = datetime(2026, 12, 2).date(), datetime(2027, 7, 14).date()  # Wednesdays
SATURDAY_1600 = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
FRIDAY_2200 = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


def test_inside_the_calling_hours_the_demo_runs_on_real_time() -> None:
    assert demo_offset(WEDNESDAY_1600) == timedelta(0)
    assert demo_offset(datetime(2026, 12, 2, 18, 29, tzinfo=UTC)) == timedelta(0)


@pytest.mark.parametrize(
    ("real", "demo"),
    [
        (FRIDAY_0417, datetime(2026, 11, 27, 15, 30, tzinfo=UTC)),  # later the same day
        (FRIDAY_2200, datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),  # Monday, past the weekend
        (SATURDAY_1600, datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),
        (datetime(2026, 12, 2, 18, 30, tzinfo=UTC), datetime(2026, 12, 3, 15, 30, tzinfo=UTC)),
    ],
)
def test_outside_them_it_runs_from_the_next_weekday_at_1530_utc(
    real: datetime, demo: datetime
) -> None:
    assert real + demo_offset(real) == demo
    assert demo_offset(real) > timedelta(0)  # never back in time


def test_the_clock_says_what_it_does() -> None:
    assert DemoClock(timedelta(0)).describe().endswith("(real time)")
    text = DemoClock(timedelta(hours=10, minutes=43)).describe()
    assert "real time + 10:43" in text
    assert "calling hours" in text


@pytest.mark.parametrize(
    "real",
    [
        FRIDAY_0417,
        FRIDAY_2200,
        SATURDAY_1600,
        datetime(2027, 7, 14, 3, 0, tzinfo=UTC),  # summer time in Madrid and Dallas
        # The ends of the open stretch (real time), winter and summer.
        *(datetime.combine(day, OPEN_FROM_UTC, UTC) for day in (WINTER, SUMMER)),
        *(datetime.combine(day, OPEN_UNTIL_UTC, UTC) - timedelta(minutes=1)
          for day in (WINTER, SUMMER)),
    ],
)  # fmt: skip
async def test_at_the_demo_clock_every_demo_campaign_may_dial(db_pool, real: datetime) -> None:
    # The real gate with the real packs decides: a debtor of every demo campaign may be called
    # at the time the demo's clock gives (the open stretch is where the packs' hours meet).
    await ensure_demo_campaigns(db_pool)
    # The US debtors' consents are recorded when the demo's data is made (now): dated back,
    # so that these fixed dates (holidays checked) stay after them whenever the test runs.
    # (consents keep their history, migration 0024: the test dates them back with the
    # triggers off on its own connection)
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE consents SET recorded_at = '2020-01-01' WHERE source = 'demo: credit agreement'"
        )
    now = real + demo_offset(real)
    gate = ComplianceGate(db_pool)
    for code, (_country, _region, packs, _number) in CAMPAIGNS.items():
        lead = await db_pool.fetchrow(
            """SELECT l.person_id, l.debt_id, n.id AS phone_id FROM leads l
               JOIN campaigns c ON c.id = l.campaign_id
               JOIN phone_numbers n ON n.person_id = l.person_id
               WHERE c.code = $1 ORDER BY l.id LIMIT 1""",
            code,
        )
        decision = await gate.check(
            person_id=lead["person_id"], debt_ids=[lead["debt_id"]], phone=lead["phone_id"],
            channel="autodialed_voice", packs=list(packs), now=now,
        )  # fmt: skip
        assert decision.allowed, (code, now, decision.codes)


async def test_the_demo_debtors_span_four_countries_each_on_a_number_of_their_own(
    db_pool,
) -> None:
    # 2,000 synthetic debtors, 500 per country, every number valid in that country, and no
    # number shared by two debtors (a shared one is a wrong-party call waiting to happen); made
    # once: a second start adds nobody.
    await ensure_demo_campaigns(db_pool)
    await ensure_demo_campaigns(db_pool)
    rows = await db_pool.fetch(
        """SELECT c.code, p.country, count(DISTINCT p.id) AS persons, count(l.id) AS leads
           FROM leads l JOIN campaigns c ON c.id = l.campaign_id
           JOIN persons p ON p.id = l.person_id
           WHERE c.code LIKE 'demo-%' GROUP BY 1, 2 ORDER BY 1"""
    )
    assert {(r["code"], r["country"], r["persons"], r["leads"]) for r in rows} == {
        (code, country, DEBTORS_PER_CAMPAIGN, DEBTORS_PER_CAMPAIGN)
        for code, (country, *_rest) in CAMPAIGNS.items()
    }
    numbers = await db_pool.fetch(
        """SELECT n.e164, p.country, count(DISTINCT n.person_id) AS persons
           FROM phone_numbers n JOIN persons p ON p.id = n.person_id
           JOIN leads l ON l.person_id = p.id JOIN campaigns c ON c.id = l.campaign_id
           WHERE c.code LIKE 'demo-%' GROUP BY 1, 2"""
    )
    assert len(numbers) >= DEBTORS_PER_CAMPAIGN * len(CAMPAIGNS)
    shared = [r["e164"][:-4] + "****" for r in numbers if r["persons"] > 1]
    assert not shared, f"{len(shared)} numbers belong to several debtors"
    for r in numbers:
        parsed = phonenumbers.parse(r["e164"])
        assert phonenumbers.is_valid_number(parsed), r["e164"][:-4]
        assert phonenumbers.region_code_for_number(parsed) == r["country"]
