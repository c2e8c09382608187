"""Analysis windows and mel filter designs of the general frontend (slimaudio.frontends.spectral).

Filters are float64 [n_mels, n_fft // 2 + 1]:
  htk          triangles equally spaced on 2595 log10(1 + f / 700) (slimaudio.features, torchaudio's
               default, librosa's htk=True), evaluated at the DFT bins.
  slaney       the same triangles on Slaney's scale (linear below 1 kHz, logarithmic above:
               librosa's default, htk=False).
  speechbrain  speechbrain.lobes.features.Fbank 1.1.2: centres on the HTK scale, each triangle
               symmetric in Hz with its left half-width, in float32 as torch computes it.
  kaldi        Kaldi's MelBanks: triangles on 1127 ln(1 + f / 700) evaluated on the mel axis,
               Nyquist bin left out, in float32 operation by operation as Kaldi.
filter_norm "slaney" scales htk and slaney triangles to unit area (2 / their width in Hz).
The SpeechBrain and Kaldi designs repeat their float32 arithmetic (exact weights would differ
from theirs by up to ~1e-5, 1e-4 relative in a narrow filter's energy).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.features import hz_to_mel, mel_to_hz, triangles

F32 = np.float32
# Slaney's mel scale (librosa.hz_to_mel with htk=False): 3 mels per 200 Hz up to 1 kHz, then
# 27 mels per factor 6.4
_SLANEY_SP, _SLANEY_KNEE = 200.0 / 3, 1000.0
_SLANEY_STEP = math.log(6.4) / 27.0


# --- windows -------------------------------------------------------------------------------------

def window(kind: str, n: int, periodic: bool) -> np.ndarray:
    """float64 [n] analysis window; periodic: denominator n, else n - 1 (symmetric)."""
    if kind == "rectangular":
        return np.ones(n)
    a = 2.0 * math.pi * np.arange(n) / (n if periodic else n - 1)
    if kind == "hann":
        return 0.5 - 0.5 * np.cos(a)
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(a)
    if kind == "povey":
        return (0.5 - 0.5 * np.cos(a)) ** 0.85
    raise ParamError(f"features: window {kind!r} is not one of hann, hamming, povey, rectangular")


# --- HTK and Slaney triangles --------------------------------------------------------------------

def slaney_hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    log_part = _SLANEY_KNEE / _SLANEY_SP + np.log(np.maximum(f, _SLANEY_KNEE) / _SLANEY_KNEE) / _SLANEY_STEP
    return np.where(f >= _SLANEY_KNEE, log_part, f / _SLANEY_SP)


def slaney_mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    knee = _SLANEY_KNEE / _SLANEY_SP
    return np.where(m >= knee, _SLANEY_KNEE * np.exp(_SLANEY_STEP * (m - knee)), m * _SLANEY_SP)


def _edges(scale: str, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """n_mels + 2 feet and peaks (Hz) equally spaced on the scale."""
    to_mel, to_hz = (hz_to_mel, mel_to_hz) if scale == "htk" else (slaney_hz_to_mel, slaney_mel_to_hz)
    return to_hz(np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2))


def area_normalise(fb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Slaney's normalisation: each triangle times 2 / (right foot - left foot) in Hz."""
    return fb * (2.0 / (pts[2:] - pts[:-2]))[:, None]


# --- SpeechBrain ---------------------------------------------------------------------------------

def _f32(x: Any) -> np.ndarray:
    """float64 -> float32 rounded once. The float32 filter designs take log and pow in float64
    and round, as a correctly rounded C logf / powf would (numpy's float32 ones are a few ulp
    off theirs)."""
    return np.asarray(x, dtype=np.float64).astype(F32)


def _torch_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """torch.linspace in float32 (its scalar path: the first half counts up from start, the
    second down from end). Its vectorised path may round a few elements differently."""
    start32, end32 = F32(start), F32(end)
    step = (end32 - start32) / F32(steps - 1)
    i = np.arange(steps)
    return np.where(i < steps // 2, start32 + step * i.astype(F32),
                    end32 - step * (steps - 1 - i).astype(F32))


def speechbrain_filterbank(sample_rate: int, n_mels: int, n_fft: int, f_min: float,
                           f_max: float) -> np.ndarray:
    """SpeechBrain's Filterbank weights: centres equally spaced on mel = 2595 log10(1 + f / 700)
    from f_min to f_max, each triangle symmetric in Hz with the half-width of its left side (so
    its right edge is not the next centre); bins on linspace(0, sample_rate // 2)."""
    mel = _torch_linspace(2595.0 * math.log10(1.0 + f_min / 700.0),
                          2595.0 * math.log10(1.0 + f_max / 700.0), n_mels + 2)
    hz = F32(700.0) * (_f32(10.0 ** (mel / F32(2595.0)).astype(np.float64)) - F32(1.0))
    band = (hz[1:] - hz[:-1])[:-1, None]
    slope = (_torch_linspace(0.0, sample_rate // 2, n_fft // 2 + 1)[None, :] - hz[1:-1, None]) / band
    return np.maximum(F32(0.0), np.minimum(slope + F32(1.0), F32(1.0) - slope)).astype(np.float64)


# --- Kaldi ---------------------------------------------------------------------------------------

def _kaldi_mel(hz: np.ndarray | float) -> np.ndarray:
    """Kaldi's MelScale in float32: 1127.0f * logf(1.0f + hz / 700.0f)."""
    return F32(1127.0) * _f32(np.log((F32(1.0) + _f32(hz) / F32(700.0)).astype(np.float64)))


def kaldi_filterbank(sample_rate: int, n_mels: int, n_fft: int, f_min: float,
                     f_max: float) -> np.ndarray:
    """Kaldi mel filters between f_min and f_max: triangles equally spaced on Kaldi's mel scale
    1127 ln(1 + f / 700), evaluated at the bin frequencies; Kaldi leaves the Nyquist bin out."""
    lo, hi = _kaldi_mel(f_min), _kaldi_mel(F32(f_max))
    delta = (hi - lo) / F32(n_mels + 1)
    b = np.arange(n_mels, dtype=F32)[:, None]
    left, centre, right = lo + b * delta, lo + (b + F32(1)) * delta, lo + (b + F32(2)) * delta
    mel = _kaldi_mel(F32(sample_rate) / F32(n_fft) * np.arange(n_fft // 2 + 1, dtype=F32))[None, :]
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    fb = np.where((mel > left) & (mel < right), np.where(mel <= centre, up, down), 0.0)
    fb = fb.astype(np.float64)
    fb[:, -1] = 0.0
    return fb


# --- dispatch ------------------------------------------------------------------------------------

def mel_filters(design: str, norm: str, sample_rate: int, n_mels: int, n_fft: int,
                f_min: float, f_max: float) -> np.ndarray:
    """float64 [n_mels, n_fft // 2 + 1] filters of `design`; refused when one covers no bin."""
    if design in ("htk", "slaney"):
        pts = _edges(design, n_mels, f_min, f_max)
        fb = triangles(pts, sample_rate, n_fft)
        return area_normalise(fb, pts) if norm == "slaney" else fb
    if norm != "none":
        raise ParamError(f"features: filter_norm {norm!r} applies to htk and slaney filters, not "
                         f"{design!r}")
    if design == "speechbrain":
        fb = speechbrain_filterbank(sample_rate, n_mels, n_fft, f_min, f_max)
    elif design == "kaldi":
        fb = kaldi_filterbank(sample_rate, n_mels, n_fft, f_min, f_max)
    else:
        raise ParamError(f"features: filters {design!r} is not one of htk, slaney, speechbrain, "
                         "kaldi")
    empty = np.flatnonzero(fb.sum(axis=1) == 0)
    if empty.size:
        raise ParamError(f"features: {design} filters: {empty.size} mel filter(s) cover no FFT "
                         f"bin (n_mels={n_mels} is too many for {n_fft} points at {sample_rate} Hz)")
    return fb
