"""Answering-machine detection on the audio path: Puente's detector, the app_amd baseline, the
corpus that measures both, and the evaluation.

The detectors are pure: frames in (8 kHz s16le mono, any even payload up to 60 ms), one
:class:`AmdVerdict` out (``AMDSTATUS`` / ``AMDCAUSE`` in app_amd's vocabulary), then, after
MACHINE, one :class:`VoicemailCue`. No I/O, no clock: time is the audio itself, or the
caller's ``elapsed_ms``. :func:`feed_batch` feeds many detectors at once (vectorised, same
results).

:class:`LiveAmd` is the adapter that runs them on live calls: the AudioSocket server's handler,
which sets ``AMDSTATUS`` / ``AMDCAUSE`` on the channel over AMI and ends the socket.
"""

from dialer.amd._appamd import AppAmdDetector
from dialer.amd._batch import feed_batch
from dialer.amd._call import AGENT_WITHIN_MS, LiveAmd, LiveAmdSettings, queue_timeout_s
from dialer.amd._channels import ChannelRegistry
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
from dialer.amd._tone import SIT_KIND_NAMES, sit_kind_of_cause
from dialer.amd._verdict import AmdEvent, AmdStatus, AmdVerdict, VoicemailCue
from dialer.amd._wav import frames_of, read_wav_8k

__all__ = [
    "AGENT_WITHIN_MS",
    "BLOCK_BYTES",
    "BLOCK_MS",
    "DEV_SEEDS",
    "MAX_FRAME_BYTES",
    "SAMPLE_RATE",
    "SIT_KIND_NAMES",
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
    "ChannelRegistry",
    "CorpusError",
    "CorpusSummary",
    "LiveAmd",
    "LiveAmdSettings",
    "VoicemailCue",
    "WavError",
    "evaluate",
    "feed_batch",
    "frames_of",
    "generate_corpus",
    "queue_timeout_s",
    "read_labels",
    "read_wav_8k",
    "run_detector",
    "sit_kind_of_cause",
]
