"""Audio loading: read, downmix, resample to the pipeline rate, validate.

Every problem with a file becomes a `BadAudio` (a `BadAudioError`) whose message is one line
naming the file, and whose `reason` is a short code the data stages count skipped files by.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from slimaudio.errors import BadAudioError

# Containers libsndfile reads reliably everywhere; anything else is refused up front with a
# clear message rather than an obscure libsndfile error.
SUPPORTED_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
MIN_RATE, MAX_RATE = 4000, 192000

# Reasons a file is rejected (the keys of the skipped-files counts).
REASONS = ("unreadable", "unsupported_format", "bad_sample_rate", "empty", "non_finite",
           "silent", "too_short")


class BadAudio(BadAudioError):
    """A rejected file: `str(exc)` is '<file>: <what is wrong>', `exc.reason` a code in REASONS."""

    def __init__(self, path: str | os.PathLike[str], reason: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.reason, self.detail))


@dataclass(frozen=True)
class AudioChecks:
    """Validation thresholds. silence_dbfs: a signal whose peak is below this is 'all-silent';
    min_duration_s: shorter signals (after resampling) are rejected."""

    silence_dbfs: float = -60.0
    min_duration_s: float = 0.0


def peak_dbfs(x: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) by the exact rational rate ratio."""
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out, rate_in)
    y = resample_poly(x.astype(np.float64, copy=False), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


def validate(x: np.ndarray, sample_rate: int, name: str | os.PathLike[str],
             checks: AudioChecks = AudioChecks()) -> np.ndarray:
    """Check a mono float signal already at `sample_rate`; return it or raise BadAudio."""
    if x.size == 0:
        raise BadAudio(name, "empty", "no audio samples (empty file)")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise BadAudio(name, "non_finite", f"{bad} NaN/inf sample(s)")
    level = peak_dbfs(x)
    if level < checks.silence_dbfs:
        shown = "-inf" if math.isinf(level) else f"{level:.1f}"
        raise BadAudio(name, "silent",
                       f"all-silent (peak {shown} dBFS < threshold {checks.silence_dbfs:g} dBFS)")
    dur = x.size / sample_rate
    if dur < checks.min_duration_s:
        raise BadAudio(name, "too_short",
                       f"too short ({dur:.3f} s < minimum {checks.min_duration_s:g} s)")
    return x


def load_audio(path: str | os.PathLike[str], sample_rate: int,
               checks: AudioChecks = AudioChecks()) -> np.ndarray:
    """Read `path` as float32 mono at `sample_rate`, validated; raise BadAudio otherwise."""
    import soundfile as sf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadAudio(path, "unsupported_format",
                       f"unsupported format '{suffix or '(none)'}' "
                       f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadAudio(path, "unreadable", f"cannot read audio ({first})") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadAudio(path, "bad_sample_rate",
                       f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if x.size and np.all(np.isfinite(x)):  # resampling NaNs would smear them; validate reports them
        x = resample(x, rate, sample_rate)
    return validate(np.ascontiguousarray(x, dtype=np.float32), sample_rate, path, checks)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to int16 PCM (clipped), the storage format of data/speakers/audio.npy."""
    return np.clip(np.round(np.asarray(x, dtype=np.float32) * 32767.0), -32768, 32767).astype(np.int16)


def from_int16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / 32767.0
