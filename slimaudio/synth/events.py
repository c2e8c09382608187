"""Procedural corpus of alert-relevant sound events for deaf and hard-of-hearing users.

Each class is a parametrised generator with random variation per clip; the event occupies
part of the clip and is mixed into a background (traffic, machinery, crowd, rain) at an SNR
drawn uniformly from [snr_db_min, snr_db_max], measured on the event's active level. Class
sizes are geometrically imbalanced in a seeded class order, so undersampling and class
weights matter. Confusable pairs are deliberate: siren wail vs yelp (same band, different
sweep rate), doorbell vs phone (electronic chimes vs melodic ringtones), baby crying vs
speech babble (harmonic voices), kettle whistle vs smoke alarm (narrowband tones near
2-3 kHz), running water vs the rain background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from slimaudio.errors import ParamError
from slimaudio.schemas.data import EventSynth
from slimaudio.spec import values
from slimaudio.synth import dsp

EVENT_CLASSES: tuple[str, ...] = (
    "siren_wail", "siren_yelp", "smoke_alarm", "doorbell", "knocking", "phone_ringing",
    "car_horn", "glass_breaking", "dog_bark", "baby_crying", "kettle_whistle",
    "running_water", "footsteps", "speech_babble",
)
BACKGROUNDS: tuple[str, ...] = ("traffic", "machinery", "crowd", "rain")


@dataclass(frozen=True)
class EventCorpusConfig(EventSynth):
    """Params prepare_sounds.synthetic (the knobs, documented in slimaudio.schemas.data) plus
    base.sample_rate and base.seed."""
    classes: tuple[str, ...]             # class names, in label order (never null here)
    sample_rate: int
    seed: int

    def __post_init__(self) -> None:
        unknown = [c for c in self.classes if c not in GENERATORS]
        checks = [
            ("classes", len(self.classes) >= 2 and not unknown and len(set(self.classes)) == len(self.classes)),
            ("clips_per_class_max", self.clips_per_class_max >= 1),
            ("imbalance", 0.0 < self.imbalance <= 1.0),
            ("min_dur_s", 0.1 <= self.min_dur_s <= self.max_dur_s),
            ("snr_db_min", self.snr_db_min <= self.snr_db_max),
            ("sample_rate", self.sample_rate >= 8000),
            ("min_occupancy", 0.05 <= self.min_occupancy <= 1.0),
            ("variability", self.variability >= 0.0),
        ]
        for name, ok in checks:
            if not ok:
                extra = f" (unknown: {unknown}; known: {list(GENERATORS)})" if unknown and name == "classes" else ""
                raise ParamError(f"event synth: {name}={getattr(self, name)!r} is out of range{extra}")

    @classmethod
    def of(cls, synthetic: EventSynth, sample_rate: int, seed: int) -> EventCorpusConfig:
        """From params prepare_sounds.synthetic (classes null: all EVENT_CLASSES),
        base.sample_rate and base.seed."""
        knobs = values(synthetic, EventSynth)
        classes = synthetic.classes
        return cls(**{**knobs, "classes": tuple(EVENT_CLASSES if classes is None else classes)},
                   sample_rate=int(sample_rate), seed=int(seed))


@dataclass(frozen=True)
class ClipSpec:
    clip_id: str
    class_name: str
    label: int
    duration_s: float
    snr_db: float
    background: str
    seed: int


@dataclass(frozen=True)
class SynthClip:
    spec: ClipSpec
    audio: np.ndarray  # float32 mono in [-1, 1], len == round(duration_s * sample_rate)


# ----------------------------------------------------------------------------- helpers
class _Var:
    """Random draws whose spread around a nominal value is scaled by `variability`."""

    def __init__(self, rng: np.random.Generator, variability: float) -> None:
        self.rng = rng
        self.v = variability

    def u(self, lo: float, hi: float) -> float:
        mid = 0.5 * (lo + hi)
        return float(mid + (self.rng.uniform(lo, hi) - mid) * self.v)

    def i(self, lo: int, hi: int) -> int:  # inclusive
        return int(round(self.u(lo - 0.49, hi + 0.49)))


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32) / sr


def _decaying_partials(n: int, sr: int, freqs: np.ndarray, amps: np.ndarray,
                       taus: np.ndarray) -> np.ndarray:
    """Sum of exponentially decaying sinusoids (bells, shards, resonances), starting at 0."""
    t = _t(n, sr)[:, None]
    ok = freqs < 0.45 * sr
    parts = amps[ok] * np.exp(-t / taus[ok]) * np.sin(2 * np.pi * freqs[ok] * t)
    return parts.sum(axis=1).astype(np.float32)


def _add_at(out: np.ndarray, onset: int, x: np.ndarray, gain: float = 1.0) -> None:
    """out[onset:onset+len(x)] += gain * x, clipped to out."""
    if onset >= len(out) or onset + len(x) <= 0:
        return
    a = max(onset, 0)
    b = min(onset + len(x), len(out))
    out[a:b] += gain * x[a - onset:b - onset]


def _gate(n: int, sr: int, on_off: list[tuple[float, float]], period_s: float,
          start_s: float = 0.0, ramp_s: float = 0.005) -> np.ndarray:
    """0/1 envelope repeating a cadence of (start, stop) seconds every period_s, smoothed."""
    t = (_t(n, sr) - start_s) % period_s
    g = np.zeros(n, np.float32)
    for a, b in on_off:
        g[(t >= a) & (t < b)] = 1.0
    w = max(int(ramp_s * sr), 1)
    return np.convolve(g, np.ones(w, np.float32) / w, mode="same").astype(np.float32)


def _first_on(r: _Var, n: int, sr: int, pattern_s: float) -> float:
    """Start time of a cadence: may begin mid-pattern, but always sounds early in the span."""
    return float(r.rng.uniform(-0.5 * pattern_s, min(0.25 * n / sr, 0.5)))


def _butter(order: int, lo_hz: float, hi_hz: float, sr: int) -> np.ndarray:
    """Band-pass (lo_hz > 0) or low-pass SOS with the edges kept below Nyquist at any rate."""
    hi = min(hi_hz, 0.45 * sr)
    if lo_hz <= 0:
        return signal.butter(order, hi, fs=sr, output="sos")
    return signal.butter(order, [min(lo_hz, 0.7 * hi), hi], btype="bandpass", fs=sr, output="sos")


def _resonate(x: np.ndarray, sr: int, centres: list[float], bws: list[float],
              gains: list[float] | None = None) -> np.ndarray:
    """Parallel 2-pole band-pass resonators (formants of barks and cries)."""
    out = np.zeros_like(x)
    for k, (fc, bw) in enumerate(zip(centres, bws, strict=True)):
        lo, hi = max(fc - bw / 2, 40.0), min(fc + bw / 2, 0.45 * sr)
        if hi <= lo:
            continue
        sos = _butter(1, lo, hi, sr)
        out += (gains[k] if gains else 1.0) * signal.sosfilt(sos, x).astype(np.float32)
    return out


def _harm_amps(rng: _Var, n_harm: int, slope_lo: float, slope_hi: float) -> np.ndarray:
    k = np.arange(1, n_harm + 1)
    return (k ** -rng.u(slope_lo, slope_hi)).astype(np.float32)


# ----------------------------------------------------------------------------- event generators
Generator = Callable[[_Var, int, int], np.ndarray]


def _siren(r: _Var, n: int, sr: int, period_s: float) -> np.ndarray:
    t = _t(n, sr)
    f_lo, f_hi = r.u(500, 850), r.u(1150, 1700)
    phase = r.rng.uniform(0, 2 * np.pi)
    sweep = 0.5 * (1 - np.cos(2 * np.pi * t / period_s + phase))
    skew = r.u(0.6, 1.6)  # asymmetric up/down sweep
    f = f_lo + (f_hi - f_lo) * sweep**skew
    f *= 1.0 + 0.01 * dsp.smooth_random(r.rng, n, int(n / sr) + 2)  # doppler-ish wobble
    x = dsp.harmonic_tone(f, sr, _harm_amps(r, 7, 0.8, 2.0))
    swell = 10 ** (dsp.smooth_random(r.rng, n, int(n / sr / 3) + 2, 3.0) / 20)  # passing vehicle
    return x * swell


def siren_wail(r: _Var, n: int, sr: int) -> np.ndarray:
    return _siren(r, n, sr, r.u(2.5, 7.0))


def siren_yelp(r: _Var, n: int, sr: int) -> np.ndarray:
    return _siren(r, n, sr, r.u(0.15, 0.45))


def smoke_alarm(r: _Var, n: int, sr: int) -> np.ndarray:
    f0 = r.u(2900, 3500)
    if r.rng.random() < 0.7:  # T3: three 0.5 s beeps, 1.5 s pause
        on = r.u(0.4, 0.55)
        gap = r.u(0.4, 0.6)
        cadence = [(k * (on + gap), k * (on + gap) + on) for k in range(3)]
        period = 3 * (on + gap) + r.u(1.0, 1.6)
    else:  # T4 (CO alarms): four short fast beeps
        on, gap = r.u(0.08, 0.12), r.u(0.08, 0.12)
        cadence = [(k * (on + gap), k * (on + gap) + on) for k in range(4)]
        period = 4 * (on + gap) + r.u(2.0, 5.0)
    g = _gate(n, sr, cadence, period, _first_on(r, n, sr, cadence[-1][1]))
    f = np.full(n, f0, np.float32) * (1 + 0.004 * np.sin(2 * np.pi * r.u(5, 30) * _t(n, sr)))
    return dsp.harmonic_tone(f, sr, [1.0, r.u(0.05, 0.3)]) * g


def _chime(r: _Var, n: int, sr: int, f0: float, tau: float) -> np.ndarray:
    ratios = np.array([1.0, 2.0, r.u(2.6, 3.0), r.u(4.0, 4.3)], np.float32)
    amps = np.array([1.0, r.u(0.2, 0.6), r.u(0.1, 0.4), r.u(0.05, 0.2)], np.float32)
    taus = tau / np.array([1.0, 1.6, 2.2, 3.0], np.float32)
    x = _decaying_partials(n, sr, f0 * ratios, amps, taus)
    return x * dsp.envelope_adsr(n, sr, 0.002, 0.02)


def doorbell(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    electronic = r.rng.random() < 0.35
    if electronic:  # short melodic electronic chime (confusable with a ringtone)
        base = r.u(500, 900)
        notes = base * 2 ** (np.array(r.rng.choice([0, 3, 5, 7, 9, 12], r.i(3, 4))) / 12)
    else:  # ding-dong: high then lower note
        f1 = r.u(550, 900)
        notes = np.array([f1, f1 * r.u(0.76, 0.84)])
    step = r.u(0.35, 0.7) if not electronic else r.u(0.2, 0.35)
    tau = r.u(0.4, 1.2) if not electronic else r.u(0.15, 0.4)
    pattern_len = step * len(notes) + 3 * tau
    period = pattern_len + r.u(0.5, 2.5)
    start = int(r.rng.uniform(0, 0.3) * sr)
    while start < n:
        for k, f in enumerate(notes):
            seg = int(min(5 * tau, 3.0) * sr)
            _add_at(out, start + int(k * step * sr), _chime(r, seg, sr, float(f), tau))
        start += int(period * sr)
    return out


def knocking(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    f_res = r.u(80, 300)
    lp = r.u(800, 3000)
    sos = _butter(2, 0, lp, sr)
    t_knock = int(0.12 * sr)
    t = r.u(0.0, 0.3)
    interval = r.u(0.12, 0.25)
    while t * sr < n:
        for _ in range(r.i(2, 5)):
            tk = _t(t_knock, sr)
            click = signal.sosfilt(sos, r.rng.standard_normal(t_knock)).astype(np.float32)
            click *= np.exp(-tk / r.u(0.008, 0.025))
            body = np.exp(-tk / r.u(0.03, 0.08)) * np.sin(2 * np.pi * f_res * tk)
            body2 = 0.4 * np.exp(-tk / 0.03) * np.sin(2 * np.pi * f_res * r.u(2.1, 2.9) * tk)
            _add_at(out, int(t * sr), click + 3 * body + body2, r.u(0.6, 1.0))
            t += interval * r.u(0.9, 1.1)
        t += r.u(0.6, 2.0)
    return out


def phone_ringing(r: _Var, n: int, sr: int) -> np.ndarray:
    t = _t(n, sr)
    kind = r.rng.choice(3, p=[0.4, 0.3, 0.3])
    if kind == 0:  # classic dual-tone ring with a national cadence
        f1 = r.u(380, 480)
        f2 = f1 * r.u(1.08, 1.2)
        x = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
        if r.rng.random() < 0.5:
            on = r.u(0.8, 2.0)
            cad, period = [(0.0, on)], on + r.u(1.5, 3.5)
        else:  # double ring
            cad, period = [(0.0, 0.4), (0.6, 1.0)], 1.0 + r.u(1.5, 2.5)
        return x.astype(np.float32) * _gate(n, sr, cad, period, _first_on(r, n, sr, cad[-1][1]))
    if kind == 1:  # electronic trill: two tones alternating at 12-25 Hz
        fa = r.u(900, 1600)
        fb = fa * r.u(1.2, 1.5)
        sq = 0.5 * (1 + np.sign(np.sin(2 * np.pi * r.u(12, 25) * t)))
        f = fa + (fb - fa) * sq
        on = r.u(0.8, 1.5)
        period = on + r.u(1.0, 3.0)
        gate = _gate(n, sr, [(0.0, on)], period, _first_on(r, n, sr, on))
        return dsp.harmonic_tone(f, sr, [1.0, 0.3, 0.2]) * gate
    # melodic ringtone: a repeated motif of short decaying notes (confusable with chimes)
    base = r.u(500, 1000)
    motif = base * 2 ** (np.array(r.rng.choice([0, 2, 4, 7, 9, 12], r.i(4, 8))) / 12)
    step = r.u(0.12, 0.25)
    tau = r.u(0.08, 0.3)
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        for k, f in enumerate(motif):
            _add_at(out, start + int(k * step * sr), _chime(r, int(4 * tau * sr), sr, float(f), tau))
        start += int((step * len(motif) + r.u(0.3, 1.0)) * sr)
    return out


def car_horn(r: _Var, n: int, sr: int) -> np.ndarray:
    f1 = r.u(330, 470)
    f2 = f1 * r.u(1.18, 1.3)
    vib = 1 + 0.003 * np.sin(2 * np.pi * r.u(3, 8) * _t(n, sr))
    amps = _harm_amps(r, 14, 0.5, 1.1)
    x = dsp.harmonic_tone(np.full(n, f1, np.float32) * vib, sr, amps) \
        + r.u(0.6, 1.0) * dsp.harmonic_tone(np.full(n, f2, np.float32) * vib, sr, amps)
    g = np.zeros(n, np.float32)
    t = r.u(0.0, 0.3)
    while t * sr < n:
        d = r.u(0.2, 1.5)
        a, b = int(t * sr), min(int((t + d) * sr), n)
        g[a:b] = dsp.envelope_adsr(b - a, sr, 0.01, 0.03)
        t += d + r.u(0.15, 2.0)
    return x * g


def glass_breaking(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    t0 = int(r.u(0.0, 0.2) * sr)
    crash_n = int(0.6 * sr)
    tc = _t(crash_n, sr)
    crash = dsp.band_noise(r.rng, crash_n, r.u(800, 2000), 7500, sr) * np.exp(-tc / r.u(0.04, 0.15))
    _add_at(out, t0, crash)
    # shards: high damped sinusoids, dense right after the impact, then sparse debris
    n_sh = r.i(20, 60)
    when = t0 + (r.rng.exponential(r.u(0.1, 0.4), n_sh) * sr).astype(int)
    debris = r.i(0, int(n / sr * 3))
    when = np.concatenate([when, r.rng.integers(t0, max(t0 + 1, n), debris)])
    shard_n = int(0.2 * sr)
    for w in when:
        k = r.rng.integers(1, 4)
        f = r.rng.uniform(2500, 7500, k).astype(np.float32)
        sh = _decaying_partials(shard_n, sr, f, r.rng.uniform(0.2, 1.0, k).astype(np.float32),
                                r.rng.uniform(0.01, 0.08, k).astype(np.float32))
        _add_at(out, int(w), sh, float(r.rng.uniform(0.1, 0.6)))
    return out


def dog_bark(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    f0 = r.u(250, 650)
    formants = [r.u(500, 1000), r.u(1400, 2500), r.u(2800, 3800)]
    hnr = r.u(0.3, 0.9)  # harmonic share (rough vs tonal dogs)
    t = r.u(0.0, 0.3)
    while t * sr < n:
        for _ in range(r.i(1, 4)):
            d = r.u(0.1, 0.3)
            m = int(d * sr)
            tt = _t(m, sr)
            f = f0 * r.u(0.9, 1.1) * (1.15 - 0.3 * tt / d)  # falling pitch
            src = hnr * dsp.harmonic_tone(f, sr, _harm_amps(r, 12, 0.6, 1.2)) \
                + (1 - hnr) * r.rng.standard_normal(m).astype(np.float32)
            env = np.minimum(tt / 0.01, 1.0) * np.exp(-tt / (0.35 * d))
            _add_at(out, int(t * sr), _resonate(src * env, sr, formants, [300, 500, 700], [1.0, 0.8, 0.4]))
            t += d + r.u(0.1, 0.4)
        t += r.u(0.5, 2.0)
    return out


def _cry_unit(r: _Var, m: int, sr: int, f0: float, formants: list[float]) -> np.ndarray:
    tt = _t(m, sr)
    d = m / sr
    contour = 1 + r.u(0.1, 0.3) * np.sin(np.pi * tt / d)  # rise-fall
    vib = 1 + r.u(0.01, 0.04) * np.sin(2 * np.pi * r.u(5, 9) * tt)
    f = f0 * contour * vib
    src = dsp.harmonic_tone(f, sr, _harm_amps(r, 12, 0.5, 1.2))
    src += r.u(0.02, 0.2) * r.rng.standard_normal(m).astype(np.float32)
    return _resonate(src, sr, formants, [400, 600, 900], [1.0, 0.9, 0.6]) * dsp.envelope_adsr(m, sr, 0.05, 0.1)


def baby_crying(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    f0 = r.u(330, 550)
    formants = [r.u(900, 1300), r.u(2500, 3500), r.u(4200, 5200)]
    t = r.u(0.0, 0.2)
    while t * sr < n:
        fussy = r.rng.random() < 0.3  # shorter, lower "fussing" units (closer to speech)
        d = r.u(0.2, 0.5) if fussy else r.u(0.5, 1.6)
        unit = _cry_unit(r, int(d * sr), sr, f0 * (0.8 if fussy else 1.0) * r.u(0.92, 1.08), formants)
        _add_at(out, int(t * sr), unit, r.u(0.5, 1.0))
        t += d + r.u(0.15, 0.5)
    return out


def kettle_whistle(r: _Var, n: int, sr: int) -> np.ndarray:
    t = _t(n, sr)
    d = n / sr
    f_start = r.u(1300, 2400)
    rise = r.u(1.05, 1.4)
    approach = 1 - np.exp(-t / max(d * r.u(0.2, 0.6), 0.05))
    f = f_start * (1 + (rise - 1) * approach) * (1 + 0.003 * dsp.smooth_random(r.rng, n, int(d * 8) + 2))
    x = dsp.harmonic_tone(f, sr, [1.0, r.u(0.0, 0.15)])
    if r.rng.random() < 0.5:  # two-pitch kettles beat
        x += r.u(0.3, 0.8) * dsp.harmonic_tone(f * r.u(1.01, 1.06), sr, [1.0])
    breath = dsp.band_noise(r.rng, n, f_start * 0.8, f_start * rise * 1.3, sr, order=2)
    amp = np.minimum(approach * r.u(1.0, 2.0), 1.0)
    return (x + r.u(0.1, 0.5) * breath) * amp.astype(np.float32) * dsp.envelope_adsr(n, sr, 0.05, 0.05)


def running_water(r: _Var, n: int, sr: int) -> np.ndarray:
    x = dsp.band_noise(r.rng, n, r.u(200, 800), r.u(3000, 7000), sr, order=2)
    flutter = 10 ** (dsp.smooth_random(r.rng, n, int(n / sr * r.u(10, 30)) + 2, r.u(2.0, 5.0)) / 20)
    x = x * flutter
    n_b = int(n / sr * r.u(10, 50))
    bub_n = int(0.03 * sr)
    tb = _t(bub_n, sr)
    for w in r.rng.integers(0, max(n - 1, 1), n_b):
        f0 = r.rng.uniform(400, 2500)
        tau = r.rng.uniform(0.004, 0.015)
        # a bubble: a decaying sinusoid whose frequency rises as it collapses
        b = np.exp(-tb / tau) * np.sin(2 * np.pi * f0 * (tb + 8 * tb * tb))
        _add_at(x, int(w), b.astype(np.float32), float(r.rng.uniform(0.5, 2.0)))
    return x * dsp.envelope_adsr(n, sr, 0.1, 0.1)


def footsteps(r: _Var, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    rate = r.u(1.4, 2.3)
    hard = r.rng.random() < 0.5  # hard floors add a click
    lp = r.u(250, 800)
    sos = _butter(2, 0, lp, sr)
    sos_hi = _butter(2, 2000, 6000, sr)
    step_n = int(0.2 * sr)
    ts = _t(step_n, sr)
    t = r.u(0.0, 0.4)
    while t * sr < n:
        thud = signal.sosfilt(sos, r.rng.standard_normal(step_n)).astype(np.float32) * np.exp(-ts / r.u(0.02, 0.05))
        toe = np.roll(thud, int(r.u(0.05, 0.1) * sr)) * r.u(0.3, 0.6)
        toe[: int(0.05 * sr)] = 0
        step = thud + toe
        if hard:
            step += 0.3 * signal.sosfilt(sos_hi, r.rng.standard_normal(step_n)).astype(np.float32) * np.exp(-ts / 0.005)
        _add_at(out, int(t * sr), step, r.u(0.6, 1.0))
        t += r.u(0.95, 1.05) / rate
    ramp = np.linspace(r.u(0.3, 1.0), r.u(0.3, 1.0), n).astype(np.float32)  # approaching/receding
    return out * ramp


def speech_babble(r: _Var, n: int, sr: int) -> np.ndarray:
    from slimaudio.synth import speech  # local: speech imports nothing from here

    out = np.zeros(n, np.float32)
    for _ in range(r.i(2, 5)):
        tr = speech.draw_traits(r.rng, "A" if r.rng.random() < 0.5 else "B")
        v = speech.synthesize_voice(r.rng, tr, n, sr)
        out += v / (np.sqrt(np.mean(v * v)) + 1e-9) * r.u(0.4, 1.0)
    return out


GENERATORS: dict[str, Generator] = {
    "siren_wail": siren_wail, "siren_yelp": siren_yelp, "smoke_alarm": smoke_alarm,
    "doorbell": doorbell, "knocking": knocking, "phone_ringing": phone_ringing,
    "car_horn": car_horn, "glass_breaking": glass_breaking, "dog_bark": dog_bark,
    "baby_crying": baby_crying, "kettle_whistle": kettle_whistle,
    "running_water": running_water, "footsteps": footsteps, "speech_babble": speech_babble,
}


# ----------------------------------------------------------------------------- backgrounds
def _frame_times(n: int, sr: int) -> np.ndarray:
    return np.arange(dsp.n_frames(n), dtype=np.float32) * (dsp.HOP / sr)


def traffic(r: _Var, n: int, sr: int) -> np.ndarray:
    # brown-ish rumble plus passing vehicles (swelling band noise), shaped in the STFT domain
    f = dsp.frame_freqs(sr)
    tf = _frame_times(n, sr)
    gain = np.repeat(dsp.tilt_gain(f, -6.0 * r.u(0.7, 1.1), 100.0)[None], len(tf), axis=0)
    d = n / sr
    for _ in range(r.i(0, int(d / 2) + 1)):
        c, w = r.rng.uniform(0, d), r.rng.uniform(0.8, 3.0)
        env = np.exp(-0.5 * ((tf - c) / w) ** 2)
        band = dsp.butter_band_gain(f, r.u(100, 300), r.u(1500, 4000), 2)
        gain += r.u(0.1, 0.5) * env[:, None] * band[None]
    return dsp.shaped_stft_noise(r.rng, n, gain)


def machinery(r: _Var, n: int, sr: int) -> np.ndarray:
    t = _t(n, sr)
    f_hum = r.u(40, 120)
    hum = dsp.harmonic_tone(np.full(n, f_hum, np.float32), sr, r.rng.uniform(0.1, 1.0, 10).tolist())
    whine = dsp.harmonic_tone(np.full(n, r.u(300, 1800), np.float32) * (1 + 0.002 * np.sin(2 * np.pi * 0.5 * t)),
                              sr, [1.0, 0.3])
    mod = 1 + r.u(0.1, 0.6) * np.sin(2 * np.pi * r.u(2, 15) * t)
    noise = dsp.band_noise(r.rng, n, r.u(100, 400), r.u(2000, 6000), sr, order=2)
    x = hum / (np.std(hum) + 1e-9) + r.u(0.05, 0.4) * whine / (np.std(whine) + 1e-9) + r.u(0.5, 1.5) * noise
    return (x * mod).astype(np.float32)


def crowd(r: _Var, n: int, sr: int) -> np.ndarray:
    # diffuse speech-shaped noise with independent syllabic-rate fluctuations in four bands
    f = dsp.frame_freqs(sr)
    tf = _frame_times(n, sr)
    base = dsp.butter_band_gain(f, 150.0, 5000.0, 2) * dsp.tilt_gain(f, -3.0, 500.0)
    centres = np.log2(np.array([300.0, 800.0, 1800.0, 3500.0], np.float32))
    w = np.exp(-0.5 * ((np.log2(np.maximum(f, 50.0))[None] - centres[:, None]) / 0.7) ** 2)
    w /= w.sum(axis=0, keepdims=True)
    knots = int(tf[-1] * 4) + 2
    env_db = np.stack([dsp.smooth_random(r.rng, len(tf), knots, r.u(2.0, 5.0)) for _ in range(4)], axis=1)
    gain = base[None] * ((10 ** (env_db / 20)) @ w).astype(np.float32)
    return dsp.shaped_stft_noise(r.rng, n, gain)


def rain(r: _Var, n: int, sr: int) -> np.ndarray:
    x = dsp.band_noise(r.rng, n, r.u(1000, 3000), 7500, sr, order=2) * r.u(0.3, 1.0)
    drops = np.zeros(n, np.float32)
    n_d = int(n / sr * r.u(50, 400))
    drops[r.rng.integers(0, n, n_d)] = r.rng.uniform(-1, 1, n_d)
    sos = _butter(2, r.u(1500, 3000), 7000, sr)
    return x + 20 * signal.sosfilt(sos, drops).astype(np.float32)


BACKGROUND_GENERATORS: dict[str, Generator] = {
    "traffic": traffic, "machinery": machinery, "crowd": crowd, "rain": rain,
}


# ----------------------------------------------------------------------------- corpus
def class_sizes(cfg: EventCorpusConfig) -> dict[str, int]:
    """Clips per class: geometric from clips_per_class_max down to imbalance * max."""
    k = len(cfg.classes)
    order = dsp.rng_for(cfg.seed, "class_order").permutation(k)
    sizes = cfg.clips_per_class_max * cfg.imbalance ** (np.arange(k) / max(k - 1, 1))
    out = {}
    for rank, ci in enumerate(order):
        out[cfg.classes[ci]] = max(1, int(round(sizes[rank])))
    return {c: out[c] for c in cfg.classes}


def plan_corpus(cfg: EventCorpusConfig) -> list[ClipSpec]:
    """Every clip of the corpus, class by class (deterministic)."""
    specs: list[ClipSpec] = []
    for label, (name, size) in enumerate(class_sizes(cfg).items()):
        rng = dsp.rng_for(cfg.seed, "plan", name)
        durs = rng.uniform(cfg.min_dur_s, cfg.max_dur_s, size)
        snrs = rng.uniform(cfg.snr_db_min, cfg.snr_db_max, size)
        bgs = rng.integers(0, len(BACKGROUNDS), size)
        for j in range(size):
            specs.append(ClipSpec(
                clip_id=f"{name}-{j + 1:04d}", class_name=name, label=label,
                duration_s=round(float(durs[j]), 3), snr_db=round(float(snrs[j]), 2),
                background=BACKGROUNDS[int(bgs[j])], seed=dsp.derive_seed(cfg.seed, "clip", name, j)))
    return specs


@dataclass(frozen=True)
class ClipParts:
    event: np.ndarray       # the event, scaled to the spec's SNR, placed in the clip (zeros elsewhere)
    background: np.ndarray  # the background at its final level
    span: slice             # samples the event occupies


def render_parts(spec: ClipSpec, cfg: EventCorpusConfig, *, background: bool = True) -> ClipParts:
    """The scaled event and the background separately (SNR checks, clean renders)."""
    if spec.class_name not in GENERATORS:
        raise ParamError(f"event synth: clip {spec.clip_id} has unknown class {spec.class_name!r}")
    if spec.background not in BACKGROUND_GENERATORS:
        raise ParamError(f"event synth: clip {spec.clip_id} has unknown background {spec.background!r}")
    sr = cfg.sample_rate
    n = int(round(spec.duration_s * sr))
    if n < 64:
        raise ParamError(f"event synth: clip {spec.clip_id} is too short ({spec.duration_s} s)")
    r_span, r_event, r_bg = dsp.child_rngs(spec.seed, 3)
    occ = r_span.uniform(cfg.min_occupancy, 1.0)
    m = min(n, max(int(occ * n), int(0.5 * sr)))
    a = int(r_span.integers(0, n - m + 1))
    ev = GENERATORS[spec.class_name](_Var(r_event, cfg.variability), m, sr).astype(np.float32)
    ev *= dsp.envelope_adsr(m, sr, 0.005, 0.01)
    if background:
        bg = BACKGROUND_GENERATORS[spec.background](_Var(r_bg, cfg.variability), n, sr).astype(np.float32)
        bg /= np.sqrt(dsp.power(bg)) + 1e-12
    else:
        bg = np.zeros(n, np.float32)
    # Event level from its active frames, so sparse events (knocks) are not under-levelled.
    p_ev = dsp.active_power(ev, sr)
    ev *= np.sqrt(10.0 ** (spec.snr_db / 10.0) / (p_ev + 1e-12))
    event = np.zeros(n, np.float32)
    event[a:a + m] = ev
    return ClipParts(event=event, background=bg, span=slice(a, a + m))


def render(spec: ClipSpec, cfg: EventCorpusConfig) -> SynthClip:
    """Audio for one clip; a pure function of (spec, cfg)."""
    parts = render_parts(spec, cfg)
    peak = dsp.rng_for(spec.seed, "peak").uniform(0.3, 0.95)
    return SynthClip(spec=spec, audio=dsp.normalise_peak(parts.event + parts.background, peak))
