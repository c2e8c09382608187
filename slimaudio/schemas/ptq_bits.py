"""Section `ptq_bits`: sub-8-bit weights per layer group, and mixed precision under a budget
(the rows build on the per-layer PTQ study's models and recipe, section ptq_layerwise)."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.spec import Each, param, section


@dataclass(frozen=True)
class PtqBits:
    widths: tuple[int, ...] = param(
        "weight bit widths below 8: every group's INT8 row again with its weights at each "
        "width (real b-bit values in the int8 kernels, 8-bit activations)",
        each=Each(lo=2, hi=7), min_len=1)
    budget_eer: float = param("largest EER increase (points) at every step of the "
                              "mixed-precision walk", lo=0.0, hi=100.0)
    max_verify: int = param("configurations the mixed-precision walk (bits per group under "
                            "budget_eer) may measure; 0: no walk", lo=0, hi=1000)


section("ptq_bits", PtqBits)
