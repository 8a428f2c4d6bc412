"""The demo's data: a creditor, one campaign per country and 2,000 synthetic debtors.

Campaigns ``demo-mx``, ``demo-co``, ``demo-es`` and ``demo-us`` (predictive, each with its
country's rule packs and its own queue of simulated agents), 500 debtors each with one to
three numbers. Created once; a second start finds them and dials what is due.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg

from dialer.importer import import_leads

CAMPAIGNS = {
    # code: (country, region, packs, number maker)
    "demo-mx": ("MX", "CMX", ("mx",), lambda r: f"+5255{r.randrange(10**7, 10**8)}"),
    "demo-co": ("CO", "DC", ("co",), lambda r: f"+57300{r.randrange(10**6, 10**7)}"),
    "demo-es": ("ES", "MD", ("es",), lambda r: f"+346{r.randrange(10**7, 10**8)}"),
    "demo-us": ("US", "TX", ("us_federal",), lambda r: f"+1214555{r.randrange(1000, 9999)}"),
}
DEBTORS_PER_CAMPAIGN = 500
AGENTS_PER_CAMPAIGN = 5
#: The demo queues' wrap-up after each call (queues.conf ``wrapuptime`` of the simulator).
WRAPUP_S = 10


def queue_of(code: str) -> str:
    return code


#: On a weekday between these UTC times every demo campaign's debtors are inside their calling
#: hours, in winter and in summer. The packs' windows (Mexico 07-22, Colombia 07-19 on
#: weekdays, Spain 09-21 on weekdays, US 08-21, in every zone the debtor could be in: Texas
#: reaches into Mountain time) meet from 15:00 UTC (08:00 in El Paso in winter) to 19:00 UTC
#: (21:00 in Madrid in summer); the stretch ends half an hour early.
OPEN_FROM_UTC = time(15, 0)
OPEN_UNTIL_UTC = time(18, 30)
#: Where the demo's clock starts when the real time is outside that stretch: 09:30 in Mexico
#: City, 10:30 in Bogota, 16:30 or 17:30 in Madrid, 09:30 or 10:30 in Dallas.
START_UTC = time(15, 30)


@dataclass(frozen=True)
class DemoClock:
    """The demo's "now": the real time, or the real time shifted to the next weekday's
    calling hours when the demo starts outside them (at 04:00 UTC nobody in Mexico,
    Colombia, Spain or the US may be called, and a demo that dials nobody shows nothing).

    Every component of the demo reads this one clock (the dialer, the compliance gate through
    it, the IVR, the web pages), so the demo stays consistent; ``puente run`` always runs on
    the real time.
    """

    offset: timedelta

    @classmethod
    def starting(cls, real_now: datetime) -> DemoClock:
        return cls(demo_offset(real_now))

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def describe(self) -> str:
        now = self()
        text = f"demo clock {now:%a %Y-%m-%d %H:%M} UTC"
        if not self.offset:
            return text + " (real time)"
        hours, rest = divmod(int(self.offset.total_seconds()) // 60, 60)
        return text + f" (real time + {hours}:{rest:02d}, to be inside calling hours)"


def demo_offset(real_now: datetime) -> timedelta:
    """How far the demo's clock runs ahead of ``real_now``: nothing inside a weekday's
    ``OPEN_FROM_UTC``-``OPEN_UNTIL_UTC``; else up to the next weekday's ``START_UTC``."""
    now = real_now.astimezone(UTC)
    if now.weekday() < 5 and OPEN_FROM_UTC <= now.time() < OPEN_UNTIL_UTC:
        return timedelta(0)
    start = datetime.combine(now.date(), START_UTC, UTC)
    while start <= now or start.weekday() >= 5:
        start += timedelta(days=1)
    return start - now


def _new_number(rng: random.Random, make: Callable[[random.Random], str], used: set[str]) -> str:
    """A number no other demo debtor has: two debtors on one line would be a wrong-party call
    waiting to happen (and one person's calls would count against the other's)."""
    while (number := make(rng)) in used:
        pass
    used.add(number)
    return number


async def ensure_demo_campaigns(pool: asyncpg.Pool, seed: int = 7) -> list[str]:
    cred = await pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency, contact_name)
           VALUES ('demo', 'Financiera Demo', 'Demo', '+525500000000', 'MXN', 'Ana Ruiz')
           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
               contact_name = coalesce(creditors.contact_name, EXCLUDED.contact_name)
           RETURNING id"""
    )
    rng = random.Random(seed)
    used: set[str] = set()
    for code, (country, region, packs, number) in CAMPAIGNS.items():
        await pool.execute(
            """INSERT INTO campaigns (code, name, creditor_id, mode, compliance_packs,
                                      queue_name, trunk, ring_timeout_s, caller_id, state,
                                      settings)
               VALUES ($1, $1, $2, 'predictive', $3, $4, 'PJSIP/trunk', 25,
                       '"Financiera Demo" <+525500000000>', 'running',
                       jsonb_build_object('queue_wrapup_s', $5::int))
               ON CONFLICT (code) DO UPDATE SET state = 'running',
                   settings = campaigns.settings || EXCLUDED.settings""",
            code,
            cred,
            list(packs),
            queue_of(code),
            WRAPUP_S,
        )
        have = await pool.fetchval(
            "SELECT count(*) FROM leads l JOIN campaigns c ON c.id = l.campaign_id "
            "WHERE c.code = $1",
            code,
        )
        if have:
            continue
        with tempfile.TemporaryDirectory(prefix="puente-demo-") as tmp:
            path = Path(tmp) / f"{code}.csv"
            lines = ["external_ref,full_name,account_ref,balance,phone,phone2,country,region,"
                     "days_past_due,priority"]  # fmt: skip
            for i in range(DEBTORS_PER_CAMPAIGN):
                phones = [_new_number(rng, number, used) for _ in range(rng.choice((1, 1, 2)))]
                phones.append("")
                lines.append(
                    f"{code}-{i},Deudor {i},{code}-{i},{rng.randrange(1000, 900_000) / 100:.2f},"
                    f"{phones[0]},{phones[1]},{country},{region},{rng.randrange(0, 360)},"
                    f"{rng.randrange(0, 5)}"
                )
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            await import_leads(pool, path, code, errors_path=Path(tmp) / "errors.csv")
        if country == "US":
            # Autodialed calls to US mobiles need the person's prior express consent (TCPA):
            # the demo's debtors gave it when they signed (a real import brings its source).
            await pool.execute(
                """INSERT INTO consents (phone_id, channel, granted, source, recorded_at)
                   SELECT n.id, 'autodialed_voice', true, 'demo: credit agreement', now()
                   FROM phone_numbers n JOIN leads l ON l.person_id = n.person_id
                   JOIN campaigns c ON c.id = l.campaign_id WHERE c.code = $1""",
                code,
            )
    return list(CAMPAIGNS)
