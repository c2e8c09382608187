"""The study's typed configuration: section `pwl_int8` (slimaudio/schemas/pwl_int8.py), the
forms `best_bench` chooses from (pwl_softmax.bench), and how models are quantized and scored,
which is the PTQ study's recipe (slimaudio.speaker.ptq_recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.schemas.pwl_int8 import PwlInt8
from slimaudio.speaker.ptq_recipe import Recipe

BEST_BENCH = "best_bench"  # in `methods`: the bench form with the lowest EER after fine-tuning


@dataclass(frozen=True, kw_only=True)
class Config(PwlInt8):
    """The section, with what the study reads of others."""

    bench: tuple[str, ...]  # params pwl_softmax.bench: the forms best_bench chooses from
    ptq: Recipe             # how models are calibrated, quantized and scored
