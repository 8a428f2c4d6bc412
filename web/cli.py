"""``puente users``, ``agents``, ``creditors``, ``trunks`` and ``reports``: the rows a deployment
needs.

- ``users add NAME --role R [--agent CODE]``: the password is read from stdin (first line),
  or asked twice without echo on a terminal; never an argument (it would show in ``ps``).
- ``users token NAME [--label L]``: prints a new API token, once (only its hash is kept).
- ``users disable NAME``: the user can no longer log in; its sessions end now, and the agent
  it works as is logged out.
- ``agents add CODE --name N --interface PJSIP/agent101``, ``agents edit CODE [--name N]
  [--interface I] [--inactive | --active]``, ``agents list``: agents rows (checked as
  ``POST /api/v1/agents``).
- ``creditors add CODE --name N --public-name P --callback-number +52... --currency MXN
  [--contact-name C] [--policy FILE.yaml] [--agency FILE.yaml]``, ``creditors edit CODE
  [...]``, ``creditors list``: creditors rows (checked as ``POST /api/v1/creditors``; the list
  masks call-back numbers).
- ``trunks set NAME CHANNELS``, ``trunks remove NAME``, ``trunks list``: the channels of a
  trunk shared by campaigns (:mod:`dialer.trunks`); the list shows the calls on each now.
- ``reports daily --date YYYY-MM-DD [--campaign C] [--tz ZONE]``: the daily report as CSV.

Exit 0 on success, 2 when the request is refused (the message says why, naming the option).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from dialer.trunks import (
    MAX_CHANNELS,
    TrunkError,
    check_channels,
    check_name,
    remove,
    set_channels,
    trunk_use,
)
from puente.redact import mask_number
from puente.strict_yaml import StrictYamlError, load_strict
from web._agents import AGENT_CREATE_BODY, AGENT_EDIT_BODY, add_agent, agent_rows, edit_agent
from web._auth import ROLES
from web._creditors import (
    CREATE_BODY,
    EDIT_BODY,
    add_creditor,
    checked,
    creditor_rows,
    edit_creditor,
)
from web._exceptions import ApiError, Invalid, PasswordError, UserError
from web._reports import UnknownCampaign, daily_report, to_csv
from web._schema import MAX_YEAR, MIN_YEAR, validate
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


def _run(
    prog: str,
    work: Callable[[asyncpg.Pool], Awaitable[int]],
    options: dict[str, str] | None = None,
) -> int:
    """Run ``work`` on a pool; a refusal is its message on stderr and exit 2. ``options`` maps
    the fields of the API's messages (``public_name``) to the options that gave them."""
    try:
        return asyncio.run(_with_pool(work))
    except ApiError as e:
        print(f"{prog}: {_as_option(e, options or {})}", file=sys.stderr)
        return 2
    except (UserError, PasswordError, UnknownCampaign, TrunkError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2


def _as_option(e: ApiError, options: dict[str, str]) -> str:
    """``public_name: ...`` said as ``--public-name: ...`` (the option the user typed)."""
    field = (e.field or "").split(".")[0].split("[")[0]
    option = options.get(field)
    if option is None:
        return e.message
    if e.field == field and e.message.startswith(f"{e.field}:"):
        return f"{option}: {e.message[len(e.field or '') + 1 :].lstrip()}"
    return f"{option}: {e.message}"


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
        logged_out = await disable_user(pool, args.name, actor=_actor())
        print(f"user {args.name} disabled")
        for code, was in logged_out.items():
            print(f"agent {code} logged out (was {was}): the running service takes it out of "
                  "every queue")  # fmt: skip
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


# -- agents and creditors ---------------------------------------------------------------------
_AGENT_OPTIONS = {"name": "--name", "interface": "--interface"}
_CREDITOR_OPTIONS = {
    "name": "--name",
    "public_name": "--public-name",
    "callback_number": "--callback-number",
    "currency": "--currency",
    "contact_name": "--contact-name",
    "policy": "--policy",
    "agency": "--agency",
}


def _refused(prog: str, options: dict[str, str], check: Callable[[], Any]) -> int | None:
    """Exit 2 with the message when ``check`` refuses the input (before any database)."""
    try:
        check()
    except ApiError as e:
        print(f"{prog}: {_as_option(e, options)}", file=sys.stderr)
        return 2
    return None


def _given(args: argparse.Namespace, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


def _cmd_agents_add(args: argparse.Namespace) -> int:
    prog = "puente agents add"
    values = {"code": args.code, **_given(args, ("name", "interface"))}
    refused = _refused(prog, _AGENT_OPTIONS, lambda: validate(AGENT_CREATE_BODY, values))
    if refused is not None:
        return refused

    async def work(pool: asyncpg.Pool) -> int:
        agent = await add_agent(pool, values, actor=_actor())
        print(f"agent {agent['code']} ({agent['name']}) added; link a user to it with "
              f"`puente users add NAME --role agent --agent {agent['code']}`")  # fmt: skip
        return 0

    return _run(prog, work, _AGENT_OPTIONS)


def _cmd_agents_edit(args: argparse.Namespace) -> int:
    prog = "puente agents edit"
    changes = _given(args, ("name", "interface", "active"))
    refused = _refused(prog, _AGENT_OPTIONS, lambda: validate(AGENT_EDIT_BODY, changes))
    if refused is not None:
        return refused

    async def work(pool: asyncpg.Pool) -> int:
        agent = await edit_agent(pool, args.code, changes, actor=_actor())
        inactive = "" if agent["active"] else ", inactive"
        print(f"agent {agent['code']} ({agent['name']}, {agent['interface']}{inactive}) saved")
        return 0

    return _run(prog, work, _AGENT_OPTIONS)


def _cmd_agents_list(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        rows = [(a["code"], a["name"], a["interface"], a["username"] or "-", a["state"],
                 a["campaign"] or "-", "yes" if a["active"] else "no")
                for a in await agent_rows(pool)]  # fmt: skip
        _table(("CODE", "NAME", "INTERFACE", "USER", "STATE", "CAMPAIGN", "ACTIVE"), rows)
        return 0

    return _run("puente agents list", work)


def _plain(value: Any) -> Any:
    """A YAML value as JSON has it: dates (``holidays: [2026-12-25]``) as ISO text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _read_yaml(path: Path, field: str) -> Any:
    """A ``policy`` or ``agency`` file (YAML or JSON); :class:`Invalid` on ``field`` when it
    cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise Invalid(f"{field}: cannot read {str(path)[:200]}: {e.__class__.__name__}",
                      field) from None  # fmt: skip
    try:
        return _plain(load_strict(text))
    except StrictYamlError as e:
        raise Invalid(f"{field}: {str(path)[:200]}: {e}", field) from None


def _creditor_values(args: argparse.Namespace) -> dict[str, Any]:
    fields = ("name", "public_name", "callback_number", "currency", "contact_name")
    values = _given(args, fields)
    for field in ("policy", "agency"):
        if getattr(args, field) is not None:
            values[field] = _read_yaml(getattr(args, field), field)
    agency = values.get("agency")
    if isinstance(agency, dict) and isinstance(agency.get("phone"), int):
        # (YAML reads +525555550199 as the integer 525555550199: the + is gone)
        raise Invalid("agency.phone: put the number in quotes ('+525555550199'): unquoted, "
                      "YAML reads it as a number", "agency.phone")  # fmt: skip
    return values


def _cmd_creditors_add(args: argparse.Namespace) -> int:
    prog = "puente creditors add"
    values: dict[str, Any] = {}

    def check() -> None:
        values.update(code=args.code, **_creditor_values(args))
        checked(args.code, values, CREATE_BODY)

    refused = _refused(prog, _CREDITOR_OPTIONS, check)
    if refused is not None:
        return refused

    async def work(pool: asyncpg.Pool) -> int:
        creditor = await add_creditor(pool, values, actor=_actor())
        print(f"creditor {creditor['code']} ({creditor['name']}, said to debtors as "
              f"{creditor['public_name']!r}) added")  # fmt: skip
        return 0

    return _run(prog, work, _CREDITOR_OPTIONS)


def _cmd_creditors_edit(args: argparse.Namespace) -> int:
    prog = "puente creditors edit"
    changes: dict[str, Any] = {}

    def check() -> None:
        changes.update(_creditor_values(args))
        if args.no_contact_name:
            changes["contact_name"] = None
        if args.no_agency:
            changes["agency"] = None
        checked(args.code, changes, EDIT_BODY)

    refused = _refused(prog, _CREDITOR_OPTIONS, check)
    if refused is not None:
        return refused

    async def work(pool: asyncpg.Pool) -> int:
        creditor = await edit_creditor(pool, args.code, changes, actor=_actor())
        print(f"creditor {creditor['code']} saved")
        return 0

    return _run(prog, work, _CREDITOR_OPTIONS)


def _cmd_creditors_list(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        rows = [(c["code"], c["name"], c["public_name"], mask_number(c["callback_number"]),
                 c["currency"], c["contact_name"] or "-")
                for c in await creditor_rows(pool)]  # fmt: skip
        _table(("CODE", "NAME", "PUBLIC NAME", "CALLBACK", "CURRENCY", "CONTACT"), rows)
        return 0

    return _run("puente creditors list", work)


def _register_agents(subparsers: Any) -> None:
    p = subparsers.add_parser("agents", help="agents (queue members) for the web desktop")
    sub = p.add_subparsers(dest="agents_action", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="add an agent")
    a.add_argument("code", help="the agent's code (letters, digits and _ . -)")
    a.add_argument("--name", required=True, help="the agent's name (its queue MemberName)")
    a.add_argument("--interface", required=True,
                   help="its Asterisk queue member interface, e.g. PJSIP/agent101")  # fmt: skip
    a.set_defaults(func=_cmd_agents_add)
    e = sub.add_parser("edit", help="change an agent's name, interface or active flag")
    e.add_argument("code")
    e.add_argument("--name")
    e.add_argument("--interface", help="only while the agent is logged out")
    on = e.add_mutually_exclusive_group()
    on.add_argument("--inactive", dest="active", action="store_false", default=None,
                    help="deactivate it (logged out first): it can no longer log in")  # fmt: skip
    on.add_argument("--active", dest="active", action="store_true", default=None,
                    help="reactivate it")  # fmt: skip
    e.set_defaults(func=_cmd_agents_edit)
    li = sub.add_parser("list", help="list agents, their users and states")
    li.set_defaults(func=_cmd_agents_list)


def _register_creditors(subparsers: Any) -> None:
    p = subparsers.add_parser("creditors", help="creditors: names, call-back number, policy")
    sub = p.add_subparsers(dest="creditors_action", metavar="ACTION", required=True)
    for action in ("add", "edit"):
        adding = action == "add"
        a = sub.add_parser(action, help="add a creditor" if adding else "change a creditor")
        a.add_argument("code", help="the creditor's code (letters, digits and _ . -)")
        a.add_argument("--name", required=adding, help="its own name (not said to debtors)")
        a.add_argument("--public-name", required=adding,
                       help="the business name said to debtors (must not indicate debt "
                       "collection)")  # fmt: skip
        a.add_argument("--callback-number", required=adding,
                       help="the number debtors call back, E.164 (+525512345678)")  # fmt: skip
        a.add_argument("--currency", required=adding, help="ISO 4217 code (MXN, USD, ...)")
        a.add_argument("--contact-name", help="the person the voicemail message asks for")
        a.add_argument("--policy", type=Path, metavar="FILE.yaml",
                       help="the arrangement policy (YAML or JSON; see README, IVR)")  # fmt: skip
        a.add_argument("--agency", type=Path, metavar="FILE.yaml",
                       help="the collection agency collecting for it, as registered in REDECO "
                       "(YAML or JSON: name, address, phone, email, responsible)")  # fmt: skip
        if adding:
            a.set_defaults(func=_cmd_creditors_add)
        else:
            a.add_argument("--no-contact-name", action="store_true",
                           help="remove the contact name (then no voicemail is left)")  # fmt: skip
            a.add_argument("--no-agency", action="store_true",
                           help="remove the agency (the creditor collects in-house)")  # fmt: skip
            a.set_defaults(func=_cmd_creditors_edit)
    li = sub.add_parser("list", help="list creditors (call-back numbers masked)")
    li.set_defaults(func=_cmd_creditors_list)


# -- trunks ------------------------------------------------------------------------------------
def _cmd_trunks_set(args: argparse.Namespace) -> int:
    prog = "puente trunks set"
    try:
        name, channels = check_name(args.name), check_channels(args.channels)
    except TrunkError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2

    async def work(pool: asyncpg.Pool) -> int:
        before = await set_channels(pool, name, channels, actor=_actor())
        was = "no limit" if before is None else f"{before}"
        print(f"trunk {name}: {channels} channels, shared by its campaigns (was {was})")
        return 0

    return _run(prog, work)


def _cmd_trunks_remove(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        before = await remove(pool, args.name, actor=_actor())
        print(f"trunk {args.name}: no shared limit now (was {before} channels); each campaign "
              "keeps its own max_lines")  # fmt: skip
        return 0

    return _run("puente trunks remove", work)


def _cmd_trunks_list(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        rows = [(t.name, str(t.channels), str(t.in_use), " ".join(t.campaigns) or "-")
                for t in await trunk_use(pool)]  # fmt: skip
        _table(("TRUNK", "CHANNELS", "IN USE", "CAMPAIGNS"), rows)
        return 0

    return _run("puente trunks list", work)


def _register_trunks(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "trunks", help="trunks shared by campaigns: how many calls each carries at once"
    )
    sub = p.add_subparsers(dest="trunks_action", metavar="ACTION", required=True)
    s = sub.add_parser(
        "set",
        help="set a trunk's channels (its carrier account's concurrent calls), shared by every "
        "campaign dialing through it, on every node; 0 stops them",
    )
    s.add_argument("name", help="the trunk as campaigns name it, e.g. PJSIP/carrier")
    s.add_argument("channels", help=f"0 to {MAX_CHANNELS:,}")
    s.set_defaults(func=_cmd_trunks_set)
    r = sub.add_parser("remove", help="no shared limit for a trunk (each campaign's max_lines)")
    r.add_argument("name")
    r.set_defaults(func=_cmd_trunks_remove)
    li = sub.add_parser("list", help="trunks with channels set, their calls now and campaigns")
    li.set_defaults(func=_cmd_trunks_list)


def register(subparsers: Any) -> None:
    """Add ``users``, ``agents``, ``creditors``, ``trunks`` and ``reports`` (idempotent: safe if
    listed twice in ``_PLUGINS``)."""
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
    if "agents" not in subparsers.choices:
        _register_agents(subparsers)
    if "creditors" not in subparsers.choices:
        _register_creditors(subparsers)
    if "trunks" not in subparsers.choices:
        _register_trunks(subparsers)
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
