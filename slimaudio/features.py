"""Log-mel filterbank features (numpy for data preparation, torch `LogMel` inside models) and
the framing of signals into fixed windows.

The definition, shared exactly by `log_mel` (numpy) and `LogMel` (torch):
  1. STFT frames of `win_length` samples every `hop_length` samples, no centring and no
     padding: a signal of n >= win_length samples gives 1 + (n - win_length) // hop_length
     frames; the tail shorter than a hop is not used.
  2. Each frame is multiplied by a periodic Hann window and transformed with an `n_fft`-point
     DFT (zero-padded when n_fft > win_length); power spectrum |X|^2 of n_fft // 2 + 1 bins.
  3. Triangular mel filters (HTK mel scale, unnormalised, like torchaudio's defaults) between
     f_min and f_max.
  4. Natural log of (mel energy + 1e-6). No mean normalisation: models do their own.
Waveforms are float in [-1, 1]. Output layout is [frames, n_mels] (torch: [batch, frames, n_mels]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.schemas.data import Mel, ShortClip
from slimaudio.spec import values

LOG_EPS = 1e-6


@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings. No defaults: the pipeline's come from params (`of`), a stored
    corpus's from its info.json."""

    sample_rate: int
    n_mels: int
    n_fft: int
    win_length: int
    hop_length: int
    f_min: float
    f_max: float

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ParamError(f"features: win_length {self.win_length} > n_fft {self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ParamError(f"features: need 0 <= f_min < f_max <= sample_rate/2 "
                             f"(got {self.f_min}, {self.f_max} at {self.sample_rate} Hz)")

    @classmethod
    def of(cls, feats: Mel, sample_rate: int) -> MelConfig:
        """The settings params `feats` (a features section) give at `sample_rate`."""
        return cls(sample_rate=sample_rate, **values(feats, Mel))

    def n_frames(self, n_samples: int) -> int:
        """STFT frames for a signal of n_samples (0 when shorter than one window)."""
        return 0 if n_samples < self.win_length else 1 + (n_samples - self.win_length) // self.hop_length

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters on the HTK mel scale; every filter covers at
    least one bin."""
    pts = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    return triangles(pts, cfg.sample_rate, cfg.n_fft)


def triangles(pts: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """[len(pts) - 2, n_fft // 2 + 1] triangles with feet and peaks at `pts` (Hz), evaluated at
    the DFT bins' frequencies, peak 1; refused when a filter covers no bin."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))
    empty = np.flatnonzero(fb.sum(axis=1) == 0)
    if empty.size:
        raise ParamError(f"features: {empty.size} mel filter(s) fall between FFT bins; use fewer "
                         f"n_mels or a larger n_fft (n_mels={len(pts) - 2}, n_fft={n_fft})")
    return fb


def hann(n: int) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default)."""
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(n) / n)


def log_mel(x: np.ndarray, cfg: MelConfig, fb: np.ndarray | None = None,
            chunk: int = 4096) -> np.ndarray:
    """float32 [frames, n_mels] log-mel features of a mono signal (needs >= win_length samples)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = cfg.n_frames(x.size)
    if n == 0:
        raise ValueError(f"signal of {x.size} samples is shorter than one STFT window "
                         f"({cfg.win_length} samples)")
    fb = mel_filterbank(cfg) if fb is None else fb
    win = hann(cfg.win_length)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.win_length)[::cfg.hop_length][:n]
    out = np.empty((n, cfg.n_mels), dtype=np.float32)
    fbt = fb.T
    for i in range(0, n, chunk):  # bounded memory on long files
        spec = np.fft.rfft(frames[i:i + chunk] * win, n=cfg.n_fft, axis=1)
        power = spec.real ** 2 + spec.imag ** 2
        out[i:i + chunk] = np.log(power @ fbt + LOG_EPS)
    return out


# --- framing into fixed windows (sound clips) -------------------------------------------------

def n_windows(length: int, window: int, stride: int, short: ShortClip = "pad") -> int:
    """Windows of `window` samples every `stride` samples over a signal of `length` samples.

    Only whole windows are taken (a tail shorter than a window is dropped). A signal shorter
    than one window gives one zero-padded window under 'pad' and none under 'drop'.
    """
    if window <= 0 or stride <= 0:
        raise ValueError("window and stride must be positive")
    if short not in ("pad", "drop"):
        raise ValueError(f"short-clip policy must be 'pad' or 'drop', got {short!r}")
    if length <= 0:
        return 0
    if length < window:
        return 1 if short == "pad" else 0
    return 1 + (length - window) // stride


def frame_signal(x: np.ndarray, window: int, stride: int, short: ShortClip = "pad") -> np.ndarray:
    """[n_windows, window] copies of the windows defined by `n_windows` (zero-padded if short)."""
    x = np.asarray(x).reshape(-1)
    n = n_windows(x.size, window, stride, short)
    if n == 0:
        return np.zeros((0, window), dtype=x.dtype)
    if x.size < window:
        return np.pad(x, (0, window - x.size))[None, :]
    return np.lib.stride_tricks.sliding_window_view(x, window)[::stride][:n].copy()


# --- torch ------------------------------------------------------------------------------------

def _torch_module() -> type:
    import torch
    from torch import nn

    class LogMel(nn.Module):
        """Waveform [batch, samples] (or [samples]) -> log-mel [batch, frames, n_mels].

        The STFT is a strided conv1d with a fixed windowed-DFT basis, so the module exports to
        ONNX (opset >= 11) and TFLite without an STFT operator. Same numbers as `log_mel`.
        """

        def __init__(self, cfg: MelConfig) -> None:
            super().__init__()
            self.cfg = cfg
            c = self.cfg
            n_bins = c.n_fft // 2 + 1
            t = np.arange(c.win_length)[None, :]
            k = np.arange(n_bins)[:, None]
            ang = 2.0 * math.pi * k * t / c.n_fft
            w = hann(c.win_length)[None, :]
            basis = np.concatenate([w * np.cos(ang), -w * np.sin(ang)], axis=0)
            self.n_bins = n_bins
            self.register_buffer("dft", torch.tensor(basis[:, None, :], dtype=torch.float32))
            self.register_buffer("mel", torch.tensor(mel_filterbank(c).T, dtype=torch.float32))

        def forward(self, wav: torch.Tensor) -> torch.Tensor:
            if wav.dim() == 1:
                wav = wav.unsqueeze(0)
            spec = nn.functional.conv1d(wav.unsqueeze(1), self.dft, stride=self.cfg.hop_length)
            re, im = spec[:, : self.n_bins], spec[:, self.n_bins:]
            power = (re * re + im * im).transpose(1, 2)  # [batch, frames, bins]
            return torch.log(torch.matmul(power, self.mel) + LOG_EPS)

    # Importable (and picklable) as slimaudio.features.LogMel.
    LogMel.__qualname__ = "LogMel"
    LogMel.__module__ = __name__
    return LogMel


def __getattr__(name: str) -> Any:
    # LogMel is built lazily so that importing slimaudio.features (in data workers) does not
    # import torch.
    if name == "LogMel":
        cls = _torch_module()
        globals()["LogMel"] = cls
        return cls
    raise AttributeError(name)
