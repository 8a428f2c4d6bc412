"""The ``puente`` console script: one entry, one subcommand per job.

Subcommands owned by a package register themselves through a ``register(subparsers)`` function
in that package's ``cli`` module (see :data:`_PLUGINS`); this module only dispatches.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import logging
import math
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

import bench
from db import DbError
from pbx import PbxError
from puente import __version__
from puente.settings import SettingsError

log = logging.getLogger("puente")

# (subcommand, module providing ``register(subparsers)``); registered when the module exists.
_PLUGINS = (
    ("sim", "pbx.sim.cli"),
    ("leads", "dialer.cli"),
    ("compliance", "compliance.cli"),
    ("amd", "dialer.amd.cli"),
    ("ivr", "ivr.cli"),
    ("users", "web.cli"),  # also registers `agents`, `creditors` and `reports`
)


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# -- run / demo -----------------------------------------------------------------------------
def _duration_s(text: str) -> float:
    """``--duration-s``: a finite number of seconds, > 0 (not ``nan``, ``inf`` or ``-5``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} must be a finite number of seconds > 0")
    return value


def _service(args: argparse.Namespace, *, demo: bool) -> int:
    from puente.app import run_service

    return asyncio.run(
        run_service(
            config_path=args.config,
            demo=demo,
            duration_s=args.duration_s,
            log_level=args.log_level,
        )
    )


def _cmd_run(args: argparse.Namespace) -> int:
    return _service(args, demo=False)


def _cmd_demo(args: argparse.Namespace) -> int:
    return _service(args, demo=True)


# -- db ---------------------------------------------------------------------------------------
def _cmd_db(args: argparse.Namespace) -> int:
    from db import GrantError, grant_service_role, status
    from puente.database import connect, database_url

    if args.action == "grant" and args.role is None:
        print("puente db grant: name the service's role (puente db grant ROLE)", file=sys.stderr)
        return 2
    if args.action != "grant" and args.role is not None:
        print(f"puente db {args.action}: takes no role (only grant does)", file=sys.stderr)
        return 2

    async def grant() -> int:
        async with database_url(apply_migrations=False) as url:
            conn = await connect(url)
            try:
                await grant_service_role(conn, args.role)
            except GrantError as e:
                print(f"puente db grant: {e}", file=sys.stderr)
                return 1
            finally:
                await conn.close()
        print(
            f"role {args.role!r} may now read and write rows (not truncate, alter or drop): "
            "run the service with PUENTE_DATABASE_URL naming it"
        )
        return 0

    async def main() -> int:
        if args.action == "grant":
            return await grant()
        async with database_url(apply_migrations=args.action == "migrate") as url:
            conn = await connect(url)
            try:
                rows = await status(conn)
            finally:
                await conn.close()
        if args.action == "migrate":
            print(f"database is at version {max((r.version for r in rows), default=0):04d}")
        for r in rows:
            when = r.applied_at.isoformat() if r.applied_at else "-"
            print(f"{r.version:04d}  {r.name:<32} {r.state:<9} {when}")
        bad = [r for r in rows if r.state in ("modified", "missing")]
        return 1 if bad else 0

    return asyncio.run(main())


# -- bench ------------------------------------------------------------------------------------
def _bench_names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    names = _bench_names()
    if args.name in (None, "list"):
        print(json.dumps({"benchmarks": names}))
        return 0
    if args.name not in names:
        print(
            f"puente bench: unknown benchmark {args.name!r}; available: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(list(args.bench_args)) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="puente",
        description="Predictive dialer and IVR server for humane, compliant debt collection.",
    )
    parser.add_argument("--version", action="version", version=f"puente {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,  # (run and demo: else node.log_level, from the config or environment)
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="DEBUG, INFO, WARNING or ERROR (default: INFO; for run and demo, node.log_level)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, func, help_text in (
        (
            "run",
            _cmd_run,
            "run the service (production settings from the environment)",
        ),
        ("demo", _cmd_demo, "run the service on the embedded database with demo defaults"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, default=None, help="YAML settings file")
        p.add_argument(
            "--duration-s", type=_duration_s, default=None, help="stop after this many seconds"
        )
        p.set_defaults(func=func)

    p = sub.add_parser("db", help="database migrations", description="Database migrations.")
    p.add_argument(
        "action",
        choices=("migrate", "status", "grant"),
        help="apply pending / show state / give ROLE the service's rights (as the owner)",
    )
    p.add_argument("role", nargs="?", default=None, help="grant: the service's role")
    p.set_defaults(func=_cmd_db)

    p = sub.add_parser(
        "bench",
        help="run a benchmark (prints JSON lines)",
        description="Run a benchmark; each prints one JSON object per line on stdout.",
    )
    p.add_argument("name", nargs="?", help=f"one of: {', '.join(_bench_names())}")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of the benchmark")
    p.set_defaults(func=_cmd_bench)

    for _name, module_name in _PLUGINS:
        # A package whose issue has not landed yet simply has no subcommand.
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # A file name with bytes that are not UTF-8 (carried as surrogates) is shown escaped, not
    # a UnicodeEncodeError, whatever the locale made stdout's error handler.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level or "INFO")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`puente compliance packs | head`): nothing more to say. Python
        # would report the flush of stdout at exit too: point it at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (SettingsError, DbError, PbxError) as e:
        # Our own errors carry a message meant for the operator: no traceback.
        print(f"puente: {_with_source(e)}", file=sys.stderr)
        return 2


def _with_source(e: Exception) -> str:
    """A database that cannot be reached, with the setting that named it (the message hides
    the URL's password, so the operator may not see which server was tried)."""
    text = str(e)
    if (
        isinstance(e, DbError)
        and text.startswith("cannot ")
        and os.environ.get("PUENTE_DATABASE_URL")
    ):
        return f"{text} (the server PUENTE_DATABASE_URL names)"
    return text


if __name__ == "__main__":
    sys.exit(main())
