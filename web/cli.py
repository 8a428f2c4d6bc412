"""``puente users`` and ``puente reports``: user accounts, API tokens, the daily report.

- ``users add NAME --role R [--agent CODE]``: the password is read from stdin (first line),
  or asked twice without echo on a terminal; never an argument (it would show in ``ps``).
- ``users token NAME [--label L]``: prints a new API token, once (only its hash is kept).
- ``users disable NAME``: the user can no longer log in; its sessions end now.
- ``reports daily --date YYYY-MM-DD [--campaign C] [--tz ZONE]``: the daily report as CSV.

Exit 0 on success, 2 when the request is refused (the message says why).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg

from web._auth import ROLES
from web._exceptions import Invalid, PasswordError, UserError
from web._reports import UnknownCampaign, daily_report, to_csv
from web._schema import MAX_YEAR, MIN_YEAR
from web._users import add_user, disable_user, new_token


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _with_pool(work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    from puente.database import database_pool

    async with database_pool() as pool:
        return await work(pool)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise PasswordError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _run(prog: str, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    try:
        return asyncio.run(_with_pool(work))
    except (UserError, PasswordError, UnknownCampaign, Invalid) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2


def _cmd_add(args: argparse.Namespace) -> int:
    try:
        password = _read_password()
    except PasswordError as e:
        print(f"puente users add: {e}", file=sys.stderr)
        return 2

    async def work(pool: asyncpg.Pool) -> int:
        user_id = await add_user(
            pool, args.name, password, args.role, agent_code=args.agent, actor=_actor()
        )
        print(f"user {args.name} ({args.role}) added with id {user_id}")
        return 0

    return _run("puente users add", work)


def _cmd_token(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        token_id, token = await new_token(pool, args.name, args.label, actor=_actor())
        print(f"# token {token_id} for {args.name}: shown once, keep it safe", file=sys.stderr)
        print(token)
        return 0

    return _run("puente users token", work)


def _cmd_disable(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        await disable_user(pool, args.name, actor=_actor())
        print(f"user {args.name} disabled")
        return 0

    return _run("puente users disable", work)


def _cmd_daily(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        rows = await daily_report(pool, args.date, args.campaign, args.tz)
        sys.stdout.write(to_csv(rows))
        return 0

    return _run("puente reports daily", work)


def _date(text: str) -> date:
    """``--date``: YYYY-MM-DD only (not ``20260301`` nor ``2026-W09-1``), in a sane year."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date YYYY-MM-DD") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise argparse.ArgumentTypeError(f"{text!r} is not in the years {MIN_YEAR}-{MAX_YEAR}")
    return day


def register(subparsers: Any) -> None:
    """Add ``users`` and ``reports`` (idempotent: safe if listed twice in ``_PLUGINS``)."""
    if "users" not in subparsers.choices:
        p = subparsers.add_parser("users", help="web users and API tokens")
        sub = p.add_subparsers(dest="users_action", metavar="ACTION", required=True)
        a = sub.add_parser("add", help="add a user (password on stdin, or asked)")
        a.add_argument("name")
        a.add_argument("--role", required=True, choices=ROLES)
        a.add_argument("--agent", help="link the user to this agent's code")
        a.set_defaults(func=_cmd_add)
        t = sub.add_parser("token", help="print a new API token for a user (once)")
        t.add_argument("name")
        t.add_argument("--label", default="", help="what the token is for")
        t.set_defaults(func=_cmd_token)
        d = sub.add_parser("disable", help="disable a user and end its sessions")
        d.add_argument("name")
        d.set_defaults(func=_cmd_disable)
    if "reports" not in subparsers.choices:
        p = subparsers.add_parser("reports", help="reports (CSV on stdout)")
        sub = p.add_subparsers(dest="reports_action", metavar="REPORT", required=True)
        r = sub.add_parser(
            "daily",
            help="per campaign: attempts, contacts, promises, payments, abandonment, denials",
        )
        r.add_argument("--date", required=True, type=_date, help="YYYY-MM-DD")
        r.add_argument("--campaign", help="one campaign's code (default: all)")
        r.add_argument("--tz", help="the day's time zone (IANA name; default UTC)")
        r.set_defaults(func=_cmd_daily)
