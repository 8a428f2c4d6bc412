"""Narrow-band tone analysis: beeps, fax and SIT tones, told apart from sustained vowels.

Each 20 ms block is analysed over a 40 ms Hann window (the block and the one before it), fine
enough to resolve the harmonics of a voice (80 Hz apart or more). The window is *tonal* when
one spectral peak in the beep band holds most of the telephone-band energy (``purity``: the
share within +-62.5 Hz of the peak, the window's main lobe) and there is little energy at twice
or half its frequency: a voice is a comb of harmonics, and even a sustained vowel spreads its
energy over several of them. A *tone* is a run of tonal windows whose frequency stays within a
small drift from one to the next; a *steady* tone (see :class:`ToneTracker`) is a beep, a fax
or a SIT tone, once it has lasted ``beep_min_ms``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from dialer.amd._frames import BLOCK_SAMPLES, SAMPLE_RATE
from dialer.amd._settings import AmdSettings
from dialer.outcomes import SitKind, answer_tone

WINDOW_SAMPLES = 2 * BLOCK_SAMPLES
N_FFT = 512
BIN_HZ = SAMPLE_RATE / N_FFT  # 15.625 Hz
_LOBE = 4  # bins either side of the peak: +-62.5 Hz, the Hann main lobe of a 40 ms window
_BAND_LO = round(250 / BIN_HZ)
_BAND_HI = round(3450 / BIN_HZ)
_WINDOW = np.hanning(WINDOW_SAMPLES)
_LOBE_OFFSETS = np.arange(-_LOBE, _LOBE + 1)
#: Relative to a window's energy, more than the rounding of any sum over its spectrum.
_SLACK = 1e-9
#: A tone's measured edges are within +-10 ms of the true ones: a 100 ms beep may measure 90.
EDGE_TOLERANCE_MS = 10
#: What ``np.cumsum`` runs for a float array (the same sums in the same order), called directly.
_accumulate = np.add.accumulate


@dataclass(frozen=True, slots=True)
class ToneFrame:
    """The spectral test of one window: peak frequency, purity, harmonic ratio, level."""

    hz: float
    purity: float
    harmonic: float
    level_db: float = 0.0


class ToneAnalyser:
    """Per-window spectral test against a running estimate of the line noise's spectrum.

    The noise's expected share is taken out of the peak and of the band before the purity is
    computed, so a beep 0 dB over the noise still shows as a tone, and noise alone does not.
    """

    __slots__ = (
        "_alpha",
        "_hi",
        "_lo",
        "_max_harmonic",
        "_noise",
        "_noise_band",
        "_noise_cum",
        "_params",
        "_purity",
    )

    def __init__(self, settings: AmdSettings) -> None:
        self._lo = max(_LOBE + 1, math.ceil(settings.beep_low_hz / BIN_HZ))
        self._hi = min(N_FFT // 2 - _LOBE - 1, math.floor(settings.beep_high_hz / BIN_HZ))
        self._purity = settings.tone_purity
        self._max_harmonic = settings.tone_max_harmonic
        self._noise: np.ndarray | None = None
        #: its cumulative sum, made when needed (None: not yet, see :meth:`_cum`)
        self._noise_cum: np.ndarray | None = None
        #: its energy over the telephone band, valid with ``_noise_cum`` (see :meth:`noise_band`)
        self._noise_band = 0.0
        self._alpha = 0.1
        #: what the test depends on besides the noise: analysers with equal params can be run
        #: together by :func:`tonal_rows`
        self._params = (self._lo, self._hi, self._purity, self._max_harmonic)

    @staticmethod
    def spectrum(x: np.ndarray) -> np.ndarray:
        """Power spectrum of the last 40 ms (320 samples, float), Hann window, 512 points."""
        spec = np.fft.rfft(x * _WINDOW, N_FFT)
        return (spec * spec.conj()).real  # type: ignore[no-any-return]

    def learn_noise(self, p: np.ndarray) -> None:
        """Fold the spectrum of a window of line noise into the noise estimate.

        Its cumulative sum, which the tone test needs, is made when the test next runs
        (:meth:`noise_band`): a quiet stretch teaches many windows between two tone tests.
        """
        noise = self._noise
        if noise is None:
            self._noise = p.copy()
        else:
            step = p - noise
            step *= self._alpha  # alpha * (p - noise), without a second array
            noise += step
        self._noise_cum = None

    def _cum(self) -> np.ndarray | None:
        """The noise spectrum's cumulative sum (None before any noise was learnt)."""
        nc = self._noise_cum
        if nc is None and self._noise is not None:
            nc = self._noise_cum = _accumulate(self._noise)
            self._noise_band = float(nc[_BAND_HI - 1] - nc[_BAND_LO - 1])
        return nc

    def noise_band(self) -> float:
        """The noise's energy over the telephone band, as the tone test takes it out of a
        window's (0.0 before any noise was learnt)."""
        self._cum()  # made now if stale
        return self._noise_band

    def analyse(self, p: np.ndarray, level_db: float) -> ToneFrame:
        """The spectral test of the window whose power spectrum is ``p``."""
        k = self._peak_bin(p)
        purity, harmonic = self._measure(p, k)
        return ToneFrame(_peak_hz(p, k), purity, harmonic, level_db)

    def tonal_frame(self, p: np.ndarray, level_db: float, k: int | None = None) -> ToneFrame | None:
        """:meth:`analyse` if the window is tonal (:meth:`is_tonal`), else None; ``k`` is the
        peak bin when the caller knows it (the argmax of ``p`` over the beep band)."""
        if k is None:
            k = self._peak_bin(p)
        purity, harmonic = self._measure(p, k)
        if self._tonal(purity, harmonic):
            return ToneFrame(_peak_hz(p, k), purity, harmonic, level_db)
        return None

    def _peak_bin(self, p: np.ndarray) -> int:
        """The strongest bin of ``p`` over the beep band."""
        return int(p[self._lo : self._hi + 1].argmax()) + self._lo

    def _measure(self, p: np.ndarray, k: int) -> tuple[float, float]:
        """Purity and harmonic ratio of the window ``p`` whose peak is at bin ``k``."""
        # Sums over bands as differences of one cumulative sum: c[b] - c[a] = p[a + 1 : b + 1].
        c = _accumulate(p)  # np.cumsum(p), without its wrapper
        main = float(c[k + _LOBE] - c[k - _LOBE - 1])
        total = float(c[_BAND_HI - 1] - c[_BAND_LO - 1])
        nc = self._cum()
        if nc is not None:
            raw_total = total
            main = max(main - float(nc[k + _LOBE] - nc[k - _LOBE - 1]), 0.0)
            total = max(total - self._noise_band, 0.0)
            if total < 0.25 * raw_total:
                # Hardly above the noise: the ratio of two small differences means nothing.
                total = 0.0
        harmonic = 0.0
        for kk in (2 * k, k // 2):
            if kk - _LOBE >= _BAND_LO and kk + _LOBE < len(p):
                energy = float(c[kk + _LOBE] - c[kk - _LOBE - 1])
                if nc is not None:
                    energy = max(energy - float(nc[kk + _LOBE] - nc[kk - _LOBE - 1]), 0.0)
                harmonic = max(harmonic, energy / (main + 1e-9))
        purity = min(1.0, main / total) if total > 0 else 0.0
        return purity, harmonic

    def is_tonal(self, frame: ToneFrame) -> bool:
        return self._tonal(frame.purity, frame.harmonic)

    def _tonal(self, purity: float, harmonic: float) -> bool:
        return purity >= self._purity and harmonic <= self._max_harmonic


def _peak_hz(p: np.ndarray, k: int) -> float:
    """Parabolic interpolation of the peak at bin ``k`` on log power: a few Hz of accuracy."""
    a = math.log(float(p[k - 1]) + 1e-9)
    b = math.log(float(p[k]) + 1e-9)
    g = math.log(float(p[k + 1]) + 1e-9)
    den = a - 2 * b + g
    delta = 0.5 * (a - g) / den if den < 0 else 0.0
    return (k + delta) * BIN_HZ


def spectra(windows: np.ndarray) -> np.ndarray:
    """:meth:`ToneAnalyser.spectrum` of every row of ``windows`` (n x 320) at once."""
    return spectra_of(windows[:, :BLOCK_SAMPLES], windows[:, BLOCK_SAMPLES:])


def spectra_of(
    before: np.ndarray,
    block: np.ndarray,
    padded: np.ndarray | None = None,
    spec: np.ndarray | None = None,
    power: np.ndarray | None = None,
) -> np.ndarray:
    """The spectra of the windows made of ``before`` and ``block`` row by row (n x 160 each):
    the same floats as :meth:`ToneAnalyser.spectrum` of each window, without building it.

    ``padded`` (n x 512, zero past column 320), ``spec`` and ``power`` (n x 257, complex) are
    work arrays to reuse from call to call (the result is ``power``'s real part): fresh ones
    of this size would come from the kernel, and go back, at every call.
    """
    n = len(block)
    if padded is None:
        padded = np.zeros((n, N_FFT))
    if spec is None:
        spec = np.empty((n, N_FFT // 2 + 1), dtype=np.complex128)
    if power is None:
        power = np.empty_like(spec)
    np.multiply(before, _WINDOW[:BLOCK_SAMPLES], out=padded[:, :BLOCK_SAMPLES])
    np.multiply(block, _WINDOW[BLOCK_SAMPLES:], out=padded[:, BLOCK_SAMPLES:WINDOW_SAMPLES])
    np.fft.rfft(padded, axis=1, out=spec)
    np.conjugate(spec, out=power)
    np.multiply(spec, power, out=power)  # spec * spec.conj(), as spectrum() computes it
    return power.real  # type: ignore[no-any-return]


def tonal_rows(
    p: np.ndarray,
    levels: list[float],
    analysers: list[ToneAnalyser],
    rows: list[int] | None = None,
) -> list[ToneFrame | None]:
    """The tone test of many windows at once: row ``rows[i]`` of ``p`` (power spectra, see
    :func:`spectra`; all rows when ``rows`` is None) through ``analysers[i]`` (each knows its
    own line's noise). The :class:`ToneFrame` of each tonal window, None for the others:
    exactly what ``analyse`` and ``is_tonal`` give row by row.

    Most windows (speech, noise) are far from tonal, and one bound proves it for all of them
    at once: the noise only lowers a window's purity where it is taken out of the peak, so the
    peak's share of the band's energy less the noise's bounds it from above. The bound uses
    plain sums (cheaper than the cumulative sums of :meth:`ToneAnalyser.analyse`) widened by
    far more than their rounding can differ; the windows it does not rule out are analysed
    one by one, with the very same code as a single window.
    """
    n = len(analysers)
    out: list[ToneFrame | None] = [None] * n
    if n == 0:
        return out
    where = np.arange(n) if rows is None else np.asarray(rows)
    keys = [a._params for a in analysers]
    if keys.count(keys[0]) == n:  # the usual case: one settings for every call
        groups = {keys[0]: list(range(n))}
    else:
        groups = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
    # Over every row of p (reductions of views: no copy of the spectra), then picked.
    band = p[:, _BAND_LO:_BAND_HI].sum(axis=1)
    whole = p.sum(axis=1)
    for (lo, hi, min_purity, _), members in groups.items():
        r = where if len(members) == n else where[members]
        k = p[:, lo : hi + 1].argmax(axis=1)[r] + lo
        main = p[r[:, None], k[:, None] + _LOBE_OFFSETS].sum(axis=1)
        total = band[r]
        # Rounding of a cumulative sum over a row is far below this.
        slack = _SLACK * whole[r]
        noise = np.array([analysers[i].noise_band() for i in members])
        room = total - noise - slack
        # Out for sure: the noise takes more than 3/4 of the band (analyse zeroes the purity),
        # or the peak holds too little of what is left.
        candidates = (0.75 * (total + slack) >= noise) & (
            (room <= 0) | (main + slack >= min_purity * room)
        )
        for j in np.flatnonzero(candidates).tolist():
            i = members[j]
            out[i] = analysers[i].tonal_frame(p[int(r[j])], levels[i], int(k[j]))
    return out


@dataclass(frozen=True, slots=True)
class Tone:
    """A run of tonal windows: onset and end in stream milliseconds, mean frequency."""

    onset_ms: int
    end_ms: int
    hz: float
    steady: bool
    level_db: float = 0.0

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.onset_ms


class ToneTracker:
    """Joins tonal windows into tones. One lost block (digital silence: a lost packet) does not
    end a tone; any other non-tonal window does.

    A tone is *steady* (a beep, a fax or SIT tone, not a voice) when it has at least three inner
    windows (the first and the newest left out: they straddle the tone's edges) and over them
    the frequency stays
    within ``tone_max_spread_hz``, the level within ``tone_max_level_range_db`` and the median
    purity reaches ``tone_run_purity``. Voices glide and swell: even a held vowel drifts by more
    than a few hertz, or a few decibels, in 100 ms.
    """

    __slots__ = (
        "_drift",
        "_end",
        "_gap",
        "_hz",
        "_level",
        "_level_range",
        "_min_ms",
        "_onset",
        "_purity",
        "_run_purity",
        "_spread",
        "_steady",
    )

    def __init__(self, settings: AmdSettings) -> None:
        self._drift = settings.tone_max_drift_hz
        self._spread = settings.tone_max_spread_hz
        self._run_purity = settings.tone_run_purity
        self._level_range = settings.tone_max_level_range_db
        self._min_ms = min(settings.beep_min_ms, settings.pre_speech_tone_ms) - EDGE_TOLERANCE_MS
        self._reset()

    def _reset(self) -> None:
        self._onset: int | None = None
        self._end = 0
        self._hz: list[float] = []
        self._purity: list[float] = []
        self._level: list[float] = []
        self._gap = 0
        self._steady = False

    @property
    def active(self) -> bool:
        """A tone is in progress."""
        return self._onset is not None

    @property
    def current(self) -> Tone | None:
        """The tone in progress (possibly still growing), if any."""
        if self._onset is None:
            return None
        n = len(self._hz)
        return Tone(
            self._onset, self._end, sum(self._hz) / n, self._is_steady(), sum(self._level) / n
        )

    def _is_steady(self) -> bool:
        if self._steady:
            return True
        inner_hz = self._hz[1:-1]
        assert self._onset is not None
        if len(inner_hz) < 3 or self._end - self._onset < self._min_ms:
            return False
        inner_purity = sorted(self._purity[1:-1])
        median = inner_purity[(len(inner_purity) - 1) // 2]  # the lower median
        inner_level = self._level[1:-1]
        self._steady = (
            max(inner_hz) - min(inner_hz) <= self._spread
            and max(inner_level) - min(inner_level) <= self._level_range
            and median >= self._run_purity
        )
        return self._steady

    def push(
        self, start_ms: int, end_ms: int, tone: ToneFrame | None, lost: bool = False
    ) -> Tone | None:
        """Add the analysis of the window ``[start_ms, end_ms)`` (``tone`` is None when it is not
        tonal, ``lost`` when the block was digital silence); return a tone that just ended."""
        ended = None
        if tone is not None:
            if self._onset is not None and abs(tone.hz - self._hz[-1]) <= self._drift:
                self._end = end_ms
                self._hz.append(tone.hz)
                self._purity.append(tone.purity)
                self._level.append(tone.level_db)
                self._gap = 0
                return None
            ended = self.current
            self._reset()
            self._onset = start_ms
            self._end = end_ms
            self._hz.append(tone.hz)
            self._purity.append(tone.purity)
            self._level.append(tone.level_db)
            return ended
        if self._onset is not None:
            self._gap += 1
            if self._gap > 1 or not lost:
                ended = self.current
                self._reset()
        return ended


def tone_kind(hz: float) -> str:
    """Name a tone heard before any speech: a fax (CNG 1100 Hz, CED 2100 Hz), the first tone
    of a special information tone (913.8/985.2, 1370.6/1428.5, 1776.7 Hz), or just a tone."""
    if abs(hz - 1100) <= 40 or abs(hz - 2100) <= 40:
        return "FAX"
    if 880 <= hz <= 1010 or 1340 <= hz <= 1460 or 1740 <= hz <= 1810:
        return "SIT"
    return "TONE"


# -- special information tones ------------------------------------------------------------------
# North American SIT coding (Bellcore, now Telcordia GR-1162 / ANSI T1.401): three segments in
# a row, the third always 1776.7 Hz for 380 ms; the first (913.8 "L" or 985.2 Hz "H") and the
# second (1370.6 "L" or 1428.5 Hz "H"), each short (274 ms) or long (380 ms), say why the call
# failed. The table is AudioCodes' (Mediant 1000B user's manual LTRT-27055, table 14-2 "Special
# Information Tones (SITs) Reported by the device"). It agrees with IBM/Blueworx's tone tables
# (docs.blueworx.com, BVR "SIT1 (RO')" ... "SIT4 (IC)"), with the TELECOM Digest post of
# 1990-08-24 (NC, IC, VC, RO) and with the 1983 recorder/announcer manual reproduced in
# http://gbppr.ddns.net/2600/touch_tone.txt, which names the inter-LATA variants NC' and RO'.
#: (first segment, second segment) -> kind. IC and VC: the number is dead; NC and RO: the
#: network is congested, try later; IO: another failure.
SIT_KINDS: dict[tuple[str, str], str] = {
    ("L274", "L274"): "IC",  # intercept: vacant number, changed number, not in service
    ("H380", "L274"): "VC",  # vacant code
    ("H380", "H380"): "NC",  # no circuit found
    ("L380", "L380"): "NC",  # no circuit, inter-LATA carrier (NC')
    ("L274", "H380"): "RO",  # reorder: equipment irregularity
    ("H274", "L380"): "RO",  # reorder, inter-LATA carrier (RO')
    ("L380", "H274"): "IO",  # ineffective other
}
#: What :func:`sit_kind_of_cause` can return: a kind, or UNK (a SIT whose segments were not
#: all heard, or a combination the table leaves unassigned).
SIT_KIND_NAMES = tuple(k.value for k in SitKind)  # (the dialer's vocabulary: IC ... UNK)
#: Nominal frequency of each segment's band ("1L" = first segment, low).
_SIT_BANDS = {"1L": 913.8, "1H": 985.2, "2L": 1370.6, "2H": 1428.5, "3": 1776.7}
#: A tone belongs to a band within this: the bands of a segment are 58-71 Hz apart, our
#: estimate of a steady tone's frequency is within a few Hz.
_SIT_HZ_TOLERANCE = 25.0
#: Measured durations (edges within +-10 ms, see EDGE_TOLERANCE_MS) read as short or long:
#: the on-time bounds of the IBM/Blueworx tables (220-320 ms, 340-460 ms). Between them or
#: outside: not a SIT segment.
_SIT_SHORT_MS = (220, 320)
_SIT_LONG_MS = (340, 460)
#: Pieces of one segment (a tone cut by a lost packet or a burst of noise) are joined across
#: a gap up to this; a non-SIT tone shorter than this (the window straddling two segments) is
#: ignored.
_SIT_JOIN_MS = 60
#: Segments follow each other at once (ITU-T E.180: at most 30 ms apart): nothing tonal for
#: this long after a segment means the next one is missing.
_SIT_GAP_MS = 100
#: The third segment carries no code (always 1776.7 Hz, 380 ms): this much of it confirms the
#: SIT, so the verdict need not wait for its end.
_SIT_THIRD_MS = 150


def _sit_band(hz: float) -> str | None:
    for band, nominal in _SIT_BANDS.items():
        if abs(hz - nominal) <= _SIT_HZ_TOLERANCE:
            return band
    return None


def _sit_length(ms: int) -> str | None:
    if _SIT_SHORT_MS[0] <= ms <= _SIT_SHORT_MS[1]:
        return "274"
    if _SIT_LONG_MS[0] <= ms <= _SIT_LONG_MS[1]:
        return "380"
    return None


@dataclass(slots=True)
class _SitSegment:
    """One segment heard: its band (None: not a SIT tone), edges and first frequency."""

    band: str | None
    onset_ms: int
    end_ms: int
    hz: float


class SitCollector:
    """The segments of a SIT heard before any speech, from the tones :class:`ToneTracker` hands
    out; its kind (``IC`` ... ``IO``, or ``UNK``) once known. Pure: tones and stream times in.

    Made when the first tone proves to be at a SIT frequency; :meth:`push` after every block
    returns the kind as soon as it is known: once the third segment is confirmed, or ``UNK``
    as soon as it cannot be had (a tone out of order or of a wrong length, a missing segment)
    or ``max_ms`` after the first onset.
    """

    __slots__ = ("_deadline_ms", "_segments")

    def __init__(self, first: Tone, max_ms: int) -> None:
        self._deadline_ms = first.onset_ms + max_ms
        self._segments: list[_SitSegment] = []  # heard so far, pieces joined
        self._join(self._segments, first)

    @staticmethod
    def _join(segments: list[_SitSegment], tone: Tone) -> None:
        band = _sit_band(tone.hz)
        if band is None and tone.duration_ms < _SIT_JOIN_MS:
            return  # a window across two segments, a click: not a segment
        last = segments[-1] if segments else None
        # (The tone in progress joins its own earlier view: it starts before that one's end.)
        if last is not None and last.band == band and tone.onset_ms - last.end_ms <= _SIT_JOIN_MS:
            last.end_ms = max(last.end_ms, tone.end_ms)
        else:
            segments.append(_SitSegment(band, tone.onset_ms, tone.end_ms, tone.hz))

    def _with(self, current: Tone | None) -> list[_SitSegment]:
        """The segments with the tone in progress joined in (it may still grow)."""
        if current is None:
            return self._segments
        segments = [dataclasses.replace(seg) for seg in self._segments[-1:]]
        self._join(segments, current)
        return self._segments[:-1] + segments

    def first(self, current: Tone | None) -> tuple[float, int]:
        """The first segment's frequency and duration so far (for ``AMDCAUSE``)."""
        seg = self._with(current)[0]
        return seg.hz, seg.end_ms - seg.onset_ms

    def push(self, now_ms: int, current: Tone | None, ended: Tone | None) -> str | None:
        """After a block: the kind if known (``ended`` is a tone that just ended, ``current``
        the one in progress), else None (wait)."""
        if ended is not None:
            self._join(self._segments, ended)
        kind = self._judge(now_ms, current)
        if kind is None and now_ms >= self._deadline_ms:
            return "UNK"
        return kind

    def settle(self, now_ms: int, current: Tone | None) -> str:
        """The kind now, whatever is missing (the cap, a hang-up): UNK unless it is known."""
        return self._judge(now_ms, current) or "UNK"

    def _judge(self, now_ms: int, current: Tone | None) -> str | None:
        segments = self._with(current)
        ongoing = current is not None and segments[-1].end_ms == current.end_ms
        codes = []
        for i, seg in enumerate(segments[:3]):
            ms = seg.end_ms - seg.onset_ms
            if seg.band is None or seg.band[0] != "123"[i]:
                return "UNK"  # another tone, or a SIT tone out of order
            last = i == len(segments) - 1
            if i == 2:
                if ms >= _SIT_THIRD_MS:
                    return SIT_KINDS.get((codes[0], codes[1]), "UNK")
                if not (last and ongoing):  # cut short: unless a piece of it follows
                    return "UNK" if now_ms - seg.end_ms > _SIT_JOIN_MS else None
            elif last and ongoing:
                return "UNK" if ms > _SIT_LONG_MS[1] else None
            else:
                length = _sit_length(ms)
                if length is None:
                    return "UNK"
                codes.append(seg.band[1] + length)
        if not ongoing and now_ms - segments[-1].end_ms > _SIT_GAP_MS:
            return "UNK"  # the next segment never came
        return None


def sit_kind_of_cause(cause: str) -> str | None:
    """The SIT kind in an ``AMDCAUSE`` (``SIT-VC-985-380`` -> ``VC``): one of
    :data:`SIT_KIND_NAMES`, ``UNK`` for a SIT cause without a known kind (also the older
    ``SIT-<hz>-<ms>``), None when the cause is not a SIT's. Read as the dialer reads it
    (:func:`dialer.outcomes.answer_tone`), so the evaluation scores what the dialer acts on."""
    tone = answer_tone(cause)
    return None if tone is None or tone.sit is None else tone.sit.value
