"""Intervals of every variant's F1 and accuracy, and of its difference from `basic`.

Test frames are not independent: the frames of one clip share its recording, its background
and its loudness, so a model that misreads a clip tends to misread all its frames. The
bootstrap therefore resamples clips (or source recordings, where the manifest names them),
and one Resampler, built once for the study, scores every variant on the same resamples:
the ΔF1 of a variant and `basic` is paired, free of the clip-to-clip variance they share.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from slimaudio import runtime, stats
from slimaudio.datasets.sounds import SoundFrames
from slimaudio.schemas.base import Bootstrap

REFERENCE = "basic"     # every difference and ratio is relative to this variant
QUALITIES = ("f1", "accuracy")
RATIO = "f1_ratio"      # F1 / basic's F1, paired: the collapse rule reads it
# The manifest column of the unit that makes frames dependent, best first: a source recording
# (clips cut from one recording share it) when the manifest names it, else the clip.
CLUSTER_COLUMNS = ("group", "clip_id")


def interval_columns() -> list[str]:
    """Every column `quality_intervals` writes, in table order."""
    cols = []
    for q in QUALITIES:
        cols += [*stats.column_names(q)[1:], *stats.column_names(f"delta_{q}")]
    return [*cols, *stats.column_names(RATIO)]


def cluster_ids(data: SoundFrames, split: str = "test") -> tuple[np.ndarray, str]:
    """The cluster of each frame of `split` (in `data.split` order) and the column it is read
    from."""
    m = data.manifest.iloc[data.indices(split)]
    col = next(c for c in CLUSTER_COLUMNS if c in m.columns)
    return m[col].astype(str).to_numpy(), col


def resampler(clusters: np.ndarray, cfg: Bootstrap, seed: int) -> stats.Resampler:
    """The study's one set of clip resamples (stream `bootstrap`): every interval is paired."""
    return stats.Resampler.of_clusters(clusters, len(clusters), cfg.resamples,
                                       runtime.rng(seed, "bootstrap"), cfg.level)


def quality_stats(pred: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, stats.Statistic]:
    """Macro F1 and accuracy of one variant's predicted labels, as weighted statistics."""
    pred, y = np.asarray(pred), np.asarray(y)
    return {"f1": stats.weighted_macro_f1(y, pred, n_classes),
            "accuracy": stats.weighted_mean((pred == y).astype(np.float64))}


def _row(s: Mapping[str, stats.Statistic], ref: Mapping[str, stats.Statistic],
         res: stats.Resampler) -> dict[str, float]:
    out: dict[str, float] = {}
    for q in QUALITIES:
        own, delta = res.interval(s[q]), res.difference(ref[q], s[q])
        out.update(stats.columns(q, own) | stats.columns(f"delta_{q}", delta))
    f1, f1_ref = s["f1"], ref["f1"]
    ratio = res.interval(lambda w: f1(w) / np.where(f1_ref(w) > 0, f1_ref(w), np.nan))
    out.update(stats.columns(RATIO, ratio))
    return out


def quality_intervals(preds: Mapping[str, np.ndarray], y: np.ndarray, n_classes: int,
                      res: stats.Resampler, reference: str = REFERENCE) -> pd.DataFrame:
    """One row per variant (index: its name): F1 and accuracy with their intervals, their
    paired differences from `reference` and F1 relative to it (`f1_ratio`).

    `preds` are predicted labels per variant, all on the frames `res` resamples."""
    if reference not in preds:
        raise ValueError(f"no predictions of the reference variant {reference!r}")
    st = {v: quality_stats(p, y, n_classes) for v, p in preds.items()}
    rows = {v: _row(s, st[reference], res) for v, s in st.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[[*QUALITIES, *interval_columns()]]
