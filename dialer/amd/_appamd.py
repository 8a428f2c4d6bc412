"""app_amd, re-implemented faithfully as the baseline (Asterisk 22's ``apps/app_amd.c``).

The same feed API and verdict type as Puente's detector. What app_amd does, frame by frame:

- each voice frame's length is ``samples / 8`` ms; the total is checked first:
  ``iTotalTime >= totalAnalysisTime`` gives NOTSURE ``TOOLONG-<iTotalTime>``;
- silence is ``ast_dsp_silence``: the frame is silent when the mean absolute sample value
  (integer division) is below ``silenceThreshold``; the DSP counts consecutive silent
  milliseconds and resets on a noisy frame;
- silence >= ``betweenWordsSilence`` moves to the SILENCE state and ends the current word;
  while still in the initial silence, silence >= ``initialSilence`` gives MACHINE
  ``INITIALSILENCE-<silence>-<initialSilence>``; after a greeting started, silence >=
  ``afterGreetingSilence`` gives HUMAN ``HUMAN-<silence>-<afterGreetingSilence>``;
- on a noisy frame, consecutive and total voice grow; reaching ``minimumWordLength`` of
  consecutive voice after a silence counts a word; consecutive voice >= ``maximumWordLength``
  gives MACHINE ``MAXWORDLENGTH-<ms>``; more than ``maximumNumberOfWords`` words gives MACHINE
  ``MAXWORDS-<count>-<max>``; in the greeting, total voice >= ``greeting`` gives MACHINE
  ``LONGGREETING-<voice>-<greeting>``; the first word starts the greeting;
- the wall clock (here ``elapsed_ms``) past ``totalAnalysisTime`` gives NOTSURE ``TOOLONG``,
  or ``NOAUDIODATA`` when no voice frame came at all; a hang-up gives HANGUP with an empty
  cause.

The recorded Asterisk runs agree: ``HUMAN-801-800`` (the 1 ms comes from a 12-sample frame at
the end of a playback), ``LONGGREETING-1500-1500``, ``INITIALSILENCE-2500-2500``.
"""

from __future__ import annotations

import numpy as np

from dialer.amd._frames import SAMPLES_PER_MS, bad_payload_cause
from dialer.amd._settings import AppAmdSettings
from dialer.amd._verdict import AmdEvent, AmdStatus, AmdVerdict

_IN_WORD = 1
_IN_SILENCE = 2


class AppAmdDetector:
    """The baseline. Frames are analysed as delivered (app_amd does not re-block them)."""

    def __init__(self, settings: AppAmdSettings | None = None) -> None:
        self.settings = settings or AppAmdSettings()
        self.verdict: AmdVerdict | None = None
        self.cue = None  # app_amd does not listen for beeps
        self._total_ms = 0
        self._audio_frames = 0
        self._dsp_silence_ms = 0  # ast_dsp's running count of silent milliseconds
        self._in_initial_silence = True
        self._in_greeting = False
        self._voice_ms = 0
        self._silence_ms = 0
        self._words = 0
        self._state = _IN_WORD
        self._consecutive_voice_ms = 0

    @property
    def now_ms(self) -> int:
        return self._total_ms

    @property
    def done(self) -> bool:
        return self.verdict is not None

    def feed(
        self, frame: bytes | bytearray | memoryview, elapsed_ms: int | None = None
    ) -> AmdEvent | None:
        if self.verdict is not None:
            return None
        cause = bad_payload_cause(frame, self.settings.max_frame_bytes)
        if cause is not None:
            return self._decide(AmdStatus.NOTSURE, cause)
        if elapsed_ms is not None and elapsed_ms > self.settings.total_analysis_time:
            return self._too_long()
        if not frame:
            return None
        self._audio_frames += 1
        return self._frame(np.frombuffer(frame, dtype="<i2"))

    def tick(self, elapsed_ms: int) -> AmdEvent | None:
        if self.verdict is None and elapsed_ms > self.settings.total_analysis_time:
            return self._too_long()
        return None

    def hangup(self) -> AmdVerdict:
        if self.verdict is None:
            self._decide(AmdStatus.HANGUP, "")
        assert self.verdict is not None
        return self.verdict

    def finish(self) -> AmdVerdict:
        """The stream ended: go on with silent 20 ms frames until app_amd decides."""
        silent = np.zeros(20 * SAMPLES_PER_MS, dtype=np.int16)
        while self.verdict is None:
            self._frame(silent)
        return self.verdict

    # -- internals ------------------------------------------------------------------------------
    def _too_long(self) -> AmdVerdict:
        if self._audio_frames == 0:
            return self._decide(AmdStatus.NOTSURE, f"NOAUDIODATA-{self._total_ms}")
        return self._decide(AmdStatus.NOTSURE, f"TOOLONG-{self._total_ms}")

    def _decide(self, status: AmdStatus, cause: str) -> AmdVerdict:
        self.verdict = AmdVerdict(status=status, cause=cause, decision_ms=self._total_ms)
        return self.verdict

    def _frame(self, samples: np.ndarray) -> AmdVerdict | None:
        s = self.settings
        n = len(samples)
        frame_ms = n // SAMPLES_PER_MS
        self._total_ms += frame_ms
        if self._total_ms >= s.total_analysis_time:
            return self._decide(AmdStatus.NOTSURE, f"TOOLONG-{self._total_ms}")

        # ast_dsp_silence: mean |sample| (C integer division) against the threshold.
        if n:
            mean_abs = int(np.abs(samples.astype(np.int32)).sum()) // n
            if mean_abs < s.silence_threshold:
                self._dsp_silence_ms += frame_ms
            else:
                self._dsp_silence_ms = 0
        dsp_silence = self._dsp_silence_ms

        if dsp_silence > 0:
            self._silence_ms = dsp_silence
            if self._silence_ms >= s.between_words_silence:
                self._state = _IN_SILENCE
                self._consecutive_voice_ms = 0
            if self._in_initial_silence and self._silence_ms >= s.initial_silence:
                return self._decide(
                    AmdStatus.MACHINE, f"INITIALSILENCE-{self._silence_ms}-{s.initial_silence}"
                )
            if self._silence_ms >= s.after_greeting_silence and self._in_greeting:
                return self._decide(
                    AmdStatus.HUMAN, f"HUMAN-{self._silence_ms}-{s.after_greeting_silence}"
                )
            return None

        self._consecutive_voice_ms += frame_ms
        self._voice_ms += frame_ms
        if self._consecutive_voice_ms >= s.min_word_length and self._state == _IN_SILENCE:
            self._words += 1
            self._state = _IN_WORD
        if self._consecutive_voice_ms >= s.maximum_word_length:
            return self._decide(AmdStatus.MACHINE, f"MAXWORDLENGTH-{self._consecutive_voice_ms}")
        if self._words > s.maximum_number_of_words:
            return self._decide(
                AmdStatus.MACHINE, f"MAXWORDS-{self._words}-{s.maximum_number_of_words}"
            )
        if self._in_greeting and self._voice_ms >= s.greeting:
            return self._decide(AmdStatus.MACHINE, f"LONGGREETING-{self._voice_ms}-{s.greeting}")
        if self._voice_ms >= s.min_word_length:
            self._silence_ms = 0
        if self._consecutive_voice_ms >= s.min_word_length and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return None
