"""Class balancing: seeded per-class random undersampling and 'balanced' class weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slimaudio import runtime


def undersample(labels: Sequence[int] | np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """Indices (sorted) keeping at most `cap` random items of each class; None keeps all.

    Each class draws from its own generator seeded by (seed, label), so one class's choice
    does not change when another class gains or loses items.
    """
    labels = np.asarray(labels)
    if cap is None:
        return np.arange(labels.size)
    if cap < 1:
        raise ValueError(f"undersampling cap must be >= 1, got {cap}")
    keep: list[np.ndarray] = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if idx.size > cap:
            rng = runtime.rng(seed, "sounds.undersample", int(lab))
            idx = np.sort(rng.choice(idx, size=cap, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def balanced_class_weights(labels: Sequence[int] | np.ndarray, n_classes: int) -> np.ndarray:
    """n_samples / (n_present_classes * count[c]), like sklearn's class_weight='balanced'.

    Classes absent from `labels` get weight 0 (sklearn refuses them; a model can still have
    an output for them).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    if present.any():
        weights[present] = labels.size / (present.sum() * counts[present])
    return weights


def class_counts(labels: Sequence[int] | np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(int).tolist()
