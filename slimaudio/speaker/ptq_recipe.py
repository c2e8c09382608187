"""How a speaker model is calibrated, quantized and scored: the recipe keys of params section
`ptq_layerwise` (schemas.ptq_layerwise.PtqRecipe), resolved on this machine for one model.

The per-layer PTQ study defines the recipe; every study that quantizes a speaker model the
same way (ptq_bits, pwl_int8, runtimes) reads it from here, not from that study's package.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from slimaudio import runtime
from slimaudio.compress.onnx_int8 import QuantSettings
from slimaudio.schemas.ecapa import ModelInput
from slimaudio.schemas.ptq_layerwise import PtqRecipe
from slimaudio.spec import values

# The keys of section ptq_layerwise a study reusing the recipe declares in dvc.yaml.
RECIPE_KEYS = tuple(f.name for f in fields(PtqRecipe))


@dataclass(frozen=True, kw_only=True)
class Resolved:
    input: ModelInput              # how the model takes its features
    quant_settings: QuantSettings  # how every static row is quantized (reduce_range resolved)
    reduce_range_reason: str       # why 7- or 8-bit weights (params, or the CPU flags)


@dataclass(frozen=True, kw_only=True)
class Recipe(PtqRecipe, Resolved):
    """The recipe params, resolved. `reduce_range` stays the param (True, False or "auto"); the
    weights' width as quantized is `quant_settings.reduce_range`."""


def recipe(params: PtqRecipe, model_input: ModelInput) -> Recipe:
    """The recipe as it runs here on a model taking its features as `model_input`."""
    return Recipe(**values(params, PtqRecipe), **resolve(params, model_input))


def resolve(params: PtqRecipe, model_input: ModelInput) -> dict[str, Any]:
    """The fields of `Resolved` for these params and this model's input."""
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
