"""Training crops of a speaker corpus (slimaudio.datasets.speakers) with feature-domain noise
augmentation.

Noise is added in the log-mel domain, where it is exact for uncorrelated noise in expectation:
features are log(mel power + 1e-6) (slimaudio.features), so noisy features are
log(exp(x) + P_noise) with P_noise a coloured (white, pink or brown) mel power spectrum at a
random SNR, with gamma-distributed frame-to-frame fluctuation like a real noise periodogram.
This costs almost nothing per batch, whereas waveform noise would need the STFT of every crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.features import LOG_EPS


@dataclass(frozen=True)
class NoiseConfig:
    prob: float                     # params ecapa.train.noise_prob
    snr_db: tuple[float, float]     # params ecapa.train.snr_db
    fluctuation_shape: float = 2.0  # gamma shape of the per-bin power fluctuation (not a param)


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
