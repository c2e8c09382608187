"""Sections `pwl_fit` and `pwl_softmax`: the piecewise-linear softmax study (fitting clip and
every pwl<k> to the baseline's attention logits, then fine-tuning and timing every method)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from slimaudio.spec import Each, param, section

# The exp-free softmax forms of slimaudio.compress.exp_free the study can measure beside the
# paper's methods: the choices of `bench` below, and what slimaudio.studies.pwl_softmax.variants
# builds.
BENCH = ("ibert", "base2", "consmax")


@dataclass(frozen=True)
class PwlFit:
    """Fitting clip and every pwl<k> to the baseline's attention logits."""

    crops: int = param("clean training crops whose attention logits are collected", lo=1)
    crop_s: float = param("length of each of those crops (s)", lo=0.2, hi=10.0)
    max_columns: int = param("(crop, channel) logit rows kept for fitting (a random subset)",
                             lo=100)
    bins: int = param("histogram bins of z = e - max e", lo=20, hi=5000)
    segments: tuple[int, ...] = param(
        "k of every fitted pwl<k>: must include 1 and 2 (the paper's); more extend the study "
        "(paper profile: + 8)", each=Each(lo=1, hi=32), min_len=2)
    min_floor: float = param("lower bound of fitted floors", lo=1e-8, hi=1.0)
    uniform_range: tuple[float, float] = param(
        "[lo, hi] (lo < hi) of z where pwl1_uniform / pwl2_uniform fit exp evenly, without the "
        "model's logits (a reader of the paper's fit)", each=Each(lo=-100.0, hi=0.0))


@dataclass(frozen=True)
class Ft:
    """Fine-tuning, identical for every method and the control."""

    scope: Literal["head", "all"] = param(
        "head: asp, bn_asp, fc, bn_fc and the AAM head train on cached frozen-trunk features; "
        "all: the whole model")
    steps: int = param("fine-tuning steps (identical for every method)", lo=0)
    batch_size: int = param("fine-tuning batch size (crops)", lo=2, hi=1024)
    lr: float = param("peak learning rate (cosine decay to lr_min, no warm-up)", lo=1e-7, hi=1.0)
    lr_min: float = param("learning rate at the last step", lo=0.0, hi=1.0)
    cache_crops: int = param("scope=head: noisy training crops cached once", lo=2)
    replicates: int = param(
        "fine-tunings per method (seeds base.seed + 0..n-1); n >= 2 adds the training seed's "
        "spread to the after-FT intervals, which resample them with the speakers (paper: 3)",
        lo=1, hi=100)


@dataclass(frozen=True)
class Latency:
    """Batch-1 timing of the normalisers alone and of the whole models."""

    frames: int = param("whole-model input length, batch 1 (300 frames = 3 s)", lo=10)
    warmup: int = param("untimed calls first", lo=1)
    repeats: int = param("timed rounds of the whole models (base.latency: a burst each)", lo=30)
    softmax_repeats: int = param("timed rounds of the softmax alone", lo=30)


@dataclass(frozen=True)
class PwlSoftmax:
    """EER before/after fine-tuning and speed of every softmax replacement."""

    learnable_segments: int = param(
        "segments k of `learnable`, initialised from pwl<k>'s fit (k in pwl_fit.segments)",
        lo=1, hi=32)
    learnable_lr_mult: float = param(
        "learning-rate multiplier of `learnable`'s PWL coefficients", lo=0.0, hi=1000.0)
    overrides: dict[str, Any] = param(
        "{method: {c0|s0|d|t|floor: value}} replacing fitted values, e.g. {pwl1: {floor: 0.01}} "
        "(base2: {scale}; consmax: {beta, gamma})")
    bench: tuple[Literal[BENCH], ...] = param(  # type: ignore[valid-type]
        "exp-free softmax forms measured beside the paper's methods: I-BERT's polynomial exp, "
        "a base-2 shift+linear exp, ConSmax ([] for none)")
    ft: Ft = param()
    latency: Latency = param()


section("pwl_fit", PwlFit, orders=[("uniform_range.0", "uniform_range.1", True)])
section("pwl_softmax", PwlSoftmax)
