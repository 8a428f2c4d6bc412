"""A deterministic, regenerable AMD corpus: espeak-ng speech, sox telephone passes, numpy noise.

Every file is a call from its answer on: a lead-in silence of 0.1-1.2 s, then what answered.
Subsets (truth -> expected verdict):

==================== ========= ======== ==========================================================
subset               truth     expected content
==================== ========= ======== ==========================================================
human_short          human     HUMAN    "¿Bueno?", "Hello?", "Hola, ¿quién habla?"... then silence
human_repeated       human     HUMAN    "¿Bueno? ... ¿Bueno?" (0.9-2.0 s apart, sometimes thrice)
human_business       human     HUMAN    "Ferretería López, buenas tardes." then silence
machine_long_beep    machine   MACHINE  a 4-10 s voicemail greeting, a beep, recording silence
machine_long_nobeep  machine   MACHINE  the same without a beep
machine_short        machine   MACHINE  "Deja tu mensaje." then a beep
silence              silence   NOTSURE  nothing but line noise (dead air goes to an agent)
intercept            intercept MACHINE  a carrier announcement, mostly after the three SIT tones
                                        (their kind in the label's ``sit_kind``)
fax                  fax       MACHINE  CNG (1100 Hz, 0.5 s every 3.5 s) or CED (2100 Hz, 2.6-3.6 s)
==================== ========= ======== ==========================================================

Speech: espeak-ng, Spanish (es-419, es) and English (en-us, en-gb) voices with eight variants,
135-185 words/min, pitch 30-70; resampled to 8 kHz by sox. Each file then gets a speech level
of -30 to -14 dBFS, white or pink noise (clean, or 5-30 dB SNR) from a seeded numpy Generator,
sox's telephone band-pass (``sinc 300-3400``) and a G.711 round trip (mu-law, A-law or both,
through sox), and in 30 % of files 0.5-4 % of the 20 ms frames lost (zeroed).

Determinism: each file's random choices come from ``SeedSequence([1, seed, index])``;
sox runs with ``-R -D`` (repeatable, no dither); espeak-ng has no randomness. The same seed, count
and tool versions give bit-identical files; ``SHA256SUMS`` lists them (``sha256sum -c``).

Seeds: tune on the development seeds (:data:`DEV_SEEDS`), report on the test seeds
(:data:`TEST_SEEDS`). A corpus is one seed; its files are indexed 0..count-1.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialer.amd import _phrases as ph
from dialer.amd._exceptions import CorpusError
from dialer.amd._frames import BLOCK_SAMPLES, SAMPLE_RATE
from dialer.amd._synth import FULL_SCALE, active_rms, g711, noise, speech, tone, tool_versions
from dialer.amd._tone import SIT_KIND_NAMES, SIT_KINDS
from dialer.amd._wav import write_wav

#: The corpus format's version (in ``manifest.json``). Version 2 keeps version 1's random
#: streams (:data:`_STREAM_VERSION`): only the few long greetings that version 1 left outside
#: 4-10 s differ, every other file is bit-identical. Version 3 adds ``sit_kind`` to the labels
#: (so ``labels.jsonl`` and its sum change); every WAV is bit-identical to version 2's.
GENERATOR_VERSION = 3
#: The first word of every file's (and the plan's) ``SeedSequence``.
_STREAM_VERSION = 1
#: Seeds to tune on.
DEV_SEEDS = range(1, 1000)
#: Seeds to report on; never tune on these.
TEST_SEEDS = range(1000, 2000)

LABELS = "labels.jsonl"
CHECKSUMS = "SHA256SUMS"
MANIFEST = "manifest.json"

EXPECTED = {
    "human": "HUMAN",
    "machine": "MACHINE",
    "intercept": "MACHINE",
    "fax": "MACHINE",
    "silence": "NOTSURE",
}


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    truth: str
    weight: float


SUBSETS = (
    Subset("human_short", "human", 0.18),
    Subset("human_repeated", "human", 0.10),
    Subset("human_business", "human", 0.14),
    Subset("machine_long_beep", "machine", 0.18),
    Subset("machine_long_nobeep", "machine", 0.10),
    Subset("machine_short", "machine", 0.10),
    Subset("silence", "silence", 0.06),
    Subset("intercept", "intercept", 0.07),
    Subset("fax", "fax", 0.07),
)
SUBSET_NAMES = tuple(s.name for s in SUBSETS)
_BY_NAME = {s.name: s for s in SUBSETS}
_SR = SAMPLE_RATE
_BEEP_HZ = (425, 440, 480, 600, 800, 850, 1000, 1200, 1400, 1600, 2000)


def seed_range(seed: int) -> str:
    """``dev``, ``test`` or ``other``: which range a corpus seed belongs to."""
    if seed in DEV_SEEDS:
        return "dev"
    if seed in TEST_SEEDS:
        return "test"
    return "other"


# -- one file ---------------------------------------------------------------------------------
class _Track:
    """Sounds placed on a timeline (seconds), with the labels that go with them."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray]] = []
        self.speech: list[list[int]] = []
        self.tones: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.end = 0

    def put(self, at_s: float, x: np.ndarray) -> float:
        start = round(at_s * _SR)
        self.parts.append((start, x))
        self.end = max(self.end, start + len(x))
        return (start + len(x)) / _SR

    def say(self, at_s: float, x: np.ndarray, text: str) -> float:
        end = self.put(at_s, x)
        self.speech.append([round(at_s * 1000), round(end * 1000)])
        self.texts.append(text)
        return end

    def tone(self, at_s: float, x: np.ndarray, hz: float, kind: str) -> float:
        end = self.put(at_s, x)
        self.tones.append(
            {"kind": kind, "onset_ms": round(at_s * 1000), "end_ms": round(end * 1000), "hz": hz}
        )
        return end

    def render(self, total_s: float) -> np.ndarray:
        n = max(round(total_s * _SR), self.end)
        n += -n % BLOCK_SAMPLES
        y = np.zeros(n)
        for start, x in self.parts:
            y[start : start + len(x)] += x
        return y


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _compose(subset: str, rng: np.random.Generator) -> tuple[_Track, float, dict[str, Any]]:
    lang = "es" if rng.random() < 0.6 else "en"
    voice = f"{_pick(rng, ph.VOICES[lang])}+{_pick(rng, ph.VARIANTS)}"
    speed = int(rng.integers(135, 186))
    pitch = int(rng.integers(30, 71))
    level = float(rng.uniform(-30, -14))
    rms = 10 ** (level / 20)
    lead = float(rng.uniform(0.1, 1.2))
    meta: dict[str, Any] = {
        "language": lang,
        "voice": voice,
        "speed_wpm": speed,
        "pitch": pitch,
        "level_dbfs": round(level, 1),
        "lead_in_ms": round(lead * 1000),
    }

    def speak(text: str) -> np.ndarray:
        x = speech(text, voice, speed, pitch)
        return x * (rms / active_rms(x))

    def beep(track: _Track, at: float) -> float:
        hz = float(_pick(rng, _BEEP_HZ)) * float(rng.uniform(0.98, 1.02))
        ms = float(rng.uniform(150, 1000))
        gain = 10 ** (float(rng.uniform(-6, 4)) / 20)
        return track.tone(at, tone(rng, hz, ms, rms * gain), round(hz, 1), "beep")

    track = _Track()
    total = 6.0
    if subset == "human_short":
        text = _pick(rng, ph.HUMAN_SHORT[lang])
        end = track.say(lead, speak(text), text)
        total = end + float(rng.uniform(3.0, 4.5))
    elif subset == "human_repeated":
        text = _pick(rng, ph.HUMAN_REPEATED[lang])
        x = speak(text)
        t = track.say(lead, x, text)
        for _ in range(2 if rng.random() < 0.3 else 1):  # twice, sometimes thrice
            t = track.say(t + float(rng.uniform(0.9, 2.0)), x, text)
        total = t + 2.5
    elif subset == "human_business":
        text = _pick(rng, ph.HUMAN_BUSINESS[lang])
        end = track.say(lead, speak(text), text)
        total = end + 3.5
    elif subset in ("machine_long_beep", "machine_long_nobeep"):
        text, x = _greeting(rng, lang, speak)
        end = track.say(lead, x, text)
        if subset == "machine_long_beep":
            end = beep(track, end + float(rng.uniform(0.2, 1.0)))
            total = end + 2.0
        else:
            total = end + 3.0
    elif subset == "machine_short":
        text = _pick(rng, ph.MACHINE_SHORT[lang])
        end = track.say(lead, speak(text), text)
        end = beep(track, end + float(rng.uniform(0.15, 0.6)))
        total = end + 2.0
    elif subset == "silence":
        total = 6.0
    elif subset == "intercept":
        t = lead
        if rng.random() < 0.75:
            first = float(_pick(rng, (913.8, 985.2)))
            second = float(_pick(rng, (1370.6, 1428.5)))
            # (Both lengths drawn before the tones, as always: the same random stream.)
            coded = ((first, _pick(rng, (274, 380))), (second, _pick(rng, (274, 380))))
            for hz, ms in coded:
                t = track.tone(t, tone(rng, hz, ms, rms * 0.7), hz, "sit")
            # The kind the segments code (UNK: a combination the table leaves unassigned).
            (hz1, ms1), (hz2, ms2) = coded
            codes = ("L" if hz1 < 950 else "H") + str(ms1), ("L" if hz2 < 1400 else "H") + str(ms2)
            meta["sit_kind"] = SIT_KINDS.get(codes, "UNK")
            t = track.tone(t, tone(rng, 1776.7, 380, rms * 0.7), 1776.7, "sit")
            t += float(rng.uniform(0.1, 0.4))
        text = _pick(rng, ph.INTERCEPT[lang])
        total = track.say(t, speak(text), text) + 1.5
    elif subset == "fax":
        if rng.random() < 0.5:
            t = lead
            while t < 6.0:
                track.tone(t, tone(rng, 1100, 500, rms), 1100.0, "cng")
                t += 3.5
        else:
            ms = float(rng.uniform(2600, 3600))
            track.tone(lead, tone(rng, 2100, ms, rms), 2100.0, "ced")
        total = 6.0
    else:
        raise CorpusError(f"unknown subset {subset!r}")
    meta["rms"] = rms
    return track, total, meta


#: A long greeting's bounds (seconds).
GREETING_MIN_S = 4.0
GREETING_MAX_S = 10.0


def _greeting(rng: np.random.Generator, lang: str, speak: Any) -> tuple[str, np.ndarray]:
    """A voicemail greeting of 4-10 s: intro, body sentences, a closing.

    The draws (target length, body order, intro, closing) come first and are the same whatever
    the voice, so the draws after them do not depend on how long the speech turned out. A
    slow voice whose intro and closing alone pass 10 s gets the shortest closing that fits; a
    body sentence that would pass 10 s is skipped for the next one while the greeting is still
    under 4 s (version 1 stopped there, leaving some greetings under 4 s or over 10 s).
    """
    target = float(rng.uniform(GREETING_MIN_S, GREETING_MAX_S))
    body = list(ph.MACHINE_BODY[lang])
    rng.shuffle(body)
    intro, close = _pick(rng, ph.MACHINE_INTRO[lang]), _pick(rng, ph.MACHINE_CLOSE[lang])
    x = speak(f"{intro} {close}")
    if len(x) / _SR > GREETING_MAX_S:
        for shorter in sorted(ph.MACHINE_CLOSE[lang], key=len):
            y = speak(f"{intro} {shorter}")
            if len(y) / _SR <= GREETING_MAX_S:
                close, x = shorter, y
                break
    sentences = [intro, close]
    text = " ".join(sentences)
    while len(x) / _SR < target and body:
        candidate = [*sentences[:-1], body.pop(), sentences[-1]]
        y = speak(" ".join(candidate))
        if len(y) / _SR > GREETING_MAX_S:
            if len(x) / _SR >= GREETING_MIN_S:
                break
            continue
        sentences, text, x = candidate, " ".join(candidate), y
    return text, x


def generate_file(seed: int, index: int, subset: str, out_dir: str) -> dict[str, Any]:
    """Make file ``index`` of corpus ``seed``; return its label."""
    rng = np.random.default_rng(np.random.SeedSequence([_STREAM_VERSION, seed, index]))
    track, total, meta = _compose(subset, rng)
    clean = track.render(total)
    rms = meta.pop("rms")
    sit_kind = meta.pop("sit_kind", None)

    snr_db = None if rng.random() < 0.2 else round(float(rng.uniform(5, 30)), 1)
    colour = str(_pick(rng, ("white", "pink")))
    # "Clean" is a quiet line (-75 dBFS), not digital zero.
    noise_rms = 10 ** (-75 / 20) if snr_db is None else rms / 10 ** (snr_db / 20)
    signal = clean + noise(rng, len(clean), noise_rms, colour)
    pcm = np.clip(np.round(signal * FULL_SCALE), -32768, 32767).astype("<i2")

    codec = str(_pick(rng, ("ulaw", "alaw", "ulaw", "alaw", "ulaw>alaw")))
    out = np.frombuffer(g711(pcm.tobytes(), codec), dtype="<i2").copy()
    out = out[: len(pcm)]
    if len(out) < len(pcm):
        out = np.concatenate([out, np.zeros(len(pcm) - len(out), dtype="<i2")])

    loss = round(float(rng.uniform(0.005, 0.04)), 4) if rng.random() < 0.3 else 0.0
    n_frames = len(out) // BLOCK_SAMPLES
    lost = np.flatnonzero(rng.random(n_frames) < loss) if loss else np.zeros(0, dtype=int)
    for f in lost:
        out[f * BLOCK_SAMPLES : (f + 1) * BLOCK_SAMPLES] = 0

    name = f"{index:04d}-{subset}.wav"
    write_wav(Path(out_dir) / name, out)
    truth = _BY_NAME[subset].truth
    beeps = [t for t in track.tones if t["kind"] == "beep"]
    return {
        "file": name,
        "index": index,
        "seed": seed,
        "subset": subset,
        "truth": truth,
        "expected": EXPECTED[truth],
        **meta,
        "texts": track.texts,
        "speech": track.speech,
        "first_utterance": track.speech[0] if track.speech else None,
        "beep": beeps[0] if beeps else None,
        # The SIT's kind (IC, VC, NC, RO, IO; UNK for an unassigned code), None without one.
        "sit_kind": sit_kind,
        "tones": track.tones,
        "snr_db": snr_db,
        "noise": colour,
        "codec": codec,
        "frame_loss": loss,
        "lost_frames": len(lost),
        "duration_ms": len(out) * 1000 // _SR,
    }


# -- a corpus ---------------------------------------------------------------------------------
def plan(seed: int, count: int, subsets: Iterable[str] | None = None) -> list[str]:
    """Which subset each file index gets: quotas by weight, shuffled by the seed."""
    chosen = [_BY_NAME[n] for n in SUBSET_NAMES if subsets is None or n in set(subsets)]
    if subsets is not None:
        unknown = sorted(set(subsets) - set(SUBSET_NAMES))
        if unknown:
            raise CorpusError(f"unknown subset(s) {', '.join(unknown)}; known: {SUBSET_NAMES}")
    if not chosen or count <= 0:
        return []
    weight = sum(s.weight for s in chosen)
    exact = [count * s.weight / weight for s in chosen]
    quotas = [int(q) for q in exact]
    by_remainder = sorted(range(len(chosen)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: count - sum(quotas)]:
        quotas[i] += 1
    names = [s.name for s, q in zip(chosen, quotas, strict=True) for _ in range(q)]
    rng = np.random.default_rng(np.random.SeedSequence([_STREAM_VERSION, seed]))
    order = rng.permutation(len(names))
    return [names[i] for i in order]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class CorpusSummary:
    out_dir: Path
    seed: int
    files: int
    by_subset: dict[str, int]


def generate_corpus(
    out_dir: str | Path,
    seed: int,
    count: int = 200,
    subsets: Iterable[str] | None = None,
    jobs: int | None = None,
) -> CorpusSummary:
    """Write ``count`` files, ``labels.jsonl``, ``manifest.json`` and ``SHA256SUMS``.

    :class:`CorpusError` names what is wrong (a seed below 0, a missing tool, an ``out_dir``
    that is a file or cannot be written) before anything is created where it can be checked
    first, and any later failure to write.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise CorpusError(f"seed {seed!r}: must be a whole number, 0 or more")
    tools = tool_versions()
    out = Path(out_dir)
    _check_out_dir(out)
    try:
        return _generate(out, seed, count, subsets, jobs, tools)
    except OSError as e:
        where = e.filename or out
        raise CorpusError(f"{where}: cannot write the corpus ({e.strerror or e})") from None


def _check_out_dir(out: Path) -> None:
    """Refuse an ``out_dir`` that cannot become a directory we write in, before creating it."""
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out}: exists and is not a directory")
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing != out and not existing.is_dir():
        raise CorpusError(f"{out}: cannot create it: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CorpusError(f"{out}: cannot write in {existing} (permission denied)")


def _generate(
    out: Path,
    seed: int,
    count: int,
    subsets: Iterable[str] | None,
    jobs: int | None,
    tools: dict[str, str],
) -> CorpusSummary:
    subset_list = sorted(set(subsets)) if subsets is not None else None
    names = plan(seed, count, subset_list)
    out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(names) or 1))
    if jobs == 1:
        labels = [generate_file(seed, i, n, str(out)) for i, n in enumerate(names)]
    else:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [
                pool.submit(generate_file, seed, i, n, str(out)) for i, n in enumerate(names)
            ]
            labels = [f.result() for f in futures]
    with (out / LABELS).open("w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(json.dumps(label, ensure_ascii=False, sort_keys=True) + "\n")
    by_subset = {n: names.count(n) for n in SUBSET_NAMES if n in names}
    manifest = {
        "generator": "puente amd corpus",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "seed_range": seed_range(seed),
        "dev_seeds": [DEV_SEEDS.start, DEV_SEEDS.stop - 1],
        "test_seeds": [TEST_SEEDS.start, TEST_SEEDS.stop - 1],
        "count": len(names),
        "subsets": by_subset,
        "tools": tools,
        "format": "WAV, PCM s16le, 8000 Hz, mono",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    lines = [f"{_sha256(out / label['file'])}  {label['file']}" for label in labels]
    lines += [f"{_sha256(out / name)}  {name}" for name in (LABELS, MANIFEST)]
    (out / CHECKSUMS).write_text("\n".join(lines) + "\n")
    return CorpusSummary(out, seed, len(names), by_subset)


_VERDICTS = ("HUMAN", "MACHINE", "NOTSURE")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label_problem(label: Any) -> str | None:
    """What is wrong with one label (a line of ``labels.jsonl``), or None.

    Required: ``file`` (a WAV's name, relative to the corpus), ``subset`` (a name),
    ``truth`` (one of :data:`EXPECTED`) and ``expected`` (HUMAN, MACHINE or NOTSURE).
    Optional, checked when present: ``seed`` (a whole number, 0 or more),
    ``first_utterance`` ([onset_ms, end_ms]), ``beep`` (an object with ``onset_ms``) and
    ``sit_kind`` (one of :data:`~dialer.amd._tone.SIT_KIND_NAMES`).
    """
    if not isinstance(label, dict):
        return f"a label is a JSON object, not {type(label).__name__}"
    missing = [k for k in ("file", "subset", "truth", "expected") if k not in label]
    if missing:
        return f"missing {', '.join(missing)} (a label needs file, subset, truth and expected)"
    file = label["file"]
    if not isinstance(file, str) or not file.strip():
        return f"file must be a file name (a non-empty string), not {file!r}"
    if Path(file).is_absolute() or ".." in Path(file).parts:
        return f"file {file!r} must be a path inside the corpus directory"
    subset = label["subset"]
    if not isinstance(subset, str) or not subset.strip():
        return f"subset must be a name (a non-empty string), not {subset!r}"
    truth = label["truth"]
    if not isinstance(truth, str) or truth not in EXPECTED:
        return f"truth {truth!r} is not one of {', '.join(EXPECTED)}"
    expected = label["expected"]
    if not isinstance(expected, str) or expected not in _VERDICTS:
        return f"expected {expected!r} is not one of {', '.join(_VERDICTS)}"
    seed = label.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        return f"seed must be a whole number, 0 or more, or null, not {seed!r}"
    utterance = label.get("first_utterance")
    if utterance is not None and not (
        isinstance(utterance, list) and len(utterance) == 2 and all(map(_is_number, utterance))
    ):
        return f"first_utterance must be [onset_ms, end_ms] or null, not {utterance!r}"
    beep = label.get("beep")
    if beep is not None and not (isinstance(beep, dict) and _is_number(beep.get("onset_ms"))):
        return f"beep must be an object with a number onset_ms, or null, not {beep!r}"
    sit_kind = label.get("sit_kind")
    if sit_kind is not None and sit_kind not in SIT_KIND_NAMES:
        return f"sit_kind must be one of {', '.join(SIT_KIND_NAMES)} or null, not {sit_kind!r}"
    return None


def read_labels(corpus_dir: str | Path) -> list[dict[str, Any]]:
    """The labels of a corpus, one per line of ``labels.jsonl`` (UTF-8 JSON objects; blank
    lines are skipped). :class:`CorpusError` names the file, the line and what is wrong, and
    refuses a corpus without a label."""
    path = Path(corpus_dir) / LABELS
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read the labels ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        line = _line_of(e.object, e.start)
        raise CorpusError(
            f"{path}:{line}: not UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start})"
        ) from None
    labels = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            label = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{n}: not JSON ({e.msg})") from None
        problem = _label_problem(label)
        if problem is not None:
            raise CorpusError(f"{path}:{n}: {problem}")
        labels.append(label)
    if not labels:
        raise CorpusError(f"{path}: no labels (an empty corpus; nothing to evaluate)")
    return labels


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def checksums(corpus_dir: str | Path) -> dict[str, str]:
    """The ``SHA256SUMS`` of a corpus as {file name: hex digest}."""
    path = Path(corpus_dir) / CHECKSUMS
    out = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        out[name] = digest
    return out


def verify_checksums(corpus_dir: str | Path) -> list[str] | None:
    """Check a corpus against its ``SHA256SUMS`` (what ``sha256sum -c`` does): the problems
    found (a listed file missing or changed, a labelled WAV not listed), ``[]`` when it
    matches, None when the corpus has no ``SHA256SUMS`` (one not made by the generator)."""
    root = Path(corpus_dir)
    if not (root / CHECKSUMS).is_file():
        return None
    listed = checksums(root)
    problems = []
    for name, digest in listed.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != digest:
            problems.append(f"{name}: changed (SHA-256 differs from {CHECKSUMS})")
    try:
        labelled = [label["file"] for label in read_labels(root)]
    except CorpusError:
        labelled = []
    problems += [f"{name}: not in {CHECKSUMS}" for name in labelled if name not in listed]
    return problems
