"""What a detector hands out: a verdict once, then (after MACHINE) a voicemail cue once."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AmdStatus(StrEnum):
    """The values of the ``AMDSTATUS`` channel variable, as app_amd sets them."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"


@dataclass(frozen=True, slots=True)
class AmdVerdict:
    """The decision, with app_amd's ``AMDCAUSE`` vocabulary in ``cause``.

    ``decision_ms`` is the position in the audio stream (from the first frame) at which the
    detector decided. ``speech_onset_ms`` / ``speech_end_ms`` are the detector's view of the
    first utterance (``None`` when it heard none); ``beep_ms`` is the onset of a beep heard
    before the decision.
    """

    status: AmdStatus
    cause: str
    decision_ms: int
    speech_onset_ms: int | None = None
    speech_end_ms: int | None = None
    beep_ms: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "verdict": str(self.status),
            "cause": self.cause,
            "decision_ms": self.decision_ms,
            "speech_onset_ms": self.speech_onset_ms,
            "speech_end_ms": self.speech_end_ms,
            "beep_ms": self.beep_ms,
        }


@dataclass(frozen=True, slots=True)
class VoicemailCue:
    """When to start a voicemail message, found by listening on after a MACHINE verdict.

    ``reason`` is ``BEEP`` (a beep was heard and has ended: ``beep_ms`` is its onset,
    ``cue_ms`` its end), ``SILENCE`` (the greeting ended and no beep followed: ``cue_ms`` is
    when the silence became long enough, ``greeting_end_ms`` the end of the last speech) or
    ``TIMEOUT`` (the listening cap was reached while the greeting went on).
    """

    reason: str
    cue_ms: int
    beep_ms: int | None = None
    beep_hz: int | None = None
    greeting_end_ms: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "cue_ms": self.cue_ms,
            "beep_ms": self.beep_ms,
            "beep_hz": self.beep_hz,
            "greeting_end_ms": self.greeting_end_ms,
        }


AmdEvent = AmdVerdict | VoicemailCue
