"""WAV files in and out: PCM of any rate, width and channel count in; 8 kHz s16 mono out."""

from __future__ import annotations

import os
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialer.amd._exceptions import WavError
from dialer.amd._frames import BLOCK_BYTES, SAMPLE_RATE

_FORMAT_NAMES = {
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
    0xFFFE: "extensible",
}
_PCM = 0x0001
_EXTENSIBLE = 0xFFFE
#: The SubFormat GUID of WAVE_FORMAT_EXTENSIBLE after its first two bytes (the format tag):
#: ``xxxxxxxx-0000-0010-8000-00aa00389b71``; PCM is tag 0x0001.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")

#: Sample rates accepted (Hz): telephone audio is 8 kHz; nothing real is outside these.
MIN_RATE_HZ = 4_000
MAX_RATE_HZ = 384_000
#: Channels accepted.
MAX_CHANNELS = 64
#: Audio decoded from the start of a file, in seconds; the rest is not read. The detector
#: needs its first seconds: a verdict within ``total_analysis_ms`` (4 s by default) and the
#: voicemail cue within ``max_listen_ms`` after it (30 s by default).
MAX_DECODE_S = 60
#: Frames converted at once (bounds the memory of the conversion to a few tens of MB).
_CONVERT_FRAMES = 1 << 20
#: Bytes of a fmt chunk read (WAVE_FORMAT_EXTENSIBLE's is 40).
_FMT_READ_BYTES = 64


@dataclass(frozen=True, slots=True)
class _Fmt:
    rate: int
    channels: int
    width: int


def _parse_fmt(body: bytes, name: str) -> _Fmt:
    """The ``fmt `` chunk: PCM (plain or WAVE_FORMAT_EXTENSIBLE) or a clear error."""
    if len(body) < 16:
        raise WavError(
            f"{name}: corrupt fmt chunk ({len(body)} bytes; a PCM fmt chunk has at least 16)"
        )
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise WavError(
                f"{name}: corrupt fmt chunk (WAVE_FORMAT_EXTENSIBLE needs 40 bytes, "
                f"this one has {len(body)})"
            )
        guid = body[24:40]
        sub = int(struct.unpack_from("<H", guid)[0])
        if guid[2:] != _GUID_TAIL:
            raise WavError(
                f"{name}: not PCM audio (extensible, SubFormat {guid.hex()}); "
                "convert it to PCM first"
            )
        if sub != _PCM:
            what = _FORMAT_NAMES.get(sub, f"format tag {sub:#06x}")
            raise WavError(f"{name}: not PCM audio ({what}, extensible); convert it to PCM first")
    elif tag != _PCM:
        what = _FORMAT_NAMES.get(tag, f"format tag {tag:#06x}")
        raise WavError(f"{name}: not PCM audio ({what}); convert it to PCM first")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"{name}: bad header ({channels} channels; expected 1-{MAX_CHANNELS})")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise WavError(
            f"{name}: sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz "
            "(a corrupt header?)"
        )
    width = (bits + 7) // 8
    if not 1 <= width <= 4:
        raise WavError(
            f"{name}: unsupported sample width of {width} bytes ({bits} bits per sample; "
            "expected 8, 16, 24 or 32)"
        )
    return _Fmt(rate, channels, width)


#: Reads ``n`` bytes at ``pos`` (fewer at the end): a file is read by parts, never whole.
_ReadAt = Callable[[int, int], bytes]


def _chunks(read_at: _ReadAt, size: int, name: str) -> tuple[_Fmt, int, int]:
    """The fmt, and the data chunk's offset and length, of a RIFF/WAVE stream of ``size``
    bytes; every chunk's size is checked. Only the chunk headers and the fmt chunk are read."""
    fmt: _Fmt | None = None
    data_first = False
    pos = 12
    while pos < size:
        if pos + 8 > size:
            what = "the fmt chunk" if fmt is None else "the data chunk"
            raise WavError(
                f"{name}: truncated: the file ends at byte {size}, inside a chunk header, "
                f"before {what}"
            )
        header = read_at(pos, 8)
        cid, chunk_size = header[:4], struct.unpack_from("<I", header, 4)[0]
        label = cid.decode("latin-1").strip() or repr(cid)
        start, end = pos + 8, pos + 8 + chunk_size
        if end > size:
            have = size - start
            if cid == b"data" and fmt is not None:  # refused: a partial file is not analysed
                raise WavError(
                    f"{name}: truncated: the data chunk declares {chunk_size} bytes but only "
                    f"{have} are in the file (a partial or damaged file; repair its header first)"
                )
            raise WavError(
                f"{name}: corrupt or truncated {label!r} chunk at byte {pos}: it declares "
                f"{chunk_size} bytes but only {have} are left in the file"
            )
        if cid == b"fmt " and fmt is None:
            if data_first:
                raise WavError(f"{name}: not a valid WAV file (data chunk before the fmt chunk)")
            # (a fmt chunk is tens of bytes; one that says more is read up to what matters)
            fmt = _parse_fmt(read_at(start, min(chunk_size, _FMT_READ_BYTES)), name)
        elif cid == b"data":
            if fmt is None:
                data_first = True
            else:
                return fmt, start, chunk_size
        pos = end + (chunk_size & 1)
    if fmt is None:
        raise WavError(f"{name}: not a valid WAV file (no fmt chunk)")
    raise WavError(f"{name}: not a valid WAV file (no data chunk)")


def _to_int16_mono(raw: memoryview | bytes, width: int, channels: int) -> np.ndarray:
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 16
    else:
        x = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    x = x.reshape(-1, channels).mean(axis=1) if channels > 1 else x
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@dataclass(frozen=True, slots=True)
class DecodedWav:
    """A WAV file's PCM: int16 mono (channels averaged), at most :data:`MAX_DECODE_S`."""

    samples: np.ndarray
    rate: int
    #: The whole file's length, and whether only its first ``MAX_DECODE_S`` were decoded.
    file_ms: int
    capped: bool


def decode_wav_full(data: bytes, name: str = "input") -> DecodedWav:
    """:func:`decode_wav`, with the file's length and whether it was capped.

    Errors (:class:`WavError`) name the problem: not a RIFF/WAVE file, not PCM (any other
    format tag, or an extensible SubFormat other than PCM), a rate outside
    ``MIN_RATE_HZ``-``MAX_RATE_HZ``, a chunk that declares more bytes than the file has
    (truncated or corrupt: a truncated data chunk is refused, never decoded in part), no
    audio frames.
    """
    view = memoryview(data)
    return _decode(lambda pos, n: bytes(view[pos : pos + n]), len(data), name)


def _decode(read_at: _ReadAt, size: int, name: str) -> DecodedWav:
    """Decode what ``read_at`` reads of a WAV of ``size`` bytes: its headers, then its first
    :data:`MAX_DECODE_S` seconds of audio by parts. Memory stays bounded by what is decoded,
    whatever the file's size (a recording of hours is gigabytes)."""
    head = read_at(0, 12) if size >= 12 else b""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt, start, length = _chunks(read_at, size, name)
    frame_bytes = fmt.width * fmt.channels
    n_frames = length // frame_bytes
    if n_frames == 0:
        raise WavError(f"{name}: empty (no audio frames)")
    keep = min(n_frames, MAX_DECODE_S * fmt.rate)
    parts = []
    for i in range(0, keep, _CONVERT_FRAMES):
        n = min(keep - i, _CONVERT_FRAMES)
        raw = read_at(start + i * frame_bytes, n * frame_bytes)
        if len(raw) != n * frame_bytes:  # the file shrank under us
            raise WavError(f"{name}: truncated while reading (at byte {start + i * frame_bytes})")
        parts.append(_to_int16_mono(raw, fmt.width, fmt.channels))
    x = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return DecodedWav(x, fmt.rate, n_frames * 1000 // fmt.rate, keep < n_frames)


def decode_wav(data: bytes, name: str = "input") -> tuple[np.ndarray, int]:
    """PCM samples (int16, mono: channels averaged) and the sample rate of a WAV file's bytes.

    PCM in any width of 8-32 bits, plain or WAVE_FORMAT_EXTENSIBLE (what sox writes for
    stereo, 24 and 32 bits); only the first :data:`MAX_DECODE_S` seconds are decoded.
    """
    d = decode_wav_full(data, name)
    return d.samples, d.rate


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling by FFT (the spectrum is cut or padded); int16 in and out."""
    if rate == target or len(x) == 0:
        return x.astype(np.int16, copy=False)
    n_out = max(1, round(len(x) * target / rate))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spec), n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spec[:keep]
    y = np.fft.irfft(out_spec, n_out) * (n_out / len(x))
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def read_wav(path: str | Path) -> tuple[np.ndarray, DecodedWav]:
    """A WAV file as 8 kHz s16 mono samples (its first :data:`MAX_DECODE_S` seconds), and
    what was decoded; :class:`WavError` names the problem."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size

            def read_at(pos: int, n: int) -> bytes:
                f.seek(pos)
                return f.read(n)

            decoded = _decode(read_at, size, str(p))
    except OSError as e:
        raise WavError(f"{p}: cannot read ({e.strerror or e})") from None
    return resample(decoded.samples, decoded.rate), decoded


def read_wav_8k(path: str | Path) -> np.ndarray:
    """A WAV file as 8 kHz s16 mono samples; :class:`WavError` names the problem."""
    return read_wav(path)[0]


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write s16 mono PCM (deterministic bytes: no timestamps in WAV headers)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def frames_of(samples: np.ndarray, frame_bytes: int = BLOCK_BYTES) -> list[bytes]:
    """Cut samples into payloads of ``frame_bytes`` (the last one may be shorter)."""
    raw = np.asarray(samples, dtype="<i2").tobytes()
    return [raw[i : i + frame_bytes] for i in range(0, len(raw), frame_bytes)]
