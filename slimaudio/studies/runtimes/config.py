"""What the runtimes study reads: no section of its own, only the PTQ study's calibration set,
trial scoring, timing and width models (the keys `ptq_layerwise.<KEYS>`), so that OpenVINO and
ONNX Runtime are compared on the same footing."""

from __future__ import annotations

from dataclasses import dataclass, fields

from slimaudio.schemas.ptq_layerwise import Calibration, Eval, Latency, Speed
from slimaudio.spec import param


@dataclass(frozen=True)
class Config:
    """The keys of section ptq_layerwise this study reads (spec.build takes them from it)."""

    calibration: Calibration = param()
    eval: Eval = param()
    latency: Latency = param()
    speed: Speed = param()  # widths, and whether OpenVINO is timed at them


KEYS = tuple(f.name for f in fields(Config))
