"""Linear regression of a target (quality, latency, size) on standardised hyperparameters.

Like FRILL's analysis: each hyperparameter column is z-scored over the students, so a weight
is the target's change for a one-standard-deviation change of that hyperparameter, in the
target's own units, and weights are comparable across hyperparameters.

Uncertainty is ordinary least squares': the residual variance s^2 = RSS / dof (dof = students
- coefficients, the intercept included), each weight's standard error sqrt(s^2 (D'D)^-1_jj)
and a two-sided t interval with dof degrees of freedom. The residuals carry everything the
main effects leave out (probe sampling noise, training-seed noise, interactions), so the
intervals are only as good as dof is large: with dof <= 0 the fit is exact and no interval
exists (NaN). A hyperparameter that does not vary over the students (a factor the design
fixes) has no weight; an aliased design (rank-deficient) has no standard errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimaudio.stats import LEVEL

CONSTANT_SD = 1e-12  # a column with a smaller standard deviation does not vary


@dataclass(frozen=True)
class Fit:
    names: list[str]
    weights: np.ndarray       # per standardised column (NaN for a constant column)
    se: np.ndarray            # standard error of each weight (NaN: not estimable)
    lo: np.ndarray            # t interval of each weight at `level`
    hi: np.ndarray
    varies: np.ndarray        # bool: the column varies over the students (is in the fit)
    intercept: float          # the target's mean
    r2: float
    dof: int                  # residual degrees of freedom (<= 0: the fit is exact, not tested)
    level: float


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-scored columns and a mask of the non-constant ones (constant columns become 0)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    varies = sd > CONSTANT_SD
    z = np.zeros_like(x)
    z[:, varies] = (x[:, varies] - x[:, varies].mean(axis=0)) / sd[varies]
    return z, varies


def ols_se(design: np.ndarray, resid: np.ndarray) -> tuple[np.ndarray, int]:
    """Standard errors of every coefficient of a least-squares fit and the residual degrees
    of freedom: sqrt(diag(s^2 (D'D)^-1)), s^2 = RSS / (n - rank). NaN when dof <= 0 or the
    design is rank-deficient (aliased columns: the weights are not separately estimable)."""
    n, p = design.shape
    rank = int(np.linalg.matrix_rank(design))
    dof = n - rank
    if dof <= 0 or rank < p:
        return np.full(p, np.nan), dof
    s2 = float(resid @ resid) / dof
    return np.sqrt(s2 * np.diag(np.linalg.inv(design.T @ design))), dof


def t_quantile(dof: int, level: float) -> float:
    """The two-sided t critical value (NaN without degrees of freedom)."""
    if dof <= 0:
        return float("nan")
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def fit(x: np.ndarray, y: np.ndarray, names: Sequence[str], level: float = LEVEL) -> Fit:
    """Least squares with an intercept on standardised columns (minimum-norm if singular)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size or x.shape[1] != len(names):
        raise ValueError("x must be [n, len(names)] with one target per row")
    z, varies = standardise(x)
    design = np.column_stack([np.ones(len(y)), z[:, varies]])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    se, dof = ols_se(design, resid)
    half = t_quantile(dof, level) * se[1:]
    w, s, lo, hi = (np.full(x.shape[1], np.nan) for _ in range(4))
    w[varies], s[varies] = coef[1:], se[1:]
    lo[varies], hi[varies] = coef[1:] - half, coef[1:] + half
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return Fit(list(names), w, s, lo, hi, varies, float(coef[0]), r2, dof, level)
