"""The study's typed configuration: section `pwl_int8`, plus how it quantizes and scores, which
is the PTQ study's recipe (the keys `ptq_layerwise.<RECIPE_KEYS>`: calibration, activation
type, per-channel, reduce_range, format, op types of `all`, scoring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimaudio.studies.ptq_layerwise import config as ptq_config

BEST_BENCH = "best_bench"  # in `methods`: the bench form with the lowest EER after fine-tuning


@dataclass(frozen=True)
class Config:
    methods: tuple[str, ...]   # models/pwl_softmax/<method>.onnx (BEST_BENCH resolved at run)
    reference: str             # the softmax pooling every method is compared with
    bench: tuple[str, ...]     # params pwl_softmax.bench: the forms best_bench chooses from
    latency: ptq_config.LatencyConfig  # the same fields as the PTQ study's timing
    ptq: ptq_config.Recipe     # how models are calibrated, quantized and scored

    @classmethod
    def from_params(cls, section: Mapping[str, Any], ptq_section: Mapping[str, Any],
                    bench: Sequence[str]) -> Config:
        return cls(methods=tuple(str(m) for m in section["methods"]),
                   reference=str(section["reference"]), bench=tuple(bench or ()),
                   latency=ptq_config.LatencyConfig.from_params(section["latency"]),
                   ptq=ptq_config.Recipe.from_params(ptq_section))
