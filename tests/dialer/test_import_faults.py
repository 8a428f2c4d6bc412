"""``puente leads import`` under real faults and hostile files: the server killing the import's
connection, deadlocks, a process killed with SIGKILL, unwritable or full disks for the errors
file, files in the wrong encoding or shape. Whatever happens, what was accepted stays, and
what went wrong is said in words."""

from __future__ import annotations

import asyncio
import csv
import itertools
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dialer.importer import (
    DEFAULT_LANES,
    ImportError_,
    ImportStopped,
    import_leads,
    load_mapping,
)
from dialer.leads import read_rows
from tests._triggers import fault_on, fetch_until, sleeping_backend
from tests.dialer._campaigns import new_campaign

ROOT = Path(__file__).resolve().parents[2]
HEADER = "external_ref,full_name,account_ref,balance,phone,country\n"


@pytest.fixture
async def campaign(db_pool) -> str:
    return await new_campaign(db_pool, "f")


def rows(prefix: str, start: int, count: int, name: str = "Ana") -> str:
    return "".join(
        f"{prefix}{i},{name} {i},{prefix}-{i},10.50,+5255{20000000 + i},MX\n"
        for i in range(start, start + count)
    )


def write(tmp_path: Path, body: str | bytes, name: str = "leads.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(HEADER.encode() + (body.encode() if isinstance(body, str) else body))
    return p


def problems(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def loaded(pool: asyncpg.Pool, campaign: str) -> tuple[int, int, int, int]:
    """(leads, distinct debts, persons, numbers) of the campaign's creditor."""
    r = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM leads l WHERE l.campaign_id = c.id) AS leads,
                  (SELECT count(*) FROM debts d WHERE d.creditor_id = c.creditor_id) AS debts,
                  (SELECT count(*) FROM persons p WHERE p.creditor_id = c.creditor_id) AS persons,
                  (SELECT count(*) FROM phone_numbers n JOIN persons p ON p.id = n.person_id
                   WHERE p.creditor_id = c.creditor_id) AS numbers
           FROM campaigns c WHERE c.code = $1""",
        campaign,
    )
    return r["leads"], r["debts"], r["persons"], r["numbers"]


# --- the database going away ------------------------------------------------------------------


async def test_the_server_killing_the_connection_mid_batch(db_pool, campaign, tmp_path) -> None:
    # pg_terminate_backend on the import's connection in the middle of its second batch (held
    # there by a trigger): the message says the connection was lost and from which row the file
    # is not loaded; it used to say "connection has been released back to the pool" (the
    # clean-up's own error) and a row two batches further on (the one the reader had reached).
    body = rows("t", 0, 10) + "ts,Stall,t-stall,10,+525520009999,MX\n" + rows("t", 10, 24)
    f = write(tmp_path, body)
    stall = "PERFORM pg_sleep(60)"
    async with fault_on(db_pool, "persons", stall, when="NEW.full_name = 'Stall'"):
        task = asyncio.create_task(import_leads(db_pool, f, campaign, batch_rows=10, lanes=1))
        pid = await sleeping_backend(db_pool)
        assert await db_pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(ImportStopped) as stopped:
            await asyncio.wait_for(task, 30)
    message = str(stopped.value)
    assert "the connection to the database was lost" in message
    assert "terminating connection" in message
    assert "released back to the pool" not in message
    # Batch 1 is rows 2-11; the failed batch starts at row 12.
    assert "stopped at row 12 " in message
    assert "the 10 rows of the 1 batches before it are loaded" in message
    s = stopped.value.summary
    assert (s.rows, s.loaded, s.batches) == (10, 10, 1)
    assert await loaded(db_pool, campaign) == (10, 10, 10, 10)
    # Importing the file again loads the rest, merging, never duplicating.
    again = await import_leads(db_pool, f, campaign, batch_rows=10)
    assert (again.loaded, again.leads, again.numbers) == (35, 25, 25)
    assert await loaded(db_pool, campaign) == (35, 35, 35, 35)


async def test_a_deadlock_is_retried_not_reported(db_pool, database_url, campaign, tmp_path):
    # Another transaction (the dialer, another import) holds person d2 and then wants d1, which
    # the import's batch has just locked: PostgreSQL breaks the deadlock by failing the import's
    # batch. It used to stop the import; the batch is now tried again.
    f = write(tmp_path, rows("d", 1, 2))
    await import_leads(db_pool, f, campaign)
    cred = await db_pool.fetchval("SELECT creditor_id FROM campaigns WHERE code = $1", campaign)
    other = await asyncpg.connect(database_url)
    try:
        # The import's backend is the one that finds the deadlock (it waited first).
        await other.execute("SET deadlock_timeout = '30s'")
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "SELECT 1 FROM persons WHERE creditor_id = $1 AND external_ref = 'd2' FOR UPDATE",
            cred,
        )
        task = asyncio.create_task(import_leads(db_pool, f, campaign))
        await fetch_until(
            db_pool,
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> $1",
            other.get_server_pid(),
        )
        await other.execute(
            "UPDATE persons SET city = city WHERE creditor_id = $1 AND external_ref = 'd1'", cred
        )
        await tx.commit()
    finally:
        await other.close()
    s = await asyncio.wait_for(task, 30)
    assert (s.loaded, s.persons, s.debts) == (2, 2, 2)


async def _importing(
    db_pool, database_url: str, campaign: str, f: Path, *, output: int
) -> asyncio.subprocess.Process:
    """``puente leads import`` of ``f`` in batches of 20, once 300 leads are in (part way)."""
    env = {**os.environ, "PUENTE_DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "puente", "leads", "import", str(f), "--campaign", campaign,
        "--batch-rows", "20", cwd=ROOT, env=env, stdout=output, stderr=output,
    )  # fmt: skip
    try:
        await fetch_until(
            db_pool,
            "SELECT 1 FROM leads l JOIN campaigns c ON c.id = l.campaign_id"
            " WHERE c.code = $1 HAVING count(*) >= 300",
            campaign,
            within=60,
        )
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc


async def test_kill_9_then_import_again(db_pool, database_url, campaign, tmp_path) -> None:
    # SIGKILL part way: the batches committed stay, and the same import again completes the
    # file without a duplicate person, debt, number or lead.
    f = write(tmp_path, rows("k", 0, 3000) + rows("k", 0, 1000, name="Otra"))
    proc = await _importing(db_pool, database_url, campaign, f, output=asyncio.subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    leads, debts, persons, numbers = await loaded(db_pool, campaign)
    assert leads == debts == persons == numbers
    assert 0 < leads < 3000  # killed part way
    assert leads % 20 == 0  # whole batches only
    s = await import_leads(db_pool, f, campaign, batch_rows=500)
    assert (s.rows, s.loaded, s.rejected) == (4000, 4000, 0)
    assert await loaded(db_pool, campaign) == (3000, 3000, 3000, 3000)
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM persons WHERE external_ref = 'k5' AND full_name = 'Otra 5'"
        )
        == 1
    )  # (the later row of a person wins)


async def test_ctrl_c_says_what_stays_loaded(db_pool, database_url, campaign, tmp_path) -> None:
    # Interrupted part way: the batches committed stay, and the message says how many rows
    # (what the database holds), instead of an exit with nothing said.
    f = write(tmp_path, rows("c", 0, 3000))
    proc = await _importing(db_pool, database_url, campaign, f, output=asyncio.subprocess.PIPE)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    message = err.decode()
    assert proc.returncode == 130, message
    said = re.search(
        r"interrupted: at least the ([0-9,]+) rows of the ([0-9]+) batches committed", message
    )
    assert said is not None, message
    assert "importing the file again merges" in message
    assert "Traceback" not in message
    leads = (await loaded(db_pool, campaign))[0]
    assert 300 <= leads < 3000
    reported = int(said[1].replace(",", ""))
    assert reported == 20 * int(said[2])
    # (the batches in flight when the interrupt came, one a lane, may have committed too)
    assert leads in range(reported, reported + 20 * DEFAULT_LANES + 1, 20), (leads, reported)


async def test_two_imports_of_one_file_at_once(db_pool, campaign, tmp_path) -> None:
    f = write(tmp_path, rows("c", 0, 400) + rows("c", 100, 100, name="Bis"))
    runs = await asyncio.gather(
        *(
            import_leads(db_pool, f, campaign, batch_rows=50, errors_path=tmp_path / f"e{i}.csv")
            for i in range(3)
        )
    )
    assert [r.loaded for r in runs] == [500, 500, 500]
    assert sum(r.leads for r in runs) == 400
    assert sum(r.numbers for r in runs) == 400
    assert await loaded(db_pool, campaign) == (400, 400, 400, 400)


async def test_the_campaign_deleted_before_the_first_batch(db_pool, campaign, tmp_path) -> None:
    fifo = tmp_path / "leads.fifo"
    os.mkfifo(fifo)
    task = asyncio.create_task(
        import_leads(db_pool, fifo, campaign, errors_path=tmp_path / "e.csv")
    )
    # The writer's open returns once the import opened the pipe: past its campaign check.
    writer = await asyncio.to_thread(fifo.open, "w", encoding="utf-8")
    await db_pool.execute("DELETE FROM campaigns WHERE code = $1", campaign)
    await asyncio.to_thread(writer.write, HEADER + rows("x", 0, 3))
    await asyncio.to_thread(writer.close)
    with pytest.raises(ImportStopped, match=f"the campaign '{campaign}' was deleted"):
        await asyncio.wait_for(task, 30)


async def test_a_database_error_never_shows_a_row(db_pool, campaign, tmp_path) -> None:
    # The server's DETAIL can quote the failing row ("Failing row contains (..., +5255...)"):
    # the message (printed, logged, returned by the web upload) used to carry it whole.
    leak = "RAISE EXCEPTION 'refused (test)' USING DETAIL = 'Failing row contains ' || NEW.e164"
    async with fault_on(db_pool, "phone_numbers", leak):
        with pytest.raises(ImportStopped) as stopped:
            await import_leads(db_pool, write(tmp_path, rows("v", 0, 2)), campaign)
    assert "refused (test)" in str(stopped.value)
    assert "+5255" not in str(stopped.value)


# --- the errors file --------------------------------------------------------------------------


async def test_an_unwritable_errors_file_stops_the_import_before_it_starts(
    db_pool, campaign, tmp_path
) -> None:
    # It used to be found at the first bad row, with the batches before it loaded.
    f = write(tmp_path, rows("u", 0, 20) + "u-bad,Ana,u-bad,oops,+525520001111,MX\n")
    with pytest.raises(ImportError_, match=r"errors file /proc/no-such\.csv"):
        await import_leads(
            db_pool, f, campaign, batch_rows=5, errors_path=Path("/proc/no-such.csv")
        )
    assert await loaded(db_pool, campaign) == (0, 0, 0, 0)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_a_full_disk_under_the_errors_file(db_pool, campaign, tmp_path) -> None:
    # No space for the report of the bad rows: the rows beside them are not loaded either (their
    # batch would be loaded with its problems unreported). It used to load everything, then
    # crash closing the file with a bare OSError.
    f = write(tmp_path, rows("n", 0, 3) + "n-bad,Ana,n-bad,oops,+525520001111,MX\n")
    with pytest.raises(ImportStopped) as stopped:
        await import_leads(db_pool, f, campaign, errors_path=Path("/dev/full"))
    assert "cannot write the errors file /dev/full" in str(stopped.value)
    assert "No space left on device" in str(stopped.value)
    assert await loaded(db_pool, campaign) == (0, 0, 0, 0)


async def test_problems_are_on_disk_before_their_batch_is_loaded(
    db_pool, campaign, tmp_path
) -> None:
    # A crash after a commit must not lose the report of that batch's bad rows: they are
    # flushed before it loads (they used to sit in a write buffer until the end).
    f = write(tmp_path, "e-bad,Ana,e-bad,oops,+525520001111,MX\n" + rows("e", 0, 30))
    on_disk: list[int] = []
    errors = tmp_path / "e.csv"
    s = await import_leads(
        db_pool, f, campaign, batch_rows=10, errors_path=errors,
        progress=lambda _: on_disk.append(len(problems(errors))),
    )  # fmt: skip
    assert on_disk == [1] * s.batches
    assert s.batches >= 3
    assert s.rejected == 1


async def test_an_earlier_errors_file_does_not_stay(db_pool, campaign, tmp_path) -> None:
    f = write(tmp_path, rows("s", 0, 2) + "s-bad,Ana,s-bad,oops,+525520001111,MX\n")
    first = await import_leads(db_pool, f, campaign)
    assert first.errors_file is not None
    assert Path(first.errors_file).exists()  # noqa: ASYNC240 - a stat
    f = write(tmp_path, rows("s", 0, 2))  # the file fixed, imported again: nothing wrong
    second = await import_leads(db_pool, f, campaign)
    assert second.errors_file is None
    assert not Path(first.errors_file).exists()  # noqa: ASYNC240 - a stat


# --- encodings --------------------------------------------------------------------------------


async def test_bytes_not_utf8_far_into_the_file_cost_their_row(db_pool, campaign, tmp_path) -> None:
    # Past the checked start (64 KiB) and after batches committed, one Latin-1 row: it used to
    # stop the import as if nothing had loaded ("cannot start"), at a byte offset counted from
    # somewhere in the middle of the file.
    good = rows("w", 0, 2000)
    assert len(good) > 64 * 1024
    latin = "w-lat,Mu\xf1oz,w-lat,10,+525529999999,MX\n".encode("latin-1")
    f = write(tmp_path, good.encode() + latin + rows("w", 2000, 10).encode())
    s = await import_leads(db_pool, f, campaign, batch_rows=500)
    assert (s.rows, s.loaded, s.rejected) == (2011, 2010, 1)
    (problem,) = problems(s.errors_file)
    assert problem["row"] == "2002"
    assert "not UTF-8" in problem["problem"]
    assert "0xF1" in problem["problem"]
    assert "'full_name'" in problem["problem"]
    assert await loaded(db_pool, campaign) == (2010, 2010, 2010, 2010)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (HEADER.encode("utf-16"), "UTF-16"),
        (HEADER.encode("utf-16-le"), "NUL bytes"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200, "Excel .xlsx"),
        (HEADER.encode() + "w1,Ana,w-1,1,+525520000001,MX\nw2,Pe\xf1a,w-2,1,+52552,MX\n".encode(
            "cp1252"), "line 3 has the byte 0xF1"),
    ],
    ids=["utf16-bom", "utf16-no-bom", "xlsx", "latin1-line-3"],
)  # fmt: skip
async def test_a_file_not_utf8_is_refused_whole_saying_why(
    db_pool, campaign, tmp_path, data: bytes, said: str
) -> None:
    f = tmp_path / "leads.csv"
    f.write_bytes(data)
    with pytest.raises(ImportError_, match=said) as refused:
        await import_leads(db_pool, f, campaign)
    assert "UTF-8" in str(refused.value)
    assert await loaded(db_pool, campaign) == (0, 0, 0, 0)


async def test_bom_crlf_cr_and_no_final_newline(db_pool, campaign, tmp_path) -> None:
    body = HEADER + rows("l", 0, 3)
    for i, data in enumerate(
        [
            b"\xef\xbb\xbf" + body.encode(),
            body.replace("\n", "\r\n").encode(),
            body.replace("\n", "\r").encode(),
            body.rstrip("\n").encode(),
        ]
    ):
        f = tmp_path / f"l{i}.csv"
        f.write_bytes(data)
        s = await import_leads(db_pool, f, campaign)
        assert (s.rows, s.loaded, s.rejected) == (3, 3, 0), i
    assert await loaded(db_pool, campaign) == (3, 3, 3, 3)


# --- the shape of the file --------------------------------------------------------------------


async def test_an_unclosed_quote_costs_its_row_only(db_pool, campaign, tmp_path) -> None:
    # The quote opened in row 4 swallowed the rest of the file into one field, and the error
    # said only "2 fields, the header has 6": rows 5 and 6 vanished without a word.
    f = write(tmp_path, rows("q", 0, 2) + 'q9,"Ana,q-9,10,+525520000009,MX\n' + rows("q", 2, 2))
    s = await import_leads(db_pool, f, campaign)
    assert (s.rows, s.loaded, s.rejected) == (5, 4, 1)
    (problem,) = problems(s.errors_file)
    assert problem["row"] == "4"
    assert 'a quote (") in this row (line 4) is never closed' in problem["problem"]
    assert await loaded(db_pool, campaign) == (4, 4, 4, 4)


async def test_a_quote_closed_lines_later_costs_its_row_only(db_pool, campaign, tmp_path) -> None:
    # Rows 3 and 4 were read into row 2's field, up to the quote of row 4's "Eva".
    f = write(
        tmp_path,
        'q1,"Ana,q-1,10,+525520000001,MX\nq2,Bea,q-2,10,+525520000002,MX\nq3,"Eva",q-3,10,'
        "+525520000003,MX\n" + rows("q", 4, 1),
    )
    s = await import_leads(db_pool, f, campaign)
    assert (s.rows, s.loaded, s.rejected) == (4, 3, 1)
    (problem,) = problems(s.errors_file)
    assert problem["row"] == "2"
    assert "(line 2) is closed only on line 4" in problem["problem"]
    names = await db_pool.fetch(
        "SELECT full_name FROM persons p JOIN campaigns c ON c.creditor_id = p.creditor_id"
        " WHERE c.code = $1",
        campaign,
    )
    assert sorted(r["full_name"] for r in names) == ["Ana 4", "Bea", "Eva"]


async def test_a_stray_quote_in_a_big_file_costs_its_row_only(db_pool, campaign, tmp_path) -> None:
    # Past the csv module's field limit (128 Ki characters) the reader gave up, and read on
    # from the middle of the swallowed lines: the ~2,000 rows in them were lost in one error.
    f = write(tmp_path, 'z,"Ana,z-0,10,+525529999999,MX\n' + rows("z", 0, 3000))
    s = await import_leads(db_pool, f, campaign)
    assert (s.rows, s.loaded, s.rejected) == (3001, 3000, 1)
    (problem,) = problems(s.errors_file)
    assert problem["row"] == "2"
    assert "is not closed within 131,072 characters" in problem["problem"]


async def test_a_huge_field_costs_its_row_only(db_pool, campaign, tmp_path) -> None:
    # A field past the csv module's limit, on one line: its row is refused, the next is read.
    f = write(tmp_path, f"h1,{'N' * 1_000_000},h-1,10,+525520000001,MX\n" + rows("h", 2, 1))
    s = await import_leads(db_pool, f, campaign)
    assert (s.rows, s.loaded, s.rejected) == (2, 1, 1)
    (problem,) = problems(s.errors_file)
    assert problem["row"] == "2"
    assert "a field longer than 131,072 characters" in problem["problem"]


async def test_row_numbers_count_rows_not_lines(db_pool, campaign, tmp_path) -> None:
    # A field with line breaks in quotes is one row (as a spreadsheet shows it), and blank rows
    # before the header count like any row.
    f = tmp_path / "leads.csv"
    f.write_text(
        "\n" + HEADER + 'r1,"Ana\nde la\nCruz",r-1,10,+525520000001,MX\n'
        "r2,Bea,r-2,oops,+525520000002,MX\n",
        encoding="utf-8",
    )
    s = await import_leads(db_pool, f, campaign)
    assert (s.loaded, s.rejected) == (1, 1)
    assert [(p["row"], p["column"]) for p in problems(s.errors_file)] == [("4", "balance")]
    assert (
        await db_pool.fetchval("SELECT full_name FROM persons WHERE external_ref = 'r1'")
        == "Ana\nde la\nCruz"
    )


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("external_ref;full_name;account_ref;balance;phone;country\n", "separated by semicolons"),
        ("external_ref\tfull_name\taccount_ref\tbalance\tphone\tcountry\n", "separated by tabs"),
        ("full_name,account_ref,balance,phone,phone\n", "the header has 'phone' more than once"),
        ("ACCOUNT_REF,FULL_NAME,BALANCE,PHONE\n", "the file's header: 'ACCOUNT_REF'"),
    ],
    ids=["semicolons", "tabs", "twice", "capitals"],
)
async def test_a_header_that_cannot_be_used_is_named(
    db_pool, campaign, tmp_path, header: str, said: str
) -> None:
    f = tmp_path / "leads.csv"
    f.write_text(header + "x\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=said):
        await import_leads(db_pool, f, campaign)


async def test_a_mapping_naming_a_column_the_file_lacks(db_pool, campaign, tmp_path) -> None:
    # An optional column mapped to a header that is not there was ignored: the file's
    # countries (or numbers, or languages) were silently not imported.
    f = write(tmp_path, rows("m", 0, 1))
    with pytest.raises(ImportError_, match=r"mapping: no such column in the file: country: 'Pais'"):
        await import_leads(db_pool, f, campaign, mapping={"country": "Pais"})
    assert await loaded(db_pool, campaign) == (0, 0, 0, 0)


def test_a_mapping_entry_that_is_not_text_is_named(tmp_path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("full_name: Nombre\nbalance: 2024\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"'balance': '2024' must map"):
        load_mapping(m)
    m.write_text("- full_name\n- balance\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="must map our column names"):
        load_mapping(m)
    m.write_text("a: &a [1, 2]\nb: [*a, *a, *a]\n", encoding="utf-8")  # anchors: no bomb
    with pytest.raises(ImportError_, match="'a'"):
        load_mapping(m)
    # Values YAML cannot build were a ValueError traceback.
    for value in ("2026-02-30", "9" * 5000):
        m.write_text(f"full_name: {value}\n", encoding="utf-8")
        with pytest.raises(ImportError_, match=r"mapping .*m\.yaml: .*quote your headers"):
            load_mapping(m)


def test_the_reader_is_lazy() -> None:
    # Rows come as they are asked for: an endless file gives its first rows at once.
    def endless() -> Iterator[str]:
        yield "account_ref,full_name,balance,phone\n"
        for i in itertools.count():
            yield f"A-{i},Ana,1,+34600000000\n"

    first = list(itertools.islice(read_rows(endless()), 3))
    assert [n for n, _ in first] == [2, 3, 4]


# --- merging ----------------------------------------------------------------------------------


async def test_a_file_without_languages_keeps_the_persons(db_pool, campaign, tmp_path) -> None:
    # Every import without a language column used to turn its known persons back to "es".
    f = tmp_path / "en.csv"
    f.write_text(HEADER.rstrip("\n") + ",language\n" + rows("g", 0, 2).replace("\n", ",en\n"))
    await import_leads(db_pool, f, campaign)
    await import_leads(db_pool, write(tmp_path, rows("g", 0, 3)), campaign)
    f.write_text(
        HEADER.rstrip("\n") + ",language\n"
        "g0,Ana,g-0,1,+525520000000,MX,\n"  # empty: kept
        "g1,Ana,g-1,1,+525520000001,MX,es\n"  # given: changed
        "g9,Ana,g-9,1,+525520000009,MX,\n"  # new: es
        "g8,Ana,g-8,1,+525520000008,MX,en\n"  # new, given
        "g8,Ana,g-8b,1,+525520000008,MX,\n"  # the same person again: its language stands
    )
    await import_leads(db_pool, f, campaign)
    got = await db_pool.fetch(
        "SELECT external_ref, language FROM persons WHERE external_ref LIKE 'g%' ORDER BY 1"
    )
    assert [tuple(r) for r in got] == [
        ("g0", "en"), ("g1", "es"), ("g2", "es"), ("g8", "en"), ("g9", "es"),
    ]  # fmt: skip
