"""``puente leads``: import lead files into a campaign."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from dialer.importer import (
    DEFAULT_LANES,
    ImportError_,
    ImportStopped,
    ImportSummary,
    import_leads,
    load_mapping,
    print_progress,
)


async def _import(args: argparse.Namespace, seen: list[ImportSummary]) -> int:
    from puente.database import database_pool

    def progress(summary: ImportSummary) -> None:
        seen[:] = [dataclasses.replace(summary)]  # (a copy: what was committed by then)
        print_progress(summary)

    mapping = load_mapping(args.mapping)
    async with database_pool() as pool:
        summary = await import_leads(
            pool,
            args.file,
            args.campaign,
            mapping=mapping,
            default_region=args.default_region,
            errors_path=args.errors,
            batch_rows=args.batch_rows,
            lanes=args.lanes,
            progress=progress,
        )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    report = {
        "rows": summary.rows,
        "loaded": summary.loaded,
        "rejected": summary.rejected,
        "numbers_dropped": summary.numbers_dropped,
        "persons_written": summary.persons,
        "debts_written": summary.debts,
        "numbers_added": summary.numbers,
        "leads_added": summary.leads,
        "seconds": round(summary.seconds, 2),
        "rows_per_s": round(summary.rows_per_s),
        "errors_file": summary.errors_file,
    }
    print(json.dumps(report))
    return 0 if summary.rejected == 0 else 1


def _cmd_import(args: argparse.Namespace) -> int:
    seen: list[ImportSummary] = []  # the latest committed batch's summary
    try:
        return asyncio.run(_import(args, seen))
    except KeyboardInterrupt:
        # The batches in flight (one a lane) are rolled back with their connections; those
        # before them stay.
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        done = seen[0] if seen else None
        # (A batch in flight may have committed as the interrupt came: "at least".)
        loaded = (
            f"at least the {done.loaded:,} rows of the {done.batches} batches committed stay loaded"
            if done is not None
            else "at most one batch a lane was loaded"
        )
        print(
            f"puente leads import: interrupted: {loaded}; importing the file again merges",
            file=sys.stderr,
        )
        return 130
    except ImportError_ as e:
        if isinstance(e, ImportStopped) and sys.stderr.isatty():
            sys.stderr.write("\n")  # past the progress bar
        print(f"puente leads import: {e}", file=sys.stderr)
        return 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("leads", help="import lead files into a campaign")
    sub = p.add_subparsers(dest="leads_action", metavar="ACTION", required=True)
    i = sub.add_parser(
        "import",
        help="import a CSV of debtors, debts and numbers (columns: see dialer/leads.py)",
        description=(
            "Import a CSV into a campaign. Bad rows are written to FILE.errors.csv with their "
            "row number and reason; good rows load. Prints a JSON summary; exit 1 when rows "
            "were rejected, 2 when nothing could start or the import stopped part way (the "
            "message says how many rows stay loaded; importing the file again merges)."
        ),
    )
    i.add_argument("file", type=Path, help="the CSV file (UTF-8, a header row)")
    i.add_argument("--campaign", required=True, help="campaign code")
    i.add_argument("--mapping", type=Path, help="YAML: our column name -> your header")
    i.add_argument("--default-region", help="country of numbers written without +, e.g. MX")
    i.add_argument(
        "--errors",
        type=Path,
        help="where to write rejected rows (default: FILE.errors.csv beside it; needed when "
        "FILE is a pipe)",
    )
    i.add_argument(
        "--batch-rows", type=int, default=5000, help="rows per transaction (default 5000)"
    )
    i.add_argument(
        "--lanes",
        type=int,
        default=DEFAULT_LANES,
        help=f"database connections loading batches side by side, each person in one "
        f"(default {DEFAULT_LANES}; 1 loads the file strictly in order)",
    )
    i.set_defaults(func=_cmd_import)
