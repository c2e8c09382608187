"""Bootstrap intervals for every quality number and every difference between two systems.

Resampling follows the unit that makes observations dependent (a cluster): speakers for
verification trials (a speaker's trials share its voice), clips for sound-event frames (a
clip's frames share its recording). A resample draws clusters with replacement; each
observation then counts as often as its cluster was drawn, so a statistic is computed once
per resample on weighted observations - no data is copied, and a thousand resamples of a
100k-trial list are a few matrix passes.

Paired comparisons apply the same resample to both systems, so the interval of a difference
excludes the between-cluster variance the two systems share (narrower than comparing two
separate intervals whenever their errors are correlated, which is the usual case).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimaudio import runtime

LEVEL = 0.95
CHUNK = 64  # resamples per vectorised pass: bounds memory to CHUNK x n observations


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    lo: float
    hi: float
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def excludes(self, x: float) -> bool:
        return x < self.lo or x > self.hi


def replicate_draw(n_boot: int, n_replicates: int, seed: int) -> np.ndarray:
    """[n_boot, n_replicates]: which replicates (trainings with seeds base.seed + r) each
    bootstrap resample draws, with replacement; one draw shared by every model compared, as
    replicate r of every model has the same seed. One replicate draws nothing."""
    if n_replicates == 1:
        return np.zeros((n_boot, 1), dtype=np.int64)
    return runtime.rng(seed, "bootstrap", 1).integers(0, n_replicates, (n_boot, n_replicates))


def pool_replicates(values: Sequence[float], samples: Sequence[np.ndarray],
                    draw: np.ndarray) -> tuple[float, np.ndarray]:
    """One statistic over a model's replicates: their mean, and per resample b the mean over
    the replicates row b of `draw` picks, so the interval holds the training seed's noise as
    well as the data's. A single replicate is its own value and samples."""
    rows = draw if len(values) > 1 else np.zeros((len(draw), 1), dtype=np.int64)
    if len(values) > 1 and draw.shape[1] != len(values):
        raise ValueError(f"{len(values)} replicates but the draw is of {draw.shape[1]}")
    per_rep = np.stack(samples)                                  # [replicates, n_boot]
    return float(np.mean(values)), per_rep[rows, np.arange(len(rows))[:, None]].mean(axis=1)


# An interval in a table is three columns: `x`, `x_lo`, `x_hi`. These write and read them.
def column_names(name: str) -> tuple[str, str, str]:
    return name, f"{name}_lo", f"{name}_hi"


def columns(name: str, iv: Interval) -> dict[str, float]:
    """{name: value, name_lo: lo, name_hi: hi}, a table row's cells for the interval."""
    return dict(zip(column_names(name), (iv.value, iv.lo, iv.hi), strict=True))


def read(row: Mapping[str, Any], name: str, scale: float = 1.0) -> Interval:
    """The interval of column `name` in a table row (any mapping); NaN for a missing or
    non-numeric cell, so a table without the interval reads as value [nan, nan]."""
    value, lo, hi = (scale * number(row.get(c)) for c in column_names(name))
    return Interval(value, lo, hi)


def number(x: object) -> float:
    """A table cell as a float; NaN for anything that is not a number (blank, text, None)."""
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def percentile(samples: np.ndarray, value: float, level: float = LEVEL) -> Interval:
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return Interval(float(value), float("nan"), float("nan"), level)
    a = (1 - level) / 2
    lo, hi = np.quantile(samples, [a, 1 - a])
    return Interval(float(value), float(lo), float(hi), level)


def cluster_counts(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n_clusters]: how often each cluster is drawn in each resample."""
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    counts = np.zeros((n_boot, n_clusters), dtype=np.float32)
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts


def trial_weights(enroll: np.ndarray, test: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Speaker-bootstrap weights of verification trials, [n_boot, n_trials].

    `enroll`/`test` are integer speaker ids of each trial's two sides. A target trial (one
    speaker) counts as often as its speaker was drawn; a non-target trial as often as the pair
    of its speakers was, i.e. the product of the two counts.
    """
    enroll, test = np.asarray(enroll), np.asarray(test)
    same = enroll == test
    return np.where(same, counts[:, enroll], counts[:, enroll] * counts[:, test])


@dataclass(frozen=True)
class SortedTrials:
    """Scores sorted once; `curves(w)` gives the weighted FAR and FRR at every threshold
    between distinct scores (as metrics.det_curve) for a chunk of weight rows. Cumulative sums
    run in float32, exact for the integer weights of a bootstrap (sums below 2**24)."""

    order: np.ndarray
    labels: np.ndarray  # sorted
    keep: np.ndarray    # thresholds between distinct scores, both extremes included

    @classmethod
    def of(cls, scores: np.ndarray, labels: np.ndarray) -> SortedTrials:
        scores = np.asarray(scores, dtype=np.float64).ravel()
        order = np.argsort(scores, kind="mergesort")
        s = scores[order]
        keep = np.concatenate([[True], s[1:] != s[:-1], [True]])
        return cls(order, np.asarray(labels).astype(bool).ravel()[order], keep)

    def curves(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(far, frr), each [rows, thresholds]; NaN rows where a class has no weight."""
        w = np.asarray(w, dtype=np.float32)[:, self.order]
        tar = np.where(self.labels, w, np.float32(0))
        zero = np.zeros((len(w), 1), dtype=np.float32)
        cum_all = np.concatenate([zero, np.cumsum(w, axis=1)], axis=1)[:, self.keep]
        cum_tar = np.concatenate([zero, np.cumsum(tar, axis=1)], axis=1)[:, self.keep]
        n_tar, n_non = cum_tar[:, -1:].astype(np.float64), (cum_all - cum_tar)[:, -1:].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            frr = cum_tar / n_tar
            far = 1 - (cum_all - cum_tar) / n_non
        return far, frr


def weighted_eer(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """EER (fraction) for each row of `weights` [n_boot, n_trials]; with unit weights it
    equals metrics.eer (same crossing and interpolation). NaN for a row with no target or
    no non-target weight."""
    st = SortedTrials.of(scores, labels)
    out = np.empty(len(weights))
    for start in range(0, len(weights), CHUNK):
        far, frr = st.curves(weights[start:start + CHUNK])
        out[start:start + CHUNK] = _crossing(far, frr)
    return out


def _min_dcf(far: np.ndarray, frr: np.ndarray, p_target: float) -> np.ndarray:
    cost = p_target * frr + (1 - p_target) * far
    return cost.min(axis=1) / min(p_target, 1 - p_target)


def _crossing(far: np.ndarray, frr: np.ndarray) -> np.ndarray:
    """Row-wise EER where FAR - FRR first reaches 0, linearly interpolated."""
    diff = far - frr
    idx = np.argmax(diff <= 0, axis=1)
    rows = np.arange(len(diff))
    prev = np.maximum(idx - 1, 0)
    x0, x1 = diff[rows, prev], diff[rows, idx]
    frac = np.where(x0 != x1, x0 / np.where(x0 != x1, x0 - x1, 1.0), 0.5)
    far_e = far[rows, prev] + frac * (far[rows, idx] - far[rows, prev])
    frr_e = frr[rows, prev] + frac * (frr[rows, idx] - frr[rows, prev])
    at_start = idx == 0
    far_e[at_start] = far[rows, 0][at_start]
    frr_e[at_start] = frr[rows, 0][at_start]
    return (far_e + frr_e) / 2


Statistic = Callable[[np.ndarray], np.ndarray]  # weights [b, n] -> one value per row
Weigh = Callable[[np.ndarray], np.ndarray]      # cluster counts [b, k] -> weights [b, n]


@dataclass(frozen=True)
class Resampler:
    """A fixed set of cluster resamples of n observations. Every interval drawn from one
    resampler uses the same resamples, so intervals of several systems are paired.

    Resamples are evaluated CHUNK at a time: a statistic sees weights [<=CHUNK, n] only.
    """

    counts: np.ndarray  # [n_boot, n_clusters]
    weigh: Weigh
    n: int
    level: float = LEVEL

    @classmethod
    def of_clusters(cls, clusters: np.ndarray | None, n: int, n_boot: int,
                    rng: np.random.Generator, level: float = LEVEL) -> Resampler:
        """Resample clusters (an integer id per observation; None: the observations)."""
        ids = np.arange(n) if clusters is None else np.unique(clusters, return_inverse=True)[1]
        counts = cluster_counts(int(ids.max()) + 1, n_boot, rng)
        return cls(counts, lambda c: c[:, ids], n, level)

    @classmethod
    def of_trials(cls, enroll: np.ndarray, test: np.ndarray, n_boot: int,
                  rng: np.random.Generator, level: float = LEVEL) -> Resampler:
        """Resample the speakers of verification trials (`enroll`/`test`: speaker labels)."""
        codes = np.unique(np.concatenate([enroll, test]), return_inverse=True)[1]
        e, t = codes[:len(enroll)], codes[len(enroll):]
        counts = cluster_counts(int(codes.max()) + 1, n_boot, rng)
        return cls(counts, lambda c: trial_weights(e, t, c), len(enroll), level)

    def samples(self, stat: Statistic) -> np.ndarray:
        return np.concatenate([np.asarray(stat(self.weigh(self.counts[i:i + CHUNK])), float)
                               for i in range(0, len(self.counts), CHUNK)])

    def interval(self, stat: Statistic) -> Interval:
        value = float(stat(np.ones((1, self.n)))[0])
        return percentile(self.samples(stat), value, self.level)

    def difference(self, stat_a: Statistic, stat_b: Statistic) -> Interval:
        """The interval of stat_b - stat_a, both on the same resamples."""
        return self.interval(lambda w: stat_b(w) - stat_a(w))


def bootstrap(stat: Statistic, n: int, clusters: np.ndarray | None, n_boot: int,
              rng: np.random.Generator, level: float = LEVEL) -> Interval:
    """The interval of `stat` under a cluster bootstrap of n observations (clusters: an
    integer id per observation; None resamples observations themselves)."""
    return Resampler.of_clusters(clusters, n, n_boot, rng, level).interval(stat)


def paired(stat_a: Statistic, stat_b: Statistic, n: int, clusters: np.ndarray | None,
           n_boot: int, rng: np.random.Generator, level: float = LEVEL) -> Interval:
    """The interval of stat_b - stat_a, both computed on the same resamples."""
    return Resampler.of_clusters(clusters, n, n_boot, rng, level).difference(stat_a, stat_b)


def eer_stat(scores: np.ndarray, labels: np.ndarray) -> Statistic:
    """Weighted EER in percent, as the tables report it."""
    return lambda w: 100.0 * weighted_eer(scores, labels, w)


def min_dcf_stat(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01) -> Statistic:
    """Weighted normalised minDCF (c_miss = c_fa = 1), as metrics.min_dcf."""
    st = SortedTrials.of(scores, labels)
    return lambda w: _min_dcf(*st.curves(w), p_target)


def verification_stat(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01) -> Statistic:
    """EER (percent) and minDCF together, [rows, 2], from one pass over the sorted trials."""
    st = SortedTrials.of(scores, labels)

    def stat(w: np.ndarray) -> np.ndarray:
        far, frr = st.curves(w)
        return np.stack([100.0 * _crossing(far, frr), _min_dcf(far, frr, p_target)], axis=1)

    return stat


def weighted_mean(x: np.ndarray) -> Statistic:
    x = np.asarray(x, dtype=np.float64)
    return lambda w: (w @ x) / w.sum(axis=1)


def weighted_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Statistic:
    """Macro F1 with per-observation weights, averaged over the classes present (predicted or
    true) in each resample, as metrics.classification_metrics does (2PR/(P+R) = 2TP/(pred+true))."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    hit = (y_true == y_pred)

    def stat(w: np.ndarray) -> np.ndarray:
        f1 = np.zeros((len(w), n_classes))
        present = np.zeros((len(w), n_classes), dtype=bool)
        for c in range(n_classes):
            tp = w @ (hit & (y_true == c))
            denom = w @ (y_pred == c) + w @ (y_true == c)
            present[:, c] = denom > 0
            f1[:, c] = 2 * tp / np.where(denom > 0, denom, 1.0)
        return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)

    return stat
