"""Every variant of every study in one table and one figure: size, latency, relative quality."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from slimaudio.studies.base import ROW_COLUMNS

MARKERS = ("o", "s", "^", "D", "v", "P")


def collect(rows: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The studies' rows files, one after the other in the given order."""
    frames = [df for df in rows.values() if not df.empty]
    if not frames:
        return pd.DataFrame(columns=list(ROW_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(ROW_COLUMNS)]


def plot(points: pd.DataFrame, order: tuple[str, ...]):  # -> matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = dict(zip(order, MARKERS, strict=False))
    pts = points.dropna(subset=["size_mib", "latency_ms"])
    pts = pts[(pts.size_mib > 0) & (pts.latency_ms > 0)]
    sc = None
    for study, grp in pts.groupby("study"):
        sc = ax.scatter(grp.size_mib, grp.latency_ms, c=grp.relative_quality.clip(0, 1.2),
                        cmap="viridis", vmin=0, vmax=1.2, marker=markers.get(study, "o"),
                        s=55, edgecolors="k", linewidths=0.5, label=study)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size (MiB, log)")
    ax.set_ylabel("latency, batch 1, one thread (ms, median, log)")
    ax.set_title("Every variant of every study: size, latency and quality")
    ax.grid(True, which="both", alpha=0.3)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="quality relative to the study's reference (1 = same)")
        ax.legend(loc="best", fontsize=8)
    return fig
