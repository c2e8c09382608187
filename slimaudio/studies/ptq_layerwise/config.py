"""The study's typed configuration: params section `ptq_layerwise` (its one definition is
slimaudio/schemas/ptq_layerwise.py) with what this machine and the model resolve in it
(slimaudio.speaker.ptq_recipe: the model's input, `reduce_range: auto` from the CPU flags)."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.schemas.ecapa import ModelInput
from slimaudio.schemas.ptq_layerwise import PtqLayerwise
from slimaudio.speaker.groups import check_patterns
from slimaudio.speaker.ptq_recipe import Recipe, resolve
from slimaudio.spec import values


@dataclass(frozen=True, kw_only=True)
class Config(PtqLayerwise, Recipe):
    """The whole section, resolved."""


def study_config(params: PtqLayerwise, model_input: ModelInput) -> Config:
    """The section as the study runs it; a bad group name or regex stops here, before any model
    is loaded."""
    if params.groups is not None:
        check_patterns(params.groups)
    return Config(**values(params, PtqLayerwise), **resolve(params, model_input))
