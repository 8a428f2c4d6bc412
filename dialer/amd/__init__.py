"""Answering-machine detection on the audio path: Puente's detector, the app_amd baseline, the
corpus that measures both, and the evaluation.

The detectors are pure: frames in (8 kHz s16le mono, any even payload up to 60 ms), one
:class:`AmdVerdict` out (``AMDSTATUS`` / ``AMDCAUSE`` in app_amd's vocabulary), then, after
MACHINE, one :class:`VoicemailCue`. No I/O, no clock: time is the audio itself, or the
caller's ``elapsed_ms``.
"""

from dialer.amd._appamd import AppAmdDetector
from dialer.amd._corpus import (
    DEV_SEEDS,
    SUBSET_NAMES,
    TEST_SEEDS,
    CorpusSummary,
    generate_corpus,
    read_labels,
)
from dialer.amd._detector import AmdDetector
from dialer.amd._eval import evaluate, run_detector
from dialer.amd._exceptions import AmdError, AmdSettingsError, CorpusError, WavError
from dialer.amd._frames import BLOCK_BYTES, BLOCK_MS, SAMPLE_RATE
from dialer.amd._settings import MAX_FRAME_BYTES, AmdSettings, AppAmdSettings
from dialer.amd._verdict import AmdEvent, AmdStatus, AmdVerdict, VoicemailCue
from dialer.amd._wav import frames_of, read_wav_8k

__all__ = [
    "BLOCK_BYTES",
    "BLOCK_MS",
    "DEV_SEEDS",
    "MAX_FRAME_BYTES",
    "SAMPLE_RATE",
    "SUBSET_NAMES",
    "TEST_SEEDS",
    "AmdDetector",
    "AmdError",
    "AmdEvent",
    "AmdSettings",
    "AmdSettingsError",
    "AmdStatus",
    "AmdVerdict",
    "AppAmdDetector",
    "AppAmdSettings",
    "CorpusError",
    "CorpusSummary",
    "VoicemailCue",
    "WavError",
    "evaluate",
    "frames_of",
    "generate_corpus",
    "read_labels",
    "read_wav_8k",
    "run_detector",
]
