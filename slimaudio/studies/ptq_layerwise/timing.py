"""Latency of every row and ablation variant, and ORT's per-operator profile.

Latency: slimaudio.latency, batch 1, `latency.frames` frames, base.threads threads, every
model interleaved, bursts keeping the fastest call, rounds over base.latency.processes workers. The profile shows where the time goes in the float and
the INT8 graphs (and whether any float Conv kernel is left behind a DequantizeLinear).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.latency import Latency, OnnxFactory, Timing, measure_factories

PROFILE_COLUMNS = ["model", "op_type", "ms_per_run", "count_per_run", "share"]
FLOAT_KERNELS = ("Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul")


def measure_latency(models: Mapping[str, Path], configs: Mapping[str, Mapping[str, str]],
                    feeds: Mapping[str, np.ndarray], timing: Timing, threads: int, seed: int
                    ) -> dict[str, Latency]:
    """Every model timed, interleaved; `configs`: ORT session config entries by model."""
    factories = {n: OnnxFactory(str(p), dict(feeds), threads, configs.get(n))
                 for n, p in models.items()}
    return measure_factories(factories, timing, threads, seed)


def profile_ops(models: Mapping[str, Path], configs: Mapping[str, Mapping[str, str]],
                feeds: Mapping[str, np.ndarray], runs: int, threads: int
                ) -> list[dict[str, Any]]:
    """One record per (model, op type), slowest first within a model (PROFILE_COLUMNS)."""
    profs = onnx_int8.op_profiles(models, feeds, runs=runs, threads=threads, configs=configs)
    profile: list[dict[str, Any]] = []
    for n, prof in profs.items():
        total = sum(v["ms"] for v in prof.values()) or 1.0
        for op, v in sorted(prof.items(), key=lambda kv: -kv[1]["ms"]):
            profile.append({"model": n, "op_type": op, "ms_per_run": v["ms"],
                            "count_per_run": v["count"], "share": v["ms"] / total})
    return profile


def float_convs(profile: Sequence[Mapping[str, Any]], model: str) -> float:
    """Conv/Gemm kernels still running in float in a model's profile (per run)."""
    return float(sum(p["count_per_run"] for p in profile
                     if p["model"] == model and p["op_type"] in FLOAT_KERNELS))
