"""The study's typed configuration, built once from params section `ptq_layerwise`.

No defaults here: they live in conf/config.yaml, and the schema
(slimaudio/schemas/ptq_layerwise.py) validates the section before `from_params` reads it
(tests/test_ptq.py checks that these fields and the schema's keys are the same).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from slimaudio import runtime
from slimaudio.compress.onnx_int8 import QuantSettings
from slimaudio.studies.ptq_layerwise.groups import check_patterns


@dataclass(frozen=True)
class CalibrationConfig:
    utterances: int    # train-split utterances (never test data)
    crop_frames: int   # one random fixed-length crop per calibration utterance
    method: str        # MinMax | Entropy | Percentile
    percentile: float  # Percentile method only

    @classmethod
    def from_params(cls, c: Mapping[str, Any]) -> CalibrationConfig:
        return cls(utterances=int(c["utterances"]), crop_frames=int(c["crop_frames"]),
                   method=str(c["method"]), percentile=float(c["percentile"]))


@dataclass(frozen=True)
class InputConfig:
    name: str | None  # the model input the features go to (None: its first)
    layout: str       # BTF [batch, frames, features] | BFT [batch, features, frames]


@dataclass(frozen=True)
class EvalConfig:
    threads: int            # ORT threads while scoring the trials (not latency)
    max_frames: int | None  # crop test utterances to their first N frames (None: whole)

    @classmethod
    def from_params(cls, e: Mapping[str, Any]) -> EvalConfig:
        return cls(threads=int(e["threads"]),
                   max_frames=None if e["max_frames"] is None else int(e["max_frames"]))


@dataclass(frozen=True)
class ErrorAnalysisConfig:
    utterances: int  # test utterances (latency-length crops) for the per-group activation error


@dataclass(frozen=True)
class LatencyConfig:
    frames: int
    warmup: int
    repeats: int

    @classmethod
    def from_params(cls, lat: Mapping[str, Any]) -> LatencyConfig:
        return cls(frames=int(lat["frames"]), warmup=int(lat["warmup"]), repeats=int(lat["repeats"]))


@dataclass(frozen=True)
class SpeedConfig:
    widths: tuple[int, ...]    # ECAPA channels C
    seconds: tuple[float, ...]  # input lengths
    variants: tuple[str, ...]  # of VARIANTS
    warmup: int
    repeats: int                # timed rounds in all (base.latency spreads them)
    runtimes: bool              # the runtimes stage times these widths on OpenVINO too

    @classmethod
    def from_params(cls, s: Mapping[str, Any]) -> SpeedConfig:
        return cls(widths=tuple(int(c) for c in s["widths"]),
                   seconds=tuple(float(t) for t in s["seconds"]),
                   variants=tuple(str(v) for v in s["variants"]),
                   warmup=int(s["warmup"]), repeats=int(s["repeats"]),
                   runtimes=bool(s["runtimes"]))


@dataclass(frozen=True)
class WeightBitsConfig:
    widths: tuple[int, ...]  # weight bit widths below 8 per group (bitwidth.py); () for none
    max_verify: int          # configurations the mixed-precision walk may measure (0: no walk)


# The keys of section ptq_layerwise that say how a model is calibrated, quantized and scored:
# all that the studies reusing this study's recipe (pwl_int8) read of it.
RECIPE_KEYS = ("calibration", "activation_type", "per_channel", "reduce_range", "quant_format",
               "op_types", "eval")


@dataclass(frozen=True)
class Recipe:
    """How a model is calibrated, quantized and scored (the RECIPE_KEYS)."""

    input: InputConfig
    calibration: CalibrationConfig
    activation_type: str              # uint8 (U8S8) | int8 (S8S8)
    per_channel: bool
    reduce_range: bool
    reduce_range_reason: str          # why (params, or the CPU flags under `auto`)
    quant_format: str                 # QDQ | QOperator
    op_types: tuple[str, ...] | None  # quantized inside a chosen group (None: every type)
    eval: EvalConfig

    @property
    def quant_settings(self) -> QuantSettings:
        """How every static row is quantized."""
        return QuantSettings(method=self.calibration.method, activation_type=self.activation_type,
                             per_channel=self.per_channel, reduce_range=self.reduce_range,
                             quant_format=self.quant_format, op_types=self.op_types)

    @classmethod
    def from_params(cls, section: Mapping[str, Any],
                    model_input: Mapping[str, Any] | None = None) -> Recipe:
        """The RECIPE_KEYS of the section; `model_input` is params `ecapa.init.input` (how the
        model takes its features: its home is with the model; None: our exports')."""
        model_input = model_input or {"name": None, "layout": "BTF"}
        return cls(
            input=InputConfig(name=model_input["name"], layout=str(model_input["layout"])),
            calibration=CalibrationConfig.from_params(section["calibration"]),
            activation_type=str(section["activation_type"]),
            per_channel=bool(section["per_channel"]),
            **resolve_reduce_range(section["reduce_range"]),
            quant_format=str(section["quant_format"]),
            op_types=tuple(section["op_types"]) if section["op_types"] else None,
            eval=EvalConfig.from_params(section["eval"]))


@dataclass(frozen=True)
class Config(Recipe):
    """The whole section: the recipe, and what the study itself does with it."""

    groups: dict[str, str] | None     # {group: regex over node names} (None: the paper's groups)
    budget_eer: float                 # largest EER increase (points) for `proposed`
    error_analysis: ErrorAnalysisConfig
    latency: LatencyConfig
    profile_runs: int
    ablation: tuple[str, ...]         # variants of `all` (schemas.ptq_layerwise.ABLATIONS)
    ablation_eer: tuple[str, ...]     # ...whose EER is measured too
    weight_bits: WeightBitsConfig
    speed: SpeedConfig


def from_params(section: Mapping[str, Any], model_input: Mapping[str, Any] | None = None) -> Config:
    """The validated params section as a Config (`model_input`: see Recipe.from_params)."""
    groups = section["groups"]
    if groups is not None:
        check_patterns(groups)  # a bad name or regex stops here, before any model is loaded
    recipe = Recipe.from_params(section, model_input)
    return Config(
        **{f.name: getattr(recipe, f.name) for f in fields(Recipe)},
        groups=None if groups is None else {str(g): str(p) for g, p in groups.items()},
        budget_eer=float(section["budget_eer"]),
        error_analysis=ErrorAnalysisConfig(utterances=int(section["error_analysis"]["utterances"])),
        latency=LatencyConfig.from_params(section["latency"]),
        profile_runs=int(section["profile_runs"]),
        ablation=tuple(section["ablation"]),
        ablation_eer=tuple(section["ablation_eer"]),
        weight_bits=WeightBitsConfig(
            widths=tuple(sorted({int(b) for b in section["weight_bits"]["widths"]}, reverse=True)),
            max_verify=int(section["weight_bits"]["max_verify"])),
        speed=SpeedConfig.from_params(section["speed"]))


def resolve_reduce_range(value: bool | str) -> dict[str, Any]:
    """7-bit weights or not, and why. `auto`: 7-bit where the CPU has no int8 dot product
    (AVX2's U8S8 kernels add u8*s8 pairs in 16 bits, which full-range weights can saturate);
    full 8-bit where VNNI or AMX multiply-accumulate in 32 bits, so the 8th bit is free."""
    if value != "auto":
        return {"reduce_range": bool(value), "reduce_range_reason": "set in params"}
    cpu = runtime.cpu_info()
    if runtime.has_int8_dot_product(cpu):
        return {"reduce_range": False,
                "reduce_range_reason": "auto: the CPU has an int8 dot product "
                                       f"({', '.join(runtime.int8_dot_flags(cpu))}): "
                                       "full-range 8-bit weights cannot saturate"}
    return {"reduce_range": True,
            "reduce_range_reason": "auto: no int8 dot product (VNNI/AMX) on this CPU: 7-bit "
                                   "weights keep the 16-bit pair sums of AVX2 from saturating"}
