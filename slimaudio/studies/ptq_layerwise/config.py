"""The study's typed configuration: params section `ptq_layerwise` (its one definition is
slimaudio/schemas/ptq_layerwise.py) with what this machine and the model resolve in it: the
model's input, and `reduce_range: auto` decided from the CPU flags."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from slimaudio import runtime
from slimaudio.compress.onnx_int8 import QuantSettings
from slimaudio.schemas.ecapa import ModelInput
from slimaudio.schemas.ptq_layerwise import PtqLayerwise, PtqRecipe
from slimaudio.spec import values
from slimaudio.studies.ptq_layerwise.groups import check_patterns

# The keys of section ptq_layerwise that say how a model is calibrated, quantized and scored:
# all that the studies reusing this study's recipe (pwl_int8) read of it.
RECIPE_KEYS = tuple(f.name for f in fields(PtqRecipe))


@dataclass(frozen=True, kw_only=True)
class _Resolved:
    input: ModelInput              # how the model takes its features
    quant_settings: QuantSettings  # how every static row is quantized (reduce_range resolved)
    reduce_range_reason: str       # why 7- or 8-bit weights (params, or the CPU flags)


@dataclass(frozen=True, kw_only=True)
class Recipe(PtqRecipe, _Resolved):
    """The recipe params, resolved. `reduce_range` stays the param (True, False or "auto"); the
    weights' width as quantized is `quant_settings.reduce_range`."""


@dataclass(frozen=True, kw_only=True)
class Config(PtqLayerwise, Recipe):
    """The whole section, resolved."""


def recipe(params: PtqRecipe, model_input: ModelInput) -> Recipe:
    """The recipe as it runs here on a model taking its features as `model_input`."""
    return Recipe(**values(params, PtqRecipe), **_resolve(params, model_input))


def study_config(params: PtqLayerwise, model_input: ModelInput) -> Config:
    """The section as the study runs it; a bad group name or regex stops here, before any model
    is loaded. Weight bit widths are deduplicated and taken widest first."""
    if params.groups is not None:
        check_patterns(params.groups)
    widths = tuple(sorted(set(params.weight_bits.widths), reverse=True))
    params = replace(params, weight_bits=replace(params.weight_bits, widths=widths))
    return Config(**values(params, PtqLayerwise), **_resolve(params, model_input))


def _resolve(params: PtqRecipe, model_input: ModelInput) -> dict[str, Any]:
    reduce_range, why = resolve_reduce_range(params.reduce_range)
    settings = QuantSettings(method=params.calibration.method,
                             activation_type=params.activation_type,
                             per_channel=params.per_channel, reduce_range=reduce_range,
                             quant_format=params.quant_format, op_types=params.op_types)
    return {"input": model_input, "quant_settings": settings, "reduce_range_reason": why}


def resolve_reduce_range(value: bool | str) -> tuple[bool, str]:
    """7-bit weights or not, and why. `auto`: 7-bit where the CPU has no int8 dot product
    (AVX2's U8S8 kernels add u8*s8 pairs in 16 bits, which full-range weights can saturate);
    full 8-bit where VNNI or AMX multiply-accumulate in 32 bits, so the 8th bit is free."""
    if value != "auto":
        return bool(value), "set in params"
    cpu = runtime.cpu_info()
    if runtime.has_int8_dot_product(cpu):
        return False, ("auto: the CPU has an int8 dot product "
                       f"({', '.join(runtime.int8_dot_flags(cpu))}): "
                       "full-range 8-bit weights cannot saturate")
    return True, ("auto: no int8 dot product (VNNI/AMX) on this CPU: 7-bit weights keep the "
                  "16-bit pair sums of AVX2 from saturating")
