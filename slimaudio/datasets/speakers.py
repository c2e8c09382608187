"""The one reader and validator of data/speakers/ (written by the prepare_speakers stage).

Layout (docs/architecture.md): manifest.csv (one row per utterance: utt_id, speaker, split,
feat_offset, feat_frames, and audio_offset, audio_samples, group, ...), feats.npy [frames,
n_mels] (float16 for compressed features, float32 for raw spectra: info.json's features.dtype),
audio.npy int16 [samples], trials.txt, info.json (sample_rate, the STFT settings, `center`, and
every frontend setting under `frontend`). Every study that reads speakers reads them here;
the arrays are memory-mapped, so opening the corpus costs only the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.errors import DataError
from slimaudio.speaker.scoring import Trials, read_trials

MANIFEST_COLUMNS = ("utt_id", "speaker", "split", "feat_offset", "feat_frames")
AUDIO_COLUMNS = ("audio_offset", "audio_samples")
REQUIRED_FILES = ("manifest.csv", "feats.npy", "trials.txt", "info.json")
STFT_KEYS = ("sample_rate", "n_fft", "win_length", "hop_length", "f_min", "f_max")


@dataclass(frozen=True)
class SpeakerInfo:
    """data/speakers/info.json, read and checked once: what the features are."""

    path: Path
    sample_rate: int
    hop_length: int
    kind: str                    # the frontend that made the features (frontends.KINDS)
    raw: dict[str, Any]          # the whole file: the STFT settings, the corpus, the counts

    @classmethod
    def read(cls, path: Path) -> SpeakerInfo:
        raw = json.loads(path.read_text(encoding="utf-8"))
        for key in ("sample_rate", "hop_length"):
            if key not in raw:
                raise DataError(f"{path}: missing '{key}'")
        # corpora prepared before the frontend was recorded have the project's log-mel
        return cls(path, int(raw["sample_rate"]), int(raw["hop_length"]),
                   str(raw.get("kind", "log_mel")), raw)

    def stft(self) -> dict[str, Any]:
        """The STFT settings (STFT_KEYS) the features were computed with, which aligning the
        audio with them, or computing other features alike, needs."""
        missing = [k for k in STFT_KEYS if k not in self.raw]
        if missing:
            raise DataError(f"{self.path}: missing {', '.join(repr(k) for k in missing)}")
        return {k: self.raw[k] for k in STFT_KEYS}


@dataclass
class SpeakerData:
    root: Path
    manifest: pd.DataFrame
    feats: np.ndarray          # float16 or float32 [total_frames, n_mels] (memory-mapped)
    trials: Trials
    info: SpeakerInfo
    _audio: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._index = self.manifest.set_index("utt_id")

    @property
    def n_mels(self) -> int:
        return int(self.feats.shape[1])

    @property
    def frames_per_second(self) -> float:
        return self.info.sample_rate / self.info.hop_length

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.frames_per_second))

    def split(self, name: str) -> pd.DataFrame:
        return self.manifest[self.manifest["split"] == name]

    def utterance(self, utt_id: str) -> np.ndarray:
        """One utterance's features as float32 [frames, n_mels]."""
        row = self._index.loc[utt_id]
        off, n = int(row["feat_offset"]), int(row["feat_frames"])
        return np.asarray(self.feats[off:off + n], dtype=np.float32)

    def feats_of(self, row: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Features of manifest row `row` from frame `start`, at most `length` frames."""
        frames = int(self.manifest["feat_frames"].iat[row])
        n = frames if length is None else min(int(length), frames - start)
        o = int(self.manifest["feat_offset"].iat[row]) + start
        return np.asarray(self.feats[o:o + n], dtype=np.float32)

    @property
    def audio(self) -> np.ndarray:
        """int16 [total_samples], memory-mapped; validated on first use (only the distillation
        study needs the waveform)."""
        if self._audio is None:
            self._audio = _load_audio(self.root, self.manifest, self.info)
        return self._audio


def load(root: str | os.PathLike[str]) -> SpeakerData:
    root = Path(root)
    for name in REQUIRED_FILES:
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing (run the prepare_speakers stage)")
    manifest = pd.read_csv(root / "manifest.csv",
                           dtype={"utt_id": str, "speaker": str, "split": str, "group": str})
    _require_columns(root / "manifest.csv", manifest, MANIFEST_COLUMNS)
    feats = np.load(root / "feats.npy", mmap_mode="r")
    if feats.ndim != 2:
        raise DataError(f"{root / 'feats.npy'}: expected [frames, n_mels], got shape {feats.shape}")
    end = (manifest["feat_offset"] + manifest["feat_frames"]).max()
    if len(manifest) and end > feats.shape[0]:
        raise DataError(f"{root / 'manifest.csv'}: feature rows up to {end} but feats.npy has "
                        f"{feats.shape[0]}")
    info = SpeakerInfo.read(root / "info.json")
    trials = read_trials(root / "trials.txt")
    known = set(manifest["utt_id"])
    unknown = [u for u in trials.utterances if u not in known]
    if unknown:
        raise DataError(f"{root / 'trials.txt'}: {len(unknown)} utterance(s) not in the manifest, "
                        f"e.g. {unknown[0]}")
    if (manifest["split"] == "train").sum() == 0:
        raise DataError(f"{root / 'manifest.csv'}: no train utterances")
    return SpeakerData(root, manifest, feats, trials, info)


def _require_columns(path: Path, df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")


def _load_audio(root: Path, m: pd.DataFrame, info: SpeakerInfo) -> np.ndarray:
    """audio.npy, checked against the manifest and aligned with the features: a feature frame
    f of an utterance covers its samples [f * hop, f * hop + win) (uncentred STFT), or is
    centred on sample f * hop (centred: info.json's `center`)."""
    path = root / "audio.npy"
    if not path.exists():
        raise DataError(f"{path}: missing (run the prepare_speakers stage)")
    _require_columns(root / "manifest.csv", m, AUDIO_COLUMNS)
    stft = info.stft()
    audio = np.load(path, mmap_mode="r")
    if audio.ndim != 1:
        raise DataError(f"{path}: expected [samples], got shape {audio.shape}")
    if (m["audio_offset"] + m["audio_samples"]).max() > audio.shape[0]:
        raise DataError(f"{root / 'manifest.csv'}: audio rows beyond the end of audio.npy")
    win, hop, n_fft = int(stft["win_length"]), int(stft["hop_length"]), int(stft["n_fft"])
    centred = bool(info.raw.get("center", False))
    span = n_fft - 2 * (n_fft // 2) if centred else win  # samples the first frame needs
    expect = 1 + (m["audio_samples"] - span) // hop
    if not (expect == m["feat_frames"]).all():
        raise DataError(f"{root}: feat_frames disagree with audio_samples for "
                        f"{'centred' if centred else 'uncentred'} STFT frames (win {win}, hop "
                        f"{hop}); features and audio are misaligned")
    return audio
