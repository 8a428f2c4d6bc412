"""``puente ivr``: validate flows, and simulate a call through one against the real database.

``puente ivr validate [FILE ...]`` loads every flow (or the files named) and prints each
problem as ``file:line: message``; exit 1 when there is any.

``puente ivr simulate FLOW [--entry E] --lang es --caller-id +52... --keys "1234567#,19800101#,1"``
prints the dialogue: the prompts played (their text in the call's language), the keys read
(one comma-separated entry per input; secret entries are printed as ``****``), each action
and its result, and what was written to the database. Actions run for real (the database of
``PUENTE_DATABASE_URL`` or the embedded one), the payment gateway is the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr._actions import ACTIONS
from ivr._exceptions import FlowError
from ivr._flow import Catalog, CollectSpec, Flow, check_unique, load_flow, load_flows
from ivr._machine import Day, Digits, File, Number, Speech


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        catalog = Catalog.load(args.prompts)
        if args.files:
            problems = []
            loaded: list[Flow] = []
            for f in args.files:
                try:
                    loaded.append(load_flow(f, catalog, ACTIONS))
                except FlowError as e:
                    problems.append(str(e))
            problems += check_unique(loaded)
            if problems:
                raise FlowError("\n".join(problems))
            names = [str(f) for f in args.files]
        else:
            names = [f.path for f in load_flows(None, catalog, ACTIONS).values()]
    except FlowError as e:
        print(e, file=sys.stderr)
        return 1
    for n in names:
        print(f"{n}: ok")
    return 0


class ConsoleChannel:
    """A call on the terminal: prompts as text, keys from a list."""

    def __init__(self, catalog: Catalog, keys: list[str], out: Any = None) -> None:
        self.catalog = catalog
        self.keys = keys
        self.out = out or sys.stdout
        self.language = "es"
        self._written = 0

    def _say(self, item: Speech) -> str:
        if isinstance(item, File):
            prompt = item.candidates[0].rsplit("/", 1)[-1]
            text = self.catalog.texts.get(prompt, {}).get(self.language)
            return text or f"[{item.candidates[0]}]"
        if isinstance(item, Number):
            return str(item.value)
        if isinstance(item, Digits):
            return " ".join(item.value)
        assert isinstance(item, Day)
        return item.value.isoformat()

    def _print(self, line: str) -> None:
        print(line, file=self.out)

    async def set_language(self, language: str) -> None:
        self.language = language
        self._print(f"   (language: {language})")

    async def play(self, speech: tuple[Speech, ...]) -> None:
        self._print("IVR: " + " ".join(self._say(i) for i in speech))

    async def collect(self, speech: tuple[Speech, ...], spec: CollectSpec) -> tuple[str, bool]:
        await self.play(speech)
        if not self.keys:
            self._print("CALLER: (hangs up)")
            from pbx.agi import AgiHangup

            raise AgiHangup("the key list ran out")
        entry = self.keys.pop(0)
        digits = entry[:-1] if entry.endswith("#") else entry
        digits = digits[: spec.max_digits]
        shown = "*" * len(digits) if spec.secret else (digits or "(nothing)")
        self._print(f"CALLER: {shown}")
        return digits, not entry.endswith("#") and len(digits) < spec.max_digits

    def action_done(self, name: str, result: str, writes: list[str]) -> None:
        self._print(f"   [{name}: {result}]")
        while self._written < len(writes):
            self._print(f"   wrote {writes[self._written]}")
            self._written += 1

    async def transfer(self, session_id: uuid.UUID, target: str) -> None:
        self._print(f"-> transfer to {target} (IVR session {session_id})")

    async def finish(self, outcome: str) -> None:
        self._print(f"-> end: {outcome}")


async def _simulate(args: argparse.Namespace) -> int:
    from compliance import ComplianceGate
    from ivr._actions import CollectionsActions
    from ivr._runtime import IvrService
    from ivr.payments import SandboxGateway
    from pbx.agi import AgiHangup

    keys = [k.strip() for k in args.keys.split(",")] if args.keys else []
    for i, k in enumerate(keys, 1):
        bad = sorted(set(k) - set(DTMF_KEYS))
        if bad:  # name the wrong characters only: an entry may be card digits
            print(
                f"puente ivr simulate: --keys: entry {i} has {''.join(bad)!r},"
                f" not DTMF keys ({DTMF_KEYS})",
                file=sys.stderr,
            )
            return 2
    catalog = Catalog.load(args.prompts)
    flows = load_flows(args.flow_dir, catalog, ACTIONS)
    flow = flows.get(args.flow) or next((f for f in flows.values() if args.flow in f.entries), None)
    if flow is None:
        print(f"puente ivr simulate: no flow or entry {args.flow!r}", file=sys.stderr)
        return 2
    entry = args.entry or (args.flow if args.flow in flow.entries else next(iter(flow.entries)))
    if entry not in flow.entries:
        print(
            f"puente ivr simulate: flow {flow.name!r} has no entry {entry!r}"
            f" (its entries: {', '.join(flow.entries)})",
            file=sys.stderr,
        )
        return 2
    from puente.database import database_pool

    async with database_pool() as pool:
        actions = CollectionsActions(pool, gateway=SandboxGateway(), gate=ComplianceGate(pool))
        service = IvrService(pool, flows, catalog, actions, node="simulate")
        channel = ConsoleChannel(catalog, keys)
        attempt: uuid.UUID | None = args.attempt
        data: dict[str, Any] = {"attempt": str(attempt or ""), "dialed": args.dialed or ""}
        print(f"flow {flow.name} entry {entry} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
        result = None
        try:
            result = await service.run_call(
                flow,
                entry,
                channel,
                language=args.lang,
                data=data,
                caller=args.caller_id,
                attempt_id=attempt,
            )
        except AgiHangup:
            pass
    if result is not None:
        print(f"outcome: {result.outcome} (state {result.state}, session {result.session_id})")
    else:
        print("outcome: hangup")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_simulate(args))
    except FlowError as e:
        print(e, file=sys.stderr)
        return 1


async def _creditor_texts() -> dict[str, dict[str, str]]:
    """``company_<code>`` (the public name) and ``contact_<code>`` (the contact person) of
    every creditor in the database: said the same in both languages."""
    from dialer.campaigns import company_prompt, contact_prompt
    from puente.database import database_pool

    async with database_pool() as pool:
        rows = await pool.fetch("SELECT code, public_name, contact_name FROM creditors")
    texts: dict[str, dict[str, str]] = {}
    for r in rows:
        texts[company_prompt(r["code"])] = {"es": r["public_name"], "en": r["public_name"]}
        if r["contact_name"]:
            texts[contact_prompt(r["code"])] = {"es": r["contact_name"], "en": r["contact_name"]}
    return texts


def _cmd_prompts(args: argparse.Namespace) -> int:
    """Speak every prompt of the catalog with espeak-ng into OUT/puente/<lang>/<id>.wav."""
    from dialer.amd._exceptions import CorpusError
    from dialer.amd._synth import speech
    from dialer.amd._wav import write_wav

    voices = {"es": "es-419", "en": "en-us"}
    written = 0
    try:
        catalog = Catalog.load(args.prompts)
        texts = dict(catalog.texts)
        if args.creditors:
            texts.update(asyncio.run(_creditor_texts()))
        for pid, by_lang in sorted(texts.items()):
            for lang, text in by_lang.items():
                if args.lang and lang != args.lang:
                    continue
                path = args.out / "puente" / lang / f"{pid}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_wav(path, speech(text, voices[lang], 160, 50))
                written += 1
    except CorpusError as e:
        print(f"puente ivr prompts: {e}", file=sys.stderr)
        return 1
    except FlowError as e:
        print(f"puente ivr prompts: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the output directory: a file, not writable, the disk full
        where = f"{e.filename}: " if e.filename else ""
        print(
            f"puente ivr prompts: {where}{e.strerror or e} ({written} prompts written)",
            file=sys.stderr,
        )
        return 2
    print(f"{written} prompts written under {args.out / 'puente'}")
    return 0


DTMF_KEYS = "0123456789*#ABCD"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}\Z")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value[:40]!r}") from None


def _e164(value: str) -> str:
    if not _E164.match(value):  # never echoed: it may be a real number, just mistyped
        raise argparse.ArgumentTypeError("expected an E.164 number: + then 7 to 15 digits")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ivr", help="validate and simulate IVR flows")
    sub = p.add_subparsers(dest="ivr_action", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="check flow files; print file:line: problem")
    v.add_argument("files", nargs="*", type=Path, help="flow files (default: ivr/flows/*.yaml)")
    v.add_argument("--prompts", type=Path, help="prompt catalog (default: ivr/prompts.yaml)")
    v.set_defaults(func=_cmd_validate)
    s = sub.add_parser("simulate", help="run a call through a flow on the terminal")
    s.add_argument("flow", help="flow name or script name (inbound, abandon-save, ...)")
    s.add_argument("--entry", help="the flow's entry (script name)")
    s.add_argument("--lang", default="es", choices=("es", "en"))
    s.add_argument("--caller-id", type=_e164, help="the caller's number, E.164")
    s.add_argument("--dialed", help="the number dialed (inbound)")
    s.add_argument("--attempt", type=_uuid, help="the call attempt id (outbound entries)")
    s.add_argument("--keys", default="", help='inputs, comma-separated, e.g. "1234#,19800101#,1"')
    s.add_argument("--flow-dir", type=Path, help="flows directory (default: ivr/flows)")
    s.add_argument("--prompts", type=Path, help="prompt catalog (default: ivr/prompts.yaml)")
    s.set_defaults(func=_cmd_simulate)
    g = sub.add_parser(
        "prompts", help="speak the prompt catalog into 8 kHz WAV files (espeak-ng; tests, demos)"
    )
    g.add_argument("out", type=Path, help="Asterisk sounds dir, e.g. /var/lib/asterisk/sounds")
    g.add_argument("--lang", choices=("es", "en"))
    g.add_argument("--prompts", type=Path, help="prompt catalog (default: ivr/prompts.yaml)")
    g.add_argument(
        "--creditors",
        action="store_true",
        help="also each creditor's company_<code> and contact_<code> (the voicemail message's "
        "business name and contact person), from the database",
    )
    g.set_defaults(func=_cmd_prompts)
