"""WAV files in and out: PCM of any rate, width and channel count in; 8 kHz s16 mono out."""

from __future__ import annotations

import io
import struct
import wave
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


def _format_tag(data: bytes) -> int | None:
    """The format tag of a RIFF/WAVE file's ``fmt `` chunk, or None if there is none."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt " and pos + 10 <= len(data):
            return int(struct.unpack_from("<H", data, pos + 8)[0])
        pos += 8 + size + (size & 1)
    return None


def decode_wav(data: bytes, name: str = "input") -> tuple[np.ndarray, int]:
    """PCM samples (int16, mono: channels averaged) and the sample rate of a WAV file's bytes."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    tag = _format_tag(data)
    if tag is None:
        raise WavError(f"{name}: not a valid WAV file (no fmt chunk)")
    if tag != 0x0001:
        what = _FORMAT_NAMES.get(tag, f"format tag {tag:#06x}")
        raise WavError(f"{name}: not PCM audio ({what}); convert it to PCM first")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error) as e:
        raise WavError(f"{name}: not a valid PCM WAV file ({e})") from None
    if rate <= 0 or channels <= 0:
        raise WavError(f"{name}: bad header (rate {rate}, channels {channels})")
    frame_bytes = width * channels
    usable = len(raw) - len(raw) % frame_bytes
    if usable == 0:
        raise WavError(f"{name}: empty (no audio frames)")
    raw = raw[:usable]
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 16
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise WavError(f"{name}: unsupported sample width of {width} bytes")
    x = x.reshape(-1, channels).mean(axis=1) if channels > 1 else x
    return np.clip(np.round(x), -32768, 32767).astype(np.int16), rate


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


def read_wav_8k(path: str | Path) -> np.ndarray:
    """A WAV file as 8 kHz s16 mono samples; :class:`WavError` names the problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise WavError(f"{p}: cannot read ({e.strerror or e})") from None
    x, rate = decode_wav(data, str(p))
    return resample(x, rate)


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
