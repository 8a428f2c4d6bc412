"""Payload checks and 20 ms blocking shared by the detectors.

Audio is 8 kHz signed 16-bit little-endian mono. Asterisk sends 320-byte (20 ms) frames, or
480 bytes (30 ms) when the far end packetises at 30 ms; any even length up to the cap is
audio. A payload of odd length or over the cap cannot be audio of this format: the detector
answers NOTSURE with a ``BADFRAME`` cause rather than raise past its caller.
"""

from __future__ import annotations

SAMPLE_RATE = 8000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
BLOCK_MS = 20
BLOCK_SAMPLES = BLOCK_MS * SAMPLES_PER_MS
BLOCK_BYTES = 2 * BLOCK_SAMPLES


def bad_payload_cause(frame: bytes | bytearray | memoryview, max_frame_bytes: int) -> str | None:
    """``BADFRAME-<bytes>`` when ``frame`` cannot be a payload of 8 kHz s16 audio, else None."""
    size = len(frame)
    if size % 2 or size > max_frame_bytes:
        return f"BADFRAME-{size}"
    return None


class Blocker:
    """Cuts a stream of payloads of any even length into 20 ms blocks (320 bytes)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = bytearray()

    def push(self, frame: bytes | bytearray | memoryview) -> list[bytes]:
        if not self._pending and len(frame) == BLOCK_BYTES:
            return [bytes(frame)]
        self._pending += frame
        full = len(self._pending) - len(self._pending) % BLOCK_BYTES
        if not full:
            return []
        blocks = [bytes(self._pending[i : i + BLOCK_BYTES]) for i in range(0, full, BLOCK_BYTES)]
        del self._pending[:full]
        return blocks

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)
