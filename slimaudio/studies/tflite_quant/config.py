"""The study's typed configuration, built once from params section `tflite_quant` and the
shared `base.bootstrap` (every quality interval's resamples and level).

No defaults here: they live in conf/config.yaml, and the schemas (slimaudio/schemas/tflite.py,
slimaudio/schemas/base.py) validate the sections before `from_params` reads them
(tests/test_tflite_study.py checks that these fields and the schemas' keys are the same).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slimaudio.stats import BootstrapConfig


@dataclass(frozen=True)
class CalibrationProbe:
    """An extra `int` conversion calibrated on `samples` frames of an unrepresentative source."""

    source: str   # train | one_class | uniform_noise | normal_noise
    samples: int

    @property
    def variant(self) -> str:
        return f"int_calib_{self.source}_{self.samples}"


@dataclass(frozen=True)
class LatencyConfig:
    warmup: int
    repeats: int
    builtin_kernels: bool  # also time every TFLite variant with XNNPACK off
    kernel_probe: bool     # time one 3x3 convolution as float32 and int8


@dataclass(frozen=True)
class Config:
    representative_samples: int
    calibration_probes: tuple[CalibrationProbe, ...]
    latency: LatencyConfig
    eval_threads: int
    eval_batch_size: int
    bootstrap: BootstrapConfig  # the clip bootstrap: base.bootstrap, not from this section


def from_params(section: Mapping[str, Any], base: Mapping[str, Any]) -> Config:
    """The validated params section (and params section `base`, for its bootstrap) as a
    Config."""
    lat = section["latency"]
    return Config(
        representative_samples=int(section["representative_samples"]),
        calibration_probes=tuple(CalibrationProbe(str(p["source"]), int(p["samples"]))
                                 for p in section["calibration_probes"]),
        latency=LatencyConfig(warmup=int(lat["warmup"]), repeats=int(lat["repeats"]),
                              builtin_kernels=bool(lat["builtin_kernels"]),
                              kernel_probe=bool(lat["kernel_probe"])),
        eval_threads=int(section["eval_threads"]),
        eval_batch_size=int(section["eval_batch_size"]),
        bootstrap=BootstrapConfig.from_params(dict(base)))
