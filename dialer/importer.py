"""``puente leads import``: stream a lead file into PostgreSQL, batch by batch.

Each batch is one transaction: the batch's rows are copied (``COPY``) into a temporary table,
then merged in one statement: persons by the campaign creditor's ``external_ref`` (rows
sharing it are one person; another creditor's person with the same reference is another
person), debts by the creditor's account reference, numbers by person, and one lead per debt
for the campaign.
Batches load in lanes side by side (``lanes``, 2 by default: one connection each, so two
PostgreSQL backends merge at once). Each person belongs to one lane, by a hash of their
reference, and a lane loads its batches in file order: a person's later rows still win over
their earlier ones, as with one lane. Only what two persons share is merged in the order the
lanes commit: an account listed under two persons keeps the first person that loaded it (as
it always has) and takes the balance of the lane that loaded it last. ``lanes=1`` loads the
file strictly in order.

A batch either loads whole or not at all; rejected rows never reach the database and are
written, with their row number, column and reason, to the errors file. Memory stays flat
whatever the file's size: a few batches are held (two a lane, and one being written a lane),
and problems go to the errors file as they are found (flushed before the batch they belong to
is loaded: no row is loaded whose neighbours' problems are not on disk).

The file must be UTF-8: its first 64 KiB are checked before anything loads (a Latin-1,
UTF-16 or Excel file is refused whole, saying which); past them, a row with bytes that are not
UTF-8 costs only itself. A batch that meets a deadlock (another transaction locking the same
persons in another order) is retried; any other failure part way stops the import, saying
from which row the file is not loaded: every row before it is loaded (or rejected), and with
several lanes some rows after it may be too; importing the file again merges them.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from zlib import crc32

import asyncpg
import yaml
from phonenumbers import SUPPORTED_REGIONS

from dialer.leads import LeadFileError, LeadRow, RowProblem, parse_row, read_rows

# A batch is one table of its rows (the row's numbers and their kinds in two arrays), copied in
# one COPY.
_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS imp_row (
    row_no int, ext text, full_name text, language text, country text, region text,
    postal_code text, city text, address_line text, dob date, tz text, account_ref text,
    balance_cents bigint, currency text, dpd int, priority int, e164s text[], kinds text[]
) ON COMMIT DELETE ROWS;
"""
#: ANALYZE of the four tables, with the schema owner's rights (0034: the service's role owns none).
_ANALYZE = "SELECT analyze_lead_tables()"
_DROP_TEMP = "DROP TABLE IF EXISTS imp_row"
# One statement merges the batch: persons, then their debts, numbers and leads, each merge
# joining the ids the one before it wrote (``RETURNING``, which ``ON CONFLICT DO UPDATE`` gives
# for new and existing rows alike): a batch never joins the whole persons or debts table, so the
# cost of a batch does not grow with the rows already loaded (a 1,000,000-row file stays as fast
# at its end as at its start). (The foreign keys are checked at the statement's end, when the
# persons and debts it wrote are there.) One statement, not four with the ids kept in temporary
# tables between them: fewer round trips, and no rows written only to be read once.
_MERGE = """
WITH pu AS (
INSERT INTO persons (creditor_id, external_ref, full_name, language, country, region,
                     postal_code, city, address_line, date_of_birth, stated_timezone)
SELECT DISTINCT ON (ext) $1::bigint, ext, full_name, coalesce(language, 'es'), country,
       region, postal_code, city, address_line, dob, tz
FROM imp_row ORDER BY ext, row_no DESC
ON CONFLICT (creditor_id, external_ref) DO UPDATE SET
    full_name = EXCLUDED.full_name,
    country = coalesce(EXCLUDED.country, persons.country),
    region = coalesce(EXCLUDED.region, persons.region),
    postal_code = coalesce(EXCLUDED.postal_code, persons.postal_code),
    city = coalesce(EXCLUDED.city, persons.city),
    address_line = coalesce(EXCLUDED.address_line, persons.address_line),
    date_of_birth = coalesce(EXCLUDED.date_of_birth, persons.date_of_birth),
    stated_timezone = coalesce(EXCLUDED.stated_timezone, persons.stated_timezone)
RETURNING external_ref, id
), du AS (
INSERT INTO debts (person_id, creditor_id, account_ref, balance_cents, currency, days_past_due)
SELECT p.id, $1, d.account_ref, d.balance_cents, coalesce(d.currency, $2), d.dpd
FROM (SELECT DISTINCT ON (account_ref) * FROM imp_row ORDER BY account_ref, row_no DESC) d
JOIN pu p ON p.external_ref = d.ext
ON CONFLICT (creditor_id, account_ref) DO UPDATE SET
    balance_cents = EXCLUDED.balance_cents,
    currency = EXCLUDED.currency,
    days_past_due = EXCLUDED.days_past_due
RETURNING account_ref, id, person_id
), ph AS (
INSERT INTO phone_numbers (person_id, e164, kind, source)
SELECT DISTINCT ON (p.id, n.e164) p.id, n.e164, n.kind, 'import'
FROM imp_row i CROSS JOIN LATERAL unnest(i.e164s, i.kinds) AS n (e164, kind)
JOIN pu p ON p.external_ref = i.ext
ON CONFLICT (person_id, e164) DO NOTHING
RETURNING 1
), ld AS (
INSERT INTO leads (campaign_id, person_id, debt_id, priority)
SELECT DISTINCT ON (d.id) $3::bigint, d.person_id, d.id, i.priority
FROM imp_row i JOIN du d ON d.account_ref = i.account_ref
ORDER BY d.id, i.row_no DESC
ON CONFLICT (campaign_id, debt_id) DO NOTHING
RETURNING 1
)
SELECT (SELECT count(*) FROM pu), (SELECT count(*) FROM du), (SELECT count(*) FROM ph),
       (SELECT count(*) FROM ld)
"""
# A row without a language keeps a known person's (the merge gives a new one "es"): run only
# for a batch that has languages, so a file without the column pays nothing for it. (After the
# merge: the persons are there, and nothing the merge wrote reads a language.)
_LANGUAGES = """
UPDATE persons p SET language = i.language
FROM (SELECT DISTINCT ON (ext) ext, language FROM imp_row WHERE language IS NOT NULL
      ORDER BY ext, row_no DESC) i
WHERE p.creditor_id = $1 AND p.external_ref = i.ext AND p.language <> i.language
"""


#: A batch that meets these (a deadlock with the dialer or another import) is tried again.
_RETRIED = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_TRIES = 4
#: How much of the file's start is checked for its encoding before anything loads.
_SNIFF_BYTES = 64 * 1024


class ImportError_(Exception):
    """The import cannot start (campaign, mapping, file); nothing was imported."""


class ImportStopped(ImportError_):
    """The import stopped part way (the database went away, the file could not be read on):
    the batches before it stay loaded; :attr:`summary` says how far it got."""

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class ImportSummary:
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    numbers_dropped: int = 0
    persons: int = 0
    debts: int = 0
    numbers: int = 0
    leads: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors_file: str | None = None
    #: How far through the file the reader is, in bytes, and the file's size (for progress).
    bytes_read: int = 0
    bytes_total: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def load_mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as e:
        raise ImportError_(f"mapping {path}: {e}") from e
    except UnicodeDecodeError as e:
        raise ImportError_(f"mapping {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except ValueError as e:  # a value YAML cannot build (the date 2026-02-30, a huge number)
        raise ImportError_(f"mapping {path}: {str(e)[:120]} (quote your headers)") from e
    if not isinstance(raw, dict):
        raise ImportError_(f"mapping {path}: must map our column names to your headers")
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ImportError_(
                f"mapping {path}: {str(k)[:40]!r}: {str(v)[:40]!r} must map our column name to "
                "your header, both text (quote a header that looks like a number)"
            )
    return raw


def _examine(path: Path, errors_path: Path | None) -> tuple[os.stat_result, Path]:
    """The input's ``stat`` and where its rejected rows go; :class:`ImportError_` if either
    cannot be used."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise ImportError_(f"{path}: a directory, not a file")
    return info, _errors_path(path, errors_path, stat.S_ISREG(info.st_mode))


def _errors_path(path: Path, given: Path | None, regular: bool) -> Path:
    """Where the rejected rows go: ``--errors``, else beside the file. Never the file itself
    (it was truncated and the rows after the first batch were lost) nor a directory."""
    if given is None:
        if not regular:
            raise ImportError_(f"{path}: not a regular file (a pipe?): give --errors FILE")
        given = path.with_name(path.stem + ".errors.csv")
    if given.is_dir():
        raise ImportError_(f"--errors {given}: a directory, not a file")
    if not given.parent.is_dir():
        raise ImportError_(f"--errors {given}: no directory {given.parent}")
    with contextlib.suppress(OSError):
        if given.exists() and os.path.samefile(given, path):
            raise ImportError_(f"--errors {given} is the file being imported")
    return given


def _sniff(head: bytes) -> str | None:
    """Why the start of a file shows it is not UTF-8 CSV text, or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (it starts with a UTF-16 byte-order mark): save it as CSV UTF-8"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (an Excel .xlsx workbook?), not CSV text: save it as CSV UTF-8"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Excel .xls workbook, not CSV text: save it as CSV UTF-8"
    if head.count(b"\x00") > len(head) // 8:
        return "NUL bytes all through it (UTF-16, or not text): save it as CSV UTF-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as e:
        newline = b"\n" if b"\n" in head else b"\r"
        line = head.count(newline, 0, e.start) + 1
        return (
            f"not UTF-8 text: line {line:,} has the byte 0x{head[e.start]:02X} (Latin-1 or "
            "Windows-1252?): save it as CSV UTF-8"
        )
    return None


def _open(path: Path) -> TextIO:
    """The file as text, once its start is known to be UTF-8 CSV (in a thread: opening a pipe
    waits for its writer, and so does the first read)."""
    raw = path.open("rb", buffering=_SNIFF_BYTES)
    try:
        problem = _sniff(raw.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
    except BaseException:
        raw.close()
        raise
    if problem is not None:
        raw.close()
        raise ImportError_(f"{path}: {problem}")
    # Past the start, bytes that are not UTF-8 cost their row (dialer.leads), not the import.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


class _Errors:
    """The errors file, written as problems are found (a file of bad rows does not fill the
    memory), and the counts the summary gives. Opened before anything loads (a place that
    cannot be written stops the import before it starts, and an earlier import's file never
    stays as if it were this one's); removed at the end when nothing was wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer: Any = None
        self.rejected = 0  # rows
        self.dropped = 0  # numbers left out of rows that loaded
        self._last_rejected = -1

    def open(self) -> None:
        try:
            self._file = self.path.open("w", newline="", encoding="utf-8")
        except OSError as e:
            raise ImportError_(f"errors file {self.path}: {e.strerror or e}") from e

    def _failed(self, e: OSError) -> OSError:
        return OSError(e.errno, f"cannot write the errors file {self.path}: {e.strerror or e}")

    def add(self, problem: RowProblem) -> None:
        try:
            if self._writer is None:
                self._writer = csv.writer(self._file)
                self._writer.writerow(["row", "column", "problem", "row_rejected"])
            self._writer.writerow(
                [problem.row, problem.column, problem.problem, "yes" if problem.rejected else "no"]
            )
        except OSError as e:
            raise self._failed(e) from e
        if not problem.rejected:
            self.dropped += 1
        elif problem.row != self._last_rejected:  # a row's problems come together
            self.rejected += 1
            self._last_rejected = problem.row

    def flush(self) -> None:
        if self._writer is not None and self._file is not None:
            try:
                self._file.flush()
            except OSError as e:
                raise self._failed(e) from e

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        """Close the file (an error writing its end is raised); remove it if it is empty."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            empty = not self.written and stat.S_ISREG(os.fstat(file.fileno()).st_mode)
            file.close()
        except OSError as e:
            with contextlib.suppress(OSError):
                file.close()
            raise self._failed(e) from e
        if empty:  # (never unlink what is not a plain file: --errors /dev/stdout)
            with contextlib.suppress(OSError):
                self.path.unlink()


class _Start(NamedTuple):
    """A row, and how many rows were read, rejected and numbers dropped before it: what the
    summary says of an import that stops with this row the first one not loaded."""

    row: int
    seen: int
    rejected: int
    dropped: int


class _Batch(NamedTuple):
    #: The lane that loads it (its persons are that lane's: :class:`_Batches`).
    lane: int
    #: How many leads the batch has, and them as COPY data for imp_row (made by the reader
    #: thread, so that the event loop only sends it).
    leads: int
    data: bytes
    #: Whether a row gives a language (only then is :data:`_LANGUAGES` run).
    languages: bool
    #: Where the batch starts: its first row, and the counts of the rows before that row.
    start: _Start
    #: The file's last row read when the batch was made, and the counts up to it: what the
    #: summary says once this batch is loaded (the next batch is read meanwhile).
    last_row: int
    seen: int
    rejected: int
    dropped: int


class _Lane:
    """One lane's batch being written by the reader."""

    __slots__ = ("data", "languages", "leads", "start", "write")

    def __init__(self) -> None:
        self.data = io.StringIO()
        self.write = csv.writer(
            self.data, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n"
        ).writerow
        self.leads = 0
        self.languages = False
        self.start: _Start | None = None

    def clear(self) -> None:
        self.data.seek(0)
        self.data.truncate()
        self.leads = 0
        self.languages = False
        self.start = None


class _Null:
    """A NULL in the batch's COPY data: written unquoted (``csv.QUOTE_NONNUMERIC`` leaves what
    is a number unquoted, and this says it is one), as ``\\N``, which COPY reads as NULL
    (:data:`_COPY_OPTIONS`); every text is quoted, so no text is ever read as NULL."""

    __slots__ = ()

    def __float__(self) -> float:  # (what makes csv take it for a number)
        return 0.0

    def __str__(self) -> str:
        return "\\N"


_NULL = _Null()
_COPY_OPTIONS = {"format": "csv", "null": "\\N"}


def _copy_row(r: LeadRow) -> tuple[object, ...]:
    """A lead as a row of imp_row."""
    phones = r.phones
    return (
        r.row, r.external_ref, r.full_name,
        _NULL if r.language is None else r.language,
        _NULL if r.country is None else r.country,
        _NULL if r.region is None else r.region,
        _NULL if r.postal_code is None else r.postal_code,
        _NULL if r.city is None else r.city,
        _NULL if r.address_line is None else r.address_line,
        _NULL if r.date_of_birth is None else r.date_of_birth.isoformat(),
        _NULL if r.timezone is None else r.timezone,
        r.account_ref, r.balance_cents,
        _NULL if r.currency is None else r.currency,
        r.days_past_due, r.priority,
        # (E.164 numbers and the kinds are digits, "+", letters and "_": array elements that
        # need no quoting)
        "{" + ",".join([p.e164 for p in phones]) + "}",
        "{" + ",".join([p.kind for p in phones]) + "}",
    )  # fmt: skip


class _Batches:
    """Rows of the file, parsed, in batches of COPY data; the problems found on the way go to
    ``errors`` (flushed before each batch is handed out). Setting :attr:`stop` ends the
    iteration at the next row.

    With several ``lanes``, each person (their ``external_ref``) belongs to one lane, by a hash
    of it, and each lane has batches of its own: lanes load side by side, each in file order,
    so a person's later rows still win over their earlier ones."""

    def __init__(
        self,
        rows: Iterator[tuple[int, dict[str, str]]],
        region: str | None,
        size: int,
        errors: _Errors,
        lanes: int = 1,
    ) -> None:
        self.rows = rows
        self.region = region
        self.size = size
        self.seen = 0
        self.errors = errors
        self.stop = False
        self.lanes = [_Lane() for _ in range(lanes)]
        #: The last row read.
        self.row = 1

    def _batch(self, number: int, lane: _Lane, last_row: int) -> _Batch:
        self.errors.flush()
        e = self.errors
        encoded = lane.data.getvalue().encode("utf-8")
        assert lane.start is not None
        batch = _Batch(
            number, lane.leads, encoded, lane.languages, lane.start, last_row, self.seen,
            e.rejected, e.dropped,
        )  # fmt: skip
        lane.clear()
        return batch

    def unbatched(self) -> list[_Start]:
        """Where the rows read but in no batch yet start (once the iteration has stopped)."""
        return [lane.start for lane in self.lanes if lane.start is not None]

    def __iter__(self) -> Iterator[_Batch]:
        errors = self.errors
        add = errors.add
        region = self.region
        size = self.size
        lanes = self.lanes
        count = len(lanes)
        n = 1
        for n, values in self.rows:
            if self.stop:
                return
            self.row = n
            seen = self.seen
            self.seen = seen + 1
            if "__error__" in values:
                add(RowProblem(n, "*", values["__error__"], True))
                continue
            rejected, dropped = errors.rejected, errors.dropped
            lead, problems = parse_row(n, values, region)
            for problem in problems:
                add(problem)
            if lead is not None:
                number = crc32(lead.external_ref.encode("utf-8")) % count if count > 1 else 0
                lane = lanes[number]
                if lane.start is None:
                    lane.start = _Start(n, seen, rejected, dropped)
                lane.write(_copy_row(lead))
                lane.leads += 1
                if lead.language is not None:
                    lane.languages = True
                if lane.leads >= size:
                    yield self._batch(number, lane, n)
        for number, lane in enumerate(lanes):
            if lane.leads:
                yield self._batch(number, lane, n)
        self.errors.flush()


async def _load_batch(
    conn: asyncpg.Connection,
    batch: _Batch,
    campaign_id: int,
    creditor_id: int,
    currency: str,
) -> tuple[int, int, int, int]:
    """Load one batch in one transaction, trying again after a deadlock."""
    for attempt in range(1, _TRIES + 1):
        try:
            async with conn.transaction():
                # (a memoryview: asyncpg takes bytes for a file's path)
                await conn.copy_to_table("imp_row", source=memoryview(batch.data), **_COPY_OPTIONS)
                persons, debts, numbers, leads = await conn.fetchrow(
                    _MERGE, creditor_id, currency, campaign_id
                )
                if batch.languages:
                    await conn.execute(_LANGUAGES, creditor_id)
            return persons, debts, numbers, leads
        except _RETRIED:
            if attempt == _TRIES:
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


#: Lanes loading side by side by default: PostgreSQL merges a batch on one core, so two lanes
#: keep two of its backends busy (on 2 cores, three lanes were slower than two).
DEFAULT_LANES = 2
MAX_LANES = 16
#: Batches read ahead per lane (the reader runs ahead of the lane's load by this many).
_AHEAD = 1


async def import_leads(
    pool: asyncpg.Pool,
    path: Path,
    campaign: str,
    *,
    mapping: dict[str, str] | None = None,
    default_region: str | None = None,
    errors_path: Path | None = None,
    batch_rows: int = 5000,
    lanes: int = DEFAULT_LANES,
    progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import ``path`` into ``campaign``; :class:`ImportError_` if it cannot start.

    ``lanes`` connections load batches side by side, each person in one lane (in file order
    there); never more than the pool has connections."""
    row = await pool.fetchrow(
        """SELECT c.id, c.creditor_id, cr.currency FROM campaigns c
           LEFT JOIN creditors cr ON cr.id = c.creditor_id WHERE c.code = $1""",
        campaign,
    )
    if row is None:
        raise ImportError_(f"unknown campaign {campaign!r}")
    if row["creditor_id"] is None:
        raise ImportError_(f"campaign {campaign!r} has no creditor: debts need one")
    if default_region is not None and (
        not default_region.isascii() or default_region.upper() not in SUPPORTED_REGIONS
    ):  # ("ß".upper() is "SS")
        raise ImportError_(
            f"--default-region {default_region[:10]!r}: not a country phonenumbers knows (an "
            "ISO 3166 code such as MX, CO, ES or US)"
        )
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ImportError_(f"--batch-rows must be a whole number >= 1, got {batch_rows!r}")
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= MAX_LANES:
        raise ImportError_(f"--lanes must be a whole number from 1 to {MAX_LANES}, got {lanes!r}")
    lanes = min(lanes, pool.get_max_size())
    campaign_id, creditor_id = row["id"], row["creditor_id"]
    currency = row["currency"].strip()
    summary = ImportSummary()
    t0 = time.perf_counter()
    # A pipe (mkfifo, <(...)) streams as well as a file, but has no size or position, and its
    # name is no place for the errors file.
    try:
        info, errors_at = await asyncio.to_thread(_examine, path, errors_path)
        handle = await asyncio.to_thread(_open, path)
    except OSError as e:
        raise ImportError_(f"{path}: {e.strerror or e}") from e
    regular = stat.S_ISREG(info.st_mode)
    summary.bytes_total = info.st_size if regular else 0
    errors = _Errors(errors_at)
    raw = handle.buffer
    batches = _Batches(
        read_rows(handle, mapping),
        default_region.upper() if default_region else None,
        batch_rows,
        errors,
        lanes,
    )
    # Batches handed to a lane and not committed (their starts say from which row the file
    # is not loaded if the import stops), and the newest batch committed (what the summary
    # says meanwhile).
    unloaded: dict[int, _Start] = {}
    newest: _Batch | None = None
    failures: list[BaseException] = []
    queues: list[asyncio.Queue[_Batch | None]] = [
        asyncio.Queue(maxsize=_AHEAD) for _ in range(lanes)
    ]

    async def lane(queue: asyncio.Queue[_Batch | None]) -> None:
        """Load the lane's batches in order; after a failure (of any lane), take the rest
        without loading them, so that the reader is never left waiting."""
        nonlocal newest
        conn: asyncpg.Connection | None = None
        try:
            while (batch := await queue.get()) is not None:
                if failures:
                    continue
                try:
                    if conn is None:
                        conn = await pool.acquire()
                        # The batch table lives as long as the import, emptied at every
                        # commit: creating it per batch cost more catalog work than some of
                        # the merges.
                        await conn.execute(_TEMP)
                    p, d, n, ld = await _load_batch(conn, batch, campaign_id, creditor_id, currency)
                except Exception as e:  # told once every lane has stopped
                    failures.append(e)
                    continue
                del unloaded[id(batch)]
                summary.batches += 1
                summary.loaded += batch.leads
                summary.persons += p
                summary.debts += d
                summary.numbers += n
                summary.leads += ld
                if newest is None or batch.last_row > newest.last_row:
                    newest = batch
                    summary.rows = batch.seen
                    summary.rejected = batch.rejected
                    summary.numbers_dropped = batch.dropped
                summary.seconds = time.perf_counter() - t0
                # The byte reader runs ahead of the rows parsed by one read buffer and a
                # batch per lane: near enough for a progress bar.
                if regular:
                    summary.bytes_read = min(raw.tell(), summary.bytes_total)
                if progress is not None:
                    progress(summary)
        finally:
            if conn is not None:
                # (On a lost connection every call raises: the failure told is the one that
                # stopped the import.)
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    if not conn.is_closed():
                        await conn.execute(_DROP_TEMP)
                await pool.release(conn)

    async def read() -> None:
        """Hand each batch to its lane: parsing (in a thread) overlaps the lanes' loads. A
        failure here stops the import as a lane's does: the batches handed out still load."""
        batch_iter = iter(batches)
        reading: asyncio.Future[_Batch | None] | None = None
        try:
            while not failures:
                reading = asyncio.ensure_future(asyncio.to_thread(next, batch_iter, None))
                # (shielded: cancelled, we still wait below for the thread to be done)
                batch = await asyncio.shield(reading)
                reading = None
                if batch is None:
                    break
                unloaded[id(batch)] = batch.start
                await queues[batch.lane].put(batch)
        except Exception as e:
            failures.append(e)
        finally:
            # The reader thread must be done with the file and the errors file before they
            # close (it stops at its next row).
            batches.stop = True
            if reading is not None:
                await asyncio.wait([reading])
                if not reading.cancelled():
                    reading.exception()  # (retrieved: the failure told is another one)
        for queue in queues:
            await queue.put(None)

    with handle:
        try:
            await asyncio.to_thread(errors.open)
            async with asyncio.TaskGroup() as group:
                for queue in queues:
                    group.create_task(lane(queue))
                await read()
            if failures:
                raise failures[0]
            if summary.loaded:
                # Fresh statistics for what was loaded (autovacuum would get there in its own
                # time): the claim's plans are chosen from them. Everything is loaded by now: a
                # failure here is no failure of the import.
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await pool.execute(_ANALYZE)
            errors.close()
        except LeadFileError as e:
            raise ImportError_(f"{path}: {e}") from e
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, OverflowError) as e:
            # Rows are checked against what the database takes (dialer.leads), so this is the
            # database or a disk failing, not a row: say from which row the file is not loaded.
            # Every row before the first one not loaded is loaded or rejected; with several
            # lanes, other persons' rows after it may be loaded too.
            starts = [*unloaded.values(), *batches.unbatched()]
            end = _Start(batches.row + 1, batches.seen, errors.rejected, errors.dropped)
            first = min(starts, default=end)
            summary.rows, summary.rejected = first.seen, first.rejected
            summary.numbers_dropped = first.dropped
            summary.seconds = time.perf_counter() - t0
            summary.errors_file = str(errors.path) if errors.written else None
            after = newest is not None and newest.last_row > first.row
            loaded = (
                f"the {summary.loaded:,} rows of the {summary.batches} batches committed are "
                "loaded (every row before it, and some after it: other persons' lanes)"
                if after
                else f"the {summary.loaded:,} rows of the {summary.batches} batches before it "
                "are loaded"
            )
            raise ImportStopped(
                f"{path}: stopped at row {first.row:,} ({_cause(e, campaign)}); {loaded}, and "
                "importing the file again merges, not duplicates",
                summary,
            ) from e
        finally:
            with contextlib.suppress(OSError):
                errors.close()
    summary.rows = batches.seen
    summary.bytes_read = summary.bytes_total
    summary.rejected = errors.rejected
    summary.numbers_dropped = errors.dropped
    summary.seconds = time.perf_counter() - t0
    if errors.written:
        summary.errors_file = str(errors.path)
    return summary


def _cause(e: BaseException, campaign: str) -> str:
    """The failure, in words; never a row's values (a detail could hold a phone number)."""
    # A lost connection surfaces as the transaction's rollback failing ("the underlying
    # connection is closed"): the failure to tell is the one that it met.
    while isinstance(e, asyncpg.InterfaceError) and isinstance(
        e.__context__, asyncpg.PostgresError | asyncpg.InterfaceError | OSError
    ):
        e = e.__context__
    if (
        isinstance(e, asyncpg.ForeignKeyViolationError)
        and e.constraint_name == "leads_campaign_id_fkey"
    ):
        return f"the campaign {campaign!r} was deleted during the import"
    # The server's message only: its DETAIL can quote a row ("Failing row contains (...)"),
    # and a row has phone numbers.
    text = (e.message if isinstance(e, asyncpg.PostgresError) else None) or str(e)
    what = f"{e.__class__.__name__}: {' '.join(text.split())[:200]}"
    if isinstance(
        e,
        asyncpg.PostgresConnectionError
        | asyncpg.OperatorInterventionError
        | asyncpg.InterfaceError
        | ConnectionError,
    ):
        return f"the connection to the database was lost ({what})"
    return what


_BAR = 30


def progress_line(summary: ImportSummary) -> str:
    """``[#####-----]  45%  90,000 rows  88,200 loaded  1,800 rejected  7,000 rows/s  ETA 0:15``."""
    if not summary.bytes_total:  # a pipe: no size, so no bar
        return (
            f"{summary.rows:,} rows  {summary.loaded:,} loaded  {summary.rejected:,} rejected"
            f"  {summary.rows_per_s:,.0f} rows/s"
        )
    done = min(max(summary.bytes_read / summary.bytes_total, 0.0), 1.0)
    filled = round(done * _BAR)
    eta = ""
    if 0.0 < done < 1.0 and summary.seconds > 0:
        left = round(summary.seconds * (1.0 - done) / done)
        eta = f"  ETA {left // 60}:{left % 60:02d}"
    return (
        f"[{'#' * filled}{'-' * (_BAR - filled)}] {done:4.0%}  {summary.rows:,} rows"
        f"  {summary.loaded:,} loaded  {summary.rejected:,} rejected"
        f"  {summary.rows_per_s:,.0f} rows/s{eta}"
    )


def print_progress(summary: ImportSummary) -> None:
    """A progress bar on standard error, rewritten in place; nothing when it is not a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write("\r" + progress_line(summary) + "\x1b[K")
        sys.stderr.flush()
