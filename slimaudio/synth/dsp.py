"""Shared, vectorised DSP for the procedural corpora.

Everything here is a pure function of its arguments (randomness only through a passed-in
``np.random.Generator``), so renders are reproducible and can run in any order or process.
Time-varying filtering is done in the STFT domain (one STFT, a per-frame gain, one inverse
STFT), which is an order of magnitude faster than block-wise IIR filtering in Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, signal

# The STFT used for synthesis: 32 ms frames, 50 % overlap, sqrt-Hann analysis and synthesis
# windows (their product, a periodic Hann, overlap-adds to exactly 1 at this hop), so the
# inverse needs no normalisation. 50 % overlap halves the cost compared with 75 %.
N_FFT = 512
HOP = N_FFT // 2
_WINDOW = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
WINDOW_POWER = float(np.sum(_WINDOW**2))  # E|X|^2 per bin of `stft` of unit white noise
_EPS = 1e-12


# --------------------------------------------------------------------------- seeding
def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed from a tuple of ints/strings; stable across processes and Python runs."""
    ints: list[int] = []
    for k in keys:
        if isinstance(k, str):
            ints.extend(k.encode("utf-8"))
            ints.append(0x5EED)  # separator so ("ab", "c") != ("a", "bc")
        else:
            ints.append(int(k))
    state = np.random.SeedSequence(ints).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def rng_for(*keys: int | str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*keys))


def child_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """Independent generators for separate parts of one render.

    Drawing each part (content, prosody, noise, ...) from its own stream means that changing
    one condition (e.g. the mask flag) does not shift the random numbers of the others.
    """
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


# --------------------------------------------------------------------------- STFT
def n_frames(n_samples: int) -> int:
    """Frames of `stft` for a signal of n_samples (frame t is centred on sample t * HOP).

    Enough frames that every sample is covered by two windows (perfect reconstruction).
    """
    return (max(n_samples, 1) - 1) // HOP + 2


def frame_freqs(sr: int) -> np.ndarray:
    return np.fft.rfftfreq(N_FFT, 1.0 / sr).astype(np.float32)


def stft(x: np.ndarray) -> np.ndarray:
    """Centred STFT, [frames, N_FFT // 2 + 1] complex64."""
    n = len(x)
    t = n_frames(n)
    pad = N_FFT // 2
    total = (t - 1) * HOP + N_FFT
    xp = np.zeros(total, dtype=np.float32)
    xp[pad:pad + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP][:t]
    return sfft.rfft(frames * _WINDOW, axis=-1).astype(np.complex64, copy=False)


def istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Inverse of `stft` by weighted overlap-add; returns float32 of length n_samples."""
    t = spec.shape[0]
    frames = sfft.irfft(spec, n=N_FFT, axis=-1).astype(np.float32, copy=False) * _WINDOW
    k = N_FFT // HOP
    blocks = np.zeros((t + k - 1, HOP), dtype=np.float32)
    fr = frames.reshape(t, k, HOP)
    for r in range(k):
        blocks[r:r + t] += fr[:, r, :]
    out = blocks.reshape(-1)[N_FFT // 2:N_FFT // 2 + n_samples]
    if len(out) < n_samples:
        out = np.pad(out, (0, n_samples - len(out)))
    return out


def noise_stft(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """STFT of unit-variance white noise of n_samples (cheaper than drawing complex bins)."""
    return stft(rng.standard_normal(n_samples, dtype=np.float32))


def shaped_stft_noise(rng: np.random.Generator, n_samples: int, gain: np.ndarray) -> np.ndarray:
    """Time-varying coloured noise: white noise shaped by gain [frames, bins], then `istft`.

    Drawn directly as STFT-domain Gaussian bins (one inverse transform for any number of
    time-varying bands).
    """
    t, k = gain.shape
    z = rng.standard_normal((2, t, k), dtype=np.float32) * np.float32(np.sqrt(WINDOW_POWER / 2.0))
    return istft((z[0] + 1j * z[1]) * gain, n_samples)


# --------------------------------------------------------------------------- spectral shapes
def formant_envelope(freqs: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """|H| [T, K] of a cascade of resonators with per-frame centres/bandwidths fc, bw [T, J].

    Each resonator is the 2-pole magnitude normalised to 1 at DC (|H| = fc^2 / |fc^2 - f^2 + j f bw|);
    the inverse squared magnitudes are multiplied and one square root is taken at the end.
    """
    f2 = (freqs * freqs).astype(np.float32)[None, :]
    fb = freqs.astype(np.float32)[None, :]
    inv = np.ones((fc.shape[0], len(freqs)), np.float32)
    for j in range(fc.shape[1]):
        c2 = (fc[:, j:j + 1] ** 2).astype(np.float32)
        d = (c2 - f2) / c2
        e = fb * (bw[:, j:j + 1] / c2).astype(np.float32)
        inv *= d * d + e * e + 1e-9
    return 1.0 / np.sqrt(inv)


def bandpass_gain(freqs: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """|H| of a 2nd-order band-pass with unit gain at fc (fricative / noise bands)."""
    num = bw * freqs
    return num / np.sqrt((fc * fc - freqs * freqs) ** 2 + num * num + _EPS)


def tilt_gain(freqs: np.ndarray, db_per_octave: float | np.ndarray, ref_hz: float = 1000.0) -> np.ndarray:
    """Spectral tilt: +db_per_octave per doubling of frequency, 0 dB at ref_hz."""
    octaves = np.log2(np.maximum(freqs, 50.0) / ref_hz)
    return (10.0 ** (db_per_octave * octaves / 20.0)).astype(np.float32)


def butter_band_gain(freqs: np.ndarray, lo_hz: float, hi_hz: float, order: int = 2) -> np.ndarray:
    """Butterworth-like band-pass magnitude (lo_hz <= 0: low-pass only)."""
    f = np.maximum(freqs, 1.0).astype(np.float32)
    rh = (f / np.float32(hi_hz)) ** 2
    den = np.ones_like(f)
    hp = rh.copy()
    for _ in range(order - 1):
        hp *= rh
    den += hp
    if lo_hz > 0:
        rl = (np.float32(lo_hz) / f) ** 2
        lp = rl.copy()
        for _ in range(order - 1):
            lp *= rl
        den *= 1.0 + lp
    return 1.0 / np.sqrt(den)


def lowpass_gain(freqs: np.ndarray, cutoff_hz: float, order: float = 2.0,
                 floor_db: float = -80.0) -> np.ndarray:
    """Butterworth-like magnitude with a floor (a muffling mask never removes everything)."""
    g = 1.0 / np.sqrt(1.0 + (freqs / cutoff_hz) ** (2.0 * order))
    floor = 10.0 ** (floor_db / 20.0)
    return (floor + (1.0 - floor) * g).astype(np.float32)


def random_eq_gain(rng: np.random.Generator, freqs: np.ndarray, depth_db: float,
                   n_bands: int = 6) -> np.ndarray:
    """A smooth random EQ curve (a 'channel'): sum of log-frequency bumps, +-depth_db."""
    logf = np.log2(np.maximum(freqs, 60.0))
    centres = rng.uniform(np.log2(100.0), np.log2(max(freqs[-1], 200.0)), n_bands)
    widths = rng.uniform(0.5, 2.0, n_bands)  # octaves
    gains = rng.normal(0.0, depth_db / 2.0, n_bands)
    db = np.sum(gains[:, None] * np.exp(-0.5 * ((logf[None] - centres[:, None]) / widths[:, None]) ** 2), axis=0)
    db += rng.normal(0.0, depth_db / 3.0) * (logf - logf.mean()) / max(np.ptp(logf), 1e-6)
    return (10.0 ** (np.clip(db, -2 * depth_db - 1, 2 * depth_db + 1) / 20.0)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _rfftfreq(m: int, sr: int) -> np.ndarray:
    f = sfft.rfftfreq(m, 1.0 / sr).astype(np.float32)
    f.flags.writeable = False
    return f


def shaped_noise(rng: np.random.Generator, n: int, gain_fn, sr: int) -> np.ndarray:
    """Gaussian noise whose magnitude spectrum is gain_fn(freqs), unit RMS.

    Drawn directly in the frequency domain (one inverse FFT, no time-domain filter), which
    is several times faster than IIR-filtering white noise.
    """
    m = sfft.next_fast_len(max(n, 2), real=True)  # FFT sizes with large prime factors are slow
    k = m // 2 + 1
    z = rng.standard_normal((2, k), dtype=np.float32)
    g = np.asarray(gain_fn(_rfftfreq(m, sr)), np.float32)
    spec = (z[0] + 1j * z[1]) * g
    spec[0] = 0.0
    x = sfft.irfft(spec, n=m)[:n].astype(np.float32, copy=False)
    return x / (np.sqrt(np.mean(x * x)) + _EPS)


def coloured_noise(rng: np.random.Generator, n: int, exponent: float, sr: int = 16000,
                   f_lo: float = 20.0) -> np.ndarray:
    """Gaussian noise with power ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    return shaped_noise(rng, n, lambda f: np.maximum(f, f_lo) ** (-exponent / 2.0), sr)


def band_noise(rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float, sr: int,
               order: int = 4) -> np.ndarray:
    """Band-limited Gaussian noise (Butterworth-shaped band-pass magnitude), unit RMS."""
    hi_hz = min(hi_hz, 0.45 * sr)
    lo_hz = min(lo_hz, 0.8 * hi_hz)

    def gain(f: np.ndarray) -> np.ndarray:
        return butter_band_gain(f, lo_hz, hi_hz, order)

    return shaped_noise(rng, n, gain, sr)


def smooth_random(rng: np.random.Generator, n: int, n_points: int, sd: float = 1.0) -> np.ndarray:
    """A slowly varying random curve: n_points Gaussian knots linearly interpolated to n."""
    knots = rng.normal(0.0, sd, max(n_points, 2))
    return np.interp(np.linspace(0, len(knots) - 1, n), np.arange(len(knots)), knots).astype(np.float32)


# --------------------------------------------------------------------------- sources
def phase_from_freq(freq_hz: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Instantaneous phase in cycles from a per-sample frequency track (phase accumulation)."""
    return phase0 + np.cumsum(freq_hz, dtype=np.float64) / sr


def harmonic_tone(freq_hz: np.ndarray, sr: int, amps: np.ndarray | list[float],
                  phase0: float = 0.0) -> np.ndarray:
    """Sum of harmonics k*f(t) with given amplitudes; harmonics above Nyquist are muted.

    sin(k x) by the Chebyshev recurrence (one sin and one cos for all harmonics).
    """
    cyc = phase_from_freq(freq_hz, sr, phase0)
    x = (2 * np.pi * (cyc - np.floor(cyc))).astype(np.float32)
    s1, c1 = np.sin(x), np.cos(x)
    two_c = 2.0 * c1
    out = np.zeros(len(freq_hz), dtype=np.float32)
    f = np.asarray(freq_hz, np.float32)
    f_lo, f_hi = float(f.min()), float(f.max())
    lim = 0.95 * 0.5 * sr
    s_prev, s_k = np.zeros_like(s1), s1
    for k, a in enumerate(amps, start=1):
        if k * f_lo >= lim:
            break
        if a != 0.0:
            if k * f_hi < lim:
                out += np.float32(a) * s_k
            else:
                out += np.where(k * f < lim, np.float32(a) * s_k, np.float32(0.0))
        s_prev, s_k = s_k, two_c * s_k - s_prev
    return out


def glottal_pulses(f0_hz: np.ndarray, sr: int, rng: np.random.Generator, jitter: float,
                   shimmer_db: float, open_quotient: float) -> np.ndarray:
    """Glottal flow derivative (Rosenberg pulse) train with per-period jitter and shimmer.

    Two passes of phase accumulation: the first numbers the periods, the second applies a
    random relative period perturbation (jitter, sd as a fraction) to each of them.
    Shimmer is a per-period log-normal amplitude (sd in dB).
    """
    n_per = int(np.ceil(np.sum(f0_hz) / sr)) + 3
    period_idx = np.floor(phase_from_freq(f0_hz, sr)).astype(np.int64)
    jit = 1.0 + np.clip(rng.normal(0.0, jitter, n_per), -4 * jitter, 4 * jitter)
    phase = phase_from_freq(f0_hz * jit[period_idx], sr)
    k = np.floor(phase).astype(np.int64)
    frac = (phase - k).astype(np.float32)
    oq = float(open_quotient)
    tp, tn = 0.66 * oq, 0.34 * oq
    rise = (np.pi / (2 * tp)) * np.sin(np.pi * np.minimum(frac, tp) / tp)
    fall = -(np.pi / (2 * tn)) * np.sin(np.pi * np.clip(frac - tp, 0.0, tn) / tn)
    g = np.where(frac < tp, rise, np.where(frac < oq, fall, 0.0)).astype(np.float32)
    amp = 10.0 ** (rng.normal(0.0, shimmer_db, n_per + 2) / 20.0)
    return g * amp[np.minimum(k, n_per + 1)].astype(np.float32)


# --------------------------------------------------------------------------- rooms and mixing
def reverb_ir(rng: np.random.Generator, sr: int, rt60_s: float, drr_db: float,
              max_len_s: float = 0.5) -> np.ndarray:
    """A short room impulse response: direct impulse + exponentially decaying noise tail.

    drr_db is the direct-to-reverberant energy ratio (higher = drier).
    """
    n = max(int(min(rt60_s, max_len_s) * sr), 16)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / max(rt60_s, 1e-3))  # -60 dB at rt60
    onset = int(0.002 * sr)  # the tail starts after the direct sound
    tail[:onset] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / (np.sum(tail**2) + _EPS))
    tail[0] += 1.0
    return tail.astype(np.float32)


def apply_reverb(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """FFT convolution trimmed to the input length."""
    return signal.oaconvolve(x, ir, mode="full")[: len(x)].astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(P_clean / P_noise) with mean powers over the given samples."""
    return 10.0 * np.log10((power(clean) + _EPS) / (power(noise) + _EPS))


def active_power(x: np.ndarray, sr: int, frame_s: float = 0.02, threshold_db: float = -25.0) -> float:
    """Mean power over the active frames (within threshold_db of the loudest 20 ms frame).

    A sparse event (three knocks in four seconds) gets its level from the knocks, not from
    the silence between them, like an active speech level.
    """
    hop = max(int(frame_s * sr), 1)
    m = len(x) // hop
    if m == 0:
        return power(x)
    e = np.mean(np.square(x[: m * hop].reshape(m, hop), dtype=np.float64), axis=1)
    act = e >= e.max() * 10.0 ** (threshold_db / 10.0)
    return float(np.mean(e[act]))


def noise_gain_for_snr(clean: np.ndarray, noise: np.ndarray, target_snr_db: float) -> float:
    """The factor g such that snr_db(clean, g * noise) == target_snr_db."""
    return float(np.sqrt(power(clean) / (power(noise) + _EPS) / 10.0 ** (target_snr_db / 10.0)))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, target_snr_db: float,
               active: slice | None = None) -> np.ndarray:
    """clean + g * noise so that the SNR (over `active` samples, default all) is target_snr_db."""
    sl = active if active is not None else slice(None)
    g = noise_gain_for_snr(clean[sl], noise[sl], target_snr_db)
    return (clean + g * noise).astype(np.float32)


def normalise_peak(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale so that max |x| == peak (<= 1); silent input stays silent."""
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    if m < _EPS:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip(x * (peak / m), -1.0, 1.0).astype(np.float32)


def smooth_frames(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-weighted moving average along axis 0 (frames), edges held; width in frames."""
    if width <= 1:
        return x
    kernel = np.hanning(width + 2)[1:-1]
    return ndimage.convolve1d(x, kernel / kernel.sum(), axis=0, mode="nearest")


def envelope_adsr(n: int, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    """A flat envelope with raised-cosine attack and release ramps (no clicks)."""
    env = np.ones(n, dtype=np.float32)
    a = min(int(attack_s * sr), n // 2)
    r = min(int(release_s * sr), n - a)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r > 0:
        env[n - r:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / r)
    return env


def realtime_factor(render: Callable[[Any], Any], specs: Sequence[Any]) -> dict[str, float]:
    """Render every spec in this process (the first twice, to warm caches): seconds of audio
    per CPU second. `render(spec)` returns an object with `.spec.duration_s`."""
    import time

    render(specs[0])
    t0 = time.process_time()
    audio_s = sum(render(s).spec.duration_s for s in specs)
    cpu_s = time.process_time() - t0
    return {"audio_s": audio_s, "cpu_s": cpu_s, "realtime_factor": audio_s / max(cpu_s, 1e-9)}
