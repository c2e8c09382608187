"""Audio loading: read, downmix, resample to the pipeline rate, validate.

Every problem with a file becomes a `BadAudio` (a `BadAudioError`) whose message is one line
naming the file, and whose `reason` is a short code the data stages count skipped files by.
"""

from __future__ import annotations

import math
import os
import stat
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np

from slimaudio.errors import BadAudioError

# Containers libsndfile reads reliably everywhere; anything else is refused up front with a
# clear message rather than an obscure libsndfile error.
SUPPORTED_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
MIN_RATE, MAX_RATE = 4000, 192000

# Reasons a file is rejected (the keys of the skipped-files counts): 'missing' (no such file),
# 'unreadable' (permission, not a regular file, dangling symlink), 'corrupt' (the decoder
# refused the content), 'unrecognised_name' (a corpus reader found a file its layout cannot name),
# 'duplicate' (a second file with an utterance id already taken).
REASONS = ("missing", "unreadable", "corrupt", "unsupported_format", "bad_sample_rate", "empty",
           "non_finite", "silent", "too_short", "unrecognised_name", "duplicate")


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


def access_problem(path: Path) -> BadAudio | None:
    """Why `path` cannot be opened at all, or None. Checked before decoding: libsndfile says
    only 'System error.' for these, and would block reading a FIFO."""
    if not os.path.lexists(path):
        return BadAudio(path, "missing", "no such file")
    if path.is_symlink() and not path.exists():
        return BadAudio(path, "unreadable", f"dangling symlink (to {os.readlink(path)})")
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a special file"
            return BadAudio(path, "unreadable", f"not a regular file ({kind})")
        with path.open("rb"):
            pass
    except OSError as exc:
        return BadAudio(path, "unreadable", f"cannot open ({exc.strerror or type(exc).__name__})")
    return None


def load_audio(path: str | os.PathLike[str], sample_rate: int,
               checks: AudioChecks = AudioChecks()) -> np.ndarray:
    """Read `path` as float32 mono at `sample_rate`, validated; raise BadAudio otherwise."""
    import soundfile as sf

    path = Path(path)
    access = access_problem(path)
    if access is not None:
        raise access
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadAudio(path, "unsupported_format",
                       f"unsupported format '{suffix or '(none)'}' "
                       f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        # error_string is the decoder's own words, without the 'Error opening <path>:' prefix
        text = str(getattr(exc, "error_string", "") or exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        # the file opened above, so a bare system error here is I/O trouble, not bad content
        reason = "unreadable" if first == "System error." else "corrupt"
        raise BadAudio(path, reason, f"cannot read audio ({first})") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadAudio(path, "bad_sample_rate",
                       f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if x.size and np.all(np.isfinite(x)):  # resampling NaNs would smear them; validate reports them
        x = resample(x, rate, sample_rate)
    return validate(np.ascontiguousarray(x, dtype=np.float32), sample_rate, path, checks)


def describe_dir(root: Path, limit: int = 100_000) -> str:
    """What a directory holds, for layout errors: file counts by extension, the busiest
    folders and one example path, e.g. '35 file(s): 35 .wav; in audio/fold3 (20); e.g. ...'."""
    entries = list(islice(root.rglob("*"), limit))  # bounded: a huge tree is not walked whole
    found = sorted(p.relative_to(root) for p in entries if not p.is_dir())
    if not found:
        return "no files"
    exts = Counter(f.suffix.lower() or "(no extension)" for f in found)
    dirs = Counter(f.parent.as_posix() for f in found)
    common = exts.most_common(1)[0][0]
    example = next(f for f in found if (f.suffix.lower() or "(no extension)") == common)
    count = f"{'at least ' if len(entries) >= limit else ''}{len(found)} file(s)"
    return (f"{count}: {', '.join(f'{k} {e}' for e, k in exts.most_common())}; "
            f"in {', '.join(f'{d} ({k})' for d, k in dirs.most_common(3))}; "
            f"e.g. {example.as_posix()}")


def corpus_root(path: str | os.PathLike[str] | None, kind: str) -> Path:
    """The directory of a real corpus, or a DataError saying what is there instead."""
    from slimaudio.errors import DataError

    if path is None:
        raise DataError(f"corpus kind '{kind}' needs corpus.path (the corpus directory)")
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: corpus directory for '{kind}' not found ({describe_not_dir(root)})")
    return root


def walk_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files with these suffixes at any depth, hidden files and folders excluded. Symlinked
    folders are followed (a corpus assembled from links), each real folder once."""
    seen: set[str] = set()
    out = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(folder) / f for f in files
                if not f.startswith(".") and f.lower().endswith(suffixes)]
    return sorted(out)


def describe_not_dir(path: Path) -> str:
    """What is at (or nearest above) a path that is not the directory asked for."""
    if path.exists():
        return "it is a file, not a directory"
    parent = next((p for p in path.parents if p.is_dir()), None)
    if parent is None:
        return "no such directory"
    names = sorted(c.name for c in parent.iterdir() if not c.name.startswith("."))
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"no such directory; {parent} holds: {shown or 'nothing'}"


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to int16 PCM (clipped), the storage format of data/speakers/audio.npy."""
    return np.clip(np.round(np.asarray(x, dtype=np.float32) * 32767.0), -32768, 32767).astype(np.int16)


def from_int16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / 32767.0
