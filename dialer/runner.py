"""One campaign on one node: pace, select, gate, originate over AMI, track, record.

Every second (the pacing tick) the runner asks :func:`dialer.pacing.lines_to_open` how many
lines to open from what the queue and the calls in flight say, claims and gates that many
leads (:func:`dialer.selection.claim_and_gate`: each allowed dial is reserved in the ledger
and written as an ``originating`` attempt first), and sends one async Originate per dial
(``ActionID`` = ``ChannelId`` = the attempt id). AMI events end each attempt exactly once:

- not answered: the disposition from Reason, Hangup cause and DialEnd
  (:class:`dialer.outcomes.AttemptTracker`), the ledger outcome (busy and dead numbers
  release the count), the lead retried per the disposition;
- answered: ``PuenteAMD`` (the AMD verdict), ``AgentConnect`` (an agent took it),
  ``PuenteQueueResult`` with ``TIMEOUT`` (no agent in time: abandoned), then the channel's
  ``Hangup`` ends the attempt.

An Originate whose fate the AMI link lost is never re-sent; it waits for its events and,
after ``stale_after_s``, is looked for among Asterisk's channels (:meth:`CampaignRunner._audit`):
Up, it is answered; gone, it ends as ``lost`` (it may have rung: the ledger keeps counting it).

Recovery (write intent first, record outcomes idempotently, reconcile on start):

- every ``_AUDIT_S`` the answered calls are checked against Asterisk's channels: one whose
  channel two audits in a row did not find ended without the Hangup that should have said so;
  so are the dials nothing was heard of for ``stale_after_s`` (:meth:`CampaignRunner._audit`);

- after each AMI (re)connect the runner reloads the queue's members and settles this node's
  open attempts with ``CoreShowChannels`` (:meth:`CampaignRunner._reconcile`);
- the node that takes the campaign's pacing lock also settles the open attempts other nodes
  left on its PBX, releases leads a dead pacer claimed but never dialed, and releases ledger
  reservations that never became attempts;
- each final result (the attempt, its lead, its ledger outcome) is one transaction, written
  once whichever node writes it first; while the database is away it waits in memory and
  nothing new is dialed.

The campaign's row is reloaded every ``refresh_s``: pausing it stops new dials (live calls
end normally), and its status says why it is not dialing when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from compliance import ComplianceError, ComplianceGate
from dialer.agents import AgentBoard, QueueMember, queue_add, queue_pause, queue_remove
from dialer.campaigns import LANGUAGES, LIVE_DISPOSITIONS, Campaign, CampaignError, rescore
from dialer.outcomes import AttemptTracker, Disposition, Outcome, status_word, tone_disposition
from dialer.pacing import (
    AnswerModel,
    HourlyOdds,
    PacingSettings,
    PacingState,
    Service,
    learn_answer_model,
    learn_service,
    lines_to_open,
)
from dialer.presence import live_sessions, session_name
from dialer.preview import PREVIEW_SWEEP_S, PreviewDesk
from dialer.promises import settle_promises
from dialer.results import assign_agent, write_result
from dialer.selection import Denied, Dial, claim_and_gate, local_hour
from dialer.trunk_guard import TrunkGuard
from dialer.trunks import TrunkFull
from pbx import LocalProtocolError, PbxError
from pbx.ami import AmiClient, AmiMessage, NotConnected
from puente.redact import mask_number

log = logging.getLogger(__name__)


@dataclass
class _Call:
    dial: Dial
    sent_at: float
    freed_at: float | None = None  # the agent-free event this pacing step answers, if any
    first: bool = False  # the step's first dial: the one for the agent that freed up
    answered_at: float | None = None
    amd: str | None = None
    amd_cause: str | None = None  # AMDCAUSE with the verdict (a fax, a SIT: dialer/outcomes.py)
    voicemail_left: bool = False  # the campaign's message played to the end on a machine
    connected: bool = False
    # The queue member that took it (AgentConnect) while that is not yet written on the
    # attempt: the result writes it then (the database was away when the agent connected).
    agent_to_write: str | None = None
    adopted: bool = False  # left by another run: when it was sent is not known here
    # The debtor's local hour when it was dialed (its zone's; None: unknown): its odds of a
    # live answer are that hour's (HourlyOdds).
    hour: int | None = None
    abandoned: bool = False
    requeued: bool = False  # abandoned, then back in the queue for an agent (asked for one)
    ending: bool = False  # its final result is queued
    hung_up: bool = False  # its channel's Hangup came before it was known to be answered
    missing: int = 0  # audits in a row that found no channel for it (answered calls)


class _OwnConnection:
    """One connection where a pool is expected (``acquire`` only)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: TSR 16 CFR 310.4(b)(4)(i), 47 CFR 64.1200(a)(7): a live answer not connected to an agent
#: within two seconds of the end of the person's greeting is abandoned.
AGENT_WITHIN_S = 2.0


class GreetingEnds:
    """When each answered person's greeting ended (``time.monotonic()``), as this node's AMD
    heard it, by attempt. The runner that follows the call holds the agent's connect to the
    2 s rule with it: ``Queue()`` takes its timeout in whole seconds (rounded up, so that
    nobody is cut off early), and an agent may connect up to a second after the rule's end.
    Bounded: beyond ``limit`` entries the oldest go."""

    def __init__(self, limit: int = 20_000) -> None:
        self._at: dict[str, float] = {}
        self._limit = limit

    def note(self, attempt: str, at: float) -> None:
        self._at.pop(attempt, None)
        self._at[attempt] = at
        if len(self._at) > self._limit:
            del self._at[next(iter(self._at))]

    def pop(self, attempt: str) -> float | None:
        return self._at.pop(attempt, None)


@dataclass
class RunnerStats:
    dials: int = 0
    denied: int = 0
    answered: int = 0
    live: int = 0
    connected: int = 0
    abandoned: int = 0
    machines: int = 0
    finals: int = 0
    # Of the finals this runner wrote: live answers, abandoned calls (the abandonment window
    # adds them to what it read from the database).
    final_live: int = 0
    final_abandoned: int = 0
    adopted: int = 0
    released: int = 0
    by_disposition: dict[str, int] = field(default_factory=dict)
    # The answer delays of the latest live answers (the answer model keeps the newest 500):
    # bounded, as everything a long-running service keeps per call.
    live_delays: deque[float] = field(default_factory=lambda: deque(maxlen=_KEEP_DELAYS))
    # How long each recent dial rang before it ended, answered or not (the answer model's
    # P(still ringing at an age), as the pacing bench feeds it).
    ring_ends: deque[float] = field(default_factory=lambda: deque(maxlen=_KEEP_RING_ENDS))
    # Finals of calls never answered: with ``answered``, the dials whose outcome is known
    # (an answered call counted once, whether it has ended or not).
    finals_unanswered: int = 0

    @property
    def resolved(self) -> int:
        """Dials whose outcome is known: answered (by anyone), or final without an answer."""
        return self.finals_unanswered + self.answered


@dataclass(frozen=True)
class AbandonWindow:
    """The campaign's realised abandonment as the database had it: live answers and abandoned
    calls over its legal window and over the last 24 hours, read by every node's pacer alike,
    whatever restarts or takeovers came before; with the counts of the results this runner
    had written at the read (``base_*``). Until the next read, the runner adds the results it
    wrote since, and its calls still in progress: a call abandoned before a read and written
    after it is in neither the read nor the results written since, but it is in progress."""

    live: int
    abandoned: int
    day_live: int
    day_abandoned: int
    base_live: int = 0
    base_abandoned: int = 0

    def now(
        self, stats: RunnerStats, live_now: int = 0, abandoned_now: int = 0
    ) -> tuple[int, int, int, int]:
        """(window live, window abandoned, day live, day abandoned): the read, the results
        written since, and ``live_now`` / ``abandoned_now`` calls in progress."""
        live = stats.final_live - self.base_live + live_now
        abandoned = stats.final_abandoned - self.base_abandoned + abandoned_now
        return (
            self.live + live,
            self.abandoned + abandoned,
            self.day_live + live,
            self.day_abandoned + abandoned,
        )


class CampaignRunner:
    name = "dialer"

    def __init__(
        self,
        pool: asyncpg.Pool,
        gate: ComplianceGate,
        ami: AmiClient,
        campaign: Campaign,
        *,
        node: str,
        pbx: str,
        clock: Callable[[], datetime] | None = None,  # None: the real time
        tick_s: float = 1.0,
        stale_after_s: float = 120.0,
        warmup_calls: int = 50,
        refresh_s: float = 5.0,
        tick_deadline_s: float = 10.0,
    ) -> None:
        self.pool, self.gate, self.ami, self.c = pool, gate, ami, campaign
        self.node, self.pbx, self.clock = node, pbx, clock or _utc_now
        self.tick_s, self.stale_after_s = tick_s, stale_after_s
        self.warmup_calls = warmup_calls
        self.refresh_s, self.tick_deadline_s = refresh_s, tick_deadline_s
        self._refreshed_at = time.monotonic()
        self.why = "starting"  # why it is not dialing (or "dialing")
        # This node's AMD's greeting ends (the composition root shares one with LiveAmd).
        self.greetings: GreetingEnds | None = None
        self._model: AnswerModel | None = None  # (relearnt every _ANSWER_RELEARN_S)
        self._model_learnt_at = 0.0
        # Live-answer odds by the debtor's local hour: this run's counts, the history's shape
        # (read every _HOURS_READ_S), the table and a new line's odds (with the model).
        self.hours = HourlyOdds()
        self.trunk = TrunkGuard()  # stops the dialing when the trunk refuses call after call
        #: The last claim found the campaign's shared trunk full (dialer/trunks.py).
        self.trunk_full = False
        self._hours_read_at = -_HOURS_READ_S
        self._odds = np.zeros(24)
        self._new_odds: float | None = None
        self._fault_logged_at = -_FAULT_LOG_S
        self._link_down_since: float | None = None  # (monotonic) the AMI link went down then
        # Agentless: answers in a row the IVR flow could not take (QUEUESTATUS IVRFAILED: the
        # FastAGI server unreachable), and until when no more lines open because of them.
        self._ivr_failed_in_row = 0
        self._ivr_hold_until = 0.0
        if campaign.voicemail_problem:
            log.warning("dialer %s: %s", campaign.code, campaign.voicemail_problem)
        self.bad_settings: str | None = None
        self._rescored_at = 0.0  # the first pacing tick rescores
        self._quiet_until = 0.0  # nothing to claim until then (all denied, or none due)
        self.board = AgentBoard(campaign.queue, campaign.queue_wrapup_s)
        self.tracker = AttemptTracker()
        self.calls: dict[str, _Call] = {}
        self.stats = RunnerStats()
        self.pacing = PacingSettings(abandon_target=campaign.abandon_target)
        self.service = Service()
        self._service_learnt_at = -_SERVICE_RELEARN_S
        self._finals: asyncio.Queue[tuple[str, str, Outcome | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._aborted = False
        self._sends: set[asyncio.Task[None]] = set()
        self._synced_at_connect = 0
        self._wake = asyncio.Event()
        # Queue events that arrive while a QueueStatus is out: applied again on the board it
        # rebuilds (they may be newer than its list; member events carry the whole state).
        self._board_replay: list[tuple[str, list[tuple[str, str]]]] | None = None
        self.preview = PreviewDesk(self)
        self._preview_swept_at = -PREVIEW_SWEEP_S
        self._rescoring: asyncio.Task[None] | None = None
        self._audited_at = time.monotonic()
        self._auditing: asyncio.Task[None] | None = None
        # The realised abandonment the closed loop corrects on (None: not read yet, and then
        # the predictive pacer does not run: one line per free agent until it is).
        self.window: AbandonWindow | None = None
        # Callers waiting in the campaign's queue who are not this runner's calls: inbound and
        # IVR callers who asked for an agent (PUENTE_INBOUND_QUEUE may be this queue). They
        # take the next free agent as surely as a live answer of ours: the pacer counts them.
        self.queued_others: set[str] = set()
        # Another campaign paced right now on this campaign's queue (checked every 30 s): two
        # pacers would count the same agents free and both dial for them. Neither dials.
        self.shared_with: str | None = None
        self._window_read_at = -_WINDOW_READ_S
        self._window_reading: asyncio.Task[None] | None = None
        self._standby_read_at = -_WINDOW_READ_S
        self._presence_warned = False  # (told once: this node cannot tell who is dead)
        self._absent_since: dict[str, float] = {}  # node -> first seen without presence
        # Observers (the composition root points them at the metrics): a result written, an
        # Originate's round trip, a compliance decision.
        self.on_final: Callable[[str, str], None] | None = None
        self.on_originate: Callable[[float], None] | None = None
        self.on_decision: Callable[[bool, tuple[str, ...]], None] | None = None
        self.agent_freed_at: float | None = None
        # Seconds from an agent becoming free to the first Originate of the pacing step it
        # woke (the agent's call), and to the step's other Originates (the pacer's extra lines).
        # The latest latencies, for ``puente bench dialer`` (bounded: a service runs for months).
        self.free_to_originate_s: deque[float] = deque(maxlen=_KEEP_LATENCIES)
        self.free_to_step_originate_s: deque[float] = deque(maxlen=_KEEP_LATENCIES)
        self._leader_conn: asyncpg.Connection | None = None
        self.is_leader = False

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, tg: asyncio.TaskGroup) -> None:
        self.ami.subscribe(self._on_event)
        self._task = tg.create_task(self._run())

    async def stop(self) -> None:
        """Stop dialing; live calls end on their own and their results are still written."""
        self._stopping = True
        deadline = time.monotonic() + 30
        while self.calls and time.monotonic() < deadline:
            with contextlib.suppress(*_DB_ERRORS):
                await self._drain_finals()
            await asyncio.sleep(0.1)
        for task in (self._task, self._rescoring, self._window_reading, self._auditing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Last, once nothing else drains: a drain cancelled above put back what it held.
        with contextlib.suppress(*_DB_ERRORS):
            await self._drain_finals()
        await self._release_lead()

    async def abort(self) -> None:
        # (The loop also checks the flag: a cancel that lands as the tick's own deadline
        # expires can come out of asyncio.timeout as a TimeoutError, which the loop survives.)
        self._aborted = True
        for task in (self._task, self._rescoring, self._window_reading, self._auditing):
            if task is not None:
                task.cancel()
        conn, self._leader_conn = self._leader_conn, None
        if conn is not None:
            conn.terminate()  # the lock goes with the session
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    def held(self) -> str | None:
        """Why this runner holds its dialing back on its own, for monitoring:
        ``trunk_refusing`` (the trunk guard tripped), ``trunk_full`` (its shared trunk's
        channels are all in use, :mod:`dialer.trunks`), ``ivr_unavailable`` (agentless answers
        found no IVR flow); None when it does not."""
        if self.trunk.tripped:
            return "trunk_refusing"
        if self.trunk_full:
            return "trunk_full"
        if self._ivr_held:
            return "ivr_unavailable"
        return None

    @property
    def _ivr_held(self) -> bool:
        """Agentless answers found no IVR flow several times in a row: its lines are held
        (:meth:`_lines_wanted`)."""
        return self.c.mode == "agentless" and self._ivr_failed_in_row >= _IVR_FAILURES_TO_HOLD

    def status(self) -> str:
        s = self.stats
        rate = s.abandoned / s.live if s.live else 0.0
        return (
            f"{self.c.code} {self.c.mode}: agents {self.board.free(time.monotonic())}/"
            f"{self.board.logged_in} free  in flight {len(self.calls)}  dials {s.dials}"
            f"  denied {s.denied}  answered {s.answered}  connected {s.connected}"
            f"  abandoned {s.abandoned} ({rate:.1%})  [{self.why}]"
            + (f"  [settings not applied: {self.bad_settings}]" if self.bad_settings else "")
            + (f"  [{self.c.voicemail_problem}]" if self.c.voicemail_problem else "")
        )

    # -- events (synchronous: they only update state and queue database work) ------------------
    def _on_event(self, msg: AmiMessage) -> None:
        now = time.monotonic()
        name = msg.name
        queue_event = name.startswith("QueueMember") or name in ("AgentConnect", "AgentComplete")
        if queue_event and self._board_replay is not None:
            self._board_replay.append((name, msg.pairs))
        if queue_event and self._board_event(name, msg.pairs, now):
            if self.agent_freed_at is None:  # the longest-waiting free agent's event
                self.agent_freed_at = now
            self._wake.set()  # an agent is free: pace now, not at the next tick
        if name == "AgentRingNoAnswer":
            self._ring_no_answer(dict(msg.pairs))
            return
        if name in ("QueueCallerJoin", "QueueCallerLeave"):
            f = dict(msg.pairs)
            uid = f.get("Uniqueid", "")
            if name == "QueueCallerLeave":
                self.queued_others.discard(uid)  # whoever it was (a call adopted since, too)
            elif f.get("Queue") == self.c.queue and uid and uid not in self.calls:
                self.queued_others.add(uid)
            return
        fields = dict(msg.pairs) if name in _CALL_EVENTS else None
        if fields is None:
            return
        for outcome in self.tracker.event(name, fields, now):
            self._unanswered_or_answered(outcome, now)
        attempt = fields.get("Attempt") or fields.get("Uniqueid", "")
        call = self.calls.get(attempt)
        if call is None:
            return
        if name == "UserEvent" and fields.get("UserEvent") == "PuenteVoicemail":
            call.voicemail_left = fields.get("PLAYBACKSTATUS") == "SUCCESS"
        elif name == "UserEvent" and fields.get("UserEvent") == "PuenteAMD":
            first = call.amd is None  # (a duplicate verdict is not another answer)
            call.amd = status_word(fields.get("AMDSTATUS"))
            # The cause comes with the verdict: the dialplan reports both as the channel has
            # them once AudioSocket() returns, whichever order AMD's Setvars ran in. (VarSet
            # events are never read: the AMI user is not granted `dialplan`, manager.conf.)
            call.amd_cause = status_word(fields.get("AMDCAUSE"))
            if first and call.amd:  # kept for a restart that finds the call ended unheard
                self._spawn(self._note(attempt, _NOTE_AMD, call.amd, call.amd_cause))
            if first and call.amd == "MACHINE":
                self.stats.machines += 1
            elif first:
                self.stats.live += 1
                self.hours.answered_live(call.hour)
                if call.answered_at is not None and not call.adopted:  # (else: no delay)
                    self.stats.live_delays.append(call.answered_at - call.sent_at)
        elif name == "AgentConnect" and not call.connected:
            call.connected = True
            call.agent_to_write = fields.get("Interface") or None
            self.stats.connected += 1
            ended = self.greetings.pop(attempt) if self.greetings is not None else None
            if ended is not None and now - ended > AGENT_WITHIN_S and not call.abandoned:
                # Within the queue's whole-second timeout, but not the rule's two seconds:
                # the person had an agent, and the call still counts as abandoned.
                call.abandoned = True
                self.stats.abandoned += 1
                self._spawn(self._mark_abandoned(attempt))
                log.info("dialer %s: attempt %s reached an agent %.1f s after the greeting: "
                         "abandoned (2 s rule)", self.c.code, attempt, now - ended)  # fmt: skip
            self._spawn(self._assign_agent(attempt, call))
        elif name == "UserEvent" and fields.get("UserEvent") == "PuenteQueueResult":
            call.requeued = False
            if fields.get("QUEUESTATUS") == "IVRFAILED":
                self._ivr_failed_in_row += 1
                if self._ivr_failed_in_row >= _IVR_FAILURES_TO_HOLD:
                    self._ivr_hold_until = time.monotonic() + _IVR_HOLD_S
            if fields.get("QUEUESTATUS") != "CONTINUE" and not call.connected:
                if not call.abandoned:  # (a second wait for an agent is the same abandonment)
                    self.stats.abandoned += 1
                    # Written now, not only with the result: a restart or a takeover before
                    # the call ends must not forget it (the 3 % is counted on it).
                    self._spawn(self._mark_abandoned(attempt))
                call.abandoned = True
        elif name == "UserEvent" and fields.get("UserEvent") == "PuenteQueueWait":
            call.requeued = True  # waits for an agent again: the pacer counts it as waiting
        elif name == "Hangup" and fields.get("Uniqueid") == attempt:
            if call.answered_at is not None:
                self._answered_call_ended(attempt, call)
            else:
                call.hung_up = True  # its OriginateResponse may still say it was answered

    def _answered_call_ended(self, attempt: str, call: _Call) -> None:
        if call.ending:
            return  # (a duplicate Hangup: its result is queued already)
        disposition = _answered_disposition(call, otherwise="hangup")
        if disposition in ("agent", "hangup"):
            self._ivr_failed_in_row = 0  # (agentless: the flow took this answer)
        call.ending = True
        self._finals.put_nowait((attempt, disposition, None))

    def _answered(self, attempt: str, call: _Call, now: float) -> None:
        """A call this run dialed is answered (first heard of now): counted, in its hour too,
        and written down for a restart that finds it ended unheard (it reached someone)."""
        call.answered_at = now
        self.stats.answered += 1
        self.hours.dialed(call.hour)
        self._spawn(self._note(attempt, _NOTE_ANSWERED, self.clock()))

    def _board_event(
        self, name: str, pairs: list[tuple[str, str]], now: float, wall_now: float | None = None
    ) -> bool:
        """A queue event for the agent board; one with a field it cannot read is logged and
        skipped (the call events it may carry still count, the other members still load)."""
        try:
            return self.board.event(name, dict(pairs), now, wall_now)
        except (ValueError, TypeError, ArithmeticError) as e:
            log.warning(
                "dialer %s: %s with a bad field ignored by the agent board: %s",
                self.c.code, name, e,
            )  # fmt: skip
            return False

    def _unanswered_or_answered(self, outcome: Outcome, now: float) -> None:
        call = self.calls.get(outcome.attempt_id)
        if call is None:
            return
        if self.trunk.ended(outcome.tech_cause, now):
            log.error(
                "dialer %s: %s; check the trunk %s (its credentials, account or routes)",
                self.c.code, self.trunk.describe(now), self.c.trunk,
            )  # fmt: skip
        if not call.adopted and (
            call.answered_at is None or outcome.disposition is not Disposition.ANSWERED
        ):
            self.stats.ring_ends.append(now - call.sent_at)  # its ringing ended now
        if outcome.disposition is Disposition.ANSWERED:
            if call.answered_at is None:
                self._answered(outcome.attempt_id, call, now)
            if call.hung_up:  # its Hangup came first (out of order): it is over already
                self._answered_call_ended(outcome.attempt_id, call)
            return
        call.ending = True
        self._finals.put_nowait((outcome.attempt_id, outcome.disposition.value, outcome))

    # -- the loop -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._aborted:
            # Cleared before the work, not after: an agent freeing up while this tick runs
            # wakes the next one at once instead of waiting a whole tick.
            self._wake.clear()
            for outcome in self.tracker.tick(time.monotonic()):
                self._unanswered_or_answered(outcome, time.monotonic())
            try:
                async with asyncio.timeout(self.tick_deadline_s):
                    await self._refresh()
                    # Dial first (a free agent waits for this), then write what ended.
                    if not self._stopping:
                        await self._dial_tick()
                    await self._drain_finals()
                    due = time.monotonic() - self._rescored_at > _RESCORE_S
                    idle = self._rescoring is None or self._rescoring.done()
                    if self.is_leader and due and idle:
                        # Beside the loop, not in it: a rescore takes up to a second on a big
                        # campaign, and an agent freeing up meanwhile must not wait for it.
                        self._rescored_at = time.monotonic()
                        self._rescoring = asyncio.get_running_loop().create_task(self._rescore())
                    due = time.monotonic() - self._window_read_at >= _WINDOW_READ_S
                    idle = self._window_reading is None or self._window_reading.done()
                    if self.is_leader and due and idle:
                        self._window_read_at = time.monotonic()
                        self._window_reading = asyncio.get_running_loop().create_task(
                            self._upkeep()
                        )
                    due = time.monotonic() - self._standby_read_at >= _WINDOW_READ_S
                    if not self.is_leader and self.ami.connected and due and idle:
                        self._standby_read_at = time.monotonic()
                        self._window_reading = asyncio.get_running_loop().create_task(
                            self._standby_upkeep()
                        )
                    due = time.monotonic() - self._audited_at >= _AUDIT_S
                    idle = self._auditing is None or self._auditing.done()
                    if due and idle:  # (every node follows its own calls: not the leader's job)
                        self._audited_at = time.monotonic()
                        self._auditing = asyncio.get_running_loop().create_task(self._audit())
            except _DB_ERRORS as e:
                self.why = "database unavailable"
                log.warning("dialer %s: database unavailable, not dialing: %s", self.c.code, e)
            except PbxError as e:
                self.why = "PBX unavailable"
                log.warning("dialer %s: PBX unavailable, not dialing: %s", self.c.code, e)
            except Exception as e:
                # A fault nothing here foresaw (a bug, a value no check caught): this campaign
                # tries again next tick, the other campaigns and the servers go on, and a
                # result that could not be written is kept and retried (_drain_finals).
                self.why = f"error: {e.__class__.__name__} (see the log)"
                now = time.monotonic()
                if now - self._fault_logged_at >= _FAULT_LOG_S:
                    self._fault_logged_at = now
                    log.exception("dialer %s: tick failed; retried every tick", self.c.code)
            next_tick = time.monotonic() + self.tick_s
            wrap_end = self.board.next_free_at(time.monotonic())  # no event says it: wake then
            if wrap_end is not None:
                next_tick = min(next_tick, wrap_end)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_tick - time.monotonic())):
                    await self._wake.wait()  # an agent freed up: dial for them at once

    async def _refresh(self) -> None:
        """Reload the campaign's row: its state, pacing target, retry schedule, lines."""
        if time.monotonic() - self._refreshed_at < self.refresh_s:
            return
        self._refreshed_at = time.monotonic()
        try:
            c = await Campaign.load(self.pool, self.c.code)
        except (CampaignError, LookupError) as e:  # keep the last good settings
            self.bad_settings = str(e)
            return
        self.bad_settings = None
        if c != self.c:
            if c.voicemail_problem and c.voicemail_problem != self.c.voicemail_problem:
                log.warning("dialer %s: %s", c.code, c.voicemail_problem)
            self.c = c
            self.pacing = PacingSettings(abandon_target=c.abandon_target)
            self.board.queue_wrapup_s = c.queue_wrapup_s

    async def _sync_agents(self) -> None:
        """After each (re)connect: the queue's members, and this node's attempts reconciled."""
        if self.ami.connects_total == self._synced_at_connect:
            return
        self._board_replay = []
        try:
            result = await self.ami.send_action("QueueStatus", [("Queue", self.c.queue)])
        finally:
            replay, self._board_replay = self._board_replay, None
        now, wall_now = time.monotonic(), time.time()
        self.board.agents.clear()
        self.queued_others.clear()
        for ev in result.events:
            if ev.name == "QueueMember":  # (wrap-ups in progress put back from LastCall)
                self._board_event("QueueMember", ev.pairs, now, wall_now)
            elif ev.name == "QueueEntry" and (uid := ev.get("Uniqueid") or "") not in self.calls:
                self.queued_others.add(uid)
        for name, pairs in replay:  # (the latest state wins, as it would have live)
            self._board_event(name, pairs, now)
        await self._reconcile(all_nodes=False)
        self._synced_at_connect = self.ami.connects_total

    async def _reconcile(self, *, all_nodes: bool, own: bool = True, sweep: bool = False) -> None:
        """Settle every attempt not final with what Asterisk has now (``CoreShowChannels``).

        After a restart of this node, or a reconnect during which events were lost: an attempt
        whose channel still exists is adopted (its events will end it); one whose channel is
        gone ended while nobody listened: it is final as ``lost`` (the ledger keeps counting
        it, the safe side) and its lead is retried. Nothing is ever re-originated.

        ``own`` (after each AMI (re)connect): this node's attempts on this PBX. With ``sweep``
        (every ``_WINDOW_READ_S``), only those older than ``_YOUNG_S`` that this run does not
        follow: a claim whose commit went through while its caller saw an error (a deadline,
        a dropped connection) left attempts nothing dials and nothing would ever end.

        ``all_nodes``: also the attempts older than ``_YOUNG_S`` (their Originate may still be
        on its way) that *dead* nodes left on this PBX (:meth:`_dead_nodes`: not a node that is
        alive, whose results may be waiting for the database, or whose lock was lost while it
        follows its calls); none when this node cannot tell (it has no presence session). The
        pacer, which passes it at takeover and every ``_WINDOW_READ_S`` (:meth:`_upkeep`), also
        releases leads a dead pacer claimed but never dialed and reservations that never became
        an attempt; a node that does not pace passes it every ``_WINDOW_READ_S`` too: the pacer
        may be on another Asterisk, from which these calls cannot be seen.
        """
        dead = await self._dead_nodes() if all_nodes else None
        rows = await self.pool.fetch(
            _OPEN_ATTEMPTS
            + """ AND a.pbx = $2
                  AND ((a.node = $3 AND $6 AND (NOT $7 OR a.created_at < $5))
                       OR ($4 AND a.node <> $3 AND a.created_at < $5))""",
            self.c.id,
            self.pbx,
            self.node,
            dead is not None,
            self.clock() - timedelta(seconds=_YOUNG_S),
            own,
            sweep,
        )
        rows = [
            r
            for r in rows
            if (r["node"] == self.node and not (sweep and self._in_hand(r["id"])))
            or (r["node"] != self.node and dead is not None and dead(r["node"]))
        ]
        # (none open, the usual case of the leader's periodic pass: no channel listing)
        live = await self._channels() if rows else {}
        now = time.monotonic()
        for r in rows:
            aid = r["id"]
            if aid in self.preview.offers:
                continue  # on offer to an agent here: never dialed, theirs to decide
            followed = self.calls.get(aid)
            if followed is not None and followed.ending:
                continue  # already followed by this run
            if followed is not None and aid in live:
                # Followed by this run; answered while the link was down (its OriginateResponse
                # went to the lost session): answered now, or its Hangup would not end it.
                if live[aid] == "6" and followed.answered_at is None:
                    self.tracker.forget(aid)
                    self._answered(aid, followed, now)
                continue
            call = followed if followed is not None else self._left_call(r, now)
            self.tracker.forget(aid)
            self.calls[aid] = call
            if aid in live:  # adopt a call another run (of this node or another) started
                if live[aid] == "6" and call.answered_at is None:  # Up: answered already
                    call.answered_at = now
                elif call.answered_at is None:
                    self.tracker.originated(aid, now)
                self.stats.adopted += 1
                continue
            self._gone(aid, call, undialed=r["undialed"])
        if all_nodes and self.is_leader:
            await self._release_leftovers()
        await self._drain_finals()

    def _in_hand(self, aid: str) -> bool:
        """Whether this run holds the attempt: followed, offered to an agent, or being dialed
        from an offer."""
        return aid in self.calls or aid in self.preview.offers or aid in self.preview.dialing

    def _left_call(self, r: asyncpg.Record, now: float) -> _Call:
        """An attempt another run (of this node or another) left open, as that run wrote it
        down: the call goes on (or is settled) from there, not as a fresh answer nobody took."""
        dial = Dial(r["id"], r["lead_id"], r["person_id"], r["debt_id"], r["phone_id"], r["e164"])
        call = _Call(dial, now, adopted=True)
        if r["answered"]:
            call.answered_at = now
        call.amd, call.amd_cause = r["amd_status"], r["amd_cause"]
        call.connected, call.abandoned = r["connected"], r["abandoned"]
        return call

    def _gone(self, aid: str, call: _Call, *, undialed: bool) -> None:
        """An open attempt whose channel is gone, nobody having heard how it ended: final."""
        call.ending = True
        # A preview offer whose request never reached 'dialed' was never originated (the
        # pacer marks it 'dialed' before the Originate): not placed, not 'lost'.
        if undialed:
            disposition = "skipped"
        elif call.answered_at is not None:
            disposition = _answered_disposition(call, otherwise="lost")
        else:
            disposition = "lost"
        self._finals.put_nowait((aid, disposition, None))

    async def _dead_nodes(self) -> Callable[[str], bool] | None:
        """Which nodes are dead (a test on a node's name), or None when this node cannot
        tell: it announces no presence of its own (:mod:`dialer.presence`).

        Dead means absent from the presence sessions at checks at least ``_DEAD_AFTER_S``
        apart, never once seen between them: a database restart ends every node's sessions at
        once, and a node that lives on opens its own again within seconds (its results, held
        in memory meanwhile, are written then); taking it for dead at once would end its calls
        as ``lost`` over the results it holds. This node is never dead to itself."""
        live = await live_sessions(self.pool)
        if session_name(self.node) not in live:
            if not self._presence_warned:
                self._presence_warned = True
                log.warning(
                    "dialer %s: node %s has no presence session: the calls dead nodes left "
                    "are left to nodes that have one", self.c.code, self.node,
                )  # fmt: skip
            return None
        now = time.monotonic()
        absent = self._absent_since
        for node in [n for n in absent if session_name(n) in live]:
            del absent[node]  # back (or never gone): its absence starts again

        def dead(node: str) -> bool:
            if node == self.node or session_name(node) in live:
                return False
            return now - absent.setdefault(node, now) >= _DEAD_AFTER_S

        return dead

    async def _settle_elsewhere(self) -> None:
        """The leader's last resort: attempts that dead nodes (or an earlier run of this one)
        left on *other* PBXes and that no node there settled within ``_ELSEWHERE_AFTER_S``
        (that Asterisk is gone, or has no live node): final without a channel listing, which
        only that Asterisk could give. Until then they held their leads, their lines and their
        trunk's channels."""
        if (dead := await self._dead_nodes()) is None:
            return
        rows = await self.pool.fetch(
            _OPEN_ATTEMPTS + " AND a.pbx <> $2 AND a.created_at < $3",
            self.c.id,
            self.pbx,
            self.clock() - timedelta(seconds=_ELSEWHERE_AFTER_S),
        )
        now = time.monotonic()
        settled = 0
        for r in rows:
            aid = r["id"]
            # (this node's own, on another PBX: left by an earlier run on the Asterisk it drove
            # then; this run drives only its own)
            if not (r["node"] == self.node or dead(r["node"])) or aid in self.calls:
                continue
            call = self.calls[aid] = self._left_call(r, now)
            self._gone(aid, call, undialed=r["undialed"])
            settled += 1
        if settled:
            log.warning(
                "dialer %s: %d attempt(s) left open by dead nodes on other PBXes for over %d s "
                "settled without their channels (as lost: the ledger keeps counting them)",
                self.c.code, settled, _ELSEWHERE_AFTER_S,
            )  # fmt: skip
            await self._drain_finals()

    async def _channels(self) -> dict[str, str]:
        """Asterisk's channels now (``CoreShowChannels``): uniqueid -> ChannelState."""
        result = await self.ami.send_action("CoreShowChannels")
        # A refusal (an AMI user without the rights) or a list cut short is no listing: taken
        # for one, every call missing from it would end as lost while it goes on.
        if not result.ok:
            raise PbxError(f"CoreShowChannels refused: {result.message[:200]!r}")
        if result.list_items_mismatch:
            raise PbxError("CoreShowChannels: the channel list came incomplete")
        live: dict[str, str] = {}
        for ev in result.events:
            if ev.name == "CoreShowChannel":
                uid = (ev.get("Uniqueid") or "").removesuffix(";2")
                live[uid] = ev.get("ChannelState") or ""
        return live

    async def _audit(self) -> None:
        """End the answered calls whose channel Asterisk no longer has, and settle the dials
        nothing was heard of for ``stale_after_s`` (as a task).

        Only the channel's ``Hangup`` ends an answered call. Were it lost while the link stayed
        up (an event Asterisk never sent, a filter on the AMI user), the call would hold a line
        in flight, its lead ``in_call`` and its result unwritten until the next reconnect. So
        the answered calls older than an audit are looked for among Asterisk's channels; one
        missing from two audits in a row (its Hangup, were it only late, would have come in
        between) ends as its events had it (agent, machine, abandoned, hangup).
        """
        now = time.monotonic()
        watched = [
            aid
            for aid, call in self.calls.items()
            if call.answered_at is not None
            and not call.ending
            and now - call.answered_at >= _AUDIT_S
        ]
        # Dials nothing was heard of for stale_after_s. Ended as 'lost' on that timer alone, a
        # call answered while the link was stalled (its OriginateResponse never came) was
        # final while the debtor talked to an agent: the lead retried, the person free to be
        # dialed by another campaign, and the reconcile after the reconnect blind to it.
        stale = [
            aid
            for aid, call in self.calls.items()
            if call.answered_at is None
            and not call.ending
            and now - call.sent_at > self.stale_after_s
        ]
        if not watched and not stale:
            return
        try:
            live = await self._channels()
        except (PbxError, TimeoutError) as e:  # (the reconnect's reconcile will settle them)
            log.warning("dialer %s: channel audit not done: %s", self.c.code, e)
            return
        now = time.monotonic()
        for aid in stale:
            call = self.calls.get(aid)
            if call is None or call.ending or call.answered_at is not None:
                continue  # (its events came meanwhile)
            state = live.get(aid)
            if state is None:  # gone unheard: its fate is unknown
                self.tracker.forget(aid)
                call.ending = True
                self._finals.put_nowait((aid, "lost", None))
                self._wake.set()
            elif state == "6":  # answered, its OriginateResponse lost: its Hangup ends it
                self.tracker.forget(aid)
                self._answered(aid, call, now)
        for aid in watched:
            call = self.calls.get(aid)
            if call is None or call.ending:
                continue
            if aid in live:
                call.missing = 0
                continue
            call.missing += 1
            if call.missing >= _AUDITS_MISSED:
                log.warning(
                    "dialer %s: attempt %s answered, its channel gone, no Hangup heard: ended",
                    self.c.code, aid,
                )  # fmt: skip
                self._answered_call_ended(aid, call)
                self._wake.set()  # its result is written, and its line counted free, now

    async def _rescore(self) -> None:
        """Broken promises, then the leads' priorities (every ``_RESCORE_S``, as a task)."""
        try:
            async with asyncio.timeout(_RESCORE_S):
                async with self.pool.acquire() as conn:
                    broken = await settle_promises(conn, self.clock().date())
                if broken:
                    log.info("dialer %s: %d promise(s) broken; debts are back", self.c.code, broken)
                await rescore(self.pool, self.c, self.clock())
        except (*_DB_ERRORS, TimeoutError) as e:
            log.warning("dialer %s: rescore failed (next in %d s): %s", self.c.code, _RESCORE_S, e)

    async def _upkeep(self) -> None:
        """The leader's periodic reads and repairs (every ``_WINDOW_READ_S``, as a task)."""
        await self._check_queue_shared()
        try:  # what dead nodes left, and what this node left that nothing follows
            await self._reconcile(all_nodes=True, sweep=True)
            await self._settle_elsewhere()
        except (*_DB_ERRORS, PbxError) as e:
            log.warning("dialer %s: open attempts of other nodes not settled: %s", self.c.code, e)
        await self._read_window()
        if time.monotonic() - self._hours_read_at >= _HOURS_READ_S:
            await self._read_hours()
        await self._seat_agents()
        if self.c.mode != "preview":  # (out of preview mode while running: off the dial path)
            try:
                await self._close_preview_requests(time.monotonic())
            except _DB_ERRORS as e:
                log.warning("dialer %s: preview requests not closed: %s", self.c.code, e)

    async def _standby_upkeep(self) -> None:
        """A node that does not pace the campaign settles what dead nodes left on its PBX
        (every ``_WINDOW_READ_S``, as a task): the pacer may be on another Asterisk."""
        try:
            await self._reconcile(all_nodes=True, sweep=True)
        except (*_DB_ERRORS, PbxError) as e:
            log.warning("dialer %s: open attempts not settled: %s", self.c.code, e)

    async def _check_queue_shared(self) -> None:
        """Whether another campaign's pacer (its leader lock held, on any node) works this
        queue. The API refuses to start such a campaign; rows from before that rule, or
        written by hand, are caught here: if in doubt, do not dial."""
        if self.c.mode == "preview":
            self.shared_with = None
            return
        try:
            other = await self.pool.fetchval(_PACED_ON_QUEUE, self.c.queue, self.c.id)
        except _DB_ERRORS as e:
            log.warning("dialer %s: queue sharing not checked: %s", self.c.code, e)
            return
        if other != self.shared_with:
            if other is not None:
                log.error(
                    "dialer %s: campaign %s is paced on queue %s too: not dialing until one of "
                    "them moves to a queue of its own or stops", self.c.code, other, self.c.queue,
                )  # fmt: skip
            self.shared_with = other

    async def _seat_agents(self) -> None:
        """Keep the campaign queue's members equal to this campaign's logged-in agents.

        An agent takes calls for one campaign at a time (``agents.campaign_id``, chosen on the
        desktop, web/_agents.py): a member counted free by two campaigns' pacers is dialed for
        twice. The desktop moves an agent between queues as it logs in, switches and logs out;
        a campaign started or switched to this queue later, or a change that raced with that,
        would otherwise leave its queue without them, or with them. This campaign's agents are
        members with the pause they have; a Puente agent (one with a state) logged out, or
        working a campaign on another queue, is removed; interfaces that are no Puente agent's
        (static members of queues.conf) are left alone, and so are agents with no campaign
        chosen. Logs name agents by code: an interface may hold a phone number."""
        if self.c.mode == "preview" or self.c.state not in ("running", "paused"):
            return
        try:
            rows = await self.pool.fetch(_AGENT_STATES_SQL, self.c.id, self.c.queue)
        except _DB_ERRORS as e:
            log.warning("dialer %s: agents not seated: %s", self.c.code, e)
            return
        for r in rows:
            interface, state = r["interface"], r["state"]
            if r["fresh"]:  # changing right now (the desktop tells Asterisk, then writes)
                continue
            m = QueueMember(interface, r["name"])
            seated = self.board.agents.get(interface)
            paused = state == "paused"
            reason = r["reason"] or "paused"
            if r["ours"] and state in ("ready", "paused") and seated is not None:
                if seated.paused == paused:
                    continue
                # the pause Asterisk has is not the agent's (a node without AMI recorded it)
                step, why = queue_pause(m, paused, reason, queue=self.c.queue), state
            elif r["ours"] and state != "logged_out" and seated is None:
                step, why = queue_add(m, self.c.queue, paused=paused, reason=reason), state
            elif seated is not None and (state == "logged_out" or r["elsewhere"]):
                step = queue_remove(m, self.c.queue)
                why = "logged out" if state == "logged_out" else f"on campaign {r['campaign']}"
            else:
                continue
            try:
                result = await self.ami.send_action(step.action, step.fields)
            except (PbxError, TimeoutError) as e:
                log.warning("dialer %s: %s of agent %s: %s", self.c.code, step.action,
                            r["code"], e)  # fmt: skip
                return
            if result.ok or result.message in step.already:
                log.info("dialer %s: %s agent %s (%s)", self.c.code, step.action, r["code"], why)
            else:
                log.warning("dialer %s: %s of agent %s refused: %s",
                            self.c.code, step.action, r["code"], result.message)  # fmt: skip

    async def _read_window(self) -> None:
        """The campaign's live answers and abandoned calls over its legal window and the last
        24 hours (every ``_WINDOW_READ_S``, as a task; the last read stands when it fails)."""
        base_live, base_abandoned = self.stats.final_live, self.stats.final_abandoned
        try:
            async with asyncio.timeout(_WINDOW_READ_S):
                r = await self.pool.fetchrow(
                    _WINDOW_SQL, self.c.id, self.c.abandon_window_days, list(LIVE_DISPOSITIONS)
                )
        except (*_DB_ERRORS, TimeoutError) as e:
            log.warning("dialer %s: abandonment window not read: %s", self.c.code, e)
            return
        assert r is not None
        self.window = AbandonWindow(
            r["live"], r["abandoned"], r["day_live"], r["day_abandoned"],
            base_live, base_abandoned,
        )  # fmt: skip

    async def _read_hours(self) -> None:
        """The shape of the campaign's answer rate over the debtor's local hours, as the
        rescore last learnt it (``campaign_answer_hours``; none: every hour alike). A failed
        read keeps the last shape and is tried again at the next upkeep."""
        try:
            async with asyncio.timeout(_WINDOW_READ_S):
                rows = await self.pool.fetch(_HOURS_SQL, self.c.id)
        except (*_DB_ERRORS, TimeoutError) as e:
            log.warning("dialer %s: answer rates by hour not read: %s", self.c.code, e)
            return
        self._hours_read_at = time.monotonic()
        shape = [1.0] * 24
        for r in rows:
            shape[r["hour"]] = 1.0 + r["lift"]
        self.hours.set_shape(shape)

    async def _release_leftovers(self) -> None:
        """At takeover: leads claimed but never dialed, and ledger reservations that never
        became an attempt. Selection is one transaction, so only a version without it, or a
        reservation made outside the dialer under the campaign's code, leaves these."""
        released = await self.pool.execute(
            """UPDATE leads SET state = 'ready', claimed_by = NULL, claimed_at = NULL
               WHERE campaign_id = $1 AND state = 'claimed' AND claimed_at < $2""",
            self.c.id,
            self.clock() - timedelta(seconds=_YOUNG_S),
        )
        if released != "UPDATE 0":
            log.info("dialer %s: %s claimed leads released", self.c.code, released[7:])
        # Reservations that never became an attempt (a stop between the gate and the
        # intent): nothing was dialed, so they release their count. Only those the campaign's
        # caps still count matter (its rules' look-back), found by the campaign's index: the
        # whole ledger was read at every takeover (~200 ms at 500,000 reservations).
        now = self.clock()
        orphans = await self.pool.fetch(
            _ORPHANS,
            self.c.code,
            now - timedelta(seconds=_YOUNG_S),
            now - timedelta(days=self.gate.rules(self.c.packs).lookback_days),
        )
        for o in orphans:
            await self.gate.record_outcome(o["attempt_id"], "not_placed", self.clock())
            self.stats.released += 1

    async def _lead(self) -> bool:
        """Whether this node paces the campaign: one pacer per campaign across nodes.

        A session-level advisory lock on a connection of its own: when the holder dies, its
        session ends, the lock is free, and another node takes over at its next tick.
        """
        held = self._leader_conn
        if held is not None:
            try:
                alive = not held.is_closed()
            except asyncpg.InterfaceError:  # the pool took the broken connection back
                alive = False
            if alive:
                return True
            # The lock's session died: we are not the pacer now, unless we win it again.
            self._leader_conn = None
            self.is_leader = False
            with contextlib.suppress(Exception):
                await self.pool.release(held)
        conn = await self.pool.acquire()
        try:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock(x'70616365'::int, $1::int)", self.c.id
            )
        except BaseException:
            # (cancelled or failed after the server may have granted it: a session lock must
            # not go back to the pool, where nobody would know to release it)
            conn.terminate()
            await self.pool.release(conn)
            raise
        if not got:
            await self.pool.release(conn)
            return False
        self._leader_conn = conn
        self.is_leader = True
        log.info("dialer %s: this node (%s) paces the campaign", self.c.code, self.node)
        await self._reconcile(all_nodes=True)  # what the previous pacer left
        return True

    async def _release_lead(self) -> None:
        conn, self._leader_conn = self._leader_conn, None
        self.is_leader = False
        if conn is not None and not conn.is_closed():
            try:
                await conn.execute("SELECT pg_advisory_unlock_all()")
            except BaseException as e:
                conn.terminate()  # (its session, and the lock with it, ends)
                await self.pool.release(conn)
                if not isinstance(e, Exception):
                    raise
                return
            await self.pool.release(conn)

    async def _dial_tick(self) -> None:
        now = time.monotonic()
        if not self.ami.connected:
            self.why = "PBX link down"
            if self._link_down_since is None:
                self._link_down_since = now
            elif self.is_leader and now - self._link_down_since >= _HAND_OVER_S:
                # Another node, on an Asterisk that answers, paces the campaign meanwhile. This
                # node's calls are still its own: it settles them when its link is back.
                await self._release_lead()
                log.warning(
                    "dialer %s: PBX link down for %.0f s: pacing left to another node",
                    self.c.code, now - self._link_down_since,
                )  # fmt: skip
            return
        self._link_down_since = None
        await self._sync_agents()
        if not await self._lead():
            self.why = "standby: another node paces this campaign"
            return
        if self.c.state != "running":
            await self._close_preview_requests(now)
            self.why = f"campaign {self.c.state}"
            return
        if self.shared_with is not None:
            self.why = (
                f"queue {self.c.queue} is also paced by campaign {self.shared_with}: not dialing"
                " (both pacers would count the same agents free)"
            )
            return
        if self.c.mode == "preview":  # agents ask for each lead (dialer/preview.py)
            self.why = "preview: an agent starts each call"
            await self.preview.tick()
            return
        if now < self._quiet_until:
            return
        want = self._lines_wanted(now)
        # This step answers the free agents' events, whether it dials or not.
        freed_at, self.agent_freed_at = self.agent_freed_at, None
        if want <= 0:
            self.trunk_full = False  # held back by something else, if anything
            return
        # In growing chunks, each sent as soon as it commits: the first Originate (a free
        # agent's) waits for one small claim, not for the whole step's (a claim's time grows
        # with its size: ~150 ms for 200 leads against ~10 ms for one).
        # Denied leads do not count against the lines wanted: past them, further leads may be
        # callable now (the top of the list at its cap, or outside its hours), and the free
        # agents should not wait a quiet spell for them. A step looks past at most
        # _LOOK_PAST_DENIED of them; the next step goes on from there.
        chunk, dialed, examined = _FIRST_CHUNK, 0, 0
        exhausted = unavailable = False
        full: TrunkFull | None = None
        denied_all: list[Denied] = []
        while dialed < want:
            n = min(chunk, want - dialed)
            try:
                dials, denied = await claim_and_gate(
                    self.selection_pool(),
                    self.gate,
                    campaign_id=self.c.id,
                    campaign_code=self.c.code,
                    packs=self.c.packs,
                    want=n,
                    node=self.node,
                    pbx=self.pbx,
                    now=self.clock(),
                    channel=self.c.channel,
                    trunk=self.c.trunk,
                    margin_s=self.c.margin_s,
                )
            except TrunkFull as e:  # shared with other campaigns, and they hold its channels
                full = e
                self.trunk_full = True
                break
            self.trunk_full = False
            self.stats.denied += len(denied)
            denied_all += denied
            if self.on_decision is not None:
                for d in denied:
                    self.on_decision(False, d.decision.codes)
                for _ in dials:
                    self.on_decision(True, ())
            for d in dials:
                self.dial_now(d, freed_at=freed_at, first=dialed == 0)
                dialed += 1
            examined += len(dials) + len(denied)
            if len(dials) + len(denied) < n:
                exhausted = True
                break  # no more leads due
            if any("COMPLIANCE_UNAVAILABLE" in d.decision.codes for d in denied):
                unavailable = True
                break  # the gate cannot decide: no more claims now (each would be denied)
            if self._wake.is_set():
                break  # another agent freed up: pace again now, with them counted
            if examined - dialed >= _LOOK_PAST_DENIED:
                break
            chunk *= 2
        if dialed:
            self.why = "dialing"
        elif full is not None:
            # A channel frees when a call on the trunk ends, maybe another campaign's (whose
            # end this node does not hear): look again shortly, not every tick.
            self.why = str(full)
            self._quiet_until = time.monotonic() + _TRUNK_FULL_RETRY_S
        elif denied_all:
            codes = sorted({c for d in denied_all for c in d.decision.codes})
            self.why = f"compliance denied {len(denied_all)} ({', '.join(codes)})"
            if not (exhausted or unavailable):
                return  # more leads are due past these: the next step looks on
            # Every lead due was denied (e.g. all outside calling hours), or the gate cannot
            # decide: claim again when the first of them may be called, or in a few seconds,
            # not every tick.
            nexts = [d.decision.next_allowed_at for d in denied_all]
            wait_s = _QUIET_MAX_S
            if all(nexts):
                first = min(n for n in nexts if n is not None)
                wait_s = min(wait_s, max(0.0, (first - self.clock()).total_seconds()))
            self._quiet_until = time.monotonic() + wait_s
        else:
            self.why = "no leads due"
            self._quiet_until = time.monotonic() + _QUIET_MAX_S / 2

    def selection_pool(self) -> asyncpg.Pool:
        """Where the claim runs: the pacer's own connection (the one holding its lock), so a
        free agent's dial never queues for a pooled connection behind results being written."""
        conn = self._leader_conn
        if conn is None or conn.is_closed():
            return self.pool
        return _OwnConnection(conn)  # type: ignore[return-value]

    def dial_now(
        self,
        d: Dial,
        *,
        freed_at: float | None = None,
        first: bool = False,
        queue: str | None = None,
        queue_timeout_s: int | None = None,
    ) -> None:
        """Track ``d`` and send its Originate (the attempt row is already written)."""
        self.stats.dials += 1
        hour = local_hour(d.zone, self.clock())
        self.hours.placed(hour)
        self.calls[d.attempt_id] = _Call(
            d, time.monotonic(), freed_at=freed_at, first=first, hour=hour
        )
        self.tracker.originated(d.attempt_id, time.monotonic())
        self._spawn(self._originate(d, queue=queue, queue_timeout_s=queue_timeout_s))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _ring_no_answer(self, f: Mapping[str, str]) -> None:
        """An agent's phone rang and nobody answered before the caller's time ran out. Rung at
        least ``_NO_ANSWER_PAUSE_MS`` (an auto-answer phone answers well within it), the agent
        is not at their phone: paused, or every call the queue gives them is abandoned. Rung
        less, the caller's budget was spent before the ring began: nobody's fault."""
        if f.get("Queue") != self.c.queue or not self.is_leader:
            return
        interface = f.get("Interface") or ""
        try:
            ring_ms = int(f.get("RingTime") or 0)
        except ValueError:
            ring_ms = 0
        if ring_ms < _NO_ANSWER_PAUSE_MS or not interface:
            return
        self._spawn(self._pause_absent(interface, ring_ms))

    async def _close_preview_requests(self, now: float) -> None:
        """Preview requests the campaign no longer serves are closed (every PREVIEW_SWEEP_S;
        at once when leads are on offer)."""
        if not self.preview.offers and now - self._preview_swept_at < PREVIEW_SWEEP_S:
            return
        self._preview_swept_at = now
        why = f"campaign {self.c.state}" if self.c.state != "running" else "not in preview mode"
        if closed := await self.preview.close_all(why):
            log.info("dialer %s: %d preview request(s) closed: %s", self.c.code, closed, why)

    async def _pause_absent(self, interface: str, ring_ms: int) -> None:
        reason = "no answer"
        # (The interface is never logged: a remote agent's may hold a phone number.)
        try:
            agent = await self.pool.fetchrow(_AGENT_OF_INTERFACE, interface)
        except _DB_ERRORS:
            agent = None
        who = f"agent {agent['code']}" if agent else "a queue member that is no Puente agent"
        log.warning(
            "dialer %s: %s rang %d ms without answering: pausing it (%s)",
            self.c.code, who, ring_ms, reason,
        )  # fmt: skip
        try:
            step = queue_pause(QueueMember(interface, ""), True, reason)  # in all its queues
            result = await self.ami.send_action(step.action, step.fields)
            if not result.ok:
                log.warning("dialer %s: QueuePause of %s refused: %s",
                            self.c.code, who, result.message)  # fmt: skip
                return
        except (PbxError, TimeoutError) as e:
            log.warning("dialer %s: QueuePause of %s: %s", self.c.code, who, e)
            return
        if agent is None or agent["state"] in (None, "logged_out", "paused"):
            return  # nothing to tell on a desktop: not logged in, or paused already
        try:  # the agent desktop shows why (the agent unpauses from there)
            await self.pool.execute(
                "INSERT INTO agent_states (agent_id, state, reason, at) "
                "VALUES ($1, 'paused', $2, $3)",
                agent["id"], reason, self.clock(),
            )  # fmt: skip
        except _DB_ERRORS as e:
            log.warning("dialer %s: pause of %s not recorded: %s", self.c.code, who, e)

    async def _note(self, attempt: str, sql: str, *values: object) -> None:
        """Write down a fact of a call in progress (its answer, its AMD verdict)."""
        try:
            async with asyncio.timeout(self.tick_deadline_s):  # (a database gone quiet)
                await self.pool.execute(sql, attempt, *values)
        except _DB_ERRORS as e:  # only a restart that finds the call ended unheard needs it
            log.warning("dialer %s: state of %s not recorded: %s", self.c.code, attempt, e)

    async def _mark_abandoned(self, attempt: str) -> None:
        try:
            await self.pool.execute(
                "UPDATE call_attempts SET abandoned = true WHERE id = $1::uuid", attempt
            )
        except _DB_ERRORS as e:  # the result's write sets it too, when this node writes it
            log.warning("dialer %s: abandonment of %s not recorded yet: %s", self.c.code,
                        attempt, e)  # fmt: skip

    async def _assign_agent(self, attempt: str, call: _Call) -> None:
        try:
            await assign_agent(self.pool, attempt, call.agent_to_write or "")
        except _DB_ERRORS as e:  # the final result names the agent (write_result)
            log.warning("dialer %s: agent of %s not recorded yet: %s", self.c.code, attempt, e)
        else:
            call.agent_to_write = None  # written: the result need not write it again

    def end_undialed(self, d: Dial, disposition: str) -> None:
        """An attempt written but never dialed (a preview the agent passed on): its result."""
        call = self.calls[d.attempt_id] = _Call(d, time.monotonic())
        call.ending = True
        self._finals.put_nowait((d.attempt_id, disposition, None))

    def _lines_wanted(self, now: float) -> int:
        """How many lines to open now, by mode; sets :attr:`why` when it is none."""
        lines = self.c.max_lines - len(self.calls)
        if lines <= 0:
            self.why = f"no trunk capacity: {len(self.calls)} lines in use of {self.c.max_lines}"
            return 0
        if self.trunk.tripped:
            in_flight = sum(1 for c in self.calls.values() if c.answered_at is None)
            lines = self.trunk.lines(lines, in_flight, now)
            if lines == 0:
                self.why = self.trunk.describe(now)
                return 0
        if self.c.mode == "agentless":  # answered calls go to an IVR flow: no agents needed
            if self._ivr_held:
                # Every answer is abandoned while the flow cannot run: no more lines until
                # the hold ends, then one at a time until an answer goes through.
                if now < self._ivr_hold_until or any(
                    c.answered_at is None or not c.ending for c in self.calls.values()
                ):
                    self.why = (
                        f"held: the IVR flow could not take the last {self._ivr_failed_in_row}"
                        " answers (FastAGI unreachable?)"
                    )
                    return 0
                return 1
            return lines
        if self.board.logged_in == 0:
            self.why = f"no agents logged in to queue {self.c.queue}"
            return 0
        ringing_calls = [c for c in self.calls.values() if c.answered_at is None]
        ringing = [now - c.sent_at for c in ringing_calls]
        # (a caller counted before its call was adopted, after a restart or a takeover, is
        # counted once: as ours)
        waiting = len(self.queued_others - self.calls.keys()) + sum(
            1
            for c in self.calls.values()
            if c.answered_at is not None
            and not c.connected
            and (not c.abandoned or c.requeued)
            and c.amd != "MACHINE"
        )
        free = self.board.free(now)
        s = self.stats
        warming_up = s.resolved < self.warmup_calls  # no model yet: 1 line per agent
        # Without the realised abandonment of the campaign's window, no risk is taken either.
        if self.c.mode == "progressive" or warming_up or self.window is None:
            want = max(0, min(lines, free - len(ringing) - waiting))
        else:
            if self._model is None or now - self._model_learnt_at >= _ANSWER_RELEARN_S:
                self._model, self._model_learnt_at = self._answer_model(), now
                self._odds = self.hours.table(self._model.p_live)
                self._new_odds = self.hours.new_line(self._odds, self._model.p_live)
            model = self._model
            p, odds = model.p_live, self._odds
            ringing_odds = tuple(
                p if c.hour is None else float(odds[c.hour]) for c in ringing_calls
            )
            if now - self._service_learnt_at >= _SERVICE_RELEARN_S:
                self._service_learnt_at = now
                learnt = learn_service(self.board.talk_s, self.board.wrapup_s())
                if learnt != self.service:  # (its look-up table is built once per fit)
                    self.service = learnt
            in_progress = [c for c in self.calls.values() if c.amd and c.amd != "MACHINE"]
            window_live, window_abandoned, day_live, day_abandoned = self.window.now(
                s, len(in_progress), sum(1 for c in in_progress if c.abandoned)
            )
            state = PacingState(
                now=now,
                free_agents=free,
                busy_elapsed=self.board.busy_elapsed(now),
                wrap_left=self.board.wrap_left(now),
                ringing_ages=tuple(ringing),
                waiting_live=waiting,
                lines_available=lines,
                window_live=window_live,
                window_abandoned=window_abandoned,
                day_live=day_live,
                day_abandoned=day_abandoned,
                ringing_odds=ringing_odds,
                new_odds=self._new_odds,
            )
            want = lines_to_open(state, model, self.service, self.pacing)
        if want <= 0:
            if free > 0:
                self.why = "paced: enough lines ringing"
            elif all(a.paused for a in self.board.agents.values()):
                self.why = f"all {self.board.logged_in} agents paused"
            else:
                self.why = "all agents busy"
        return want

    def _answer_model(self) -> AnswerModel:
        """What a dial becomes, from this run's dials: the share answered by a person over the
        dials whose outcome is known (an answered call once, not again when it ends), when
        they answer, how long dials ring, under the campaign's ring timeout. The pacing bench
        feeds :func:`learn_answer_model` the same."""
        s = self.stats
        return learn_answer_model(
            s.resolved, s.live, s.live_delays,
            ring_timeout_s=self.c.ring_timeout_s, ring_end_delays=s.ring_ends,
        )  # fmt: skip

    async def _originate(
        self, d: Dial, *, queue: str | None = None, queue_timeout_s: int | None = None
    ) -> None:
        tech, _, endpoint = self.c.trunk.partition("/")
        # The debtor's language, where the campaign has prompts and a message in it.
        language = d.language if d.language in LANGUAGES else self.c.language
        voicemail, voicemail_number = self.c.voicemail_for(language)
        variables = [
            f"PUENTE_ATTEMPT={d.attempt_id}",
            f"PUENTE_CAMPAIGN={self.c.code}",
            f"PUENTE_MODE={self.c.mode}",
            f"PUENTE_QUEUE={queue or self.c.queue}",
            f"PUENTE_LANG={language}",
            f"PUENTE_VM={voicemail}",
            f"PUENTE_VM_NUMBER={voicemail_number}",
        ]
        if self.c.agentless_flow:
            variables.append(f"PUENTE_FLOW={self.c.agentless_flow}")
        if queue_timeout_s is not None:
            # (a name of its own: AMD's Setvar of PUENTE_QUEUE_TIMEOUT_S, the 2 s rule's
            # budget, would overwrite it; the dialplan's preview step puts it back)
            variables.append(f"PUENTE_PREVIEW_QUEUE_TIMEOUT_S={queue_timeout_s}")
        fields = [
            ("Channel", f"{tech}/{d.e164}@{endpoint}" if endpoint else f"{tech}/{d.e164}"),
            ("Context", "puente-outbound"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", str(self.c.ring_timeout_s * 1000)),
            ("ChannelId", d.attempt_id),
            ("Variable", variables),
        ]
        if self.c.caller_id:
            fields.append(("CallerID", self.c.caller_id))
        call = self.calls.get(d.attempt_id)
        if call is not None and call.freed_at is not None:
            took_s = time.monotonic() - call.freed_at
            (self.free_to_originate_s if call.first else self.free_to_step_originate_s).append(
                took_s
            )
        sent = time.monotonic()
        try:
            handle = await self.ami.originate(fields, action_id=d.attempt_id)
            if self.on_originate is not None:
                self.on_originate(time.monotonic() - sent)
        except (NotConnected, LocalProtocolError) as e:
            # Never written to Asterisk (the link was down, or a value no AMI header may carry):
            # nothing was dialed, as when Asterisk refuses it. Left to expire as 'lost', it
            # would count against the debtor's caps for a call never made.
            log.warning("dialer: Originate %s to %s not sent: %s", d.attempt_id,
                        mask_number(d.e164), e)  # fmt: skip
            handle = None
        except Exception as e:  # fate unknown: never re-sent; its events may still come
            log.warning("dialer: Originate %s to %s: %s", d.attempt_id, mask_number(d.e164), e)
            return
        if handle is None or not handle.response.ok:  # refused by Asterisk: nothing was dialed
            self.tracker.forget(d.attempt_id)
            if call is not None:
                call.ending = True
            self._finals.put_nowait((d.attempt_id, Disposition.FAILED.value, None))
            return
        with contextlib.suppress(*_DB_ERRORS):  # a note for people; the result does not need it
            async with asyncio.timeout(self.tick_deadline_s):
                await self.pool.execute(
                    "UPDATE call_attempts SET originated_at = $2 WHERE id = $1::uuid",
                    d.attempt_id,
                    self.clock(),
                )

    # -- results ------------------------------------------------------------------------------
    async def _drain_finals(self) -> None:
        while not self._finals.empty():
            if self._wake.is_set() and not self._stopping:
                return  # an agent is free: dial for them first, write the rest after
            item = self._finals.get_nowait()
            aid, disposition, outcome = item
            call = self.calls.get(aid)
            if call is None:
                continue
            try:
                await self._record(call, disposition, outcome)
            except BaseException:
                self._finals.put_nowait(item)  # a result is never dropped: retried next tick
                raise
            del self.calls[aid]

    async def _record(self, call: _Call, disposition: str, outcome: Outcome | None) -> None:
        written = await write_result(
            self.pool, self.gate, self.c, call.dial, disposition, outcome,
            amd=call.amd, answered=call.answered_at is not None, now=self.clock(),
            abandoned=call.abandoned, agent_interface=call.agent_to_write,
            amd_cause=call.amd_cause,
        )  # fmt: skip
        if written:  # (already final: another node or run wrote it first)
            self.stats.finals += 1
            if call.answered_at is None:
                self.stats.finals_unanswered += 1
                self.hours.dialed(call.hour)
            if disposition in LIVE_DISPOSITIONS or call.abandoned:  # (abandoned, then lost)
                self.stats.final_live += 1
            if call.abandoned or disposition == "abandoned":
                self.stats.final_abandoned += 1
            by = self.stats.by_disposition
            by[disposition] = by.get(disposition, 0) + 1
            if self.on_final is not None:
                self.on_final(self.c.code, disposition)


def _answered_disposition(call: _Call, *, otherwise: str) -> str:
    """The disposition of an answered call that ended, from what its events said: an agent
    took it (theirs to dispose of, the lead done), a machine, abandoned; ``otherwise`` when
    they say none of these. A Hangup heard: ``hangup`` (the person hung up before any of it).
    Ended while nobody listened (the node down, or its AMI link): ``lost``, since whether the
    person heard an agent, the abandon message or nothing is not known, and counting it a
    live answer that was not abandoned would flatter the abandonment rate."""
    if call.connected:
        return "agent"
    if call.amd == "MACHINE":
        return _machine_disposition(call)
    if call.abandoned:
        return "abandoned"
    return otherwise


def _machine_disposition(call: _Call) -> str:
    """A MACHINE answer: a fax or a special information tone by its AMDCAUSE (``fax``,
    ``intercept``, ``congestion``, ``sit_other``: dialer/outcomes.py), else a machine that got
    the campaign's message (``voicemail``) or not (``machine``). The tone decides first: the
    dialplan plays no message to one, and a message on an intercept reached nobody."""
    tone = tone_disposition(call.amd, call.amd_cause)
    if tone is not None:
        return tone.value
    return "voicemail" if call.voicemail_left else "machine"


# Facts of a call in progress, written as they happen ($1 the attempt): a restart or a
# takeover that finds the call ended unheard settles it from them (CDRs are not read).
_NOTE_ANSWERED = """
UPDATE call_attempts SET answered_at = coalesce(answered_at, $2::timestamptz)
WHERE id = $1::uuid AND state <> 'final'
"""
_NOTE_AMD = """
UPDATE call_attempts SET amd_status = $2, amd_cause = $3 WHERE id = $1::uuid AND state <> 'final'
"""

_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
    ComplianceError,
)
_FAULT_LOG_S = 60.0  # an unforeseen fault that repeats every tick is logged once a minute
#: Agentless: after this many answers in a row the IVR flow could not take, no more lines
#: for ``_IVR_HOLD_S``; then one at a time until an answer goes through.
_IVR_FAILURES_TO_HOLD = 3
_IVR_HOLD_S = 60.0
#: A pacer whose AMI link has been down this long lets another node take the campaign.
_HAND_OVER_S = 10.0
_YOUNG_S = 30.0  # an open attempt or claim younger than this may still be in a live pacer's hands
#: An attempt a dead node left on another PBX is settled by the leader, without its channel,
#: once this old: a node on that PBX would have settled it within ``_WINDOW_READ_S`` (seeing
#: its channel), so that Asterisk is gone or nobody drives it; a call an hour old that nobody
#: follows has no result anyone will hear.
_ELSEWHERE_AFTER_S = 3600
#: A node absent from the presence sessions this long is dead (:meth:`_dead_nodes`): a live
#: node opens its presence again within seconds of the database's return (``PRESENCE_EVERY_S``).
_DEAD_AFTER_S = 40.0
# The campaign's ($1) attempts not final, with what their runs wrote down of them (what a run
# that settles or adopts one another run left needs: :meth:`CampaignRunner._left_call`); the
# callers add which PBX and nodes.
_OPEN_ATTEMPTS = """
SELECT a.id::text AS id, a.lead_id, a.person_id, a.debt_id, a.phone_id, n.e164, a.node,
       EXISTS (SELECT 1 FROM preview_requests p
               WHERE p.attempt_id = a.id AND p.state <> 'dialed') AS undialed,
       a.answered_at IS NOT NULL AS answered, a.agent_id IS NOT NULL AS connected,
       a.abandoned, a.amd_status, a.amd_cause
FROM call_attempts a JOIN phone_numbers n ON n.id = a.phone_id
WHERE a.campaign_id = $1 AND a.state <> 'final'"""
# The campaign's ledger reservations ($1) from $3 to $2 that never became an attempt.
_ORPHANS = """
SELECT DISTINCT r.attempt_id FROM compliance_attempts r
WHERE r.campaign = $1 AND r.reserved_at >= $3 AND r.reserved_at < $2
  AND r.direction = 'outbound'
  AND NOT EXISTS (SELECT 1 FROM call_attempts a WHERE a.id = r.attempt_id)
  AND NOT EXISTS (SELECT 1 FROM compliance_outcomes o WHERE o.attempt_id = r.attempt_id)
"""
_RESCORE_S = 60.0
_AUDIT_S = 60.0  # answered calls are checked against Asterisk's channels this often
_AUDITS_MISSED = 2  # audits in a row without its channel that end an answered call
# An agent whose phone rang this long without answering is paused (auto-answer phones answer
# within half a second; the queue rings a member for at most the caller's 1-2 s budget).
_NO_ANSWER_PAUSE_MS = 1000
_WINDOW_READ_S = 30.0
# Another non-preview campaign on queue $1 whose pacer holds its leader lock right now.
_PACED_ON_QUEUE = """
SELECT c.code FROM campaigns c
JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
     AND l.classid = x'70616365'::int::oid AND l.objid::bigint = c.id
     -- (advisory locks are the server's: another database's campaign of that id is not ours)
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
WHERE c.queue_name = $1 AND c.id <> $2 AND c.mode <> 'preview'
ORDER BY c.code LIMIT 1
"""
# The agent on a queue interface, and its latest state on the desktop (None: never set).
_AGENT_OF_INTERFACE = """
SELECT a.id, a.code, s.state
FROM agents a LEFT JOIN agent_current_states s ON s.agent_id = a.id
WHERE a.interface = $1
"""
# The latest state of every agent that has one (set on the desktop; an agent who never used it,
# e.g. a static member of queues.conf, is left as Asterisk has it), and where it works: ``ours``,
# campaign $1's agent; ``elsewhere``, another campaign's whose queue is not this one ($2: two
# campaigns on one queue would take each other's agents out, and back in, forever).
_AGENT_STATES_SQL = """
SELECT a.code, a.name, a.interface, s.state, s.reason, c.code AS campaign,
       s.at BETWEEN now() - interval '10 seconds' AND now() + interval '10 seconds' AS fresh,
       coalesce(a.campaign_id = $1, false) AS ours,
       coalesce(a.campaign_id <> $1 AND c.queue_name <> $2, false) AS elsewhere
FROM agents a
JOIN agent_current_states s ON s.agent_id = a.id
LEFT JOIN campaigns c ON c.id = a.campaign_id
"""
# The campaign's live answers and abandoned calls over its window ($2 days) and the last 24 hours,
# from call_attempts_campaign_created_idx (which holds the disposition: older rows are counted
# from the index alone). The range is closed at tomorrow, so that the generic plan of the
# prepared statement expects a sliver of the table, not a third.
_WINDOW_SQL = """
SELECT count(*) FILTER (WHERE disposition = ANY($3::text[]) OR abandoned) AS live,
       count(*) FILTER (WHERE abandoned) AS abandoned,
       count(*) FILTER (WHERE created_at >= now() - interval '1 day'
                          AND (disposition = ANY($3::text[]) OR abandoned)) AS day_live,
       count(*) FILTER (WHERE created_at >= now() - interval '1 day'
                          AND abandoned) AS day_abandoned
FROM call_attempts
WHERE campaign_id = $1
  AND created_at >= now() - make_interval(days => $2)
  AND created_at < now() + interval '1 day'
"""
# The hours' shape of the answer rate (what the rescore learnt: it learns every few minutes).
_HOURS_SQL = "SELECT hour, lift FROM campaign_answer_hours WHERE campaign_id = $1"
_HOURS_READ_S = 600.0
_KEEP_DELAYS = 2000
_KEEP_RING_ENDS = 3000
_KEEP_LATENCIES = 20_000
_QUIET_MAX_S = 5.0  # mixed time zones: other leads may be callable now
_TRUNK_FULL_RETRY_S = 0.5  # a shared trunk full: claim again this soon
_SERVICE_RELEARN_S = 30.0  # the agents' talk-time model is refitted this often
# The answer model is relearnt this often (the pacing bench: every minute): sorting thousands of
# delays on every pacing step cost the free-to-Originate latency it is there to keep low.
_ANSWER_RELEARN_S = 10.0
_FIRST_CHUNK = 2  # leads in a pacing step's first claim; each next claim takes twice as many
_LOOK_PAST_DENIED = 64  # denied leads a pacing step claims past, at most (see _dial_tick)


_CALL_EVENTS = {
    "OriginateResponse",
    "DialEnd",
    "Hangup",
    "UserEvent",
    "AgentConnect",
}
