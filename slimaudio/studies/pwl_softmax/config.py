"""The study's typed configuration, built once from params sections `pwl_fit` and `pwl_softmax`.

No defaults here: every value comes from params.yaml (defaults live in conf/config.yaml only;
the schemas in slimaudio/schemas/pwl_softmax.py validate them, and tests/test_pwl_study.py checks that
these fields and the schema keys agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slimaudio.errors import ParamError

# Seeds derived from base.seed. Fixed values: changing one changes every number it feeds.
LOGIT_CROPS_SEED_OFFSET = 7   # pwl_fit: the clean training crops whose attention logits are fitted
FT_CACHE_SEED_OFFSET = 1      # pwl_softmax: the noisy training crops of the frozen-trunk cache


@dataclass(frozen=True)
class FitConfig:
    """Section `pwl_fit`: fitting clip and every pwl<k> to the baseline's attention logits."""

    crops: int
    crop_s: float
    max_columns: int
    bins: int
    segments: tuple[int, ...]
    min_floor: float
    uniform_range: tuple[float, float]

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> FitConfig:
        return cls(crops=int(section["crops"]), crop_s=float(section["crop_s"]),
                   max_columns=int(section["max_columns"]), bins=int(section["bins"]),
                   segments=tuple(int(k) for k in section["segments"]),
                   min_floor=float(section["min_floor"]),
                   uniform_range=_range(section["uniform_range"]))


def _range(v: Any) -> tuple[float, float]:
    lo, hi = (float(x) for x in v)
    if not lo < hi:
        raise ParamError(f"params: pwl_fit.uniform_range must be [lo, hi] with lo < hi, got {v}")
    return lo, hi


@dataclass(frozen=True)
class FtConfig:
    """Section `pwl_softmax.ft`: fine-tuning, identical for every method and the control."""

    scope: str            # head | all
    steps: int
    batch_size: int
    lr: float
    lr_min: float
    cache_crops: int
    replicates: int

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> FtConfig:
        return cls(scope=str(section["scope"]), steps=int(section["steps"]),
                   batch_size=int(section["batch_size"]), lr=float(section["lr"]),
                   lr_min=float(section["lr_min"]), cache_crops=int(section["cache_crops"]),
                   replicates=int(section["replicates"]))


@dataclass(frozen=True)
class LatencyConfig:
    """Section `pwl_softmax.latency`: batch-1 timing of the normalisers and whole models."""

    frames: int
    warmup: int
    repeats: int
    softmax_repeats: int

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> LatencyConfig:
        return cls(frames=int(section["frames"]), warmup=int(section["warmup"]),
                   repeats=int(section["repeats"]), softmax_repeats=int(section["softmax_repeats"]))


@dataclass(frozen=True)
class StudyConfig:
    """Section `pwl_softmax`."""

    learnable_segments: int
    learnable_lr_mult: float
    overrides: Mapping[str, Any]   # {method: {c0|s0|d|t|floor: value}}; checked by build_variants
    bench: tuple[str, ...]         # exp-free forms measured beside the paper's (variants.BENCH)
    ft: FtConfig
    latency: LatencyConfig

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> StudyConfig:
        return cls(learnable_segments=int(section["learnable_segments"]),
                   learnable_lr_mult=float(section["learnable_lr_mult"]),
                   overrides=dict(section["overrides"] or {}),
                   bench=tuple(str(m) for m in section["bench"] or ()),
                   ft=FtConfig.from_params(section["ft"]),
                   latency=LatencyConfig.from_params(section["latency"]))
