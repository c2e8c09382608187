"""The general frontend (slimaudio.frontends.spectral) against librosa 0.11's
feature.melspectrogram (and power_to_db) on real recordings, one option changed at a time
around librosa's defaults (Slaney scale and area norm, centred, Hann, power 2), plus a few
combinations the pretrained models in use need.

librosa computes in float32 (a complex64 STFT, float32 filters); ours in float64, rounded at
the end: the differences are float32 rounding. Figures per option set, over 3 LibriSpeech
utterances and one FSDD digit (at 16 kHz, or the set's rate) and the digit at its own 8 kHz: the largest
difference on loud bins (within 40 dB of their frame's peak), the largest over every bin
within 80 dB of the utterance's peak, and the mean over all bins. Raw spectra are compared
relatively (|ours - ref| / ref), compressed features absolutely (nats, log10 units, dB).
librosa's center=False places a window shorter than n_fft in the middle of each n_fft frame,
ours at the frame's start: ours is run on the signal from sample (n_fft - win_length) // 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimaudio.audio import load_audio
from slimaudio.frontends.spectral import STD_FLOOR, Spectral, compute

# librosa.feature.melspectrogram's defaults at 16 kHz, 25 ms / 10 ms
BASE = dict(sample_rate=16000, n_mels=40, n_fft=400, win_length=400, hop_length=160, f_min=0.0,
            f_max=8000.0, window="hann", periodic=True, center=True, pad_mode="constant",
            scale=1.0, remove_dc=False, preemphasis=0.0, power=2.0, filters="slaney",
            filter_norm="slaney", compression="none", log_offset=0.0, floor=0.0, top_db=None,
            var_norm=False, mean_norm=False)
DB = dict(compression="db", floor=1e-10, top_db=80.0)
GRID = {
    "librosa defaults": {},  # also the LSTM encoder's frontend of issue 26
    "htk": dict(filters="htk", filter_norm="none"),
    "htk + slaney norm": dict(filters="htk"),
    "slaney, no norm": dict(filter_norm="none"),
    "magnitude": dict(power=1.0),
    "n_fft 512": dict(n_fft=512),
    "n_fft 1024 > window": dict(n_fft=1024),
    "hamming": dict(window="hamming"),
    "reflect pad": dict(pad_mode="reflect"),
    "uncentred": dict(center=False),
    "uncentred, n_fft 512": dict(center=False, n_fft=512),
    "20-7600 Hz, 80 bands": dict(f_min=20.0, f_max=7600.0, n_mels=80),
    "log + 1e-6": dict(compression="log", log_offset=1e-6),
    "log10 + 1e-10": dict(compression="log10", log_offset=1e-10),
    "dB, top_db 80": DB,
    "dB, no top_db": {**DB, "top_db": None},
    "log1p": dict(compression="log1p"),
    "log + mean norm": dict(compression="log", log_offset=1e-6, mean_norm=True),
    "dB + mean/var norm": {**DB, "mean_norm": True, "var_norm": True},
    "PANNs-like 32 kHz": dict(sample_rate=32000, n_fft=1024, win_length=1024, hop_length=320,
                              n_mels=64, f_min=50.0, f_max=14000.0, filters="slaney",
                              filter_norm="none", **DB),
}
# Tolerances: about 3x the worst measured (librosa 0.11.0, numpy 2.4): raw spectra 6e-7
# relative; logs 8e-7 nats; dB 5e-6 dB; mean/var-normalised dB 1.7e-5 standard deviations.
TOLS = {"none": (2e-6, 2e-6, 2e-7), "log": (3e-6, 3e-6, 1e-6), "log10": (3e-6, 3e-6, 1e-6),
        "log1p": (3e-6, 3e-6, 1e-6), "db": (2e-5, 2e-5, 3e-6), "var_norm": (5e-6, 5e-5, 5e-7)}


def _recordings(root: Path, sample_rate: int) -> list[tuple[np.ndarray, int]]:
    """(waveform, rate): the five recordings at sample_rate; at 16 kHz the digit at 8 kHz too."""
    libri = sorted((root / "librispeech-train-clean-100-1utt").rglob("*.flac"))[:3]
    digit = root / "fsdd/recordings/3_lucas_0.wav"
    if len(libri) < 3 or not digit.exists():
        pytest.skip(f"LibriSpeech / FSDD samples not found under {root}")
    out = [(load_audio(p, sample_rate), sample_rate) for p in [*libri, digit]]
    return out + ([(load_audio(digit, 8000), 8000)] if sample_rate == 16000 else [])


def _reference(librosa, x: np.ndarray, s: Spectral) -> np.ndarray:
    """float64 [frames, n_mels] of librosa with the settings of s."""
    mel = librosa.feature.melspectrogram(
        y=x, sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length, win_length=s.win_length,
        window=s.window, center=s.center, pad_mode=s.pad_mode, power=s.power, n_mels=s.n_mels,
        fmin=s.f_min, fmax=s.f_max, htk=s.filters == "htk",
        norm="slaney" if s.filter_norm == "slaney" else None).astype(np.float64).T
    c = s.compression
    if c == "log":
        mel = np.log(np.maximum(mel + s.log_offset, s.floor))
    elif c == "log10":
        mel = np.log10(np.maximum(mel + s.log_offset, s.floor))
    elif c == "db":
        mel = librosa.power_to_db(mel, ref=1.0, amin=s.floor, top_db=s.top_db)
    elif c == "log1p":
        mel = np.log1p(mel)
    if s.mean_norm:
        mel = mel - mel.mean(axis=0)
        if s.var_norm:
            mel = mel / np.maximum(mel.std(axis=0), STD_FLOOR)
    return mel


def _settings(change: dict, sample_rate: int) -> Spectral:
    s = {**BASE, **change}
    if s["sample_rate"] != sample_rate:  # the 8 kHz digit: up to its Nyquist
        s.update(sample_rate=sample_rate, f_max=min(s["f_max"], sample_rate / 2))
    return Spectral(**s)


@pytest.mark.parametrize("label", list(GRID))
def test_general_frontend_matches_librosa(shared_data: Path, label: str) -> None:
    librosa = pytest.importorskip("librosa")
    worst = np.zeros(3)
    for x, sr in _recordings(shared_data, GRID[label].get("sample_rate", 16000)):
        s = _settings(GRID[label], sr)
        ref = _reference(librosa, x, s)
        start = 0 if s.center else (s.n_fft - s.win_length) // 2
        ours = compute(x[start:], s)
        assert ours.dtype == np.float32
        n = min(len(ours), len(ref))
        assert n >= len(ref) - 1 and (s.center is False or len(ours) == len(ref)), (len(ours), len(ref))
        ours, ref = ours[:n].astype(np.float64), ref[:n]
        raw = _reference(librosa, x, Spectral(**{**s.as_dict(), "compression": "none",
                                                  "mean_norm": False, "var_norm": False}))[:n]
        level = 10 * np.log10(np.maximum(raw, 1e-30)) * (2.0 / s.power)  # dB of each bin
        diff = np.abs(ours - ref)
        if s.compression == "none":
            diff = diff / np.maximum(ref, 1e-30)
        loud = level >= level.max(axis=1, keepdims=True) - 40.0
        above = level >= level.max() - 80.0
        worst = np.maximum(worst, [diff[loud].max(), diff[above].max(), diff.mean()])
    tol = TOLS["var_norm" if s.var_norm else s.compression]
    print(f"{label:26s} loud {worst[0]:.1e}  within 80 dB {worst[1]:.1e}  mean {worst[2]:.1e}  "
          f"(tolerances {tol[0]:.0e} / {tol[1]:.0e} / {tol[2]:.0e})")
    assert all(w <= t for w, t in zip(worst, tol, strict=True)), (label, worst, tol)

