"""Read a prepared speaker folder (data/speakers/, see docs/architecture.md) and draw training
crops with feature-domain noise augmentation.

Noise is added in the log-mel domain, where it is exact for uncorrelated noise in expectation:
features are log(mel power + 1e-6) (slimaudio.features), so noisy features are
log(exp(x) + P_noise) with P_noise a coloured (white, pink or brown) mel power spectrum at a
random SNR, with gamma-distributed frame-to-frame fluctuation like a real noise periodogram.
This costs almost nothing per batch, whereas waveform noise would need the STFT of every crop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.errors import DataError
from slimaudio.features import LOG_EPS
from slimaudio.speaker.scoring import Trials, read_trials

MANIFEST_COLUMNS = ("utt_id", "speaker", "split", "feat_offset", "feat_frames")


@dataclass
class SpeakerData:
    root: Path
    manifest: pd.DataFrame
    feats: np.ndarray          # float16 [total_frames, n_mels] (memory-mapped)
    trials: Trials
    info: dict[str, Any]

    @property
    def n_mels(self) -> int:
        return int(self.feats.shape[1])

    @property
    def frames_per_second(self) -> float:
        return float(self.info["sample_rate"]) / float(self.info["hop_length"])

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.frames_per_second))

    def split(self, name: str) -> pd.DataFrame:
        return self.manifest[self.manifest["split"] == name]

    def utterance(self, utt_id: str) -> np.ndarray:
        row = self._index.loc[utt_id]
        off, n = int(row["feat_offset"]), int(row["feat_frames"])
        return np.asarray(self.feats[off:off + n], dtype=np.float32)

    def __post_init__(self) -> None:
        self._index = self.manifest.set_index("utt_id")


def load(root: str | os.PathLike[str]) -> SpeakerData:
    root = Path(root)
    for name in ("manifest.csv", "feats.npy", "trials.txt", "info.json"):
        if not (root / name).exists():
            raise DataError(f"{root / name}: missing (run the prepare_speakers stage)")
    manifest = pd.read_csv(root / "manifest.csv", dtype={"utt_id": str, "speaker": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise DataError(f"{root / 'manifest.csv'}: missing column(s) {', '.join(missing)}")
    feats = np.load(root / "feats.npy", mmap_mode="r")
    if feats.ndim != 2:
        raise DataError(f"{root / 'feats.npy'}: expected [frames, n_mels], got shape {feats.shape}")
    end = (manifest["feat_offset"] + manifest["feat_frames"]).max()
    if end > feats.shape[0]:
        raise DataError(f"{root / 'manifest.csv'}: feature rows up to {end} but feats.npy has "
                        f"{feats.shape[0]}")
    info = json.loads((root / "info.json").read_text(encoding="utf-8"))
    for key in ("sample_rate", "hop_length"):
        if key not in info:
            raise DataError(f"{root / 'info.json'}: missing '{key}'")
    trials = read_trials(root / "trials.txt")
    known = set(manifest["utt_id"])
    unknown = [u for u in trials.utterances if u not in known]
    if unknown:
        raise DataError(f"{root / 'trials.txt'}: {len(unknown)} utterance(s) not in the manifest, "
                        f"e.g. {unknown[0]}")
    if (manifest["split"] == "train").sum() == 0:
        raise DataError(f"{root / 'manifest.csv'}: no train utterances")
    return SpeakerData(root, manifest, feats, trials, info)


@dataclass(frozen=True)
class NoiseConfig:
    prob: float = 0.6
    snr_db: tuple[float, float] = (0.0, 20.0)
    fluctuation_shape: float = 2.0  # gamma shape of the per-bin power fluctuation


def add_noise(x: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig) -> np.ndarray:
    """Log-mel crop [frames, n_mels] plus coloured noise at a random SNR (in place-safe copy)."""
    power = np.exp(x.astype(np.float64)) - LOG_EPS
    sig = float(np.maximum(power, 0.0).mean())
    n_mels = x.shape[1]
    tilt = rng.choice([0.0, 1.0, 2.0])          # white, pink, brown (per mel band, roughly)
    shape = (np.arange(1, n_mels + 1, dtype=np.float64)) ** (-tilt)
    shape /= shape.mean()
    snr = rng.uniform(*cfg.snr_db)
    k = cfg.fluctuation_shape
    fluct = rng.gamma(k, 1.0 / k, size=x.shape)
    noise = sig * 10.0 ** (-snr / 10.0) * shape[None, :] * fluct
    return np.log(np.maximum(power, 0.0) + noise + LOG_EPS).astype(np.float32)


class CropSampler:
    """Random fixed-length crops of training utterances with speaker labels.

    Utterances shorter than a crop are repeated (wrapped) to the crop length.
    """

    def __init__(self, data: SpeakerData, crop_frames: int, seed: int,
                 noise: NoiseConfig | None = None, split: str = "train") -> None:
        rows = data.split(split)
        if rows.empty:
            raise DataError(f"{data.root}: no '{split}' utterances")
        self.data = data
        self.speakers = sorted(rows["speaker"].unique())
        spk_index = {s: i for i, s in enumerate(self.speakers)}
        self.labels = rows["speaker"].map(spk_index).to_numpy(np.int64)
        self.offsets = rows["feat_offset"].to_numpy(np.int64)
        self.lengths = rows["feat_frames"].to_numpy(np.int64)
        self.crop = int(crop_frames)
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    @property
    def n_classes(self) -> int:
        return len(self.speakers)

    def crop_one(self, i: int) -> np.ndarray:
        n, off = int(self.lengths[i]), int(self.offsets[i])
        if n >= self.crop:
            start = off + int(self.rng.integers(0, n - self.crop + 1))
            x = np.asarray(self.data.feats[start:start + self.crop], dtype=np.float32)
        else:
            x = np.asarray(self.data.feats[off:off + n], dtype=np.float32)
            x = np.resize(x, (self.crop, x.shape[1])) if n > 0 else np.zeros((self.crop, x.shape[1]))
            x = x.astype(np.float32)
        if self.noise is not None and self.rng.random() < self.noise.prob:
            x = add_noise(x, self.rng, self.noise)
        return x

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """([size, crop, n_mels] float32, [size] int64 labels)."""
        idx = self.rng.integers(0, len(self.labels), size=size)
        return np.stack([self.crop_one(int(i)) for i in idx]), self.labels[idx]
