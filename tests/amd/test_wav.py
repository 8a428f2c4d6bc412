"""Reading WAV files for ``classify``: any PCM in, 8 kHz s16 mono out, clear errors otherwise."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from dialer.amd import WavError, read_wav_8k
from dialer.amd._wav import decode_wav, resample


def wav_bytes(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def float_wav(n: int = 800) -> bytes:
    data = np.zeros(n, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_a_16_khz_stereo_tone_comes_out_8_khz_mono_at_the_same_pitch(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    left = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    stereo = np.stack([left, left], axis=1).reshape(-1)
    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes(stereo, 16000, channels=2))
    x = read_wav_8k(path)
    assert x.dtype == np.int16
    assert len(x) == 8000
    spectrum = np.abs(np.fft.rfft(x.astype(float)))
    assert np.argmax(spectrum) == pytest.approx(440, abs=1)  # 1 Hz bins over 1 s
    assert np.sqrt((x.astype(float) ** 2).mean()) == pytest.approx(8000 / np.sqrt(2), rel=0.02)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_pcm_widths_are_read(width: int) -> None:
    x16 = (np.sin(np.arange(800) / 5) * 16000).astype(np.int32)
    if width == 1:
        raw = ((x16 >> 8) + 128).astype(np.uint8)
    elif width == 3:
        v = (x16 << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        raw = np.ascontiguousarray(v).reshape(-1)
    else:
        raw = (x16 << 16).astype("<i4")
    x, rate = decode_wav(wav_bytes(raw, 8000, width=width))
    assert rate == 8000
    tolerance = 256 if width == 1 else 1
    assert np.abs(x.astype(np.int32) - x16).max() <= tolerance


def test_resampling_keeps_the_length_ratio() -> None:
    x = np.zeros(44100, dtype=np.int16)
    assert len(resample(x, 44100)) == 8000
    assert len(resample(np.zeros(11025, dtype=np.int16), 11025)) == 8000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV file"),
        (b"hello, this is text, not audio", "not a WAV file"),
        (float_wav(), r"not PCM audio \(IEEE float\)"),
        (wav_bytes(np.zeros(0, dtype="<i2"), 8000), "empty"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
    ],
)
def test_bad_files_raise_a_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(WavError, match=message) as info:
        read_wav_8k(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="cannot read"):
        read_wav_8k(tmp_path / "nope.wav")
