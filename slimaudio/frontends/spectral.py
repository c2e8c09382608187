"""The general frontend: a mel spectrogram described entirely by its settings (`Spectral`).

From a float waveform in [-1, 1], in float64 throughout and rounded to float32 at the end:
  1. times `scale`;
  2. frames: centred (the signal padded by n_fft // 2 each side with `pad_mode`, frames of
     n_fft samples every hop, the window zero-padded to n_fft in the middle: torch.stft and
     librosa with center=True) or not (frames of win_length samples from sample 0, the tail
     shorter than a hop unused: Kaldi's snip_edges);
  3. per frame, over the window's span: DC removal, then pre-emphasis (the first sample
     against itself, as Kaldi);
  4. the window (hann, hamming, povey, rectangular; periodic or symmetric), an n_fft-point DFT,
     magnitude (power 1) or power (power 2) spectrum;
  5. mel filters (slimaudio.frontends.filters);
  6. compression: none, log(max(x + log_offset, floor)), the same in log10, dB as librosa's
     power_to_db (10 log10(max(x, floor)), floored at the utterance's maximum - top_db) or
     log1p(x);
  7. per utterance: mean normalisation over frames, and optionally division by the standard
     deviation.
The presets (slimaudio.frontends.presets) are settings of this pipeline, and give the same
bytes as the frontends they name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.features import MelConfig
from slimaudio.frontends.filters import mel_filters, window
from slimaudio.schemas.data import Mel, SpectralShape
from slimaudio.spec import values

CHUNK = 4096  # frames per FFT batch: bounded memory on long files
STD_FLOOR = 1e-5  # var_norm: a band constant over the utterance is divided by this, not 0
F16_MAX = 65504.0
# Compressed features span a few units to a few hundred: float16's 11-bit significand keeps
# them to 1e-3 relative, as the project has stored log-mels. A power or magnitude spectrum
# spans many decades and overflows float16 at 65504: it is stored as float32.
COMPRESSED = ("log", "log10", "db", "log1p")


@dataclass(frozen=True)
class Spectral(SpectralShape, Mel):
    """Every setting of the general frontend, at one sample rate."""

    sample_rate: int
    mean_norm: bool

    def __post_init__(self) -> None:
        MelConfig(**values(self, MelConfig))  # checks the STFT and mel settings
        if self.compression in ("log", "log10") and self.log_offset <= 0 and self.floor <= 0:
            raise ParamError(f"features: compression {self.compression} needs log_offset > 0 or "
                             "floor > 0 (the log of a silent band is -inf)")
        if self.compression == "db" and self.floor <= 0:
            raise ParamError("features: compression db needs floor (amin) > 0")
        if self.var_norm and not self.mean_norm:
            raise ParamError("features: var_norm needs mean_norm")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def min_samples(self) -> int:
        """Shortest signal that gives one frame (reflect padding needs n_fft // 2 + 1)."""
        if not self.center:
            return self.win_length
        return self.n_fft // 2 + 1 if self.pad_mode == "reflect" else 1

    def n_frames(self, n_samples: int) -> int:
        """Frames `compute` returns for n_samples (0 when shorter than min_samples)."""
        if n_samples < self.min_samples:
            return 0
        if self.center:
            return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length
        return 1 + (n_samples - self.win_length) // self.hop_length

    @property
    def storage_dtype(self) -> type[np.floating]:
        """float16 for compressed features, float32 for raw spectra (see COMPRESSED)."""
        return np.float16 if self.compression in COMPRESSED else np.float32

    def filterbank(self) -> np.ndarray:
        return mel_filters(self.filters, self.filter_norm, self.sample_rate, self.n_mels,
                           self.n_fft, self.f_min, self.f_max)


def compute(wave: np.ndarray, spec: Spectral, fb: np.ndarray | None = None) -> np.ndarray:
    """float32 [spec.n_frames(len(wave)), n_mels] features of a mono waveform; fb:
    spec.filterbank(), to build the filters once per worker."""
    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    n = spec.n_frames(x.size)
    if n == 0:
        raise ValueError(f"signal of {x.size} samples is shorter than one frame "
                         f"({spec.min_samples} samples)")
    if spec.scale != 1.0:
        x = x * spec.scale
    frames, win, span = _frames(x, spec)
    energies = _energies(frames[:n], win, span, spec, spec.filterbank() if fb is None else fb)
    return normalise(compress(energies, spec), spec)


def _frames(x: np.ndarray, spec: Spectral) -> tuple[np.ndarray, np.ndarray, slice]:
    """(frames view, window as long as a frame, the window's span within a frame)."""
    win = window(spec.window, spec.win_length, spec.periodic)
    if not spec.center:
        view = np.lib.stride_tricks.sliding_window_view(x, spec.win_length)[::spec.hop_length]
        return view, win, slice(0, spec.win_length)
    half = spec.n_fft // 2
    xp = np.pad(x, half, mode=spec.pad_mode)
    left = (spec.n_fft - spec.win_length) // 2
    padded = np.zeros(spec.n_fft)
    padded[left:left + spec.win_length] = win
    view = np.lib.stride_tricks.sliding_window_view(xp, spec.n_fft)[::spec.hop_length]
    return view, padded, slice(left, left + spec.win_length)


def _energies(frames: np.ndarray, win: np.ndarray, span: slice, spec: Spectral,
              fb: np.ndarray) -> np.ndarray:
    """float64 [frames, n_mels] mel energies (or magnitudes) of the frames."""
    prepare = spec.remove_dc or spec.preemphasis > 0
    out = np.empty((frames.shape[0], fb.shape[0]), dtype=np.float64)
    for i in range(0, frames.shape[0], CHUNK):
        f = frames[i:i + CHUNK]
        if prepare:
            f = _prepare(f, span, spec)
        dft = np.fft.rfft(f * win, n=spec.n_fft, axis=1)
        mag = dft.real ** 2 + dft.imag ** 2 if spec.power == 2 else np.abs(dft)
        out[i:i + CHUNK] = mag @ fb.T
    return out


def _prepare(frames: np.ndarray, span: slice, spec: Spectral) -> np.ndarray:
    """Kaldi's processing before the window, over the window's span: the frame's mean removed,
    then pre-emphasis within the frame, its first sample against itself."""
    f = frames[:, span]
    if spec.remove_dc:
        f = f - f.mean(axis=1, keepdims=True)
    if spec.preemphasis > 0:
        c = spec.preemphasis
        f = np.concatenate([f[:, :1] * (1.0 - c), f[:, 1:] - c * f[:, :-1]], axis=1)
    if span.start == 0 and span.stop == frames.shape[1]:
        return f
    out = np.zeros(frames.shape)
    out[:, span] = f
    return out


def compress(energies: np.ndarray, spec: Spectral) -> np.ndarray:
    """float32 features from float64 mel energies."""
    e, c = energies, spec.compression
    if c == "log":
        e = np.log(np.maximum(e + spec.log_offset, spec.floor))
    elif c == "log10":
        e = np.log10(np.maximum(e + spec.log_offset, spec.floor))
    elif c == "db":
        e = 10.0 * np.log10(np.maximum(e, spec.floor))
        if spec.top_db is not None:
            e = np.maximum(e, e.max() - spec.top_db)
    elif c == "log1p":
        e = np.log1p(e)
    elif c != "none":
        raise ParamError(f"features: compression {c!r} is not one of none, log, log10, db, log1p")
    return e.astype(np.float32)


def normalise(feats: np.ndarray, spec: Spectral) -> np.ndarray:
    """Per-utterance mean (and variance) normalisation over frames, float32 out."""
    if not spec.mean_norm:
        return feats
    f = np.asarray(feats, dtype=np.float64)
    f = f - f.mean(axis=0, keepdims=True)
    if spec.var_norm:
        f = f / np.maximum(f.std(axis=0, keepdims=True), STD_FLOOR)
    return f.astype(np.float32)
