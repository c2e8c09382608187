"""The study's typed configuration: section `ptq_bits` (slimaudio/schemas/ptq_bits.py) with
what it reads of the per-layer study's section: the recipe its rows are quantized and scored
with, the layer groups, and the latency settings its rows are timed with."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.schemas.ptq_bits import PtqBits
from slimaudio.schemas.ptq_layerwise import Latency
from slimaudio.speaker.ptq_recipe import Recipe
from slimaudio.spec import values

# The keys of section ptq_layerwise this study reads beside the recipe (dvc.yaml declares them).
LAYERWISE_KEYS = ("groups", "latency")


@dataclass(frozen=True, kw_only=True)
class Config(PtqBits):
    """The section (widths deduplicated, widest first), with what the study reads of others."""

    recipe: Recipe                   # ptq_layerwise's recipe, resolved for the model
    groups: dict[str, str] | None    # ptq_layerwise.groups: the layer groups of the model
    latency: Latency                 # ptq_layerwise.latency: how every row is timed

    @classmethod
    def of(cls, section: PtqBits, recipe: Recipe, groups: dict[str, str] | None,
           latency: Latency) -> Config:
        """The section with its widths deduplicated, widest first, and what it reads of
        ptq_layerwise."""
        return cls(**{**values(section, PtqBits),
                      "widths": tuple(sorted(set(section.widths), reverse=True))},
                   recipe=recipe, groups=groups, latency=latency)
