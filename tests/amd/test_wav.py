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


# -- WAVE_FORMAT_EXTENSIBLE, chunk sizes, rates, truncation -------------------------------------
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")
_FLOAT_GUID = bytes.fromhex("0300000000001000800000aa00389b71")


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE" + b"".join(
        c + struct.pack("<I", len(d)) + d + b"\0" * (len(d) & 1) for c, d in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def extensible_wav(
    raw: bytes, rate: int, width: int, channels: int, guid: bytes = _PCM_GUID
) -> bytes:
    """What sox writes for stereo, 24 and 32 bits: format tag 0xFFFE with a SubFormat GUID."""
    block = width * channels
    fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, 8 * width)
    fmt += struct.pack("<HHI", 22, 8 * width, (1 << channels) - 1) + guid
    return riff((b"fmt ", fmt), (b"fact", struct.pack("<I", len(raw) // block)), (b"data", raw))


def pcm_fmt(rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    block = width * channels
    return struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, 8 * width)


def test_extensible_pcm_is_read_as_the_same_pcm() -> None:
    x16 = (np.sin(np.arange(1600) / 5) * 16000).astype("<i2")
    stereo = np.stack([x16, x16], axis=1).reshape(-1)
    plain = decode_wav(wav_bytes(stereo, 8000, channels=2))
    ext = decode_wav(extensible_wav(stereo.tobytes(), 8000, 2, 2))
    assert ext[1] == plain[1] == 8000
    assert np.array_equal(ext[0], plain[0])
    s24 = np.ascontiguousarray(
        (x16.astype(np.int32) << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
    ).tobytes()
    x24, _ = decode_wav(extensible_wav(s24, 8000, 3, 1))
    assert np.array_equal(x24, x16)
    six = np.repeat(x16, 6)  # six channels, as `sox -c 6` writes them
    x6, _ = decode_wav(extensible_wav(six.tobytes(), 8000, 2, 6))
    assert np.array_equal(x6, x16)


def test_extensible_float_is_not_pcm() -> None:
    data = extensible_wav(np.zeros(800, dtype="<f4").tobytes(), 8000, 4, 1, _FLOAT_GUID)
    with pytest.raises(WavError, match=r"not PCM audio \(IEEE float, extensible\)"):
        decode_wav(data)


_TONE = np.zeros(8000, dtype="<i2").tobytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # A chunk that claims more than the file holds: named, never a RuntimeError.
        (
            riff((b"fmt ", pcm_fmt()), (b"data", _TONE)).replace(b"\x10\0\0\0", b"\xff" * 4, 1),
            r"corrupt or truncated 'fmt' chunk at byte 12: it declares 4294967295 bytes",
        ),
        (
            riff((b"LIST", b"INFOxxxx"), (b"fmt ", pcm_fmt()), (b"data", _TONE)).replace(
                b"LIST\x08\0\0\0", b"LIST\xf0\xff\xff\x7f"
            ),
            r"corrupt or truncated 'LIST' chunk at byte 12",
        ),
        # Truncated: in the header, in the data, or a data size far over the file's.
        (riff((b"fmt ", pcm_fmt()), (b"data", _TONE))[:30], r"'fmt' chunk at byte 12: .* 10 are"),
        (
            riff((b"fmt ", pcm_fmt()), (b"data", _TONE))[:5045],
            r"truncated: the data chunk declares 16000 bytes but only 5001",
        ),
        (
            riff((b"fmt ", pcm_fmt()), (b"data", _TONE)).replace(
                b"data\x80\x3e\0\0", b"data\xf0\xff\xff\xff"
            ),
            r"truncated: the data chunk declares 4294967280 bytes",
        ),
        (riff((b"fmt ", pcm_fmt()), (b"data", _TONE))[:38], r"truncated: the file ends at byte 38"),
        (riff((b"fmt ", pcm_fmt()[:8]), (b"data", _TONE)), r"corrupt fmt chunk \(8 bytes"),
        (riff((b"fmt ", pcm_fmt())), "no data chunk"),
        (riff((b"data", _TONE), (b"fmt ", pcm_fmt())), "data chunk before the fmt chunk"),
        # Rates nothing real has.
        (riff((b"fmt ", pcm_fmt(rate=1)), (b"data", _TONE)), r"sample rate 1 Hz is outside"),
        (
            riff((b"fmt ", pcm_fmt(rate=0xFFFFFFFF)), (b"data", _TONE)),
            r"sample rate 4294967295 Hz is outside 4000-384000 Hz",
        ),
        (riff((b"fmt ", pcm_fmt(channels=0)), (b"data", _TONE)), r"0 channels"),
    ],
)
def test_corrupt_and_truncated_files_are_named(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(WavError, match=message) as info:
        read_wav_8k(path)
    assert str(path) in str(info.value)
    assert "()" not in str(info.value)


def test_a_corrupt_list_chunk_is_reported_not_a_missing_fmt(tmp_path: Path) -> None:
    data = riff((b"LIST", b"INFOxxxx"), (b"fmt ", pcm_fmt()), (b"data", _TONE))
    assert len(decode_wav(data)[0]) == 8000  # a sound LIST chunk is skipped
    bad = data.replace(b"LIST\x08\0\0\0", b"LIST\xff\xff\xff\xff")
    with pytest.raises(WavError, match="LIST") as info:
        decode_wav(bad)
    assert "no fmt chunk" not in str(info.value)


def test_only_the_first_minute_is_decoded() -> None:
    from dialer.amd._wav import MAX_DECODE_S, decode_wav_full

    long = wav_bytes(np.ones(8000 * (MAX_DECODE_S + 2), dtype="<i2"), 8000)
    d = decode_wav_full(long)
    assert len(d.samples) == 8000 * MAX_DECODE_S
    assert d.capped
    assert d.file_ms == 1000 * (MAX_DECODE_S + 2)
    short = decode_wav_full(wav_bytes(np.ones(8000, dtype="<i2"), 8000))
    assert not short.capped
    assert short.file_ms == 1000


def test_a_recording_of_hours_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """A WAV of 400 MB (7 hours at 8 kHz; a RIFF can hold 4 GB): only its headers and the
    first MAX_DECODE_S seconds are read, never the whole file into memory."""
    import tracemalloc

    from dialer.amd._wav import MAX_DECODE_S, read_wav

    data_bytes = 400_000_000
    tone = (np.sin(np.arange(8000) / 3) * 9000).astype("<i2").tobytes()
    head = riff((b"fmt ", pcm_fmt()), (b"data", b""))
    head = head[:4] + struct.pack("<I", len(head) - 8 + data_bytes) + head[8:-4]
    path = tmp_path / "long.wav"
    with path.open("wb") as f:
        f.write(head + struct.pack("<I", data_bytes) + tone)
        f.truncate(len(head) + 4 + data_bytes)  # sparse: the rest reads as zeros
    tracemalloc.start()
    try:
        samples, decoded = read_wav(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.capped
    assert decoded.file_ms == data_bytes // 16
    assert len(samples) == 8000 * MAX_DECODE_S
    assert samples[:8000].tobytes() == tone
    assert peak < 32_000_000
