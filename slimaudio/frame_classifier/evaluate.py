"""Frame- and clip-level evaluation of class scores, and the baseline's plots.

Frame level: each 2 s frame is one prediction (the paper's test metrics). Clip level: the
frame scores of one recording are averaged and the clip is classified once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.metrics import classification_metrics, confusion_matrix
from slimaudio.progress import progress_bar


def predict_keras(model: Any, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class scores of a Keras model, batch by batch (no Keras progress bar)."""

    out = []
    for i in progress_bar(range(0, len(x), batch_size), desc="keras predict", unit="batch", leave=False):
        out.append(np.asarray(model(x[i:i + batch_size], training=False), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def clip_scores(scores: np.ndarray, labels: np.ndarray,
                clip_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average frame scores per clip; returns (clip scores, clip labels, clip ids).

    A clip's label is the label of its frames (they share one; the most common is taken if
    a corpus ever mixes them).
    """
    scores = np.asarray(scores, dtype=np.float64)
    df = pd.DataFrame({"clip": np.asarray(clip_ids).astype(str), "label": np.asarray(labels)})
    codes, uniq = pd.factorize(df["clip"], sort=True)
    n = len(uniq)
    sums = np.zeros((n, scores.shape[1]))
    np.add.at(sums, codes, scores)
    counts = np.bincount(codes, minlength=n)[:, None]
    clip_label = df.groupby("clip")["label"].agg(lambda s: s.value_counts().index[0])
    return sums / counts, clip_label.loc[uniq].to_numpy(np.int64), np.asarray(uniq)


def evaluate_scores(scores: np.ndarray, labels: np.ndarray, clip_ids: Sequence[str],
                    n_classes: int) -> dict[str, float]:
    """Frame metrics (f1, precision, recall, accuracy; macro) and the same with a clip_ prefix."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.shape != (len(labels), n_classes):
        raise ValueError(f"scores shape {scores.shape} does not match {len(labels)} x {n_classes}")
    out = classification_metrics(labels, scores.argmax(axis=1), n_classes)
    cs, cl, _ = clip_scores(scores, labels, clip_ids)
    clip = classification_metrics(cl, cs.argmax(axis=1), n_classes)
    out.update({f"clip_{k}": v for k, v in clip.items()})
    out["n_frames"] = float(len(labels))
    out["n_clips"] = float(len(cl))
    return out


def plot_confusion(scores: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                   title: str = "confusion (test frames)") -> Any:
    """Row-normalised confusion matrix with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    cm = confusion_matrix(labels, np.asarray(scores).argmax(axis=1), n)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    return fig


def plot_history(history: pd.DataFrame) -> Any:
    """The paper's Fig. 2: accuracy (left) and loss (right) per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(history["epoch"], history[key], "o-", label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(history["epoch"], history[f"val_{key}"], "s--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("Accuracy")
    axes[1].set_title("Loss")
    fig.tight_layout()
    return fig
