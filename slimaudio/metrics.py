"""Evaluation metrics shared by every study. Pure functions of scores and labels.

Verification: EER (interpolated at the FAR/FRR crossing), normalised minDCF, DET points.
Classification: macro precision/recall/F1, accuracy, confusion matrix. Sizes in bytes/MiB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIB = 1024 * 1024


@dataclass(frozen=True)
class DetCurve:
    """Error rates at every distinct score threshold (ascending thresholds)."""

    thresholds: np.ndarray
    far: np.ndarray  # false acceptance (false alarm) rate
    frr: np.ndarray  # false rejection (miss) rate


def det_curve(scores: np.ndarray, labels: np.ndarray) -> DetCurve:
    """FAR and FRR for accepting `score >= t`, at every threshold t (plus both extremes).

    labels: 1 for target trials, 0 for non-target.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError("scores and labels differ in length")
    n_tar, n_non = int(labels.sum()), int((~labels).sum())
    if n_tar == 0 or n_non == 0:
        raise ValueError("need both target and non-target trials")
    order = np.argsort(scores, kind="mergesort")
    s, lab = scores[order], labels[order]
    # Rejecting the k lowest scores: misses = targets among them, false alarms = the rest kept.
    miss = np.concatenate([[0], np.cumsum(lab)])
    fa = n_non - np.concatenate([[0], np.cumsum(~lab)])
    # Only thresholds between distinct scores are reachable.
    keep = np.concatenate([[True], s[1:] != s[:-1], [True]])
    thr = np.concatenate([s, [np.inf]])[keep]
    return DetCurve(thresholds=thr, far=(fa / n_non)[keep], frr=(miss / n_tar)[keep])


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (fraction, 0-1), linearly interpolated where FAR and FRR cross."""
    d = det_curve(scores, labels)
    diff = d.far - d.frr  # decreasing from +1 (accept all) to -1 (reject all)
    idx = int(np.argmax(diff <= 0))
    if idx == 0:
        return float((d.far[0] + d.frr[0]) / 2)
    x0, x1 = diff[idx - 1], diff[idx]
    w = x0 / (x0 - x1) if x0 != x1 else 0.5
    far = d.far[idx - 1] + w * (d.far[idx] - d.far[idx - 1])
    frr = d.frr[idx - 1] + w * (d.frr[idx] - d.frr[idx - 1])
    return float((far + frr) / 2)


def min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01,
            c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Minimum detection cost, normalised by the cost of the best trivial system (NIST SRE)."""
    d = det_curve(scores, labels)
    cost = c_miss * p_target * d.frr + c_fa * (1 - p_target) * d.far
    default = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(cost.min() / default)


def verification_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER in percent (as the papers report it) and minDCF at p_target 0.01 and 0.05."""
    return {
        "eer": 100.0 * eer(scores, labels),
        "min_dcf": min_dcf(scores, labels, 0.01),
        "min_dcf_p05": min_dcf(scores, labels, 0.05),
    }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                           n_classes: int) -> dict[str, float]:
    """Macro precision, recall and F1 over classes present in y_true or y_pred, and accuracy.

    A class never predicted has precision 0 (scikit-learn's zero_division=0 convention).
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    present = (pred + true) > 0
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = prec + rec
    f1 = np.divide(2 * prec * rec, denom, out=np.zeros_like(tp), where=denom > 0)
    total = cm.sum()
    return {
        "precision": float(prec[present].mean()) if present.any() else 0.0,
        "recall": float(rec[present].mean()) if present.any() else 0.0,
        "f1": float(f1[present].mean()) if present.any() else 0.0,
        "accuracy": float(tp.sum() / total) if total else 0.0,
    }


def file_size(path: str | os.PathLike[str]) -> dict[str, float]:
    """Size of a file, or of every file under a directory, as size_bytes and size_mib."""
    p = Path(path)
    n = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return {"size_bytes": int(n), "size_mib": n / MIB}
