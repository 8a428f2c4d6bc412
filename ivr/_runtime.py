"""Running a flow on a call: the driver loop, the FastAGI channel and the session record.

:func:`IvrService.run_call` drives a :class:`FlowMachine` over any :class:`CallChannel`: the
FastAGI one here (STREAM FILE, SAY, GET DATA, WAIT FOR DIGIT, SET VARIABLE) or the console one
of ``puente ivr simulate``. It records the session in ``ivr_sessions`` (states visited and
events, never what was keyed), runs each action under a deadline, and turns any action failure
into the flow's ``on_error`` (an apology and an agent): the caller never hears dead air.

A prompt whose sound file is missing is skipped for the next candidate (its fallbacks), for
STREAM FILE and for the prompt GET DATA plays alike: res_agi answers a missing file with the
``result=-1`` of a hang-up, and :meth:`AgiSession.failed` asks ``CHANNEL STATUS`` which it was.
A channel command that fails on a live channel (:class:`AgiCommandFailed`) goes to the flow's
``on_error``, never to a hang-up.

A caller who hangs up ends the loop at once; the session is still saved (outcome ``hangup``
and the state it happened in), and so is a session whose socket Asterisk closed while an action
ran (the next command finds it closed: a hang-up too, not an error). An action already running
when the caller leaves (a card charge) is finished, not cancelled: its result is recorded, and
the caller is never charged twice (the payment's idempotency key).

The session's row is written at the start; if the database was away then, it is written before
the first action that needs it (promises and payments name their session) and at the end, so a
blip at the start costs neither the call's writes nor its record.

A process killed mid-call (``kill -9``) leaves its sessions' rows open: :meth:`IvrService.start`
ends that node's open rows as ``lost`` before the FastAGI server takes its first call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from db.audit import audit
from ivr._actions import ACTIONS, Call, CollectionsActions
from ivr._charge import settle_pending
from ivr._flow import Catalog, CollectSpec, Flow
from ivr._machine import (
    Collect,
    Day,
    Digits,
    File,
    Finish,
    FlowMachine,
    Number,
    Play,
    RunAction,
    Speech,
    Step,
    Transfer,
)
from pbx.agi import AgiCommandFailed, AgiHangup, AgiSession, AgiSessionClosed
from puente.redact import mask_number

log = logging.getLogger(__name__)
#: How often the payments whose answer never came are settled with the gateway.
SETTLE_EVERY_S = 60.0

ALL_KEYS = "0123456789*#"
# C0 and C1 control characters (NUL among them): PostgreSQL refuses NUL in text, and none of
# them belongs in a uniqueid, a caller id or a dialed number.
_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])


def printable(value: str | None) -> str | None:
    """``value`` without control characters (what Asterisk sent is kept, less those)."""
    return value.translate(_CONTROL) if value is not None else None


class CallChannel(Protocol):
    async def play(self, speech: tuple[Speech, ...]) -> None: ...

    async def collect(self, speech: tuple[Speech, ...], spec: CollectSpec) -> tuple[str, bool]:
        """The keys pressed (terminator stripped) and whether input ended on a timeout."""
        ...

    async def transfer(self, session_id: uuid.UUID, target: str) -> None: ...

    async def set_language(self, language: str) -> None: ...

    async def finish(self, outcome: str) -> None: ...


@dataclass
class CallResult:
    session_id: uuid.UUID
    outcome: str
    state: str
    language: str
    trail: list[dict[str, str]]
    data: dict[str, Any]
    writes: list[str] = field(default_factory=list)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IvrService:
    """Every flow, the actions and the database: what the FastAGI routes run."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        flows: Mapping[str, Flow],
        catalog: Catalog,
        actions: CollectionsActions,
        *,
        node: str = "node",
        action_timeout_s: float = 30.0,
        clock: Callable[[], datetime] | None = None,  # None: the real time
    ) -> None:
        self.pool = pool
        self.flows = dict(flows)
        self.catalog = catalog
        self.actions = actions
        self.node = node
        self.action_timeout_s = action_timeout_s
        self.clock = clock or _utc_now
        self.by_entry = {e: f for f in flows.values() for e in f.entries}
        self.sessions_total = 0
        self.outcomes: dict[str, int] = {}
        self.action_errors_total = 0
        self.on_outcome: Callable[[str, str], None] | None = None  # (flow, outcome): metrics

    def routes(self) -> dict[str, Callable[[AgiSession], Awaitable[None]]]:
        return {entry: self.handle_agi for entry in self.by_entry}

    async def start(self) -> int:
        """Before the first call: end this node's sessions a killed process left open.

        A row with no end on this node cannot be a live call (none has started yet): its
        process died mid-call. It ends as ``lost`` (the dialer's word for a call that ended
        while nobody listened); other nodes' rows are their live calls and are left alone.
        A database away now costs only the sweep (a warning): the next start does it.
        Returns how many rows were ended (0 when the database was away)."""
        try:
            async with asyncio.timeout(5):
                status = await self.pool.execute(
                    "UPDATE ivr_sessions SET outcome = coalesce(outcome, 'lost'),"
                    " ended_at = now(), updated_at = now()"
                    " WHERE node = $1 AND ended_at IS NULL",
                    self.node,
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            log.warning(
                "ivr: sessions left open on node %s not ended (the next start will): %s",
                self.node,
                e,
            )
            return 0
        ended = int(status.rsplit(" ", 1)[-1])
        log.info("ivr: %d session(s) left open on node %s ended as lost", ended, self.node)
        return ended

    async def settle_payments(self, every_s: float = SETTLE_EVERY_S) -> None:
        """Forever (a task): settle the card payments whose answer never came with the
        gateway (:func:`ivr._charge.settle_pending`). Every node may run it: a payment is
        settled once, under its debt's lock."""
        actions = self.actions
        while True:
            await asyncio.sleep(every_s)
            try:
                await settle_pending(
                    self.pool, actions.gateway, timeout_s=actions.gateway_timeout_s
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning("ivr: pending payments not settled (next in %.0f s): %s", every_s, e)
            except Exception:
                # Anything else (a gateway's own error, a bug): this task runs in the service's
                # TaskGroup, where an exception would stop every server. Logged, tried again.
                log.exception("ivr: settling pending payments failed (next in %.0f s)", every_s)

    # -- FastAGI ------------------------------------------------------------------------------
    async def handle_agi(self, session: AgiSession) -> None:
        env = session.env
        assert env is not None
        entry = env.script.strip("/").split("/", 1)[0]
        flow = self.by_entry[entry]
        args = env.args
        attempt = uuid.UUID(args[0]) if args and _is_uuid(args[0]) else None
        # Inbound: the caller id is the caller. Outbound: it is our own (the Originate's
        # CallerID); the debtor's number comes from the attempt (load_attempt).
        callerid = printable(env.callerid) or ""
        caller = callerid if callerid not in ("", "unknown") and not attempt else None
        data: dict[str, Any] = {"attempt": str(attempt) if attempt else ""}
        if entry == "inbound":
            data["dialed"] = printable(args[0] if args else env.dnid)
        elif len(args) > 1:  # (the outbound dialplan passes the campaign after the attempt)
            data["campaign"] = printable(args[1])
        language = await _channel_language(session, caller)
        await self.run_call(
            flow,
            entry,
            AgiChannel(session),
            language=language,
            data=data,
            caller=caller,
            attempt_id=attempt,
            uniqueid=env.uniqueid,
        )

    # -- any channel --------------------------------------------------------------------------
    async def run_call(
        self,
        flow: Flow,
        entry: str,
        channel: CallChannel,
        *,
        language: str,
        data: dict[str, Any],
        caller: str | None,
        attempt_id: uuid.UUID | None = None,
        uniqueid: str | None = None,
    ) -> CallResult:
        machine = FlowMachine(flow, self.catalog, entry=entry, language=language, data=data)
        session_id = uuid.uuid4()
        clean = printable(caller), printable(uniqueid)
        if clean != (caller, uniqueid):  # a NUL would cost the session's row: drop them
            log.warning("ivr %s: control characters removed from caller id/uniqueid", session_id)
            caller, uniqueid = clean
        self.sessions_total += 1
        call = Call(
            session_id,
            machine.data,
            machine.secrets,
            machine.language,
            caller,
            self.clock(),
            attempt_id,
        )
        row = _SessionRow(session_id, flow.name, entry, self.node, uniqueid, caller, attempt_id)
        recorded = await self._open(row, machine.language)
        outcome = "error"
        spoken = ""
        try:
            step: Step = machine.start()
            while True:
                if machine.language != spoken:
                    spoken = machine.language
                    await channel.set_language(spoken)
                if isinstance(step, Play | Collect):
                    try:
                        if isinstance(step, Play):
                            await channel.play(step.speech)
                            step = machine.played()
                        else:
                            digits, timed_out = await channel.collect(step.speech, step.spec)
                            step = machine.collected(digits, timed_out)
                    except AgiCommandFailed as e:  # the caller is still there: never hang up
                        log.warning(
                            "ivr %s: %s failed in state %s; the flow's error path",
                            session_id,
                            e.verb,
                            machine.state.name,
                        )
                        step = machine.failed(f"{e.verb} failed")
                elif isinstance(step, RunAction):
                    if not recorded:  # the database was away at the start: the actions'
                        # rows (promises, payments) name the session, so it must be there
                        recorded = await self._open(row, machine.language)
                    call.language, call.now = machine.language, self.clock()
                    result, updates = await self._action(step, call)
                    note = getattr(channel, "action_done", None)
                    if note is not None:  # the simulator prints what each action did
                        note(step.name, result, call.writes)
                    call.caller = updates.pop("_caller", None) or call.caller
                    language_switch = updates.pop("_language", None)
                    if language_switch in flow.languages:
                        machine.language = language_switch
                    step = machine.action_done(result, updates)
                elif isinstance(step, Transfer):
                    outcome = "transfer"
                    await channel.transfer(session_id, step.target)
                    break
                else:
                    assert isinstance(step, Finish)
                    outcome = step.outcome
                    await channel.finish(step.outcome)
                    break
        except (AgiHangup, AgiSessionClosed):  # the caller left, or Asterisk closed the socket
            outcome = "hangup"
            raise
        finally:
            machine.clear_secrets()
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if self.on_outcome is not None:
                self.on_outcome(flow.name, outcome)
            result = CallResult(
                session_id,
                outcome,
                machine.state.name,
                machine.language,
                machine.trail,
                machine.data,
                call.writes,
            )
            await self._close(row, result)
        return result

    async def _action(self, step: RunAction, call: Call) -> tuple[str, dict[str, Any]]:
        try:
            action = self.actions.get(step.name)
        except KeyError:
            log.error("ivr %s: no action %r", call.session_id, step.name)
            return "error", {}
        # Shielded: a caller hanging up does not cut a charge or a promise in half.
        task = asyncio.ensure_future(self._timed(action, step, call))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait({task}, timeout=self.action_timeout_s)
            raise

    async def _timed(self, action: Any, step: RunAction, call: Call) -> tuple[str, dict[str, Any]]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.action_timeout_s):
                result, updates = await action(step.args, call)
        except Exception as e:  # any failure is the flow's on_error, never dead air
            self.action_errors_total += 1
            log.warning(
                "ivr %s: action %s failed after %.0f ms: %s",
                call.session_id,
                step.name,
                (time.monotonic() - started) * 1000,
                type(e).__name__,
            )
            return "error", {}
        if result not in ACTIONS.get(step.name, ()):
            log.error("ivr %s: action %s returned %r", call.session_id, step.name, result)
            return "error", {}
        return result, updates

    async def _open(self, row: _SessionRow, language: str) -> bool:
        """Write the session's row; False (logged) when the database could not be reached."""
        try:
            async with asyncio.timeout(5):
                await self.pool.execute(
                    "INSERT INTO ivr_sessions (id, attempt_id, flow, language, entry, node,"
                    " uniqueid, caller) SELECT $1, (SELECT id FROM call_attempts WHERE id = $2),"
                    " $3, $4, $5, $6, $7, $8 ON CONFLICT (id) DO NOTHING",
                    *row.values(language),
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            log.warning("ivr %s: session not recorded at start: %s", row.session_id, e)
            return False
        return True

    async def _close(self, row: _SessionRow, r: CallResult) -> None:
        """The outcome, the trail and the end: the row is written here if the start could not.

        ``wrong_party`` on an outbound call (whoever answered said the person is not theirs):
        the number dialed is marked so, as an agent's ``wrong_party`` disposition marks it, and
        the compliance gate dials it no more (the person's other numbers stay)."""
        try:
            async with asyncio.timeout(5), self.pool.acquire() as conn, conn.transaction():
                attempt = await conn.fetchval(
                    "INSERT INTO ivr_sessions (id, attempt_id, flow, language, entry, node,"
                    " uniqueid, caller, outcome, trail, ended_at)"
                    " SELECT $1, (SELECT id FROM call_attempts WHERE id = $2),"
                    " $3, $4, $5, $6, $7, $8, $9, $10::jsonb, now()"
                    " ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome,"
                    " trail = excluded.trail, language = excluded.language,"
                    " ended_at = excluded.ended_at, updated_at = now()"
                    " RETURNING attempt_id",
                    *row.values(r.language),
                    r.outcome if r.outcome != "hangup" else f"hangup:{r.state}",
                    json.dumps(r.trail),
                )
                if r.outcome == "wrong_party" and attempt is not None:
                    phone = await conn.fetchval(
                        "UPDATE phone_numbers n SET status = 'wrong_party' FROM call_attempts a"
                        " WHERE a.id = $1 AND n.id = a.phone_id AND n.status <> 'wrong_party'"
                        " RETURNING n.id",
                        attempt,
                    )
                    if phone is not None:
                        await audit(
                            conn, "ivr", "ivr.wrong_party", f"phone:{phone}",
                            {"session": str(r.session_id), "attempt": str(attempt)},
                        )  # fmt: skip
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            log.warning("ivr %s: session outcome not recorded: %s", r.session_id, e)


@dataclass(frozen=True)
class _SessionRow:
    """What the session's row is opened with (the caller masked when written)."""

    session_id: uuid.UUID
    flow: str
    entry: str
    node: str
    uniqueid: str | None
    caller: str | None
    attempt_id: uuid.UUID | None

    def values(self, language: str) -> tuple[Any, ...]:
        return (
            self.session_id,
            self.attempt_id,
            self.flow,
            language,
            self.entry,
            self.node,
            self.uniqueid,
            mask_number(self.caller),
        )


def _is_uuid(s: str) -> bool:
    try:
        uuid.UUID(s)
    except ValueError:
        return False
    return True


async def _channel_language(session: AgiSession, caller: str | None) -> str:
    """PUENTE_LANG when the dialer set it; else English for +1 callers, Spanish otherwise."""
    lang = await session.get_variable("PUENTE_LANG")
    if lang in ("es", "en"):
        return lang
    return "en" if caller and caller.startswith("+1") else "es"


class AgiChannel:
    """A flow's steps as FastAGI commands. Digits are never logged (the server logs verbs)."""

    def __init__(self, session: AgiSession) -> None:
        self.session = session
        self._language = ""

    async def _speak(self, item: Speech, escape: str) -> str | None:
        s = self.session
        if isinstance(item, File):
            for name in item.candidates:
                response = await s.command(f'STREAM FILE {name} "{escape}"')
                if response.code == 511:
                    raise AgiHangup("STREAM FILE: channel is dead")
                if response.result == "-1":
                    if s.hung_up or response.endpos:  # stopped mid-file: the caller left
                        raise AgiHangup("caller hung up during a prompt")
                    try:
                        await s.failed("STREAM FILE")  # AgiHangup if the caller left just now
                    except AgiCommandFailed:
                        continue  # result=-1 endpos=0 on a live channel: the next candidate
                return s.key_of(response, "STREAM FILE")  # AgiCommandFailed: no key's code
            log.warning("agi %r: no sound file for %s", s, item.candidates[0])
            return None
        try:
            if isinstance(item, Number):
                return await s.say_number(item.value, escape)
            if isinstance(item, Digits):
                v = item.value
                return await s.say_digits(v, escape) if v.isascii() and v.isdigit() else None
            assert isinstance(item, Day)
            day = item.value
            return await s.say_date(
                int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()), escape
            )
        except AgiCommandFailed as e:  # its sound files are missing: go on, as for a prompt
            log.warning("agi %r: %s did not play", s, e.verb)
            return None

    async def set_language(self, language: str) -> None:
        if language != self._language:
            await self.session.set_variable("CHANNEL(language)", language)
            self._language = language

    async def play(self, speech: tuple[Speech, ...]) -> None:
        for item in speech:
            await self._speak(item, "")

    async def collect(self, speech: tuple[Speech, ...], spec: CollectSpec) -> tuple[str, bool]:
        head, last = speech[:-1], speech[-1] if speech else None
        if not isinstance(last, File):
            head, last = speech, None
        for item in head:  # barge-in: a key ends the prompt and starts the entry
            key = await self._speak(item, ALL_KEYS)
            if key is not None:
                return await self._rest(key, spec)
        # GET DATA plays the last prompt itself: a key pressed during it is the entry's first,
        # with no gap between commands where a key could fall. Its candidates are tried in
        # order as STREAM FILE's are (a missing file fails at once, before any key is read);
        # with none left the entry is read with no prompt at all (an empty file name).
        prompts = last.candidates if last is not None else ("silence/1",)
        for name in prompts:
            try:
                result = await self.session.get_data(name, spec.timeout_ms, spec.max_digits)
            except AgiCommandFailed:
                continue  # no such file, the caller still there: the next candidate
            return result.digits, result.timed_out
        log.warning("agi %r: no sound file for %s", self.session, prompts[0])
        # AgiCommandFailed even with no prompt: the flow's error path (run_call).
        result = await self.session.get_data("", spec.timeout_ms, spec.max_digits)
        return result.digits, result.timed_out

    async def _rest(self, first: str, spec: CollectSpec) -> tuple[str, bool]:
        if first == "#":
            return "", False
        digits = first
        while len(digits) < spec.max_digits:
            key = await self.session.wait_for_digit(spec.timeout_ms)
            if key is None:
                return digits, True
            if key == "#":
                break
            digits += key
        return digits, False

    async def transfer(self, session_id: uuid.UUID, target: str) -> None:
        await self.session.set_variable("PUENTE_IVR_SESSION", str(session_id))
        await self.session.set_variable("PUENTE_NEXT", target)

    async def finish(self, outcome: str) -> None:
        await self.session.set_variable("PUENTE_IVR_OUTCOME", outcome)
