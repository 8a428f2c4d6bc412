"""Lead upload: a CSV in the request body, streamed to a temporary file, then imported.

The body is written in chunks (never held whole in memory) and capped at
``max_upload_bytes`` (413 past it); every read has a deadline, so a client that stops sending
does not hold the handler forever. The import is :func:`dialer.importer.import_leads`, the same
as ``puente leads import``: the same columns, the same per-row errors. The rejected rows (row
number, column, reason) come back inline as ``errors_csv`` when small, and stay available at
``GET /api/v1/imports/{id}/errors.csv``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
from aiohttp import web

from dialer.importer import ImportError_, ImportStopped, ImportSummary, import_leads
from web._api import ApiCall, ApiRoute
from web._audit import audit
from web._campaigns import MANAGERS
from web._exceptions import (
    ApiError,
    Conflict,
    Invalid,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from web._keys import STATS
from web._schema import CODE, ID

log = logging.getLogger(__name__)

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
CHUNK_BYTES = 256 * 1024
WRITE_BYTES = 1024 * 1024
READ_TIMEOUT_S = 60.0
INLINE_ERRORS_BYTES = 1024 * 1024
STORED_ERRORS_BYTES = 32 * 1024 * 1024
#: What a refused upload is told to wait before it tries again (an import of a large file
#: takes a minute or more).
RETRY_AFTER_S = 60


async def receive_body(request: web.Request, path: Path, limit: int) -> int:
    """Write the request body to ``path`` in chunks; its size. :class:`PayloadTooLarge` past
    ``limit`` bytes; :class:`Invalid` for NUL bytes (never text, and PostgreSQL refuses them)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the file is over the {limit}-byte limit", "body")
    total = 0
    pending = bytearray()
    handle: BinaryIO = await asyncio.to_thread(path.open, "wb")
    try:
        while True:
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    chunk = await request.content.read(CHUNK_BYTES)
            except TimeoutError:
                raise ApiError(f"nothing received for {READ_TIMEOUT_S:.0f} s", "body",
                               status=408) from None  # fmt: skip
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"the file is over the {limit}-byte limit", "body")
            if b"\x00" in chunk:
                raise Invalid("body: the file contains NUL bytes (not a CSV text file)", "body")
            pending += chunk
            if len(pending) >= WRITE_BYTES:
                await asyncio.to_thread(handle.write, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(handle.write, bytes(pending))
    finally:
        await asyncio.to_thread(handle.close)
    return total


def _read_capped(path: Path, cap: int) -> tuple[str | None, bool]:
    """The errors file's text, cut at a line boundary under ``cap`` bytes; (text, truncated)."""
    if not path.exists():
        return None, False
    with path.open("rb") as f:
        data = f.read(cap + 1)
    if len(data) <= cap:
        return data.decode("utf-8", "replace"), False
    data = data[: data.rfind(b"\n", 0, cap) + 1]
    return data.decode("utf-8", "replace"), True


def summary_json(s: ImportSummary) -> dict[str, Any]:
    """The same report as ``puente leads import`` prints (without its file names)."""
    return {
        "rows": s.rows,
        "loaded": s.loaded,
        "rejected": s.rejected,
        "numbers_dropped": s.numbers_dropped,
        "persons_written": s.persons,
        "debts_written": s.debts,
        "numbers_added": s.numbers,
        "leads_added": s.leads,
        "seconds": round(s.seconds, 2),
        "rows_per_s": round(s.rows_per_s),
    }


async def upload_leads(call: ApiCall) -> Any:
    code = call.params["code"]
    request = call.request
    row = await call.pool.fetchrow("SELECT id, creditor_id FROM campaigns WHERE code = $1", code)
    if row is None:
        raise NotFound(f"no campaign {code!r}")
    if row["creditor_id"] is None:
        raise Conflict(f"campaign {code!r} has no creditor: debts need one", "creditor")
    if request.content_type not in CSV_TYPES:
        raise UnsupportedMediaType(
            f"send the file as text/csv, not {request.content_type[:60]!r}", "body"
        )
    # Each import holds the lanes' database connections while it loads: a node loads only so
    # many at once, and says so before reading a file it would not load.
    stats, at_once = call.app[STATS], call.settings.imports_at_once
    if stats.imports_loading >= at_once:
        stats.imports_refused += 1
        raise TooManyRequests(
            f"{stats.imports_loading} lead imports are loading on this node (at most "
            f"{at_once} at once): send the file again when one has finished",
            RETRY_AFTER_S,
        )
    stats.imports_loading += 1
    try:
        return await _upload(call, code, row["id"])
    finally:
        stats.imports_loading -= 1


async def _upload(call: ApiCall, code: str, campaign_id: int) -> Any:
    request = call.request
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="puente-upload-"))
    try:
        path, errors_path = workdir / "leads.csv", workdir / "errors.csv"
        size = await receive_body(request, path, call.settings.max_upload_bytes)
        try:
            summary = await import_leads(
                call.pool,
                path,
                code,
                default_region=call.query.get("default_region"),
                errors_path=errors_path,
            )
        except ImportStopped as e:
            # Part way: the batches before it stay loaded, and the message says how many.
            cause = e.__cause__
            log.warning("leads import into %s stopped: %s", code, cause.__class__.__name__)
            # (OperatorInterventionError: the server shutting down, the backend terminated)
            unreachable = isinstance(
                cause,
                OSError
                | asyncpg.InterfaceError
                | asyncpg.PostgresConnectionError
                | asyncpg.OperatorInterventionError,
            )
            raise ApiError(
                str(e).replace(str(path), "the file"), "body", status=503 if unreachable else 422
            ) from None
        except ImportError_ as e:
            raise Invalid(str(e).replace(str(path), "the file"), "body") from None
        errors_csv, truncated = await asyncio.to_thread(
            _read_capped, errors_path, STORED_ERRORS_BYTES
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    report = summary_json(summary)
    async with call.pool.acquire() as conn, conn.transaction():
        import_id = await conn.fetchval(
            "INSERT INTO web_imports (campaign_id, actor, summary, errors_csv, errors_truncated)"
            " VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
            campaign_id,
            call.user.username,
            json.dumps(report),
            errors_csv,
            truncated,
        )
        await audit(conn, call.user.username, "leads.import", f"campaign:{code}",
                    {"import_id": import_id, "bytes": size, **report})  # fmt: skip
    log.info("leads import %d into %s by %s: %d rows, %d loaded, %d rejected",
             import_id, code, call.user.username, summary.rows, summary.loaded,
             summary.rejected)  # fmt: skip
    out: dict[str, Any] = {"import_id": import_id, "campaign": code, **report}
    if errors_csv is not None:
        out["errors_url"] = f"/api/v1/imports/{import_id}/errors.csv"
        out["errors_truncated"] = truncated
        if len(errors_csv) <= INLINE_ERRORS_BYTES:
            out["errors_csv"] = errors_csv
    return out


async def import_errors(call: ApiCall) -> web.StreamResponse:
    found = await call.pool.fetchrow(
        "SELECT errors_csv FROM web_imports WHERE id = $1", call.params["id"]
    )
    if found is None or found["errors_csv"] is None:
        raise NotFound(f"no errors for import {call.params['id']}")
    return web.Response(
        text=found["errors_csv"],
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{call.params["id"]}.csv"'},
    )


ROUTES = [
    ApiRoute("POST", "/campaigns/{code}/leads", upload_leads,
             "Upload a lead CSV (columns as `puente leads import`)", "leads", MANAGERS,
             params={"code": CODE},
             query={"default_region": {"type": "string", "pattern": r"^[A-Za-z]{2}$"}},
             body={"type": "string"}, body_type="text/csv",
             response="The import summary; rejected rows in errors_csv / errors_url",
             errors={
                 "413": "The file is larger than web.max_upload_bytes",
                 "429": "web.imports_at_once imports are loading on this node (Retry-After)",
                 "503": "The database went away part way; the message says what stays loaded",
             }),
    ApiRoute("GET", "/imports/{id}/errors.csv", import_errors,
             "The rejected rows of an import (row, column, problem, row_rejected)", "leads",
             MANAGERS, params={"id": ID}, response="CSV", response_type="text/csv"),
]  # fmt: skip
