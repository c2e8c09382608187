"""Other hardware-friendly softmax forms from the literature, beside the PWL paper's methods.

Each turns attention logits e [..., T] into non-negative weights over the last axis:

  ibert    I-BERT (Kim et al., 2021): z = e - max e = -q ln2 + r with q = floor(-z / ln2) and
           r in (-ln2, 0]; exp(r) ~ A (r + B)^2 + C (a second-order polynomial fitted on
           [-ln2, 0]) and exp(z) = exp(r) * 2^-q, a shift in integer arithmetic. Normalised.
  base2    Softermax-style (Stevens et al., 2021): 2^u with u = scale * (e - max e); the integer
           part n of u is a shift and the fraction f is linear, 2^u ~ 2^n (1 + f) (exact at
           integers, continuous between). scale = log2(e) approximates exp itself; Softermax
           trains with scale 1 (a plain base change). Normalised.
  consmax  ConSmax (Liu et al., 2024): exp(e - beta) / gamma with learnable constants in place
           of the running max and the normaliser, so neither reduction is computed. The exp
           stays; the weights do not sum to one exactly. Pooling over utterances of any length
           needs the normaliser to scale with length, so here gamma is per frame: the weights
           are exp(e - beta) / (gamma T). beta and gamma start from the observed logits
           (`fit_consmax`); at inference they are one constant, beta + ln gamma.

These modules compute each form's arithmetic in float32 (what its integer kernel would compute,
up to rounding); they export to ONNX with standard ops (ReduceMax, Floor, Pow, Mul, Add, Exp).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

LN2 = math.log(2.0)
LOG2E = 1.0 / LN2
# I-BERT's fit of exp(r) on r in [-ln2, 0] (Kim et al., 2021, Algorithm 2): a (r + b)^2 + c.
IBERT_A, IBERT_B, IBERT_C = 0.3585, 1.353, 0.344
# Largest shift: weights below 2^-30 of the frame with the largest logit are treated as 2^-30.
MAX_SHIFT = 30.0
EXP_FREE_METHODS = ("ibert", "base2", "consmax")


def _normalise(g: torch.Tensor) -> torch.Tensor:
    return g / g.sum(dim=-1, keepdim=True)


class IBertSoftmax(nn.Module):
    """I-BERT's polynomial exp with base-2 range reduction, normalised."""

    defer_normalisation = True

    def unnormalised(self, e: torch.Tensor) -> torch.Tensor:
        z = torch.clamp(e - e.amax(dim=-1, keepdim=True), min=-MAX_SHIFT * LN2)
        q = torch.floor(z * -LOG2E)
        r = z + q * LN2
        return (IBERT_A * (r + IBERT_B) ** 2 + IBERT_C) * torch.pow(2.0, -q)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return _normalise(self.unnormalised(e))


class Base2Softmax(nn.Module):
    """A shift-and-linear base-2 exponential (Softermax-style), normalised."""

    defer_normalisation = True

    def __init__(self, scale: float = LOG2E) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"base2 scale must be > 0 (got {scale})")
        self.scale = float(scale)

    def unnormalised(self, e: torch.Tensor) -> torch.Tensor:
        u = torch.clamp((e - e.amax(dim=-1, keepdim=True)) * self.scale, min=-MAX_SHIFT)
        n = torch.floor(u)
        return (u - n + 1.0) * torch.pow(2.0, n)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return _normalise(self.unnormalised(e))

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"


class ConSmax(nn.Module):
    """exp(e - beta) / (gamma T): learnable constants instead of the max and the sum."""

    defer_normalisation = False

    def __init__(self, beta: float, gamma: float) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"consmax gamma must be > 0 (got {gamma})")
        self.beta = nn.Parameter(torch.tensor(float(beta)))
        self.log_gamma = nn.Parameter(torch.tensor(math.log(gamma)))  # gamma > 0 while training

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return torch.exp(e - (self.beta + self.log_gamma)) * (1.0 / e.shape[-1])

    def constants(self) -> dict[str, float]:
        return {"beta": float(self.beta.detach()), "gamma": float(self.log_gamma.detach().exp())}

    def trained_params(self) -> dict[str, float]:
        return self.constants()

    def extra_repr(self) -> str:
        c = self.constants()
        return f"beta={c['beta']:.4g}, gamma={c['gamma']:.4g}"


def make(method: str, params: Mapping[str, Any]) -> nn.Module:
    if method == "ibert":
        return IBertSoftmax()
    if method == "base2":
        return Base2Softmax(float(params.get("scale", LOG2E)))
    if method == "consmax":
        return ConSmax(float(params["beta"]), float(params["gamma"]))
    raise ValueError(f"not an exp-free method: {method!r}")


# --------------------------------------------------------------------------- numpy references


def approx_exp_np(method: str, z: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """The form's approximation of exp(z) for z <= 0 (ibert, base2 with its scale read as
    base change: 2^(scale z) against exp(scale z ln2))."""
    z = np.asarray(z, dtype=np.float64)
    if method == "ibert":
        zc = np.maximum(z, -MAX_SHIFT * LN2)
        q = np.floor(-zc * LOG2E)
        r = zc + q * LN2
        return (IBERT_A * (r + IBERT_B) ** 2 + IBERT_C) * 2.0 ** -q
    if method == "base2":
        u = np.maximum(z * float(params.get("scale", LOG2E)), -MAX_SHIFT)
        n = np.floor(u)
        return (u - n + 1.0) * 2.0 ** n
    raise ValueError(f"{method!r} does not approximate exp")


def weights_np(columns: np.ndarray, method: str, params: Mapping[str, Any]) -> np.ndarray:
    """Each form's weights over the rows of `columns` [N, T] (consmax: not normalised)."""
    if method == "consmax":
        g = np.exp(columns - float(params["beta"]))
        return g / (float(params["gamma"]) * columns.shape[1])
    g = approx_exp_np(method, columns - columns.max(axis=1, keepdims=True), params)
    return g / g.sum(axis=1, keepdims=True)


def exp_target(method: str, z: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """What `approx_exp_np` approximates: exp(z), or for base2 at scale s, 2^(s z) exactly."""
    if method == "base2":
        return 2.0 ** (np.asarray(z, dtype=np.float64) * float(params.get("scale", LOG2E)))
    return np.exp(z)


def fit_consmax(columns: np.ndarray) -> dict[str, float]:
    """beta and gamma of ConSmax from observed logit rows [N, T]: beta the median row maximum,
    gamma the median per-frame mean of exp(e - beta), so a typical row's weights sum to ~1."""
    beta = float(np.median(columns.max(axis=1)))
    gamma = float(np.median(np.exp(columns - beta).mean(axis=1)))
    return {"beta": beta, "gamma": max(gamma, 1e-12)}
