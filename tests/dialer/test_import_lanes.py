"""``puente leads import --lanes N``: batches load side by side, each person in one lane.

A lane keeps its persons' rows in file order, so the result is the one a single lane gives;
a failure in one lane stops the import with every row before the one it names loaded."""

from __future__ import annotations

import io
import random
from pathlib import Path

import asyncpg
import pytest

from dialer.importer import ImportError_, ImportStopped, _Batches, _Errors, import_leads
from dialer.leads import read_rows
from tests._triggers import fault_on
from tests.dialer._campaigns import new_campaign

HEADER = "external_ref,full_name,account_ref,balance,phone,country\n"


def shuffled_file(seed: int, rows: int = 400, persons: int = 60) -> str:
    """Persons coming back all through the file, with a new name, balance and number each
    time (the last row of a person or an account is what must stay), and some bad rows."""
    rng = random.Random(seed)
    out = [HEADER]
    for i in range(rows):
        p = rng.randrange(persons)
        account = f"L{p}-{rng.randrange(3)}"
        balance = "oops" if rng.random() < 0.03 else f"{rng.randrange(100, 99_999)}.{i % 100:02d}"
        out.append(f"p{p},Name {p} v{i},{account},{balance},+5255{30000000 + i},MX\n")
    return "".join(out)


async def state(pool: asyncpg.Pool, campaign: str) -> list[tuple[object, ...]]:
    """What the campaign's creditor has, by person: name, accounts with balances, numbers,
    leads."""
    rows = await pool.fetch(
        """SELECT p.external_ref, p.full_name,
                  (SELECT array_agg(d.account_ref || '=' || d.balance_cents ORDER BY d.account_ref)
                   FROM debts d WHERE d.person_id = p.id) AS debts,
                  (SELECT array_agg(n.e164 ORDER BY n.e164) FROM phone_numbers n
                   WHERE n.person_id = p.id) AS numbers,
                  (SELECT count(*) FROM leads l WHERE l.person_id = p.id
                   AND l.campaign_id = c.id) AS leads
           FROM campaigns c JOIN persons p ON p.creditor_id = c.creditor_id
           WHERE c.code = $1 ORDER BY 1""",
        campaign,
    )
    return [tuple(r) for r in rows]


def test_each_person_stays_in_one_lane_in_file_order() -> None:
    text = shuffled_file(3)
    errors = _Errors(Path("/dev/null"))
    errors.open()
    batches = list(_Batches(read_rows(io.StringIO(text)), None, 7, errors, lanes=2))
    errors.close()
    lines = text.splitlines()
    lane_of: dict[str, int] = {}
    rows_of: dict[int, list[int]] = {0: [], 1: []}
    for b in batches:
        rows = [int(line.split(",", 1)[0]) for line in b.data.decode().splitlines()]
        assert rows[0] == b.start.row
        assert rows[-1] <= b.last_row
        assert len(rows) == b.leads
        # The counts before the batch's first row are the file's: rows read before it, and
        # how many of those were rejected.
        assert b.start.seen == b.start.row - 2
        bad = sum("oops" in line for line in lines[1 : b.start.row - 1])
        assert b.start.rejected == bad
        rows_of[b.lane] += rows
        for row in rows:
            ref = lines[row - 1].split(",", 1)[0]
            assert lane_of.setdefault(ref, b.lane) == b.lane  # one lane per person
    assert rows_of[0]
    assert rows_of[1]
    for rows in rows_of.values():
        assert rows == sorted(rows)  # file order within a lane
    good = [i + 1 for i, line in enumerate(lines) if i and "oops" not in line]
    assert sorted(rows_of[0] + rows_of[1]) == good


async def test_lanes_load_what_one_lane_loads(db_pool, tmp_path) -> None:
    f = tmp_path / "leads.csv"
    f.write_text(shuffled_file(5), encoding="utf-8")
    results = []
    for lanes in (1, 2, 4):
        campaign = await new_campaign(db_pool)  # (its own creditor: persons of its own)
        s = await import_leads(
            db_pool, f, campaign, batch_rows=9, lanes=lanes, errors_path=tmp_path / "e.csv"
        )
        results.append(((s.rows, s.loaded, s.rejected, s.leads), await state(db_pool, campaign)))
    assert results[0][0][2] > 0  # some rows were bad
    assert results[1] == results[0]
    assert results[2] == results[0]


async def test_lanes_are_checked_and_kept_to_the_pool(db_pool, tmp_path) -> None:
    campaign = await new_campaign(db_pool)
    f = tmp_path / "leads.csv"
    f.write_text(shuffled_file(7, rows=50), encoding="utf-8")
    for bad in (0, 17, True, "2"):
        with pytest.raises(ImportError_, match="--lanes must be a whole number from 1 to 16"):
            await import_leads(db_pool, f, campaign, lanes=bad)  # type: ignore[arg-type]
    # More lanes than the pool has connections: as many as it has (the test pool has 10).
    s = await import_leads(
        db_pool, f, campaign, batch_rows=2, lanes=16, errors_path=tmp_path / "e.csv"
    )
    assert s.loaded == 50 - s.rejected


async def test_a_failure_in_one_lane_stops_the_import_with_every_row_before_it_loaded(
    db_pool, tmp_path
) -> None:
    # A trigger fails one person's rows (a full disk, say). The other lane may have loaded
    # rows after it: the message says so, and every row before the one it names is loaded.
    campaign = await new_campaign(db_pool)
    lines = [HEADER] + [f"q{i},Name {i},Q-{i},10.00,+5255{40000000 + i},MX\n" for i in range(300)]
    lines[201] = "q200,Boom,Q-200,10.00,+525540000200,MX\n"  # row 202
    f = tmp_path / "leads.csv"
    f.write_text("".join(lines), encoding="utf-8")
    boom = "RAISE EXCEPTION 'disk full (test)'"
    async with fault_on(db_pool, "persons", boom, when="NEW.full_name = 'Boom'"):
        with pytest.raises(ImportStopped) as stopped:
            await import_leads(db_pool, f, campaign, batch_rows=10, lanes=2)
    message = str(stopped.value)
    assert "disk full (test)" in message
    first = int(message.split("stopped at row ", 1)[1].split(" ", 1)[0].replace(",", ""))
    assert first <= 202  # the failed batch's first row, or an earlier unloaded one
    refs = {
        r["account_ref"]
        for r in await db_pool.fetch(
            "SELECT d.account_ref FROM debts d JOIN leads l ON l.debt_id = d.id"
            " JOIN campaigns c ON c.id = l.campaign_id WHERE c.code = $1",
            campaign,
        )
    }
    loaded_rows = {int(r.split("-")[1]) + 2 for r in refs}
    assert set(range(2, first)) <= loaded_rows  # every row before it is loaded
    assert 202 not in loaded_rows
    s = stopped.value.summary
    assert s.loaded == len(refs)
    assert s.rows == first - 2  # rows read before it
    after = any(row > first for row in loaded_rows)
    assert ("some after it" in message) == after
    # Importing the file again (the trigger gone) loads the rest, merging.
    again = await import_leads(db_pool, f, campaign, batch_rows=10, lanes=2)
    assert again.loaded == 300
    assert (await state(db_pool, campaign))[0][4] == 1
    assert len(await state(db_pool, campaign)) == 300
