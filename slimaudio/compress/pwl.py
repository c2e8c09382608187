"""Piecewise-linear replacements for the exp() of the attention softmax (Park, Ahn, Kim).

Every method turns attention logits e [..., T] into non-negative weights over the last axis
and normalises them to sum to one:

  clip      g = max(e, floor)                                 (no exp, no max subtraction)
  pwl (k)   g = max(f(e - max_t e), floor),  f a continuous k-segment linear approximation
            of exp on z = e - max <= 0
  learnable the same f with trainable coefficients (continuity holds by construction)

f is held in hinge form, continuous for any coefficients:
    f(z) = c0 + s0 * z + sum_j d_j * relu(z - t_j)          (k - 1 breakpoints t_j)
Normalisation makes the weights invariant to a positive scale of g, so the static modules
divide everything by s0 and skip that multiply. When every d_j >= 0 (f convex, as fits of
exp are) f is the maximum of its segment lines, which costs one subtract, one multiply and
one maximum per extra segment: no lookup table, no gather, only Sub/Mul/Max/Clip/ReduceMax/
ReduceSum in ONNX.

Inside attentive pooling the static modules defer the division by sum(g) until after the
pooling sums (see slimaudio.models.ecapa.AttentiveStatsPool): one division per channel
instead of one per frame. The 1-segment form is then ReduceMax, Sub, Clip (plus the
ReduceSum of the normalisation) in ONNX. (Folding the subtraction into the pooled sums,
max(e - c, floor) = max(e, c + floor) - c, saves one full-size op but needs six per-channel
corrections; measured slower in both torch and ONNX Runtime at the default sizes.)

Fitting (`fit_pwl`, `fit_clip`) works on the logits of a trained model: `fit_pwl` minimises
the squared error to exp(z) weighted by the observed density of z; `fit_clip` has no exp to
approximate, so its floor minimises the distance between its weights and the softmax weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from slimaudio.compress import exp_free
from slimaudio.models.ecapa import Softmax

METHODS = ("softmax", "clip", "pwl", "learnable", *exp_free.EXP_FREE_METHODS)


@dataclass(frozen=True)
class PwlCoeffs:
    """f(z) = c0 + s0*z + sum_j d[j]*relu(z - t[j]); weights g = max(f, floor)."""

    c0: float
    s0: float
    d: Sequence[float] = field(default_factory=tuple)
    t: Sequence[float] = field(default_factory=tuple)
    floor: float = 1e-3

    @property
    def segments(self) -> int:
        return len(self.t) + 1

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["d"], out["t"] = [float(v) for v in self.d], [float(v) for v in self.t]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PwlCoeffs:
        return cls(c0=float(d["c0"]), s0=float(d["s0"]), d=tuple(float(v) for v in d["d"]),
                   t=tuple(float(v) for v in d["t"]), floor=float(d["floor"]))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Unclipped f on numpy inputs."""
        z = np.asarray(z, dtype=np.float64)
        out = self.c0 + self.s0 * z
        for dj, tj in zip(self.d, self.t, strict=True):
            out = out + dj * np.maximum(z - tj, 0.0)
        return out

    def clipped(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(self(z), self.floor)

    def lines(self) -> list[tuple[float, float]]:
        """(slope, intercept) of each segment, left to right (breakpoints sorted)."""
        order = np.argsort(self.t)
        slope, icpt = self.s0, self.c0
        out = [(slope, icpt)]
        for j in order:
            slope += self.d[j]
            icpt -= self.d[j] * self.t[j]
            out.append((slope, icpt))
        return out


# --------------------------------------------------------------------------- modules


def _inplace_ok() -> bool:
    """In-place updates of fresh intermediates save allocations and passes in eager torch;
    they are only used where no autograd graph is recorded (inference, ONNX tracing)."""
    return not torch.is_grad_enabled()


def _normalise(g: torch.Tensor) -> torch.Tensor:
    if _inplace_ok():  # one reciprocal per row, then one multiply per element
        return g.mul_(g.sum(dim=-1, keepdim=True).reciprocal_())
    return g / g.sum(dim=-1, keepdim=True)


class ClipSoftmax(nn.Module):
    """Method 1: the raw logits floored at `floor` (> 0), then normalised."""

    defer_normalisation = True

    def __init__(self, floor: float) -> None:
        super().__init__()
        if not floor > 0:
            raise ValueError(f"clip floor must be > 0 (got {floor})")
        self.floor = float(floor)

    def unnormalised(self, e: torch.Tensor) -> torch.Tensor:
        return torch.clamp(e, min=self.floor)  # a fresh tensor: _normalise may reuse it

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return _normalise(self.unnormalised(e))

    def extra_repr(self) -> str:
        return f"floor={self.floor:.4g}"


class PwlSoftmax(nn.Module):
    """Methods 2-4: a fitted continuous k-segment approximation of exp, clipped, normalised."""

    defer_normalisation = True

    def __init__(self, coeffs: PwlCoeffs) -> None:
        super().__init__()
        if not coeffs.floor > 0:
            raise ValueError(f"pwl floor must be > 0 (got {coeffs.floor})")
        self.coeffs = coeffs
        # Everything is divided by s0 (weights are scale-invariant after normalisation); the
        # max-of-lines form needs f convex and increasing on its first segment.
        self.convex = coeffs.s0 > 0 and all(v >= 0 for v in coeffs.d)
        s0 = coeffs.s0 if self.convex else 1.0
        self.floor = coeffs.floor / s0
        if self.convex:
            lines = [(a / s0, b / s0) for a, b in coeffs.lines()]
            # line j: a_j * (z + b_j / a_j): one Sub (folded with the max) and one Mul.
            self.shifts = [b / a for a, b in lines]
            self.slopes = [a for a, _ in lines]
        else:
            self.c0, self.s0 = coeffs.c0, coeffs.s0
            self.d = list(coeffs.d)
            self.t = list(coeffs.t)
        self.single = self.convex and coeffs.segments == 1

    def unnormalised(self, e: torch.Tensor) -> torch.Tensor:
        if self.single and _inplace_ok():  # the hot path of pwl1: 4 kernels, 1 allocation
            return torch.sub(e, e.amax(dim=-1, keepdim=True).sub_(self.shifts[0])).clamp_min_(
                self.floor)
        m = e.amax(dim=-1, keepdim=True)
        if not self.convex:
            z = e - m
            f = z * self.s0 + self.c0
            for dj, tj in zip(self.d, self.t, strict=True):
                f = f + dj * torch.relu(z - tj)
            return torch.clamp(f, min=self.floor)
        if _inplace_ok():  # same ops, without extra allocations
            lines = list(zip(self.slopes[1:], self.shifts[1:], strict=True))
            # first line: slope 1 after the rescale; its offset folds into the per-row max
            g = torch.sub(e, m - self.shifts[0] if lines else m.sub_(self.shifts[0]))
            for a, b in lines:
                g.clamp_min_(torch.sub(e, m - b).mul_(a))  # in-place maximum
            return g.clamp_min_(self.floor)
        g = e - (m - self.shifts[0])
        for a, b in zip(self.slopes[1:], self.shifts[1:], strict=True):
            g = torch.maximum(g, (e - (m - b)) * a)
        return torch.clamp(g, min=self.floor)

    @property
    def segments(self) -> int:
        return self.coeffs.segments

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return _normalise(self.unnormalised(e))

    def extra_repr(self) -> str:
        return f"segments={self.segments}, convex={self.convex}, floor={self.coeffs.floor:.3g}"


class LearnablePwlSoftmax(nn.Module):
    """Method 5: the hinge-form coefficients are parameters; continuity holds for any values.

    The floor (the paper's clipping) stays fixed. `to_static()` gives the cheap inference form.
    """

    def __init__(self, coeffs: PwlCoeffs) -> None:
        super().__init__()
        if not coeffs.floor > 0:
            raise ValueError(f"pwl floor must be > 0 (got {coeffs.floor})")
        self.floor = float(coeffs.floor)
        self.c0 = nn.Parameter(torch.tensor(float(coeffs.c0)))
        self.s0 = nn.Parameter(torch.tensor(float(coeffs.s0)))
        self.d = nn.Parameter(torch.tensor([float(v) for v in coeffs.d], dtype=torch.float32))
        self.t = nn.Parameter(torch.tensor([float(v) for v in coeffs.t], dtype=torch.float32))

    def approx(self, z: torch.Tensor) -> torch.Tensor:
        """The unclipped f(z)."""
        f = self.c0 + self.s0 * z
        if self.t.numel():
            f = f + (self.d * torch.relu(z.unsqueeze(-1) - self.t)).sum(-1)
        return f

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        z = e - e.amax(dim=-1, keepdim=True)
        return _normalise(torch.clamp(self.approx(z), min=self.floor))

    def coeffs(self) -> PwlCoeffs:
        return PwlCoeffs(c0=float(self.c0.detach()), s0=float(self.s0.detach()),
                         d=tuple(self.d.detach().tolist()), t=tuple(self.t.detach().tolist()),
                         floor=self.floor)

    def to_static(self) -> PwlSoftmax:
        return PwlSoftmax(self.coeffs())

    def trained_params(self) -> dict[str, Any]:
        return self.coeffs().as_dict()


def make_softmax(method: str, params: Mapping[str, Any] | None = None) -> nn.Module:
    """A normaliser by name: softmax, clip {floor}, pwl {coeffs}, learnable {coeffs}, and
    the forms of slimaudio.compress.exp_free: ibert, base2 {scale}, consmax {beta, gamma}."""
    params = params or {}
    if method == "softmax":
        return Softmax()
    if method == "clip":
        return ClipSoftmax(float(params["floor"]))
    if method == "pwl":
        return PwlSoftmax(PwlCoeffs.from_dict(params))
    if method == "learnable":
        return LearnablePwlSoftmax(PwlCoeffs.from_dict(params))
    if method in exp_free.EXP_FREE_METHODS:
        return exp_free.make(method, params)
    raise ValueError(f"unknown softmax method {method!r} (known: {', '.join(METHODS)})")


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class LogitHistogram:
    """Density of z = e - max_t e (and of raw e) observed on training data."""

    z_edges: np.ndarray
    z_counts: np.ndarray
    e_edges: np.ndarray
    e_counts: np.ndarray

    @property
    def z_centres(self) -> np.ndarray:
        return 0.5 * (self.z_edges[1:] + self.z_edges[:-1])


def histogram(columns: np.ndarray, bins: int = 200) -> LogitHistogram:
    """columns: [N, T] attention logits, one row per (utterance, channel)."""
    z = columns - columns.max(axis=1, keepdims=True)
    lo = float(np.quantile(z, 0.001))
    z_counts, z_edges = np.histogram(z, bins=bins, range=(min(lo, -1e-3), 0.0))
    e_counts, e_edges = np.histogram(columns, bins=bins)
    return LogitHistogram(z_edges, z_counts.astype(np.float64), e_edges, e_counts.astype(np.float64))


def uniform_histogram(lo: float = -8.0, hi: float = 0.0, bins: int = 200) -> LogitHistogram:
    """A flat density of z on [lo, hi]: what a reader of the paper fits to without the
    model's logits (exp approximated evenly over a fixed interval)."""
    if not lo < hi <= 0.0:
        raise ValueError(f"need lo < hi <= 0, got [{lo}, {hi}]")
    edges = np.linspace(lo, hi, bins + 1)
    flat = np.ones(bins, dtype=np.float64)
    return LogitHistogram(edges, flat, edges.copy(), flat.copy())


def _design(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    cols = [np.ones_like(z), z] + [np.maximum(z - tj, 0.0) for tj in t]
    return np.stack(cols, axis=1)


def _weighted_quantiles(z: np.ndarray, w: np.ndarray, qs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(w) / w.sum()
    return np.interp(qs, cdf, z)


def fit_pwl(hist: LogitHistogram, segments: int, min_floor: float = 1e-4) -> PwlCoeffs:
    """Continuous `segments`-piece fit of exp(z), clipped at a fitted floor.

    Minimises sum_i w_i (max(f(z_i), floor) - exp(z_i))^2 over histogram bin centres z_i with
    weights w_i = bin counts, jointly over all coefficients, breakpoints and the floor, with
    bounds d >= 0 (exp is convex), s0 > 0 and floor >= min_floor. Several starts (breakpoints
    at quantiles of the density, of the density times exp(z), and evenly spread); the
    initial linear coefficients come from weighted least squares; the best result is kept.
    """
    from scipy.optimize import least_squares

    if segments < 1:
        raise ValueError("segments must be >= 1")
    z, w = hist.z_centres, hist.z_counts
    keep = w > 0
    z, w = z[keep], w[keep] / w[keep].sum()
    target = np.exp(z)
    sw = np.sqrt(w)
    k = segments - 1
    zmin = float(z.min())

    def unpack(p: np.ndarray) -> PwlCoeffs:
        return PwlCoeffs(c0=p[0], s0=p[1], d=tuple(p[2:2 + k]), t=tuple(p[2 + k:2 + 2 * k]),
                         floor=p[-1])

    def resid(p: np.ndarray) -> np.ndarray:
        return sw * (unpack(p).clipped(z) - target)

    lb = np.concatenate([[-np.inf, 1e-6], np.zeros(k), np.full(k, zmin), [min_floor]])
    ub = np.concatenate([[np.inf, np.inf], np.full(k, np.inf), np.zeros(k), [1.0]])
    qs = (np.arange(1, k + 1) / (k + 1))
    starts = [np.linspace(max(zmin, -6.0), 0.0, k + 2)[1:-1],
              _weighted_quantiles(z, w, qs), _weighted_quantiles(z, w * target, qs)]
    best, best_cost = None, np.inf
    for t0 in starts:
        t0 = np.sort(np.clip(t0, zmin, 0.0))
        a = _design(z, t0)
        active = target > min_floor
        coef, *_ = np.linalg.lstsq((a * sw[:, None])[active], (target * sw)[active], rcond=None)
        coef[1] = max(coef[1], 1e-3)
        coef[2:] = np.maximum(coef[2:], 0.0)
        floor0 = max(min_floor, float(np.exp(max(zmin, -6.0))))
        p0 = np.clip(np.concatenate([coef, t0, [floor0]]), lb + 1e-9, ub - 1e-9)
        res = least_squares(resid, p0, bounds=(lb, ub), method="trf", x_scale="jac",
                            max_nfev=600)
        if res.cost < best_cost:
            best, best_cost = unpack(res.x), res.cost
    assert best is not None
    order = np.argsort(best.t)
    return PwlCoeffs(c0=float(best.c0), s0=float(best.s0),
                     d=tuple(float(best.d[i]) for i in order),
                     t=tuple(float(best.t[i]) for i in order), floor=float(best.floor))


def softmax_np(columns: np.ndarray) -> np.ndarray:
    z = columns - columns.max(axis=1, keepdims=True)
    ex = np.exp(z)
    return ex / ex.sum(axis=1, keepdims=True)


def weights_np(columns: np.ndarray, method: str, params: Mapping[str, Any]) -> np.ndarray:
    """Numpy reference of every method's normalised weights (for fitting and diagnostics)."""
    if method == "softmax":
        return softmax_np(columns)
    if method in exp_free.EXP_FREE_METHODS:
        return exp_free.weights_np(columns, method, params)
    if method == "clip":
        g = np.maximum(columns, float(params["floor"]))
    else:
        c = PwlCoeffs.from_dict(params)
        g = c.clipped(columns - columns.max(axis=1, keepdims=True))
    return g / g.sum(axis=1, keepdims=True)


def total_variation(columns: np.ndarray, method: str, params: Mapping[str, Any]) -> float:
    """Mean over columns of the total-variation distance to the softmax weights (0..1)."""
    ref = softmax_np(columns)
    return float(0.5 * np.abs(weights_np(columns, method, params) - ref).sum(axis=1).mean())


def fit_clip(columns: np.ndarray, min_floor: float = 1e-4) -> float:
    """The floor of `clip` minimising the mean total-variation distance to softmax weights."""
    from scipy.optimize import minimize_scalar

    pos = columns[columns > 0]
    hi = float(np.quantile(pos, 0.99)) if pos.size else 1.0
    grid = np.geomspace(min_floor, max(hi, 10 * min_floor), 40)
    tv = [total_variation(columns, "clip", {"floor": f}) for f in grid]
    i = int(np.argmin(tv))
    lo_b, hi_b = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
    if hi_b - lo_b < 1e-9:
        return float(grid[i])
    res = minimize_scalar(lambda lf: total_variation(columns, "clip", {"floor": math.exp(lf)}),
                          bounds=(lo_b, hi_b), method="bounded", options={"xatol": 1e-3})
    best = math.exp(res.x) if res.fun <= tv[i] else float(grid[i])
    return float(best)


def exp_mse(hist: LogitHistogram, coeffs: PwlCoeffs) -> float:
    """Density-weighted mean squared error of the clipped approximation to exp(z)."""
    z, w = hist.z_centres, hist.z_counts
    return float(np.sum(w * (coeffs.clipped(z) - np.exp(z)) ** 2) / max(w.sum(), 1.0))
