"""``puente leads import`` on the real database: good rows load, bad rows are reported."""

from __future__ import annotations

import asyncio
import csv
import json
import os
from pathlib import Path

import pytest

from dialer.cli import register
from dialer.importer import (
    ImportError_,
    ImportStopped,
    ImportSummary,
    import_leads,
    load_mapping,
    progress_line,
)
from dialer.leads import normalise_number, parse_row, read_rows
from tests._triggers import fault_on
from tests.dialer._campaigns import new_campaign

HEADER = "external_ref,full_name,account_ref,balance,phone,phone2,country,region,days_past_due\n"


@pytest.fixture
async def campaign(db_pool) -> str:
    return await new_campaign(db_pool, "c")


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    p = tmp_path / "leads.csv"
    p.write_text(header + body, encoding="utf-8")
    return p


async def test_good_rows_load_bad_rows_are_reported(db_pool, campaign, tmp_path) -> None:
    f = write(
        tmp_path,
        "p1,Ana Pérez,A-1,1234.50,33 1234 5678,,MX,JAL,30\n"
        'p1,Ana Pérez,A-2,"1.000,00",+523312345679,,MX,JAL,10\n'  # same person, 2nd debt
        "p2,Luis Gómez,A-3,oops,33 1234 5670,,MX,JAL,0\n"  # bad balance
        "p3,Sin Número,A-4,10,123,,MX,JAL,0\n"  # no usable number
        "p4,Dos Números,A-5,10,33 1234 5671,999,MX,JAL,0\n"  # one good, one dropped
        "p5,,A-6,10,33 1234 5672,,MX,JAL,0\n"  # no name
        "p6,Corta,A-7\n",  # wrong number of fields
    )
    s = await import_leads(db_pool, f, campaign)
    assert (s.rows, s.loaded, s.rejected, s.numbers_dropped) == (7, 3, 4, 1)
    assert s.persons == 2  # p1 (two debts) and p4
    assert s.debts == 3
    assert s.leads == 3
    person = await db_pool.fetchrow(
        "SELECT id, country, region FROM persons WHERE external_ref = 'p1'"
    )
    assert (person["country"], person["region"]) == ("MX", "JAL")
    debts = await db_pool.fetch(
        "SELECT account_ref, balance_cents, currency FROM debts WHERE person_id = $1 "
        "ORDER BY account_ref",
        person["id"],
    )
    assert [(d["account_ref"], d["balance_cents"], d["currency"]) for d in debts] == [
        ("A-1", 123450, "MXN"),
        ("A-2", 100000, "MXN"),
    ]
    numbers = await db_pool.fetch(
        "SELECT e164 FROM phone_numbers WHERE person_id = $1 ORDER BY e164", person["id"]
    )
    assert [n["e164"] for n in numbers] == ["+523312345678", "+523312345679"]
    text = Path(s.errors_file).read_text(encoding="utf-8")  # noqa: ASYNC240 - a small file
    errors = list(csv.DictReader(text.splitlines()))
    by_row = {(e["row"], e["column"]): e for e in errors}
    assert by_row[("4", "balance")]["row_rejected"] == "yes"
    assert by_row[("5", "phone")]["row_rejected"] == "yes"
    assert by_row[("6", "phone2")]["row_rejected"] == "no"
    assert by_row[("7", "full_name")]["problem"] == "required"
    assert "fields" in by_row[("8", "*")]["problem"]


async def test_reimport_is_idempotent_and_updates_balances(db_pool, campaign, tmp_path) -> None:
    f = write(tmp_path, "q1,Eva,B-1,10,33 1234 5673,,MX,JAL,0\n")
    await import_leads(db_pool, f, campaign)
    f = write(tmp_path, "q1,Eva,B-1,25,33 1234 5673,,MX,JAL,5\n")
    s = await import_leads(db_pool, f, campaign)
    assert (s.loaded, s.leads, s.numbers) == (1, 0, 0)  # nothing new, the balance updated
    row = await db_pool.fetchrow(
        "SELECT balance_cents, days_past_due FROM debts WHERE account_ref = 'B-1'"
    )
    assert (row["balance_cents"], row["days_past_due"]) == (2500, 5)
    assert await db_pool.fetchval("SELECT count(*) FROM persons WHERE external_ref = 'q1'") == 1


@pytest.mark.parametrize("lanes", [1, 2])
async def test_batches_stream_the_file(db_pool, campaign, tmp_path, lanes) -> None:
    body = "".join(
        f"r{i},Persona {i},C-{i},{i}.00,+5255{10000000 + i},,MX,CMX,0\n" for i in range(250)
    )
    seen: list[tuple[int, int]] = []
    f = write(tmp_path, body)
    s = await import_leads(
        db_pool, f, campaign, batch_rows=100, lanes=lanes,
        progress=lambda x: seen.append((x.loaded, x.bytes_read)),
    )  # fmt: skip
    if lanes == 1:
        assert s.batches == 3
        assert [loaded for loaded, _ in seen] == [100, 200, 250]
    else:  # each lane has batches of its own: two part-full ones at the end
        assert s.batches == 4
        loaded = [loaded for loaded, _ in seen]
        assert loaded == sorted(set(loaded))
        assert loaded[-1] == 250
        assert len(loaded) == 4
    # the position in the file only moves forward, and ends at the file's size
    positions = [pos for _, pos in seen]
    assert positions == sorted(positions)
    assert positions[-1] <= f.stat().st_size
    assert (s.bytes_read, s.bytes_total) == (f.stat().st_size, f.stat().st_size)
    assert s.leads == 250


def test_progress_bar() -> None:
    s = ImportSummary(rows=90_000, loaded=88_200, rejected=1_800, seconds=15.0)
    s.bytes_read, s.bytes_total = 450, 1000
    line = progress_line(s)
    assert line.startswith("[" + "#" * 14 + "-" * 16 + "]  45%")
    assert "90,000 rows  88,200 loaded  1,800 rejected  6,000 rows/s" in line
    assert line.endswith("ETA 0:18")  # 15 s for 45 %: 18 s for the other 55 %
    s.bytes_read = 1000
    assert progress_line(s).startswith("[" + "#" * 30 + "] 100%")
    assert "ETA" not in progress_line(s)
    piped = ImportSummary(rows=500, loaded=490, rejected=10, seconds=1.0)  # no size: no bar
    assert progress_line(piped) == "500 rows  490 loaded  10 rejected  500 rows/s"


async def test_a_person_split_across_batches_is_one_person(db_pool, campaign, tmp_path) -> None:
    # Batch 2 merges into the person batch 1 created (the ids come back from the upsert,
    # not from a join over the whole table), and a second import on the pool works too.
    body = (
        "s1,Ana,SB-1,10,+525512340001,,MX,CMX,0\n"
        "s1,Ana,SB-2,20,+525512340002,,MX,CMX,0\n"
        "s2,Luis,SB-3,30,+525512340003,,MX,CMX,0\n"
    )
    s = await import_leads(db_pool, write(tmp_path, body), campaign, batch_rows=1)
    assert (s.batches, s.leads, s.numbers) == (3, 3, 3)
    again = await import_leads(
        db_pool, write(tmp_path, "s1,Ana,SB-4,40,+525512340001,,MX,CMX,0\n"), campaign
    )
    assert (again.leads, again.numbers) == (1, 0)
    rows = await db_pool.fetch(
        """SELECT p.external_ref, count(DISTINCT d.id) AS debts, count(DISTINCT n.id) AS nums,
                  count(DISTINCT l.id) AS leads
           FROM persons p JOIN debts d ON d.person_id = p.id
           JOIN phone_numbers n ON n.person_id = p.id JOIN leads l ON l.debt_id = d.id
           WHERE p.external_ref IN ('s1', 's2') GROUP BY p.external_ref ORDER BY 1"""
    )
    assert [tuple(r) for r in rows] == [("s1", 3, 2, 3), ("s2", 1, 1, 1)]


async def test_mapping_and_default_region(db_pool, campaign, tmp_path) -> None:
    f = write(
        tmp_path,
        "Nombre,Cuenta,Saldo,Tel\nMia,D-1,5,55 1234 5678\n",
        header="",
    )
    mapping = {"full_name": "Nombre", "account_ref": "Cuenta", "balance": "Saldo", "phone": "Tel"}
    s = await import_leads(db_pool, f, campaign, mapping=mapping, default_region="MX")
    assert (s.loaded, s.rejected) == (1, 0)
    assert (
        await db_pool.fetchval(
            "SELECT e164 FROM phone_numbers p JOIN debts d USING (person_id) "
            "WHERE d.account_ref = 'D-1'"
        )
        == "+525512345678"
    )


async def test_what_stops_an_import_before_anything_loads(db_pool, campaign, tmp_path) -> None:
    f = write(tmp_path, "x,Eva,E-1,10,33 1234 5674,,MX,JAL,0\n")
    with pytest.raises(ImportError_, match="unknown campaign 'nope'"):
        await import_leads(db_pool, f, "nope")
    for bad_size in (0, -5):
        with pytest.raises(ImportError_, match=f"--batch-rows must be .* got {bad_size}"):
            await import_leads(db_pool, f, campaign, batch_rows=bad_size)
    bad = write(tmp_path, "Eva,10\n", header="full_name,balance\n")
    with pytest.raises(ImportError_, match="missing required columns: account_ref, phone"):
        await import_leads(db_pool, bad, campaign)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(
        HEADER.encode() + "x,Pe\xf1a,E-2,1,33 1234 5675,,MX,JAL,0\n".encode("latin-1")
    )
    with pytest.raises(ImportError_, match="not UTF-8"):
        await import_leads(db_pool, latin, campaign)
    for region in ("ZZ", "12", "MEX", "\u00df"):  # ("ß".upper() is "SS")
        with pytest.raises(ImportError_, match=r"--default-region .* not a country"):
            await import_leads(db_pool, f, campaign, default_region=region)
    # --errors naming the input truncated it: the rows after the first batch were lost.
    before = f.read_bytes()
    with pytest.raises(ImportError_, match="is the file being imported"):
        await import_leads(db_pool, f, campaign, errors_path=tmp_path / "." / f.name)
    assert f.read_bytes() == before
    with pytest.raises(ImportError_, match="a directory"):
        await import_leads(db_pool, f, campaign, errors_path=tmp_path)
    with pytest.raises(ImportError_, match="no directory"):
        await import_leads(db_pool, f, campaign, errors_path=tmp_path / "none" / "e.csv")
    mapping = tmp_path / "m.yaml"
    mapping.write_bytes('account_ref: "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ImportError_, match=r"mapping .*not UTF-8"):
        load_mapping(mapping)
    assert await db_pool.fetchval("SELECT count(*) FROM debts WHERE account_ref LIKE 'E-%'") == 0


async def test_a_pipe_imports_with_an_errors_file_named(db_pool, campaign, tmp_path) -> None:
    body = (
        HEADER
        + "".join(f"q{i},Eva,Q-{i},10,+5233123456{i:02d},,MX,JAL,0\n" for i in range(30))
        + "qx,Eva,Q-x,oops,+523312345699,,MX,JAL,0\n"
    )
    fifo = tmp_path / "leads.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ImportError_, match=r"not a regular file .* give --errors"):
        await import_leads(db_pool, fifo, campaign)  # (checked before the pipe is read)

    def feed() -> None:
        with fifo.open("w", encoding="utf-8") as w:
            w.write(body)

    feeding = asyncio.create_task(asyncio.to_thread(feed))
    s = await import_leads(
        db_pool, fifo, campaign, errors_path=tmp_path / "e.csv", batch_rows=10,
        progress=lambda s: None,
    )  # fmt: skip
    await feeding
    assert (s.rows, s.loaded, s.rejected) == (31, 30, 1)
    assert s.errors_file == str(tmp_path / "e.csv")


def test_parse_row_rules() -> None:
    ok, problems = parse_row(
        2,
        {"account_ref": "Z", "full_name": "Ana", "balance": "1.234,5", "phone": "+34600000000",
         "language": "EN", "timezone": "Europe/Madrid", "date_of_birth": "1980-02-29"},
        None,
    )  # fmt: skip
    assert ok is not None
    assert not problems
    assert (ok.balance_cents, ok.language, ok.external_ref) == (123450, "en", "Z")
    assert ok.phones[0].kind == "mobile"
    for column, value, message in (
        ("timezone", "Mars/Olympus", "IANA"),
        ("date_of_birth", "29/02/1980", "YYYY-MM-DD"),
        ("language", "fr", "es or en"),
        ("country", "MEX", "alpha-2"),
        ("days_past_due", "-3", ">= 0"),
        ("days_past_due", "36501", "<= 36,500"),
        ("days_past_due", "1_000", "not an integer"),
        ("priority", "2147483648", "<= 2,147,483,647"),
        ("priority", "-2147483648", ">= -2,147,483,647"),
        ("priority", "1.5", "not an integer"),
        ("balance", "", "required"),
        ("balance", "-1", "amount >= 0"),
        ("balance", "NaN", "amount >= 0"),
        # Amounts are written in digits: Decimal() also read 1e5 (100,000), 1_000, other
        # scripts' digits and exponents past its context.
        ("balance", "1e100000", "not an amount"),
        ("balance", "1e10000000", "not an amount"),
        ("balance", "1e5", "not an amount"),
        ("balance", "1_000", "not an amount"),
        ("balance", "\uff11\uff12\uff13", "not an amount"),  # fullwidth 123
        ("balance", "\u0663", "not an amount"),  # Arabic-Indic 3
        ("balance", "Infinity", "not an amount"),
        ("balance", "9" * 30, "too large"),
        # ("ß".upper() is "SS", South Sudan: its numbers a Spanish file's would have become)
        ("country", "\u00df", "alpha-2"),
        ("country", "\ufb00", "alpha-2"),
        ("currency", "\u00dfd", "ISO 4217"),
        # (fromisoformat() also took these)
        ("date_of_birth", "19800229", "YYYY-MM-DD"),
        ("date_of_birth", "1980-W01-1", "YYYY-MM-DD"),
        ("date_of_birth", "0001-01-01", "year of birth"),
        ("date_of_birth", "9999-12-31", "year of birth"),
        ("days_past_due", "9" * 4301, "<= 36,500"),  # past int()'s 4,300 digits: a ValueError
        ("priority", "-" + "9" * 4301, ">= -2,147,483,647"),
        ("balance", "92233720368547758.08", "too large"),  # one cent over bigint
        # One mark and three digits: 1234 in Spain, 1.234 in Mexico. It was read as 1.23.
        ("balance", "1.234", "more than 2 decimals"),
        ("balance", "1,234", "more than 2 decimals"),
        ("balance", "1.230", "more than 2 decimals"),
        ("balance", "0.125", "more than 2 decimals"),  # not rounded to a cent
        ("balance", "12,34.56", "thousands grouped by 3"),
        ("balance", "1,2,3", "thousands grouped by 3"),
        ("balance", "1.234,5,6", "thousands grouped by 3"),
        ("account_ref", "A" * 129, "longer than 128"),
        ("external_ref", "P" * 3000, "longer than 128"),
        ("full_name", "N" * 201, "longer than 200"),
    ):
        lead, problems = parse_row(
            3,
            {"account_ref": "Z", "full_name": "Ana", "balance": "1", "phone": "+34600000000",
             column: value},
            None,
        )  # fmt: skip
        assert lead is None
        assert problems[-1].column == column
        assert message in problems[-1].problem


def test_amounts_as_they_are_written() -> None:
    for text, cents in (
        ("1234.5", 123450),
        ("1234,50", 123450),
        ("1,234.50", 123450),
        ("1.234,50", 123450),
        ("1 234,50", 123450),
        ("1\u00a0234,50", 123450),  # a no-break space between thousands
        ("1,234,567", 123456700),  # a repeated mark groups thousands (it was refused)
        ("1.234.567", 123456700),
        ("1.234.567,89", 123456789),
        ("0,5", 50),
    ):
        lead, problems = parse_row(
            2,
            {"account_ref": "Z", "full_name": "Ana", "balance": text, "phone": "+34600000000"},
            None,
        )
        assert lead is not None, (text, problems)
        assert lead.balance_cents == cents, text


def test_the_largest_values_the_database_takes_are_accepted() -> None:
    lead, problems = parse_row(
        2,
        {"account_ref": "Z" * 128, "full_name": "Ana", "balance": "92233720368547758.07",
         "phone": "+34600000000", "priority": "-2147483647", "days_past_due": "36500"},
        None,
    )  # fmt: skip
    assert not problems
    assert lead is not None
    assert (lead.balance_cents, lead.priority, lead.days_past_due) == (
        2**63 - 1,
        -(2**31) + 1,
        36500,
    )


def test_an_unreadable_row_is_reported_and_the_next_one_is_read() -> None:
    header = "account_ref,full_name,balance,phone\n"
    rows = list(
        read_rows(
            [
                header,
                "A-1,Ana," + "9" * 200_000 + ",+34600000000\n",  # over the csv module's limit
                "A-2,Nul\x00Name,1,+34600000001\n",
                "A-3,Luis,1,+34600000002\n",
            ]
        )
    )
    assert [n for n, _ in rows] == [2, 3, 4]
    assert "not readable as CSV" in rows[0][1]["__error__"]
    assert "NUL" in rows[1][1]["__error__"]
    assert rows[2][1]["account_ref"] == "A-3"


async def test_rows_the_database_would_refuse_cost_only_themselves(
    db_pool, campaign, tmp_path
) -> None:
    # One such row used to fail its whole batch at COPY (and stop the import there).
    f = write(
        tmp_path,
        "p1,Ana,A-1,10,+523312345678,,MX,JAL,99999999999\n"  # days_past_due: integer overflow
        "p2,Luis,A-2,1e30,+523312345679,,MX,JAL,0\n"  # balance: bigint overflow
        f"p3,Eva,{'A' * 3000},10,+523312345670,,MX,JAL,0\n"  # account_ref: index row too big
        "p4,Nul\x00,A-4,10,+523312345671,,MX,JAL,0\n"  # NUL: refused by PostgreSQL's text
        "p5,Sara,A-5,10,+523312345672,,MX,JAL,0\n",
    )
    s = await import_leads(db_pool, f, campaign, batch_rows=10)
    assert (s.rows, s.loaded, s.rejected, s.batches, s.leads) == (5, 1, 4, 1, 1)
    text = Path(s.errors_file).read_text(encoding="utf-8")  # noqa: ASYNC240 - a small file
    columns = [e["column"] for e in csv.DictReader(text.splitlines())]
    assert columns == ["days_past_due", "balance", "account_ref", "*"]


def test_a_national_number_needs_a_country() -> None:
    lead, problems = parse_row(
        2, {"account_ref": "Z", "full_name": "A", "balance": "1", "phone": "3312345678"}, None
    )
    assert lead is None
    assert "default-region" in problems[0].problem


def test_empty_file_and_header_only() -> None:
    with pytest.raises(Exception, match="empty"):
        list(read_rows([]))
    assert list(read_rows(["account_ref,full_name,balance,phone\n"])) == []


async def test_cli_prints_a_summary_and_exit_codes(
    database_url, campaign, tmp_path, capsys
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    f = write(tmp_path, "s1,Eva,F-1,10,33 1234 5676,,MX,JAL,0\ns2,Eva,F-2,x,1,,MX,JAL,0\n")
    os.environ["PUENTE_DATABASE_URL"] = database_url
    try:
        args = parser.parse_args(["leads", "import", str(f), "--campaign", campaign])
        rc = await asyncio.to_thread(args.func, args)
        summary = json.loads(capsys.readouterr().out)
        args = parser.parse_args(["leads", "import", str(f), "--campaign", "nope"])
        rc2 = await asyncio.to_thread(args.func, args)
    finally:
        del os.environ["PUENTE_DATABASE_URL"]
    assert rc == 1  # a row was rejected
    assert (summary["rows"], summary["loaded"], summary["rejected"]) == (2, 1, 1)
    assert summary["errors_file"].endswith("leads.errors.csv")
    assert rc2 == 2
    assert "unknown campaign 'nope'" in capsys.readouterr().err


async def test_a_database_failure_part_way_says_how_far_the_import_got(
    db_pool, campaign, tmp_path
) -> None:
    # The second batch meets an error of the database's own (a trigger standing in for a lost
    # server or a full disk): the first batch stays loaded, and the error says so.
    f = write(
        tmp_path,
        "b1,Ana,B-1,10,+523312345601,,MX,JAL,0\n"
        "b2,Luis,B-2,10,+523312345602,,MX,JAL,0\n"
        "b3,Boom,B-3,10,+523312345603,,MX,JAL,0\n"
        "b4,Sara,B-4,10,+523312345604,,MX,JAL,0\n",
    )
    boom = "RAISE EXCEPTION 'disk full (test)'"
    async with fault_on(db_pool, "persons", boom, when="NEW.full_name = 'Boom'"):
        with pytest.raises(ImportStopped) as stopped:
            await import_leads(db_pool, f, campaign, batch_rows=2, lanes=1)
    message = str(stopped.value)
    assert "disk full (test)" in message
    assert "stopped at row 4 (" in message  # the first row not loaded: batch 2's
    assert "the 2 rows of the 1 batches before it are loaded" in message
    assert (stopped.value.summary.loaded, stopped.value.summary.batches) == (2, 1)
    refs = await db_pool.fetch(
        "SELECT d.account_ref FROM debts d JOIN leads l ON l.debt_id = d.id"
        " JOIN campaigns c ON c.id = l.campaign_id WHERE c.code = $1 ORDER BY 1",
        campaign,
    )
    assert [r["account_ref"] for r in refs] == ["B-1", "B-2"]  # the failed batch left nothing


async def test_two_creditors_references_never_merge_their_debtors(
    db_pool, campaign, tmp_path
) -> None:
    # Agencies collect for many creditors, whose ids of people (and account numbers, the
    # default reference) overlap: creditor B's "1001" is not creditor A's "1001".
    other = await new_campaign(db_pool)  # (its own creditor)
    ref = f"r{os.urandom(3).hex()}"
    a = write(tmp_path, f"{ref},Ana Uno,{ref}-1,10,+523312340001,,MX,JAL,0\n")
    await import_leads(db_pool, a, campaign)
    b = write(tmp_path, f"{ref},Beto Dos,{ref}-1,20,+523312340002,,MX,JAL,0\n")
    s = await import_leads(db_pool, b, other)
    assert (s.persons, s.debts, s.leads) == (1, 1, 1)
    rows = await db_pool.fetch(
        """SELECT c.code, p.full_name, array_agg(n.e164 ORDER BY n.e164) AS numbers
           FROM persons p JOIN creditors c ON c.id = p.creditor_id
           JOIN phone_numbers n ON n.person_id = p.id
           WHERE p.external_ref = $1 GROUP BY 1, 2 ORDER BY 2""",
        ref,
    )
    assert [tuple(r) for r in rows] == [
        (campaign, "Ana Uno", ["+523312340001"]),
        (other, "Beto Dos", ["+523312340002"]),
    ]
    # Each creditor's import of the same person again is a merge into its own person.
    s = await import_leads(db_pool, b, other)
    assert s.persons == 1
    assert await db_pool.fetchval("SELECT count(*) FROM persons WHERE external_ref = $1", ref) == 2


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+52 1 55 1234 5678", None, "+525512345678"),  # a mobile from abroad, before 2019
        ("5215512345678", "MX", "+525512345678"),
        ("044 55 1234 5678", "MX", "+525512345678"),  # a local mobile
        ("045 33 1234 5678", "MX", "+523312345678"),  # a long-distance mobile
        ("01 81 1234 5678", "MX", "+528112345678"),  # long distance
        ("+52 55 1234 5678", None, "+525512345678"),  # as written today
    ],
)
def test_mexican_numbers_in_the_dialing_plan_before_2019_are_read(raw, region, e164) -> None:
    # Mexico dropped its 1/044/045/01 prefixes in 2019 (every number is 10 digits); debtor
    # files still carry them, and the same debtor must not be two numbers, or none.
    found = normalise_number(raw, region)
    assert not isinstance(found, str), found
    assert found.e164 == e164


def test_a_mexican_prefix_before_no_number_is_still_refused() -> None:
    assert normalise_number("+52 1 00 1234 5678", None) == "not a valid number for its country"
    assert normalise_number("044 00 1234 5678", "MX") == "not a valid number for its country"
    assert normalise_number("+1 044 555 1234", None) == "not a valid number for its country"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+1 900 555 1234", "a premium-rate number"),  # US 900
        ("+34 803 123 456", "a premium-rate number"),  # Spain 803
        ("+34 901 123 456", "a shared-cost number"),  # Spain 901
    ],
)
def test_numbers_that_charge_the_caller_are_refused(raw: str, reason: str) -> None:
    # Dialing them costs the campaign (toll fraud is paid this way) and reaches no debtor.
    found = normalise_number(raw, None)
    assert isinstance(found, str), found
    assert found.startswith(reason)
    assert not isinstance(normalise_number("+1 800 555 1234", None), str)  # toll-free: a line
