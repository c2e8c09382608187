"""Section `ptq_layerwise`: the per-layer INT8 post-training quantization study.

The first seven fields (`PtqRecipe`) say how a model is calibrated, quantized and scored: all
that the studies reusing this study's recipe (pwl_int8, runtimes) read of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from slimaudio.spec import Each, param, section

# The variants of `all` with one setting changed, in one place: each names the quantization
# settings it changes (fields of slimaudio.compress.onnx_int8.QuantSettings) and the ORT
# session config entries it runs with. The params' choices below and the study
# (slimaudio.studies.ptq_layerwise.ablation) both read this mapping.
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "s8s8": {"settings": {"activation_type": "int8"}, "session": {}},
    # ORT on x86 rewrites int8 (S8S8) QDQ activations to uint8 unless this entry allows int8.
    "s8s8_native": {"settings": {"activation_type": "int8"},
                    "session": {"session.qdqisint8allowed": "1"}},
    "qoperator": {"settings": {"quant_format": "QOperator"}, "session": {}},
    "per_tensor": {"settings": {"per_channel": False}, "session": {}},
    "reduce_range": {"settings": {"reduce_range": True}, "session": {}},
    "full_range": {"settings": {"reduce_range": False}, "session": {}},
    "all_ops": {"settings": {"op_types": None}, "session": {}},
}
SPEED_VARIANTS = ("all", "paper_choice", "float16", "dynamic")


@dataclass(frozen=True)
class Calibration:
    utterances: int = param("train-split utterances used for calibration (never test data)",
                            lo=1, hi=100000)
    crop_frames: int = param("one random fixed-length crop per calibration utterance (frames)",
                             lo=20, hi=100000)
    method: Literal["MinMax", "Entropy", "Percentile"] = param(
        "ORT calibration method for activation ranges")
    percentile: float = param("Percentile method only: the kept percentile", lo=90.0, hi=100.0)


@dataclass(frozen=True)
class Eval:
    threads: int = param("ORT threads while scoring the trials (not latency)", lo=1, hi=64)
    max_frames: int | None = param("crop test utterances to their first N frames (null: whole)",
                                   lo=20)


@dataclass(frozen=True)
class ErrorAnalysis:
    utterances: int = param("test utterances (latency-length crops) for the per-group "
                            "activation error", lo=1, hi=10000)


@dataclass(frozen=True)
class Latency:
    frames: int = param("input length (300 frames = 3 s)", lo=20, hi=100000)
    warmup: int = param("untimed calls first", lo=0, hi=1000)
    repeats: int = param("timed rounds, a burst each (base.latency)", lo=30, hi=100000)


@dataclass(frozen=True)
class Speed:
    widths: tuple[int, ...] = param(
        "ECAPA-TDNN widths C timed (random weights of the paper's proportions, BN statistics "
        "from the calibration utterances; the paper's C=1024 in the paper profile)",
        each=Each(lo=8, hi=4096), min_len=1)
    seconds: tuple[float, ...] = param("input lengths timed at every width (s)",
                                       each=Each(lo=0.1, hi=600.0), min_len=1)
    variants: tuple[Literal[SPEED_VARIANTS], ...] = param(  # type: ignore[valid-type]
        "variants timed against the float model at every width and length")
    warmup: int = param("untimed calls first", lo=0, hi=1000)
    repeats: int = param("timed rounds in all (base.latency spreads them)", lo=30, hi=100000)
    runtimes: bool = param("the runtimes stage also times OpenVINO beside ORT at these widths "
                           "(paper profile; else at the trained width only)")


@dataclass(frozen=True)
class PtqRecipe:
    """How a model is calibrated, quantized and scored."""

    calibration: Calibration = param()
    activation_type: Literal["uint8", "int8"] = param(
        "8-bit activations: uint8 (U8S8, what ORT's x86 integer kernels run) or int8 (S8S8)")
    per_channel: bool = param("symmetric INT8 weights per output channel (else per tensor)")
    reduce_range: bool | Literal["auto"] = param(
        "7-bit weights: ORT's advice for x86 without VNNI, where the U8S8 kernels' 16-bit pair "
        "sums can saturate; auto: from the CPU flags (the reason goes to metrics.json)")
    quant_format: Literal["QDQ", "QOperator"] = param("ORT static quantization format")
    op_types: tuple[str, ...] | None = param(
        "ONNX op types quantized inside the chosen groups (null: every type ORT can quantize, "
        "Softmax, Mul, Sigmoid, BN and reductions included)", min_len=1)
    eval: Eval = param()


@dataclass(frozen=True)
class PtqLayerwise(PtqRecipe):
    """The whole section: the recipe, and what the study itself does with it."""

    groups: dict[str, str] | None = param(
        "layer groups: null (the paper's seven groups of our ECAPA export, by node-name "
        "prefix) or an ordered {group: regex over ONNX node names}; every weight-bearing node "
        "in exactly one group")
    budget_eer: float = param("largest EER increase (points) of `proposed`", lo=0.0, hi=100.0)
    error_analysis: ErrorAnalysis = param()
    latency: Latency = param()
    speed: Speed = param()
    profile_runs: int = param("ORT profiler runs per profiled model (median per op type)",
                              lo=1, hi=1000)
    ablation: tuple[Literal[tuple(ABLATIONS)], ...] = param(  # type: ignore[valid-type]
        "variants of `all` with one setting changed (size, latency)")
    ablation_eer: tuple[Literal[tuple(ABLATIONS)], ...] = param(  # type: ignore[valid-type]
        "ablation variants whose EER is measured too (the others: embedding cosine only)")
    op_probe: bool = param(
        "with the all_ops ablation: quantize `all` plus each op type all_ops adds, alone, to "
        "find which op's quantization all_ops's embedding drift comes from (one quantization "
        "per type, no trial scoring)")


section("ptq_layerwise", PtqLayerwise)
