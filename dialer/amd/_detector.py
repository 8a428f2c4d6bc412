"""Puente's answering-machine detector: 20 ms frames in, one verdict out. Pure: no I/O, no clock.

Per 20 ms block: the energy against an adaptive noise floor (it falls at once to any quieter
frame and rises slowly), a narrow-band tone test (:mod:`dialer.amd._tone`) and webrtcvad. A
block is speech when webrtcvad says so, its energy clears the floor by ``speech_margin_db``
and it is not a tone. From those flags a timeline: the onset of the first utterance (a burst
of ``min_word_ms`` of speech), the end of the last speech, the tones heard.

The rules, first match wins, evaluated after every block:

- a tone before any speech (``pre_speech_tone_ms``): MACHINE, ``FAX``/``TONE``; at a SIT's
  frequency, MACHINE ``SIT-<kind>-<hz>-<ms>`` once its three segments tell the kind
  (:class:`~dialer.amd._tone.SitCollector`: by the third segment, within ``sit_max_ms`` of the
  first onset and the cap; ``UNK`` when they cannot be told);
- a beep after speech started: MACHINE, ``BEEP``. A beep comes after a pause; one at a
  voice's pitch (below ``voice_max_hz``) and shorter than ``low_beep_ms`` counts only once
  ``beep_quiet_after_ms`` without speech have followed it (a held vowel can look like one,
  but the voice goes on);
- a pause of ``after_greeting_silence_ms`` after the first utterance, or of
  ``after_long_utterance_silence_ms`` once it has spanned ``long_utterance_ms``: HUMAN (a
  person says "¿Bueno?" and waits; a recorded greeting goes on after its sentence pauses);
- speech going on for ``greeting_ms`` from its onset without such a pause: MACHINE,
  ``LONGGREETING``;
- no speech for ``initial_silence_ms``: ``INITIALSILENCE`` (NOTSURE by default);
- at ``total_analysis_ms``: MACHINE ``LONGGREETING`` if speech is still going on and has for
  ``greeting_at_cap_ms`` (a greeting that began late); HUMAN if it ended at least
  ``after_greeting_silence_ms`` before (no time is left for the longer pause); else NOTSURE
  ``TOOLONG``.

After a MACHINE verdict (except fax and SIT) the detector keeps listening and hands out one
:class:`VoicemailCue`: the end of the beep, or the end of the greeting when no beep follows.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import webrtcvad

try:  # the C function behind ``webrtcvad.Vad.is_speech``: the same answer, without the wrapper
    from _webrtcvad import process as _vad_process
except ImportError:  # pragma: no cover - another build of webrtcvad
    _vad_process = None

from dialer.amd._frames import (
    BLOCK_BYTES,
    BLOCK_MS,
    BLOCK_SAMPLES,
    SAMPLE_RATE,
    Blocker,
    bad_payload_cause,
)
from dialer.amd._settings import AmdSettings
from dialer.amd._tone import (
    EDGE_TOLERANCE_MS,
    SitCollector,
    Tone,
    ToneAnalyser,
    ToneFrame,
    ToneTracker,
    tone_kind,
)
from dialer.amd._verdict import AmdEvent, AmdStatus, AmdVerdict, VoicemailCue

#: Frames quieter than this (RMS about 1 LSB) are digital silence: a lost packet or an idle
#: codec. They count as silence but never pull the noise floor down.
_LOST_DB = 3.0
#: The noise floor is never taken below this (RMS about 10 LSB, -70 dBFS).
_MIN_FLOOR_DB = 20.0
#: Frames this far over the floor get the tone test; frames this close to it teach the
#: tone test what the line noise sounds like.
_TONE_GATE_DB = 2.0
_NOISE_DB = 1.5
#: A level within this range for this many blocks (300 ms) is line noise: the floor follows.
_STEADY_DB = 4.0
_STEADY_BLOCKS = 15
#: Blocks during which the noise floor is too young to gate the tone test on.
_YOUNG_FLOOR_BLOCKS = 25
#: The noise spectrum changes slowly: learn it from one quiet block in four (CPU).
_NOISE_EVERY = 4
_SILENT_BLOCK = bytes(BLOCK_BYTES)
#: What a block needs from its spectrum (see :meth:`AmdDetector._gate`).
NEED_TONE = 1
NEED_NOISE = 2
#: How far back the speech timeline can be rewound when a tone proves steady (blocks).
_HISTORY_BLOCKS = 24
#: Where a tone's edges are relative to the block that first/last shows it.
_ONSET_LAG_MS = 2
_END_LAG_MS = 10


def level_db(energy: float) -> float:
    """The level of a 20 ms block from its energy (the sum of its squared samples)."""
    return 10.0 * math.log10(energy / BLOCK_SAMPLES + 1.0)


def _is_speech(vad: webrtcvad.Vad, rate: int, block: bytes, samples: int) -> bool:
    return bool(vad.is_speech(block, rate))


class AmdDetector:
    """Feed 8 kHz s16le mono audio with :meth:`feed`; it returns an event when there is one.

    The first event is the :class:`AmdVerdict`. After a MACHINE verdict one
    :class:`VoicemailCue` may follow. Every later call returns None.
    """

    def __init__(self, settings: AmdSettings | None = None) -> None:
        s = settings or AmdSettings()
        self.settings = s
        self._vad = webrtcvad.Vad(s.vad_mode)
        handle = getattr(self._vad, "_vad", None)
        if _vad_process is not None and handle is not None:
            self._vad_process, self._vad_handle = _vad_process, handle
        else:  # pragma: no cover
            self._vad_process, self._vad_handle = _is_speech, self._vad
        self._blocker = Blocker()
        self._analyser = ToneAnalyser(s)
        self._tones = ToneTracker(s)
        self._rise_db = s.floor_rise_db_per_s * BLOCK_MS / 1000
        self._speech_margin_db = s.speech_margin_db
        self._between_words_ms = s.between_words_ms
        self._min_word_ms = s.min_word_ms
        self._resume_ms = s.resume_ms
        self._now_ms = 0
        self._prev = _SILENT_BLOCK  # the block before: the tone test's window is both
        self._floor_db: float | None = None
        self._quiet_blocks = 0
        self._floor_blocks = 0
        self._steady = (0.0, 0.0, 0)  # (low, high, blocks) of the current steady stretch
        # speech timeline
        self._cand_start: int | None = None
        self._cand_last = 0
        self._cand_speech_ms = 0
        self._run_ms = 0
        self._onset_ms: int | None = None
        self._last_speech_ms: int | None = None
        self._speech_db = 0.0  # running level of speech blocks
        # tones
        self._beep: Tone | None = None
        self._tone_accounted = False
        self._tone_gap = (-1, 0)  # (tone onset, quiet before it), for the steady tone
        self._pending_beep: Tone | None = None  # a low beep that ended: is quiet following?
        self._sit: SitCollector | None = None  # a SIT before speech: its segments awaited
        self._history: deque[tuple[int, int | None, int | None, int | None, int, int]] = deque(
            maxlen=_HISTORY_BLOCKS
        )
        # outcome
        self.verdict: AmdVerdict | None = None
        self.cue: VoicemailCue | None = None
        self._listening = False
        self._done = False
        self._queued: list[AmdEvent] = []

    # -- public API -------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        """Milliseconds of audio analysed so far."""
        return self._now_ms

    @property
    def done(self) -> bool:
        """True when nothing more will come out of this detector."""
        return self._done and not self._queued

    def feed(
        self, frame: bytes | bytearray | memoryview, elapsed_ms: int | None = None
    ) -> AmdEvent | None:
        """Analyse one payload. ``elapsed_ms`` (optional) is the time since answer as the
        caller sees it: when frames stall, it enforces the cap on real time like app_amd."""
        if self._done:
            return self._pop()
        cause = bad_payload_cause(frame, self.settings.max_frame_bytes)
        if cause is not None:
            self._fault(cause)
            return self._pop()
        for block in self._blocker.push(frame):
            self._block(block)
            if self._done:
                break
        if elapsed_ms is not None:
            self._check_elapsed(elapsed_ms)
        return self._pop()

    def tick(self, elapsed_ms: int) -> AmdEvent | None:
        """No audio came; the caller's clock says ``elapsed_ms`` since answer."""
        if not self._done:
            self._check_elapsed(elapsed_ms)
        return self._pop()

    def hangup(self) -> AmdVerdict:
        """The far end hung up: HANGUP unless a verdict was already given."""
        if self.verdict is None:
            if self._sit is not None:  # the network's tones were heard: that is the answer
                self._decide_sit(self._sit.settle(self._now_ms, self._tones.current))
            else:
                self._decide(AmdStatus.HANGUP, "")
        self._listening = False
        self._done = True
        self._queued.clear()  # the verdict is the answer; no cue after a hang-up
        assert self.verdict is not None
        return self.verdict

    def finish(self) -> AmdVerdict:
        """The stream ended: decide as if silence followed (bounded by the caps).

        Used for recordings; the verdict and the cue (if any) are then in :attr:`verdict` and
        :attr:`cue`.
        """
        if self._blocker.pending_bytes:
            self._block_padded()
        cap = self._now_ms + self.settings.total_analysis_ms + self.settings.max_listen_ms
        while not self._done and self._now_ms < cap:
            self._block(_SILENT_BLOCK)
        if self.verdict is None:
            self._decide(AmdStatus.NOTSURE, f"TOOLONG-{self._now_ms}")
        self._done = True
        self._queued.clear()  # handed out through the return value and the attributes
        return self.verdict

    # -- internals ----------------------------------------------------------------------------
    def _pop(self) -> AmdEvent | None:
        return self._queued.pop(0) if self._queued else None

    def _block_padded(self) -> None:
        rest = BLOCK_BYTES - self._blocker.pending_bytes
        for block in self._blocker.push(bytes(rest)):
            self._block(block)

    def _fault(self, cause: str) -> None:
        if self.verdict is None:
            self._decide(AmdStatus.NOTSURE, cause)
        elif self._listening:
            self._cue("FAULT", self._now_ms)
        self._listening = False
        self._done = True

    def _check_elapsed(self, elapsed_ms: int) -> None:
        s = self.settings
        if self.verdict is None and elapsed_ms >= s.total_analysis_ms:
            # Audio stalled or lagging: the cap holds on the caller's clock too (as app_amd's).
            self._at_cap(elapsed_ms)
        elif (
            self._listening
            and self.verdict is not None
            and elapsed_ms >= self.verdict.decision_ms + s.max_listen_ms
        ):
            self._cue("TIMEOUT", max(self._now_ms, elapsed_ms))

    def _decide(self, status: AmdStatus, cause: str) -> None:
        beep_ms = self._beep.onset_ms if self._beep is not None else None
        self.verdict = AmdVerdict(
            status=status,
            cause=cause,
            decision_ms=self._now_ms,
            speech_onset_ms=self._onset_ms,
            speech_end_ms=self._last_speech_ms,
            beep_ms=beep_ms,
        )
        self._queued.append(self.verdict)
        if status is AmdStatus.MACHINE and not cause.startswith(("FAX", "SIT")):
            self._listening = True
        else:
            self._done = True

    def _cue(self, reason: str, cue_ms: int, beep: Tone | None = None) -> None:
        self.cue = VoicemailCue(
            reason=reason,
            cue_ms=cue_ms,
            beep_ms=beep.onset_ms if beep else None,
            beep_hz=round(beep.hz) if beep else None,
            greeting_end_ms=self._last_speech_ms,
        )
        self._queued.append(self.cue)
        self._listening = False
        self._done = True

    def _block(self, block: bytes) -> None:
        """Analyse one 20 ms block: features, the tone test if the gate asks, then the rest.

        :func:`dialer.amd._batch.feed_batch` runs the same three steps for many detectors,
        the power and the spectra vectorised over all of them; the results are identical.
        """
        x = np.frombuffer(block, dtype="<i2").astype(np.float64)
        db = level_db(float(np.dot(x, x)))
        need = self._gate(db)
        tone_frame = None
        if need:
            analyser = self._analyser
            window = np.frombuffer(self._prev + block, dtype="<i2").astype(np.float64)
            p = analyser.spectrum(window)
            if need == NEED_TONE:
                tone_frame = analyser.tonal_frame(p, db)
            else:
                analyser.learn_noise(p)
        self._advance(block, db, tone_frame)

    def _gate(self, db: float) -> int:
        """What the block at level ``db`` needs from its spectrum: nothing, the tone test
        (``NEED_TONE``) or teaching the noise spectrum (``NEED_NOISE``)."""
        if db < _LOST_DB:
            return 0
        floor = self._floor_db
        ref = floor if floor is not None and floor > _MIN_FLOOR_DB else _MIN_FLOOR_DB
        # A call may open on a tone (fax, SIT) over a digitally silent line: then the floor
        # starts on the tone itself, so young floors and tones in progress are always looked
        # at.
        if db >= _MIN_FLOOR_DB + _TONE_GATE_DB:
            if (
                db >= ref + _TONE_GATE_DB
                or self._floor_blocks <= _YOUNG_FLOOR_BLOCKS
                or self._tones._onset is not None
            ):
                return NEED_TONE
            if db > ref + _NOISE_DB:
                return 0
        elif db > ref + _NOISE_DB:
            return 0
        self._quiet_blocks += 1
        return NEED_NOISE if self._quiet_blocks % _NOISE_EVERY == 1 else 0

    def _advance(self, block: bytes, db: float, tone_frame: ToneFrame | None) -> None:
        """Everything after the spectral test: the floor, the tones, speech, the rules.

        Run for every block of every call: written for speed (locals, the timeline inline)."""
        self._prev = block
        start = self._now_ms
        now = self._now_ms = start + BLOCK_MS
        floor = self._floor_db
        lost = db < _LOST_DB
        if lost:
            ref = floor if floor is not None and floor > _MIN_FLOOR_DB else _MIN_FLOOR_DB
        else:
            # The floor falls at once and rises slowly: speech never lifts it far. But a
            # level that holds steady for a while (and is not a tone) is the line, not a
            # voice, which swings syllable by syllable: the floor jumps up to it.
            lo, hi, n = self._steady
            if tone_frame is None and (hi if hi > db else db) - (lo if lo < db else db) <= (
                _STEADY_DB
            ):
                lo = lo if lo < db else db
                n += 1
                self._steady = (lo, hi if hi > db else db, n)
            else:
                lo = db
                n = 0 if tone_frame is not None else 1
                self._steady = (db, db, n)
            if floor is None or db < floor:
                floor = db
            else:
                rise = floor + self._rise_db
                floor = db if db < rise else rise
            if n >= _STEADY_BLOCKS and lo > floor + 1.0:
                floor = lo - 1.0
                # ...and what that stretch made of the speech timeline is undone.
                self._rewind(start - (n - 1) * BLOCK_MS)
            self._floor_db = floor
            self._floor_blocks += 1
            ref = floor if floor > _MIN_FLOOR_DB else _MIN_FLOOR_DB
        # The window is [start - 20, now); a tone shows once it covers most of it, hence the
        # edges (measured on tones at random offsets: onset and end within +-10 ms).
        tones = self._tones
        if tone_frame is None and tones._onset is None:  # no tone, none going on
            ended = current = None
        else:
            ended = tones.push(start - _ONSET_LAG_MS, now - _END_LAG_MS, tone_frame, lost)
            current = tones.current

        # A tonal window is speech too until its tone proves steady (a voice's harmonic can
        # look like a tone for a moment; a beep's first 100 ms cannot be told from it yet).
        speech = (
            not lost
            and db >= ref + self._speech_margin_db
            and not (tone_frame is not None and current is not None and current.steady)
            and self._vad_process(self._vad_handle, SAMPLE_RATE, block, BLOCK_SAMPLES)
        )
        # Where speech stood before this block, in case a tone starting here proves steady.
        onset = self._onset_ms
        self._history.append(
            (
                start,
                onset,
                self._last_speech_ms,
                self._cand_start,
                self._cand_speech_ms,
                self._cand_last,
            )
        )
        # The timeline: the first utterance's onset (a burst of min_word_ms), then the end of
        # the last speech (any resume_ms of it after the onset).
        if speech:
            run = self._run_ms = self._run_ms + BLOCK_MS
            if onset is None:
                cand = self._cand_start
                if cand is None or start - self._cand_last > self._between_words_ms:
                    cand = self._cand_start = start
                    self._cand_speech_ms = 0
                self._cand_speech_ms += BLOCK_MS
                self._cand_last = now
                if self._cand_speech_ms >= self._min_word_ms:
                    self._onset_ms = cand
                    self._last_speech_ms = now
            elif run >= self._resume_ms:
                self._last_speech_ms = now
            sdb = self._speech_db
            self._speech_db = sdb + 0.1 * (db - sdb) if sdb else db
            if self._pending_beep is not None:  # a voice goes on: that was no beep
                self._pending_beep = None
        else:
            self._run_ms = 0
        if current is None:
            self._tone_accounted = False
        elif current.steady and not self._tone_accounted:
            # The tone's first windows were taken for speech: take them back, and note how
            # long the line was quiet before it.
            self._tone_accounted = True
            self._rewind(current.onset_ms + _ONSET_LAG_MS - BLOCK_MS)
            # (Before the onset, a burst too short to be one yet is speech all the same.)
            last = self._last_speech_ms
            if last is None and self._cand_start is not None:
                last = self._cand_last
            self._tone_gap = (current.onset_ms, 10**9 if last is None else current.onset_ms - last)

        if self.verdict is None:
            self._rules(now, current, ended)
        elif self._listening:
            self._listen(now, current, ended)

    def _rewind(self, before_ms: int) -> None:
        """Put the speech timeline back as it was before the block starting at ``before_ms``."""
        if not self._history:
            return
        chosen = self._history[0]
        for entry in self._history:
            if entry[0] > before_ms:
                break
            chosen = entry
        (
            _,
            self._onset_ms,
            self._last_speech_ms,
            self._cand_start,
            self._cand_speech_ms,
            self._cand_last,
        ) = chosen
        self._run_ms = 0

    def _rules(self, now: int, current: Tone | None, ended: Tone | None) -> None:
        if self._sit is not None:  # (one test per block; the SIT's own work only while it lasts)
            self._await_sit(now, current, ended)
            return
        s = self.settings
        if current is not None and current.steady:
            tone: Tone | None = current
        elif ended is not None and ended.steady:
            tone = ended
        else:
            tone = None
        pending = self._pending_beep
        if pending is not None and now - pending.end_ms >= s.beep_quiet_after_ms:
            self._take_beep(pending, ended=True)
            return
        if tone is not None:  # (rare: most blocks go straight to the timing rules)
            if self._onset_ms is None:
                if tone.duration_ms + EDGE_TOLERANCE_MS >= s.pre_speech_tone_ms:
                    self._beep = tone
                    kind = tone_kind(tone.hz)
                    if kind == "SIT":
                        # Which SIT (a dead number, or a congested network) is in its three
                        # segments: hear them out (bounded), then decide.
                        self._sit = SitCollector(tone, s.sit_max_ms)
                        self._await_sit(now, current, None)  # (the collector has ``tone``)
                        return
                    self._decide(AmdStatus.MACHINE, f"{kind}-{round(tone.hz)}-{tone.duration_ms}")
                    return
            elif self._is_beep(tone):
                if not self._needs_quiet_after(tone):
                    self._take_beep(tone, ended=tone is ended)
                    return
                if tone is ended and not self._run_ms:
                    self._pending_beep = tone
        if self._onset_ms is not None and self._last_speech_ms is not None:
            silence = now - self._last_speech_ms
            span = self._last_speech_ms - self._onset_ms
            wait = (
                s.after_greeting_silence_ms
                if span < s.long_utterance_ms
                else s.after_long_utterance_silence_ms
            )
            if silence >= wait and current is None and self._pending_beep is None:
                self._decide(AmdStatus.HUMAN, f"HUMAN-{silence}-{wait}")
                return
            if span >= s.greeting_ms:
                self._decide(AmdStatus.MACHINE, f"LONGGREETING-{span}-{s.greeting_ms}")
                return
        elif now >= s.initial_silence_ms and current is None:
            self._decide(
                AmdStatus(s.initial_silence_status),
                f"INITIALSILENCE-{now}-{s.initial_silence_ms}",
            )
            return
        if now >= s.total_analysis_ms:
            self._at_cap(now)

    def _await_sit(self, now: int, current: Tone | None, ended: Tone | None) -> None:
        """While a SIT's segments are awaited: decide once its kind is known, or at the cap."""
        assert self._sit is not None
        # Over a digitally silent line the floor stands on the SIT itself, and the window across
        # two segments ends the tone: keep every audible block under the tone test, as while
        # the floor is young, or the next segment would pass for the floor.
        self._floor_blocks = 0
        kind = self._sit.push(now, current, ended)
        if kind is not None:
            self._decide_sit(kind)
        elif now >= self.settings.total_analysis_ms:
            self._at_cap(now)

    def _decide_sit(self, kind: str) -> None:
        """MACHINE ``SIT-<kind>-<hz>-<ms>`` of the first segment (the dialplan checks ``SIT-``)."""
        assert self._sit is not None
        hz, ms = self._sit.first(self._tones.current)
        self._sit = None
        self._decide(AmdStatus.MACHINE, f"SIT-{kind}-{round(hz)}-{ms}")

    def _at_cap(self, cap_ms: int) -> None:
        """The hard cap: a late-starting greeting still going on is a machine, an utterance
        followed by a person's pause is a human; else NOTSURE."""
        s = self.settings
        if self._sit is not None:  # no time left for the rest of the SIT
            self._decide_sit(self._sit.settle(self._now_ms, self._tones.current))
            return
        if self._pending_beep is not None:  # no time left to hear what follows it
            self._take_beep(self._pending_beep, ended=True)
            return
        onset, last = self._onset_ms, self._last_speech_ms
        if (
            onset is not None
            and last is not None
            and last - onset >= s.greeting_at_cap_ms
            and max(self._now_ms, cap_ms) - last <= s.between_words_ms
        ):
            self._decide(AmdStatus.MACHINE, f"LONGGREETING-{last - onset}-{s.greeting_at_cap_ms}")
            return
        if (
            last is not None
            and self._now_ms - last >= s.after_greeting_silence_ms
            and not self._tones.active
        ):
            # A long utterance, then a pause that would have been a person's for a short one:
            # no time is left to wait for the longer pause.
            silence = self._now_ms - last
            self._decide(AmdStatus.HUMAN, f"HUMAN-{silence}-{s.after_greeting_silence_ms}")
            return
        self._decide(AmdStatus.NOTSURE, f"TOOLONG-{cap_ms}")

    def _is_beep(self, tone: Tone) -> bool:
        """A steady tone after a pause in the speech, in the beep band, long enough, and not
        much quieter than the speech: a voice's harmonic can look steady for 100 ms, but it
        comes in the middle of words, and it is fainter than they are."""
        s = self.settings
        onset, gap = self._tone_gap
        return (
            tone.steady
            and onset == tone.onset_ms
            and gap >= s.beep_min_gap_ms
            and tone.duration_ms + EDGE_TOLERANCE_MS >= s.beep_min_ms
            and s.beep_low_hz <= tone.hz <= s.beep_high_hz
            and tone.level_db >= self._speech_db - s.beep_max_below_speech_db
        )

    def _needs_quiet_after(self, tone: Tone) -> bool:
        """A short tone at a voice's pitch is a beep only if quiet follows it: a held vowel
        can be as pure and as steady for a moment, but the voice goes on after it."""
        s = self.settings
        return tone.hz < s.voice_max_hz and tone.duration_ms + EDGE_TOLERANCE_MS < s.low_beep_ms

    def _take_beep(self, tone: Tone, ended: bool) -> None:
        """``tone`` is the beep: MACHINE if undecided, and the cue once it has ended."""
        self._beep = tone
        self._pending_beep = None
        if self.verdict is None:
            self._decide(AmdStatus.MACHINE, f"BEEP-{tone.onset_ms}-{round(tone.hz)}")
        if ended and self._listening:
            self._cue("BEEP", tone.end_ms, tone)

    def _listen(self, now: int, current: Tone | None, ended: Tone | None) -> None:
        s = self.settings
        pending = self._pending_beep
        if pending is not None and now - pending.end_ms >= s.beep_quiet_after_ms:
            self._take_beep(pending, ended=True)
            return
        if ended is not None and self._is_beep(ended):
            if not self._needs_quiet_after(ended):
                self._take_beep(ended, ended=True)
                return
            if not self._run_ms:
                self._pending_beep = ended
        assert self.verdict is not None
        quiet_since = max(
            self._last_speech_ms or 0, self.verdict.decision_ms - s.greeting_end_silence_ms
        )
        if (
            current is None
            and self._pending_beep is None
            and now - quiet_since >= s.greeting_end_silence_ms
        ):
            self._cue("SILENCE", now)
        elif now - self.verdict.decision_ms >= s.max_listen_ms:
            self._cue("TIMEOUT", now)
