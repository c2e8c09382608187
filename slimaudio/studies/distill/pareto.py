"""The quality-latency Pareto frontier (FRILL keeps the students no other student beats)."""

from __future__ import annotations

import numpy as np


def frontier(latency: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated points.

    A point is dominated when another is at least as fast and at least as good, and strictly
    better in one of the two. Exact duplicates do not dominate each other (both stay).
    """
    lat = np.asarray(latency, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if lat.shape != q.shape:
        raise ValueError("latency and quality differ in length")
    if not (np.isfinite(lat).all() and np.isfinite(q).all()):
        raise ValueError("latency and quality must be finite")
    no_worse = (lat[None, :] <= lat[:, None]) & (q[None, :] >= q[:, None])   # [i, j]: j vs i
    better = (lat[None, :] < lat[:, None]) | (q[None, :] > q[:, None])
    return ~(no_worse & better).any(axis=1)


def frontier_order(latency: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the frontier points sorted by latency (for drawing the staircase)."""
    mask = frontier(latency, quality)
    idx = np.flatnonzero(mask)
    return idx[np.argsort(np.asarray(latency)[idx], kind="mergesort")]
