"""The batch's COPY data (``dialer.importer``: CSV, every text quoted, NULL an unquoted
``\\N``) brings every value to the database exactly as the row gave it: quotes, commas,
backslashes, tabs, line breaks, the text ``\\N`` and ``NULL``, accents; a missing value is
NULL; numbers, dates and a person's several numbers arrive whole."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from dialer.importer import import_leads
from tests.dialer._campaigns import new_campaign

AWKWARD = [
    'Ana "La Güera" Pérez',
    "Gómez, Luis",
    "back\\slash",
    "tab\there",
    "two\nlines",
    "carriage\rreturn",
    "\\N",
    "NULL",
    "\\.",
    "{braces},[brackets]",
    "ñandú 💸",
]


@pytest.fixture
async def campaign(db_pool) -> str:
    return await new_campaign(db_pool, "c")


async def test_text_values_arrive_exactly(db_pool, campaign, tmp_path: Path) -> None:
    f = tmp_path / "leads.csv"
    header = [
        "external_ref", "full_name", "account_ref", "balance", "phone", "phone2", "phone3",
        "country", "region", "postal_code", "city", "address_line", "language", "timezone",
        "date_of_birth", "currency", "days_past_due", "priority",
    ]  # fmt: skip
    rows = []
    for i, text in enumerate(AWKWARD):
        rows.append(
            [
                f"{campaign}-{text}", text, f"{campaign}-acc-{text}", "1,234.56",
                f"33 1234 {5600 + i}", f"+52 55 1234 {5600 + i}", "",
                "MX", "JAL", text[:20], text, text, "en", "America/Mexico_City",
                "1980-02-29", "usd", "12", str(-i),
            ]
        )  # fmt: skip
    rows.append(  # every optional value missing: NULLs (and the creditor's currency)
        [f"{campaign}-bare", "Bare", f"{campaign}-acc-bare", "5", "+52 33 1234 5699"] + [""] * 13
    )
    with f.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        w.writerows(rows)
    s = await import_leads(db_pool, f, campaign, batch_rows=4)
    assert (s.loaded, s.rejected, s.persons, s.debts, s.numbers, s.leads) == (12, 0, 12, 12, 23, 12)
    got = {
        r["external_ref"]: r
        for r in await db_pool.fetch(
            """SELECT p.external_ref, p.full_name, p.language, p.country, p.region, p.postal_code,
                      p.city, p.address_line, p.date_of_birth, p.stated_timezone,
                      d.account_ref, d.balance_cents, d.currency, d.days_past_due, l.priority,
                      array_agg(n.e164 || ' ' || n.kind ORDER BY n.e164) AS numbers
               FROM persons p JOIN debts d ON d.person_id = p.id
               JOIN leads l ON l.debt_id = d.id JOIN phone_numbers n ON n.person_id = p.id
               WHERE p.external_ref LIKE $1 || '-%'
               GROUP BY p.id, d.id, l.id""",
            campaign,
        )
    }
    for i, text in enumerate(AWKWARD):
        r = got[f"{campaign}-{text}"]
        assert r["full_name"] == text
        assert (r["postal_code"], r["city"], r["address_line"]) == (text[:20], text, text)
        assert r["account_ref"] == f"{campaign}-acc-{text}"
        assert (r["language"], r["country"], r["region"]) == ("en", "MX", "JAL")
        assert r["date_of_birth"] == date(1980, 2, 29)
        assert r["stated_timezone"] == "America/Mexico_City"
        assert (r["balance_cents"], r["currency"], r["days_past_due"], r["priority"]) == (
            123456,
            "USD",
            12,
            -i,
        )
        assert r["numbers"] == [f"+52331234{5600 + i} unknown", f"+52551234{5600 + i} unknown"]
    bare = got[f"{campaign}-bare"]
    assert (bare["language"], bare["currency"], bare["days_past_due"], bare["priority"]) == (
        "es",
        "MXN",
        0,
        0,
    )
    for column in ("country", "region", "postal_code", "city", "address_line"):
        assert bare[column] is None, column
    assert bare["date_of_birth"] is None
    assert bare["stated_timezone"] is None
