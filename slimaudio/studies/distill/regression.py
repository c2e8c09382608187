"""Linear regression of a target (quality, latency, size) on standardised hyperparameters.

Like FRILL's analysis: each hyperparameter column is z-scored over the students, so a weight
is the target's change for a one-standard-deviation change of that hyperparameter, in the
target's own units, and weights are comparable across hyperparameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fit:
    names: list[str]
    weights: np.ndarray       # per standardised column (0 for a constant column)
    intercept: float          # the target's mean
    r2: float
    dof: int                  # residual degrees of freedom (<= 0: the fit is exact, not tested)


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-scored columns and a mask of the non-constant ones (constant columns become 0)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    varies = sd > 1e-12
    z = np.zeros_like(x)
    z[:, varies] = (x[:, varies] - x[:, varies].mean(axis=0)) / sd[varies]
    return z, varies


def fit(x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> Fit:
    """Least squares with an intercept on standardised columns (minimum-norm if singular)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size or x.shape[1] != len(names):
        raise ValueError("x must be [n, len(names)] with one target per row")
    z, varies = standardise(x)
    cols = z[:, varies]
    design = np.column_stack([np.ones(len(y)), cols])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    w = np.zeros(x.shape[1])
    w[varies] = coef[1:]
    resid = y - design @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    dof = len(y) - design.shape[1]
    return Fit(list(names), w, float(coef[0]), r2, dof)
