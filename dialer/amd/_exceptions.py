"""The exception tree of :mod:`dialer.amd`: one root, a few precise children."""

from __future__ import annotations


class AmdError(Exception):
    """Root of every error raised by :mod:`dialer.amd`."""


class AmdSettingsError(AmdError, ValueError):
    """A setting is out of range; the message names it and its value."""


class WavError(AmdError):
    """A file cannot be read as PCM audio: not a WAV, not PCM, a corrupt header or chunk, a
    sample rate outside 4-384 kHz, no audio frames, or truncated (a chunk, the data chunk
    included, that declares more bytes than the file holds: refused, never decoded in part)."""


class CorpusError(AmdError):
    """The corpus cannot be generated or read (missing tool, bad directory, bad labels)."""
