"""The exception tree of :mod:`dialer.amd`: one root, a few precise children."""

from __future__ import annotations


class AmdError(Exception):
    """Root of every error raised by :mod:`dialer.amd`."""


class AmdSettingsError(AmdError, ValueError):
    """A setting is out of range; the message names it and its value."""


class WavError(AmdError):
    """A file cannot be read as PCM audio (not a WAV, not PCM, empty, truncated)."""


class CorpusError(AmdError):
    """The corpus cannot be generated or read (missing tool, bad directory, bad labels)."""
