"""What the runtimes study reads: no section of its own, only the PTQ study's calibration set,
trial scoring, timing and width models (the keys `ptq_layerwise.<KEYS>`), so that OpenVINO and
ONNX Runtime are compared on the same footing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slimaudio.studies.ptq_layerwise import config as ptq_config

KEYS = ("calibration", "eval", "latency", "speed")


@dataclass(frozen=True)
class Config:
    calibration: ptq_config.CalibrationConfig
    eval: ptq_config.EvalConfig
    latency: ptq_config.LatencyConfig
    speed: ptq_config.SpeedConfig  # widths, and whether OpenVINO is timed at them (runtimes)

    @classmethod
    def from_params(cls, ptq_section: Mapping[str, Any]) -> Config:
        return cls(calibration=ptq_config.CalibrationConfig.from_params(ptq_section["calibration"]),
                   eval=ptq_config.EvalConfig.from_params(ptq_section["eval"]),
                   latency=ptq_config.LatencyConfig.from_params(ptq_section["latency"]),
                   speed=ptq_config.SpeedConfig.from_params(ptq_section["speed"]))
