"""Feature frontends of pretrained speaker models, next to the project's own log-mel.

Three kinds (`FrontendConfig.kind`: KINDS, the choices of params
prepare_speakers.features.kind), each float32 [frames, n_mels] from a float waveform in [-1, 1]:
  log_mel            slimaudio.features.log_mel, unchanged (the project's models).
  speechbrain_fbank  speechbrain.lobes.features.Fbank of speechbrain 1.1.2 with its defaults
                     (the ECAPA-TDNN recipes): 25 ms periodic Hamming window, 10 ms hop,
                     n_fft 400, centred frames (zero padding), power spectrum, SpeechBrain's
                     triangular mel filters (0 .. sample_rate // 2), 10*log10(max(x, 1e-10))
                     floored at the utterance's maximum - 80 dB.
  kaldi_fbank        Kaldi fbank as kaldi-native-fbank computes it with dither 0 (WeSpeaker and
                     3D-Speaker models): 25 ms frames every 10 ms inside the signal
                     (snip_edges), DC removal, pre-emphasis 0.97, Povey window (WeSpeaker trains
                     with Hamming: window="hamming"), 512-point FFT, Kaldi mel filters 20 Hz ..
                     Nyquist, log(max(x, float32 eps)).
`mean_norm` subtracts the utterance's mean over frames afterwards: SpeechBrain's
InputNormalization(norm_type="sentence", std_norm=False) and the CMN of WeSpeaker/3D-Speaker.
The references compute in float32. The mel filters here repeat their float32 design (exact
weights would differ from theirs by up to ~1e-5, 1e-4 relative in a narrow filter's energy);
the signal path runs in float64 and rounds to float32 at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, get_args

import numpy as np

from slimaudio.errors import ParamError
from slimaudio.features import MelConfig, log_mel, mel_filterbank
from slimaudio.schemas.data import FeatureKind, KaldiWindow, SpeakerFeatures
from slimaudio.spec import values

KINDS: tuple[str, ...] = get_args(FeatureKind)
# Kaldi reads int16 samples unscaled and WeSpeaker multiplies its [-1, 1] waveform by 1 << 15
# to match; 3D-Speaker feeds [-1, 1] as is (scale 1.0). The scale only shifts the log by
# 2*log(scale), which mean_norm removes, except where the energy floor bites.
KALDI_SCALE = float(1 << 15)
KALDI_WINDOWS: tuple[str, ...] = get_args(KaldiWindow)
SB_N_FFT, SB_AMIN, SB_TOP_DB = 400, 1e-10, 80.0
KALDI_PREEMPH, KALDI_LOW_HZ = 0.97, 20.0
KALDI_EPS = float(np.finfo(np.float32).eps)  # Kaldi's floor: std::numeric_limits<float>::epsilon()
CHUNK = 4096  # frames per FFT batch: bounded memory on long files
F32 = np.float32


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


def _power(frames: np.ndarray, win: np.ndarray, n_fft: int, fb: np.ndarray) -> np.ndarray:
    """Mel energies float64 [frames, n_mels] of windowed frames (power spectrum, filters fb)."""
    out = np.empty((frames.shape[0], fb.shape[0]), dtype=np.float64)
    for i in range(0, frames.shape[0], CHUNK):
        spec = np.fft.rfft(frames[i:i + CHUNK] * win, n=n_fft, axis=1)
        out[i:i + CHUNK] = (spec.real ** 2 + spec.imag ** 2) @ fb.T
    return out


# --- SpeechBrain ---------------------------------------------------------------------------------

def _sb_lengths(sample_rate: int) -> tuple[int, int]:
    """(win_length, hop_length) in samples, rounded from 25 / 10 ms as SpeechBrain's STFT does."""
    win, hop = round(sample_rate / 1000.0 * 25), round(sample_rate / 1000.0 * 10)
    if win > SB_N_FFT:
        raise ParamError(f"features: speechbrain_fbank's 25 ms window ({win} samples) exceeds its "
                         f"n_fft {SB_N_FFT}: needs sample_rate <= 16000 (got {sample_rate})")
    return win, hop


def speechbrain_filterbank(sample_rate: int, n_mels: int) -> np.ndarray:
    """[n_mels, SB_N_FFT // 2 + 1] SpeechBrain Filterbank weights: centres equally spaced on
    mel = 2595 log10(1 + f / 700) from 0 to sample_rate // 2, and each triangle symmetric in Hz
    with the half-width of its left side (so its right edge is not the next centre)."""
    f_max = sample_rate // 2
    mel = _torch_linspace(0.0, 2595.0 * math.log10(1.0 + f_max / 700.0), n_mels + 2)
    hz = F32(700.0) * (_f32(10.0 ** (mel / F32(2595.0)).astype(np.float64)) - F32(1.0))
    band = (hz[1:] - hz[:-1])[:-1, None]
    slope = (_torch_linspace(0.0, f_max, SB_N_FFT // 2 + 1)[None, :] - hz[1:-1, None]) / band
    return np.maximum(F32(0.0), np.minimum(slope + F32(1.0), F32(1.0) - slope)).astype(np.float64)


def speechbrain_fbank(wave: np.ndarray, sample_rate: int, n_mels: int) -> np.ndarray:
    """float32 [1 + n // hop, n_mels]: speechbrain.lobes.features.Fbank(n_mels, sample_rate)."""
    x = np.asarray(wave, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("speechbrain_fbank: empty signal")
    win_len, hop = _sb_lengths(sample_rate)
    # torch.stft(center=True, pad_mode="constant"): n_fft // 2 zeros each side, and the window
    # zero-padded to n_fft in the middle
    xp = np.pad(x, SB_N_FFT // 2)
    left = (SB_N_FFT - win_len) // 2
    win = np.zeros(SB_N_FFT)
    win[left:left + win_len] = 0.54 - 0.46 * np.cos(2.0 * math.pi * np.arange(win_len) / win_len)
    frames = np.lib.stride_tricks.sliding_window_view(xp, SB_N_FFT)[::hop]
    db = 10.0 * np.log10(np.maximum(_power(frames, win, SB_N_FFT,
                                           speechbrain_filterbank(sample_rate, n_mels)), SB_AMIN))
    return np.maximum(db, db.max() - SB_TOP_DB).astype(np.float32)


# --- Kaldi ---------------------------------------------------------------------------------------

def _kaldi_lengths(sample_rate: int) -> tuple[int, int, int]:
    """(frame length, shift, FFT size) in samples as Kaldi's FrameExtractionOptions: truncated
    25 / 10 ms, FFT rounded up to a power of two."""
    length, shift = int(sample_rate * 0.025), int(sample_rate * 0.010)
    return length, shift, 1 << (length - 1).bit_length()


def _kaldi_mel(hz: np.ndarray | float) -> np.ndarray:
    """Kaldi's MelScale in float32: 1127.0f * logf(1.0f + hz / 700.0f)."""
    return F32(1127.0) * _f32(np.log((F32(1.0) + _f32(hz) / F32(700.0)).astype(np.float64)))


def kaldi_filterbank(sample_rate: int, n_mels: int) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] Kaldi mel filters (low_freq 20 Hz, high_freq Nyquist): triangles
    equally spaced on Kaldi's mel scale 1127 ln(1 + f / 700), evaluated at the bin frequencies;
    Kaldi leaves the Nyquist bin out. In float32, operation by operation as Kaldi."""
    _, _, n_fft = _kaldi_lengths(sample_rate)
    lo, hi = _kaldi_mel(KALDI_LOW_HZ), _kaldi_mel(F32(0.5) * F32(sample_rate))
    delta = (hi - lo) / F32(n_mels + 1)
    b = np.arange(n_mels, dtype=F32)[:, None]
    left, centre, right = lo + b * delta, lo + (b + F32(1)) * delta, lo + (b + F32(2)) * delta
    mel = _kaldi_mel(F32(sample_rate) / F32(n_fft) * np.arange(n_fft // 2 + 1, dtype=F32))[None, :]
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    fb = np.where((mel > left) & (mel < right), np.where(mel <= centre, up, down), 0.0)
    fb = fb.astype(np.float64)
    fb[:, -1] = 0.0
    empty = np.flatnonzero(fb.sum(axis=1) == 0)
    if empty.size:
        raise ParamError(f"features: kaldi_fbank: {empty.size} mel filter(s) cover no FFT bin "
                         f"(n_mels={n_mels} is too many for {n_fft} points at {sample_rate} Hz)")
    return fb


def kaldi_window(length: int, window: str = "povey") -> np.ndarray:
    """Kaldi's symmetric analysis windows (denominator length - 1)."""
    a = 2.0 * math.pi * np.arange(length) / (length - 1)
    if window == "povey":
        return (0.5 - 0.5 * np.cos(a)) ** 0.85
    if window == "hamming":
        return 0.54 - 0.46 * np.cos(a)
    raise ParamError(f"features: kaldi window {window!r} is not one of {', '.join(KALDI_WINDOWS)}")


def kaldi_fbank(wave: np.ndarray, sample_rate: int, n_mels: int, *, scale: float = KALDI_SCALE,
                window: str = "povey") -> np.ndarray:
    """float32 [1 + (n - length) // shift, n_mels]: kaldi-native-fbank's fbank (dither 0) of
    wave * scale. Needs at least one frame (25 ms) of signal."""
    x = np.asarray(wave, dtype=np.float64).reshape(-1) * scale
    length, shift, n_fft = _kaldi_lengths(sample_rate)
    if x.size < length:
        raise ValueError(f"kaldi_fbank: signal of {x.size} samples is shorter than one frame "
                         f"({length} samples)")
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::shift]
    win, fb = kaldi_window(length, window), kaldi_filterbank(sample_rate, n_mels)
    out = np.empty((frames.shape[0], n_mels), dtype=np.float32)
    for i in range(0, frames.shape[0], CHUNK):  # chunks: the frame copies stay small
        mel = _power(_kaldi_prepare(frames[i:i + CHUNK]), win, n_fft, fb)
        out[i:i + CHUNK] = np.log(np.maximum(mel, KALDI_EPS))
    return out


def _kaldi_prepare(frames: np.ndarray) -> np.ndarray:
    """Kaldi's per-frame processing before the window: remove the frame's mean (DC offset),
    then pre-emphasis within the frame, its first sample against itself as Kaldi does."""
    f = frames - frames.mean(axis=1, keepdims=True)
    return np.concatenate([f[:, :1] * (1.0 - KALDI_PREEMPH),
                           f[:, 1:] - KALDI_PREEMPH * f[:, :-1]], axis=1)


# --- dispatch ------------------------------------------------------------------------------------

def mean_normalise(feats: np.ndarray) -> np.ndarray:
    """Subtract the mean over frames (per utterance), float32 out."""
    f = np.asarray(feats, dtype=np.float64)
    return (f - f.mean(axis=0, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class FrontendConfig(SpeakerFeatures):
    """Params prepare_speakers.features at base.sample_rate: which frontend, and its settings.
    `mel` holds the log_mel settings; the pretrained kinds take only sample_rate and n_mels from
    it (the rest is fixed by their reference)."""

    sample_rate: int

    def __post_init__(self) -> None:
        _ = self.mel  # MelConfig checks the STFT and mel settings first
        if self.kind not in KINDS:
            raise ParamError(f"params: prepare_speakers.features.kind = {self.kind!r} is not one "
                             f"of {', '.join(map(repr, KINDS))}")
        if self.kaldi_window not in KALDI_WINDOWS:
            raise ParamError(f"features: kaldi_window {self.kaldi_window!r} is not one of "
                             f"{', '.join(KALDI_WINDOWS)}")
        if self.kind == "speechbrain_fbank":
            _sb_lengths(self.mel.sample_rate)

    @classmethod
    def of(cls, feats: SpeakerFeatures, sample_rate: int) -> FrontendConfig:
        """The frontend params `feats` (prepare_speakers.features) give at `sample_rate`."""
        return cls(**values(feats, SpeakerFeatures), sample_rate=sample_rate)

    @cached_property
    def mel(self) -> MelConfig:
        return MelConfig.of(self, self.sample_rate)

    def describe(self) -> dict[str, Any]:
        """What the features are, for info.json: the STFT settings that were used (the
        pretrained kinds' own, not the log_mel params) and the frontend's choices."""
        out = self.mel.as_dict()
        if self.kind == "speechbrain_fbank":
            out["win_length"], out["hop_length"] = _sb_lengths(self.mel.sample_rate)
        elif self.kind == "kaldi_fbank":
            out["win_length"], out["hop_length"] = _kaldi_lengths(self.mel.sample_rate)[:2]
        extra = ({"kaldi_window": self.kaldi_window, "kaldi_scale": self.kaldi_scale}
                 if self.kind == "kaldi_fbank" else {})
        return {**out, "kind": self.kind, "mean_norm": self.mean_norm, **extra}

    @property
    def min_samples(self) -> int:
        """Shortest signal that gives at least one frame."""
        if self.kind == "kaldi_fbank":
            return _kaldi_lengths(self.mel.sample_rate)[0]
        return 1 if self.kind == "speechbrain_fbank" else self.mel.win_length

    def n_frames(self, n_samples: int) -> int:
        """Frames `compute` returns for n_samples (0 when shorter than min_samples)."""
        if n_samples < self.min_samples:
            return 0
        if self.kind == "speechbrain_fbank":
            return 1 + n_samples // _sb_lengths(self.mel.sample_rate)[1]
        if self.kind == "kaldi_fbank":
            length, shift, _ = _kaldi_lengths(self.mel.sample_rate)
            return 1 + (n_samples - length) // shift
        return self.mel.n_frames(n_samples)

    def filterbank(self) -> np.ndarray | None:
        """log_mel's filters, built once per worker; None for the other kinds."""
        return mel_filterbank(self.mel) if self.kind == "log_mel" else None


# Each kind's features (wave, cfg, log_mel's filters or None); its keys are KINDS (a test checks).
_COMPUTE: dict[str, Callable[[np.ndarray, FrontendConfig, np.ndarray | None], np.ndarray]] = {
    "log_mel": lambda wave, cfg, fb: log_mel(wave, cfg.mel, fb),
    "speechbrain_fbank": lambda wave, cfg, fb: speechbrain_fbank(wave, cfg.sample_rate,
                                                                 cfg.n_mels),
    "kaldi_fbank": lambda wave, cfg, fb: kaldi_fbank(wave, cfg.sample_rate, cfg.n_mels,
                                                     scale=cfg.kaldi_scale,
                                                     window=cfg.kaldi_window),
}


def compute(wave: np.ndarray, cfg: FrontendConfig, fb: np.ndarray | None = None) -> np.ndarray:
    """float32 [cfg.n_frames(len(wave)), n_mels] features of a mono float waveform in [-1, 1];
    fb: cfg.filterbank(), to skip rebuilding log_mel's filters per call."""
    feats = _COMPUTE[cfg.kind](wave, cfg, fb)
    return mean_normalise(feats) if cfg.mean_norm else feats
