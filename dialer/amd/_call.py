"""AMD on live calls: the AudioSocket handler that runs a detector per call and hands the
verdict to the dialplan over AMI (``asterisk_conf/extensions.conf``, ``[puente-outbound]``).

Per call (:meth:`LiveAmd.handle`, run by the AudioSocket server once the UUID frame is in):

1. A detector listens. Frames go on the server's fast path into the call's list
   (``call.on_audio``); once per server tick (:meth:`LiveAmd.on_tick`) every call's new frames
   are analysed together (:func:`dialer.amd._batch.feed_batch`). Meanwhile the server keeps
   the call alive (a frame of silence whenever nothing was written to it for its
   ``keepalive_interval_ms``), so Asterisk never drops the idle call.
2. A verdict: the detector's, or at the hard cap (``total_analysis_ms`` + a margin, on the
   wall clock: frames may stall) the detector's decision at the cap. Every fault is NOTSURE,
   which goes to an agent: never a dropped live person (no AMI, Puente over
   ``max_concurrent`` detections, bad frames, a stalled peer, an error of ours).
3. ``AMDCAUSE``, ``PUENTE_QUEUE_TIMEOUT_S`` (HUMAN and NOTSURE: the seconds left of the 2 s
   rule, at least 1) and ``AMDSTATUS`` are set on the channel with AMI ``Setvar``, pipelined
   (Asterisk answers ``Response: Success`` / ``Message: Variable Set`` while the channel is
   inside ``AudioSocket()``, recorded in ``audiosocket/07``). The channel's name comes from
   ``Newchannel`` (:class:`~dialer.amd._channels.ChannelRegistry`).
4. MACHINE: the detector listens on for the beep (or the end of the greeting), so that the
   voicemail message the dialplan plays next starts after it.
5. The socket ends (0x00): ``AudioSocket()`` returns and the dialplan acts on the verdict.

When the socket ends otherwise (the caller hung up: HANGUP; a protocol error or a server
timeout: NOTSURE) there is nothing to set: the dialplan's own default is NOTSURE. Logs carry
the attempt id (the call's UUID) and never a phone number.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from dialer.amd._batch import feed_batch
from dialer.amd._channels import ChannelRegistry
from dialer.amd._detector import AmdDetector
from dialer.amd._exceptions import AmdSettingsError
from dialer.amd._frames import BLOCK_BYTES, BLOCK_MS
from dialer.amd._settings import AmdSettings
from dialer.amd._verdict import AmdEvent, AmdStatus, AmdVerdict, VoicemailCue
from pbx.ami import ActionFateUnknown, ActionResult, ActionTimeout, AmiClient
from pbx.audiosocket import (
    AudioSocketCall,
    AudioSocketServer,
    DtmfReceived,
    EndReason,
    ErrorReceived,
)

log = logging.getLogger(__name__)

#: Calls analysed per loop callback (see :meth:`LiveAmd.on_tick`).
_SLICE_CALLS = 250
#: Frames of one call waiting for analysis (5 s of audio; the AudioSocket server's own bound
#: on a call's queue) beyond which Puente is overloaded: the call stops being analysed.
_MAX_BACKLOG_FRAMES = 250

#: ``gaps_are_silence``: no frame for this long means the far end is silent...
_GAP_S = 0.2
#: ...up to this long ago (frames still on their way are not pre-empted).
_GAP_LAG_S = 0.1
_BLOCK_S = BLOCK_MS / 1000
_SILENT_BLOCK = bytes(BLOCK_BYTES)

#: The safe-harbor rule for abandoned calls: a person must reach an agent within 2 seconds of
#: the end of their greeting (US: 16 CFR 310.4(b)(4)(i) and 47 CFR 64.1200(a)(7)(i)).
AGENT_WITHIN_MS = 2000


@dataclass(frozen=True)
class LiveAmdSettings:
    """``[amd]``: answering-machine detection on live calls (the AudioSocket path)."""

    #: false: every call is handed straight back (the dialplan's NOTSURE: to an agent).
    enabled: bool = True
    #: Detections at once; a call over it is handed back at once as NOTSURE (overloaded).
    #: The default is what ``puente bench amd --server`` kept in real time on one core of a
    #: 2-core VM (600-700); size it to the node. Past what the core keeps up with, every
    #: call's verdict is late, and calls whose frames wait over 5 s are handed back as NOTSURE
    #: too (``PUENTE-OVERLOADED``).
    max_concurrent: int = 600
    #: The hard cap on the wall clock: the detector's ``total_analysis_ms`` plus this.
    verdict_margin_ms: int = 500
    #: After MACHINE: the detector's ``max_listen_ms`` plus this for the beep or greeting end.
    cue_margin_ms: int = 500
    setvar_timeout_s: float = 2.0
    #: Time to reach an agent after the greeting ends; what is left goes to the queue.
    agent_within_ms: int = AGENT_WITHIN_MS
    #: Channels remembered (Uniqueid -> name) for ``Setvar``.
    max_channels: int = 20_000
    #: true: a gap in the frames is the far end's silence, and the detector hears silence for
    #: it. Over a Local channel, or a trunk that stops its RTP while the far end is silent,
    #: Asterisk sends no frame then (the transcripts' README); without this, a person's
    #: "hello?" is never followed by the silence that makes it HUMAN (NOTSURE at the cap), and
    #: a machine's beep never ends. false (the default, for PJSIP trunks, whose RTP carries
    #: silence): a gap is a stalled peer, which gets NOTSURE at the cap.
    gaps_are_silence: bool = False
    #: A YAML mapping of detector parameters (:class:`AmdSettings` fields, milliseconds as in
    #: ``amd.conf``); none: the defaults, tuned on the corpus's development seeds.
    detector_file: Path | None = None

    def validate(self) -> None:
        if self.max_concurrent < 1 or self.max_channels < 1:
            raise ValueError("max_concurrent and max_channels must be >= 1")
        if self.verdict_margin_ms < 0 or self.cue_margin_ms < 0:
            raise ValueError("verdict_margin_ms and cue_margin_ms must be >= 0")
        if not 0 < self.setvar_timeout_s <= 30:
            raise ValueError(f"setvar_timeout_s {self.setvar_timeout_s} must be in (0, 30]")
        if not 1000 <= self.agent_within_ms <= 60_000:
            raise ValueError(f"agent_within_ms {self.agent_within_ms} must be 1000-60000")

    def detector_settings(self) -> AmdSettings:
        """The detector's parameters (from ``detector_file`` if set); errors name the file."""
        if self.detector_file is None:
            return AmdSettings()
        path = self.detector_file
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or {}
        except OSError as e:
            raise AmdSettingsError(f"AMD detector file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise AmdSettingsError(f"AMD detector file {path}: not valid YAML: {e}") from None
        except UnicodeDecodeError:
            raise AmdSettingsError(f"AMD detector file {path}: not UTF-8 text") from None
        except ValueError as e:  # a value YAML cannot build: the date 2026-02-30, a huge number
            raise AmdSettingsError(f"AMD detector file {path}: {str(e)[:120]}") from None
        if not isinstance(data, dict):
            raise AmdSettingsError(f"AMD detector file {path}: expected a mapping of settings")
        try:
            return AmdSettings.from_mapping(data)
        except AmdSettingsError as e:
            raise AmdSettingsError(f"AMD detector file {path}: {e}") from None


def _since_greeting_ms(
    verdict: AmdVerdict, since_decision_ms: float, since_answer_ms: float
) -> float:
    """How long ago the person's greeting ended: ``decision_ms - speech_end_ms`` before the
    decision (audio time), plus ``since_decision_ms`` (wall time); with no greeting heard,
    since the answer."""
    if verdict.speech_end_ms is None:
        return since_answer_ms
    return verdict.decision_ms - verdict.speech_end_ms + since_decision_ms


def queue_timeout_s(
    verdict: AmdVerdict,
    since_decision_ms: float,
    since_answer_ms: float,
    agent_within_ms: int = AGENT_WITHIN_MS,
) -> int:
    """``PUENTE_QUEUE_TIMEOUT_S``: what is left of ``agent_within_ms`` after the end of the
    person's greeting, in whole seconds rounded up, at least 1.

    The greeting's end is :func:`_since_greeting_ms` ago (with no greeting heard, the answer).
    """
    since_end = _since_greeting_ms(verdict, since_decision_ms, since_answer_ms)
    return max(1, math.ceil((agent_within_ms - since_end) / 1000))


_LIVE = frozenset({AmdStatus.HUMAN, AmdStatus.NOTSURE})


def greeting_end(verdict: AmdVerdict, started: float, decided_at: float) -> float:
    """When the person's greeting ended, on the clock of ``started`` (the answer) and
    ``decided_at`` (the verdict), by the rule :func:`queue_timeout_s` counts from."""
    return decided_at - _since_greeting_ms(verdict, 0.0, (decided_at - started) * 1000) / 1000


class _Ami(Protocol):
    """What the handler needs of the AMI client (:class:`pbx.ami.AmiClient`)."""

    @property
    def connected(self) -> bool: ...

    async def send_action(
        self,
        action: str,
        fields: list[tuple[str, str]],
        *,
        action_id: str | None = None,
        timeout_s: float | None = None,
    ) -> ActionResult: ...


class _NonAudio:
    """A call's DTMF and Asterisk's error frames: DTMF is ignored (nothing here listens for
    keys); the first error frame is logged (once a call) and counted."""

    __slots__ = ("amd", "attempt", "warned")

    def __init__(self, amd: LiveAmd, attempt: str) -> None:
        self.amd, self.attempt, self.warned = amd, attempt, False

    def __call__(self, event: DtmfReceived | ErrorReceived) -> None:
        if isinstance(event, ErrorReceived) and not self.warned:
            self.warned = True
            self.amd.faults["asterisk_error"] += 1
            log.warning(
                "amd %s: Asterisk sent an AudioSocket error frame (code %s); "
                "further ones on this call are not logged",
                self.attempt,
                event.code.hex() or "none",
            )


def _discard(_pcm: bytes) -> None:
    """Audio after the decision: nobody listens (and the server's queue stays empty)."""


class _Session:
    """One call under analysis: its detector, the frames that arrived since the last tick,
    and what came out."""

    __slots__ = (
        "_waiter",
        "attempt",
        "audio_at",
        "call",
        "cue",
        "decided_at",
        "det",
        "feeding",
        "frames",
        "gone",
        "loop",
        "started_at",
        "verdict",
    )

    def __init__(
        self, call: AudioSocketCall, det: AmdDetector, attempt: str, started_at: float
    ) -> None:
        self.call = call
        self.det = det
        self.attempt = attempt
        self.loop = asyncio.get_running_loop()
        self.started_at = started_at
        #: Loop time up to which the detector has the call's audio (frames, or gaps as silence).
        self.audio_at = started_at
        self.frames: list[bytes] = []
        self.verdict: AmdVerdict | None = None
        self.cue: VoicemailCue | None = None
        self.decided_at = 0.0
        self.gone = False  # the socket ended under us
        self.feeding = True  # the detector wants the audio
        self._waiter: asyncio.Future[None] | None = None

    def elapsed_ms(self) -> int:
        return int((self.loop.time() - self.started_at) * 1000)

    def take(self, event: AmdEvent | None) -> None:
        if isinstance(event, AmdVerdict):
            if self.verdict is None:
                self.verdict = event
                self.decided_at = self.loop.time()
        elif isinstance(event, VoicemailCue) and self.cue is None:
            self.cue = event
        self.wake()

    def decide(self, status: AmdStatus, cause: str) -> None:
        """A verdict of ours (a fault), when the detector has none: it hears no more."""
        if self.verdict is None:
            self.feeding = False
            self.take(AmdVerdict(status, cause, self.det.now_ms))

    def give_up(self, cause: str) -> None:
        """Stop listening: NOTSURE if undecided, else (after MACHINE) the cue is now."""
        if self.verdict is None:
            self.decide(AmdStatus.NOTSURE, cause)
        else:
            self.feeding = False
            if self.cue is None:
                self.take(VoicemailCue("FAULT", self.det.now_ms))

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, deadline: float) -> bool:
        """Until something happens (True) or ``deadline`` (loop time) passes (False)."""
        self._waiter = self.loop.create_future()
        try:
            async with asyncio.timeout_at(deadline):
                await self._waiter
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True


class LiveAmd:
    """The AudioSocket handler (:meth:`handle`) and the per-tick analysis (:meth:`on_tick`).

    Wire it with :meth:`attach` (to the AudioSocket server, before it serves) and
    :meth:`bind` (to the AMI client, before any call is originated: ``Newchannel`` names the
    channels).
    """

    def __init__(
        self, settings: LiveAmdSettings | None = None, detector: AmdSettings | None = None
    ) -> None:
        self.settings = settings or LiveAmdSettings()
        self.detector = detector or self.settings.detector_settings()
        self.channels = ChannelRegistry(self.settings.max_channels)
        self._ami: _Ami | None = None
        self._attached = False
        self._sessions: dict[AmdDetector, _Session] = {}
        #: Attempts under analysis: a channel runs one ``AudioSocket()`` at a time, so a second
        #: connection with the same UUID is not that channel's (a misrouted or hostile peer).
        self._attempts: set[str] = set()
        self._passing = False  # an analysis pass is under way (in slices)
        self._idle = asyncio.Event()  # no call under analysis
        self._idle.set()
        #: Verdicts handed out, by AMDSTATUS; faults by kind (counters for status and metrics).
        self.verdicts: collections.Counter[str] = collections.Counter()
        #: An observer of each verdict delivered: (status, cause, decision seconds); metrics.
        self.on_verdict: Callable[[str, str, float], None] | None = None
        # (attempt, monotonic time the person's greeting ended): a live answer's, for the
        # runner that follows the call to hold the agent's connect to the 2 s rule.
        self.on_greeting_end: Callable[[str, float], None] | None = None
        self.faults: collections.Counter[str] = collections.Counter()
        #: Frames analysed (all calls), and of them the silence put in gaps (gaps_are_silence).
        self.frames_total = 0
        self.frames_filled = 0
        #: The last calls' outcomes: (attempt, verdict, voicemail cue).
        self.recent: collections.deque[tuple[str, AmdVerdict, VoicemailCue | None]] = (
            collections.deque(maxlen=100)
        )

    # -- wiring -------------------------------------------------------------------------------
    def attach(self, server: AudioSocketServer) -> None:
        """Analyse once per tick of ``server`` what arrived in it."""
        server.tick_listeners.append(self.on_tick)
        server.call_listeners.append(self.on_call)
        self._attached = True

    def on_call(self, call: AudioSocketCall) -> None:
        """A call's DTMF and Asterisk's error frames go to :class:`_NonAudio` as they are
        read, from the UUID on: queued, a burst of them would overload the call."""
        call.on_event = _NonAudio(self, str(call.uuid))

    def bind(self, ami: AmiClient | _Ami) -> None:
        """Set verdicts through ``ami``, and learn channel names from its events."""
        if isinstance(ami, AmiClient):
            ami.subscribe(self.channels.on_newchannel, "Newchannel")
            ami.subscribe(self.channels.on_hangup, "Hangup")
        self._ami = ami

    async def drain(self) -> None:
        """Until no call is under analysis (their verdicts set): run before the AMI client
        closes, so that calls in progress at shutdown still get theirs."""
        await self._idle.wait()

    @property
    def live(self) -> int:
        """Calls under analysis now."""
        return len(self._sessions)

    def status(self) -> str:
        v, f = self.verdicts, self.faults
        verdicts = " ".join(f"{k.lower()} {v[k]}" for k in AmdStatus if v[k]) or "none yet"
        faults = " ".join(f"{k} {n}" for k, n in sorted(f.items())) or "none"
        return f"{self.live} listening  verdicts: {verdicts}  faults: {faults}"

    # -- per tick -------------------------------------------------------------------------------
    def on_tick(self) -> None:
        """Analyse every frame that arrived for every call, together; note ended calls.

        The work goes in slices of ``_SLICE_CALLS`` calls, one loop callback each, so that a
        tick of thousands of calls never holds the event loop for long (AMI, timers and the
        server's next tick get their turn in between). A pass still running when the next
        tick comes takes that tick's frames along.
        """
        if self._passing or not self._sessions:
            return
        self._passing = True
        self._slice(list(self._sessions.values()))

    def _slice(self, sessions: list[_Session]) -> None:
        now, rest = sessions[:_SLICE_CALLS], sessions[_SLICE_CALLS:]
        try:
            self._analyse(now)
        finally:
            if rest:
                asyncio.get_running_loop().call_soon(self._slice, rest)
            else:
                self._passing = False

    def _analyse(self, sessions: list[_Session]) -> None:
        fed: list[_Session] = []
        streams: list[tuple[AmdDetector, list[bytes]]] = []
        ended: list[_Session] = []
        frames_total = 0
        fill = self.settings.gaps_are_silence
        now = asyncio.get_running_loop().time() if fill else 0.0
        for sess in sessions:
            frames = sess.frames
            if fill:
                if frames:
                    sess.audio_at = now
                elif (
                    now - sess.audio_at >= _GAP_S
                    and sess.feeding
                    and not sess.det._done
                    and not sess.call.closed
                ):
                    n = int((now - sess.audio_at - _GAP_LAG_S) / _BLOCK_S)
                    frames.extend([_SILENT_BLOCK] * n)
                    sess.audio_at += n * _BLOCK_S
                    self.frames_filled += n
            if frames:
                if len(frames) > _MAX_BACKLOG_FRAMES and sess.feeding:
                    # Analysis fell seconds behind the audio: Puente is overloaded.
                    self.faults["backlog"] += 1
                    log.warning(
                        "amd %s: %d frames waiting for analysis; NOTSURE", sess.attempt, len(frames)
                    )
                    sess.give_up("PUENTE-OVERLOADED")
                if sess.feeding and not sess.det._done:
                    fed.append(sess)
                    streams.append((sess.det, frames))
                    frames_total += len(frames)
                else:
                    frames.clear()
            if not sess.gone and sess.call.closed:
                ended.append(sess)
        if fed:
            self.frames_total += frames_total
            try:
                events = feed_batch(streams)
            except Exception:
                log.exception("amd: analysis failed for %d calls; NOTSURE for them", len(fed))
                events = []
                for sess in fed:
                    sess.give_up("PUENTE-ERROR")
            for _, frames in streams:
                frames.clear()
            if events:
                by_det = {sess.det: sess for sess in fed}
                for det, event in events:
                    by_det[det].take(event)
        for sess in ended:
            sess.gone = True
            if sess.verdict is None:
                reason = sess.call.end_reason
                if reason is EndReason.PEER_HANGUP:
                    sess.take(sess.det.hangup())
                else:
                    name = reason.name.replace("_", "-") if reason else "CLOSED"
                    sess.decide(AmdStatus.NOTSURE, f"PUENTE-{name}")
            sess.wake()

    # -- per call --------------------------------------------------------------------------------
    async def handle(self, call: AudioSocketCall) -> None:
        """The AudioSocket handler: detect, set the verdict on the channel, end the socket."""
        attempt = str(call.uuid)
        # Audio goes to ``on_audio`` (a session's list, or _discard on the paths that hand the
        # call back); DTMF and Asterisk's error frames to ``on_event`` (set by on_call).
        if call.on_event is None:  # (a server this was not attached to)
            call.on_event = _NonAudio(self, attempt)
        try:
            await self._handle(call, attempt)
        except Exception:
            self.faults["error"] += 1
            log.exception("amd %s: failed; handing the call back (NOTSURE)", attempt)
        finally:
            call.on_audio = _discard
            if not call.closed:
                await call.hangup()

    async def _handle(self, call: AudioSocketCall, attempt: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ami = self._ami
        if not self._attached:  # a wiring error: nothing would ever analyse the frames
            call.on_audio = _discard
            self.faults["not_attached"] += 1
            log.error("amd %s: not attached to the AudioSocket server; NOTSURE", attempt)
            return
        if ami is None or not ami.connected:
            call.on_audio = _discard
            self.faults["no_ami"] += 1
            log.warning("amd %s: no AMI connection; handing the call back (NOTSURE)", attempt)
            return
        if attempt in self._attempts:
            # Its verdict would be set on the channel of the call under analysis, over that
            # call's own (a MACHINE for a person's channel drops the person): nothing is set.
            call.on_audio = _discard
            self.faults["duplicate"] += 1
            log.warning(
                "amd %s: a second AudioSocket connection for an attempt under analysis (from "
                "%s); ended without a verdict",
                attempt,
                call.peer,
            )
            return
        if len(self._sessions) >= self.settings.max_concurrent:
            call.on_audio = _discard
            self.faults["overloaded"] += 1
            log.warning(
                "amd %s: %d detections running (max_concurrent); NOTSURE", attempt, self.live
            )
            verdict = AmdVerdict(AmdStatus.NOTSURE, "PUENTE-OVERLOADED", 0)
            self.verdicts[str(verdict.status)] += 1
            await self._deliver(ami, attempt, verdict, started, started)
            return
        det = AmdDetector(self.detector)
        sess = _Session(call, det, attempt, started)
        self._sessions[det] = sess
        self._attempts.add(attempt)
        self._idle.clear()
        try:
            call.on_audio = sess.frames.append  # hands over what arrived with the UUID too
            await self._until_verdict(sess)
            verdict = sess.verdict
            assert verdict is not None
            if sess.gone:
                self._record(sess, verdict, "socket ended")
                return
            if self.on_greeting_end is not None and verdict.status in _LIVE:
                self.on_greeting_end(attempt, greeting_end(verdict, started, sess.decided_at))
            delivered = await self._deliver(ami, attempt, verdict, started, sess.decided_at)
            if delivered is not False and verdict.status is AmdStatus.MACHINE:
                # Set, or maybe set (the answer was lost): the dialplan may play the message
                # as soon as the socket ends, so that waits for the beep or the greeting's end.
                await self._until_cue(sess)
            delivery = {True: "set", False: "not set", None: "maybe set"}[delivered]
            self._record(sess, verdict, delivery)
        finally:
            del self._sessions[det]
            self._attempts.discard(attempt)
            if not self._sessions:
                self._idle.set()

    async def _until_verdict(self, sess: _Session) -> None:
        cap = (
            sess.started_at
            + (self.detector.total_analysis_ms + self.settings.verdict_margin_ms) / 1000
        )
        while sess.verdict is None:
            if not await sess.wait(cap):
                # The hard cap on the wall clock (frames stalled or lag): decide now.
                sess.take(sess.det.tick(sess.elapsed_ms()))
                sess.decide(AmdStatus.NOTSURE, f"TOOLONG-{sess.elapsed_ms()}")

    async def _until_cue(self, sess: _Session) -> None:
        cap = sess.decided_at + (self.detector.max_listen_ms + self.settings.cue_margin_ms) / 1000
        while sess.cue is None and not sess.gone and not sess.det.done:
            if not await sess.wait(cap):
                sess.take(sess.det.tick(sess.elapsed_ms()))
                return

    async def _deliver(
        self, ami: _Ami, attempt: str, verdict: AmdVerdict, started: float, decided_at: float
    ) -> bool | None:
        """Set the verdict on the call's channel: True when every variable was set, False
        when ``AMDSTATUS`` was certainly not set (not sent, or refused), None when it may have
        been (sent, but its answer timed out or the connection dropped: Asterisk may well
        have run it, and the dialplan would then act on it)."""
        channel = self.channels.channel(attempt)
        if channel is None:
            self.faults["no_channel"] += 1
            log.warning(
                "amd %s: no channel known for this attempt (no Newchannel seen); the dialplan "
                "keeps NOTSURE",
                attempt,
            )
            return False
        pairs = [("AMDCAUSE", verdict.cause)]
        if verdict.status is not AmdStatus.MACHINE:
            now = asyncio.get_running_loop().time()
            seconds = queue_timeout_s(
                verdict,
                (now - decided_at) * 1000,
                (now - started) * 1000,
                self.settings.agent_within_ms,
            )
            pairs.append(("PUENTE_QUEUE_TIMEOUT_S", str(seconds)))
        pairs.append(("AMDSTATUS", str(verdict.status)))  # last: the one the dialplan acts on
        timeout_s = self.settings.setvar_timeout_s
        results = await asyncio.gather(
            *(
                ami.send_action(
                    "Setvar",
                    [("Channel", channel), ("Variable", name), ("Value", value)],
                    timeout_s=timeout_s,
                )
                for name, value in pairs
            ),
            return_exceptions=True,
        )
        problems = [
            str(r) if isinstance(r, BaseException) else r.message or r.response.name
            for r in results
            if isinstance(r, BaseException) or not r.ok
        ]
        if problems:
            self.faults["setvar_failed"] += 1
            status = results[-1]  # AMDSTATUS: the one the dialplan acts on
            fate_unknown = isinstance(status, ActionTimeout | ActionFateUnknown)
            # The attempt names the call; the channel's name is not logged: a Local channel's
            # (``Local/+5255...@ctx-0001;1``, a ``Local/ctx`` trunk) holds the dialed number.
            log.warning(
                "amd %s: Setvar failed (%s); the dialplan may keep NOTSURE",
                attempt,
                "; ".join(problems),
            )
            if fate_unknown:
                return None
            return isinstance(status, ActionResult) and status.ok
        return True

    def _record(self, sess: _Session, verdict: AmdVerdict, delivery: str) -> None:
        self.verdicts[str(verdict.status)] += 1
        if self.on_verdict is not None:
            self.on_verdict(str(verdict.status), verdict.cause, verdict.decision_ms / 1000)
        cue = sess.cue
        self.recent.append((sess.attempt, verdict, cue))
        log.info(
            "amd %s: %s %s at %d ms (speech %s-%s ms)%s, %s",
            sess.attempt,
            verdict.status,
            verdict.cause,
            verdict.decision_ms,
            verdict.speech_onset_ms,
            verdict.speech_end_ms,
            f", voicemail cue {cue.reason} at {cue.cue_ms} ms" if cue is not None else "",
            delivery,
        )
