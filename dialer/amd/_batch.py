"""Many detectors at once: the same analysis as :meth:`AmdDetector.feed`, vectorised across calls.

A server with 2,000 calls gets about two 20 ms frames per call every 40 ms. Fed one frame at a
time, most of a frame's cost is numpy's per-call overhead on tiny arrays (an FFT of 512
points, a dot product of 160). :func:`feed_batch` takes every frame that arrived, for every
detector, and runs the numeric part over all of them together: one block of each detector at
a time ("slot" by slot, so each detector still sees its blocks in order), the energies and
the spectra of the whole slot in a few numpy calls. What stays per block is the detector's
own bookkeeping (floor, speech timeline, tone runs, rules) and webrtcvad.

Pure like the detector: payloads in, events out, no I/O and no clock. The results are
identical to feeding each detector its payloads one by one (same float operations; a test
checks it on every kind of call).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from dialer.amd._detector import NEED_TONE, AmdDetector
from dialer.amd._frames import BLOCK_BYTES, BLOCK_SAMPLES, bad_payload_cause
from dialer.amd._tone import N_FFT, ToneFrame, spectra_of, tonal_rows
from dialer.amd._verdict import AmdEvent

#: Blocks are analysed this many at a time: enough to amortise numpy's overhead per call,
#: few enough for every array to stay in cache.
_CHUNK_ROWS = 128


def feed_batch(
    streams: Iterable[tuple[AmdDetector, Sequence[bytes | bytearray | memoryview]]],
) -> list[tuple[AmdDetector, AmdEvent]]:
    """Feed each detector its payloads (in order), every detector together.

    ``streams`` holds each detector once, with what arrived for it. Returns every event that
    came out, as ``(detector, event)``, in the order each detector produced them. A detector
    that is done takes nothing; a bad payload (odd length, over the cap) ends its detector
    with NOTSURE ``BADFRAME`` exactly where :meth:`~AmdDetector.feed` would.
    """
    live: list[tuple[AmdDetector, Sequence[bytes | str]]] = []
    fed: list[AmdDetector] = []
    faults = False  # some sequence may hold a fault (a str) in place of a block
    for det, payloads in streams:
        fed.append(det)
        if det._done or not payloads:
            continue
        blocker = det._blocker
        cap = det.settings.max_frame_bytes
        if not blocker._pending and cap >= BLOCK_BYTES:
            for payload in payloads:
                if len(payload) != BLOCK_BYTES or type(payload) is not bytes:
                    break
            else:  # the usual case: whole 20 ms blocks, as Asterisk sends them
                live.append((det, payloads))  # type: ignore[arg-type]
                continue
        seq: list[bytes | str] = []
        for payload in payloads:
            size = len(payload)
            if size == BLOCK_BYTES and not blocker._pending and size <= cap:
                seq.append(payload if type(payload) is bytes else bytes(payload))
                continue
            cause = bad_payload_cause(payload, cap)
            if cause is not None:
                seq.append(cause)  # the detector ends there: what follows is not looked at
                break
            seq.extend(blocker.push(payload))
        if seq:
            live.append((det, seq))
            faults = True
    slot = 0
    while live:
        dets: list[AmdDetector]
        blocks: list[bytes]
        if faults:
            dets, blocks = [], []
            for det, seq in live:
                entry = seq[slot]
                if type(entry) is str:
                    det._fault(entry)
                else:
                    dets.append(det)
                    blocks.append(entry)  # type: ignore[arg-type]
        else:  # whole blocks only
            dets = [det for det, _ in live]
            blocks = [seq[slot] for _, seq in live]  # type: ignore[misc]
        if dets:
            _run_slot(dets, blocks)
        slot += 1
        live = [(det, seq) for det, seq in live if len(seq) > slot and not det._done]
    events: list[tuple[AmdDetector, AmdEvent]] = []
    for det in fed:
        queued = det._queued
        while queued:
            events.append((det, queued.pop(0)))
    return events


class _Scratch:
    """Work arrays reused from chunk to chunk (feed_batch runs on one thread: the event
    loop's). Fresh arrays of these sizes would be mapped from the kernel and returned to it
    hundreds of times a second, a page fault per 4 KiB each time."""

    def __init__(self, rows: int) -> None:
        self.x = np.empty((rows, BLOCK_SAMPLES))
        self.block = np.empty((rows, BLOCK_SAMPLES))
        self.padded = np.zeros((rows, N_FFT))  # zero past the window, for good
        self.spec = np.empty((rows, N_FFT // 2 + 1), dtype=np.complex128)
        self.power = np.empty_like(self.spec)


_SCRATCH = _Scratch(_CHUNK_ROWS)


def _run_slot(dets: list[AmdDetector], blocks: list[bytes]) -> None:
    """One block for each of several distinct detectors, a chunk of them at a time."""
    if len(dets) <= _CHUNK_ROWS:
        _run_chunk(dets, blocks, _SCRATCH)
        return
    for at in range(0, len(dets), _CHUNK_ROWS):
        _run_chunk(dets[at : at + _CHUNK_ROWS], blocks[at : at + _CHUNK_ROWS], _SCRATCH)


def _run_chunk(dets: list[AmdDetector], blocks: list[bytes], s: _Scratch) -> None:
    n = len(dets)
    x = s.x[:n]
    x[...] = np.frombuffer(b"".join(blocks), dtype="<i2").reshape(n, BLOCK_SAMPLES)
    # Squares of 16-bit samples summed over 160 of them: exact integers in float64, whatever
    # the order of the sum, so the levels equal the one-by-one ``np.dot``'s.
    energies = np.einsum("ij,ij->i", x, x).tolist()
    log10 = math.log10
    levels = [10.0 * log10(e / BLOCK_SAMPLES + 1.0) for e in energies]  # as level_db
    # What each block needs from its spectrum (``AmdDetector._gate``): the rows that need one,
    # and which of those (their places among them) get the tone test or teach the noise.
    rows: list[int] = []
    tone_rows: list[int] = []
    noise_rows: list[int] = []
    for i, (det, db) in enumerate(zip(dets, levels, strict=True)):
        need = det._gate(db)
        if need:
            (tone_rows if need == NEED_TONE else noise_rows).append(len(rows))
            rows.append(i)
    tone_frames: list[ToneFrame | None] | None = None  # None: no tonal window in the chunk
    if rows:
        m = len(rows)
        # The windows' first halves straight from the previous blocks' bytes (the product with
        # the window casts the 16-bit samples to float exactly, as a float copy would).
        before = np.frombuffer(b"".join([dets[i]._prev for i in rows]), dtype="<i2").reshape(
            m, BLOCK_SAMPLES
        )
        block = x if m == n else np.take(x, rows, axis=0, out=s.block[:m])
        p = spectra_of(before, block, s.padded[:m], s.spec[:m], s.power[:m])
        for j in noise_rows:  # these teach their line's noise
            dets[rows[j]]._analyser.learn_noise(p[j])
        if tone_rows:
            found = tonal_rows(
                p,
                [levels[rows[j]] for j in tone_rows],
                [dets[rows[j]]._analyser for j in tone_rows],
                tone_rows,
            )
            for j, tf in zip(tone_rows, found, strict=True):
                if tf is not None:
                    if tone_frames is None:
                        tone_frames = [None] * n
                    tone_frames[rows[j]] = tf
    if tone_frames is None:
        for det, block_bytes, db in zip(dets, blocks, levels, strict=True):
            det._advance(block_bytes, db, None)
    else:
        for det, block_bytes, db, tf in zip(dets, blocks, levels, tone_frames, strict=True):
            det._advance(block_bytes, db, tf)
