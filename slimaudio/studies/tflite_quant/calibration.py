"""Calibration sets for the `int` / `full_int` conversions, and the seeds they are drawn with."""

from __future__ import annotations

import numpy as np

from slimaudio.datasets.sounds import SoundFrames
from slimaudio.errors import DataError

# Each calibration set has its own seed, offset from the base seed: the representative set
# takes the base seed itself, calibration probe k (0-based, in params order) base + 1 + k.
REPRESENTATIVE_SEED_OFFSET = 0
FIRST_PROBE_SEED_OFFSET = 1


def representative_seed(seed: int) -> int:
    return seed + REPRESENTATIVE_SEED_OFFSET


def probe_seed(seed: int, k: int) -> int:
    """The seed of the k-th calibration probe."""
    return seed + FIRST_PROBE_SEED_OFFSET + k


def calibration_frames(data: SoundFrames, source: str, n: int, seed: int) -> np.ndarray:
    """Calibration inputs, float32 [n, n_mels, time, 1], preprocessed exactly as at inference.

    train: n random training frames (the representative set when n is large enough);
    one_class: n random training frames of the first class only;
    uniform_noise / normal_noise: U[0, 1) / N(0, 1) arrays of the input shape, the
    placeholders many tutorials use (`np.random.rand` / `np.random.randn`).
    """
    rng = np.random.default_rng(seed)
    idx = data.indices("train")
    if source == "uniform_noise":
        return rng.random((n, *data.input_shape), dtype=np.float32)
    if source == "normal_noise":
        return rng.standard_normal((n, *data.input_shape), dtype=np.float32)
    if source == "one_class":
        idx = idx[data.manifest["label"].to_numpy()[idx] == 0]
    elif source != "train":
        raise ValueError(f"unknown calibration source {source!r}")
    if len(idx) == 0:
        raise DataError(f"{data.root}: no training frames for calibration source {source!r}")
    pick = np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.asarray(data.frames[pick], dtype=np.float32)[..., None]
