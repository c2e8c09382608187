"""The study's variants: the Keras original, the paper's five TFLite conversions, the naive
full-int input path, and the `int` conversions calibrated on unrepresentative sets."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import tflite as tfl
from slimaudio.datasets.sounds import SoundFrames
from slimaudio.progress import progress_bar
from slimaudio.schemas.tflite import TfliteQuant
from slimaudio.studies.tflite_quant.calibration import (
    calibration_frames,
    probe_seed,
    representative_seed,
)

ORIGINAL, NAIVE = "original", "full_int_naive"


@dataclass(frozen=True)
class Variant:
    name: str
    file_format: str
    quantized: bool
    path: Path
    calibration: str = ""


@dataclass(frozen=True)
class Conversion:
    """One .tflite file to write: `kind` is the converter variant, `calib` its calibration set."""

    name: str
    kind: str
    calib: np.ndarray | None
    description: str


def conversions(data: SoundFrames, cfg: TfliteQuant, seed: int) -> list[Conversion]:
    """The paper's variants (int/full_int calibrated on representative training frames), then
    one `int` conversion per calibration probe."""
    rep = calibration_frames(data, "train", cfg.representative_samples, representative_seed(seed))
    out = [Conversion(v, v, rep, f"{len(rep)} train frames") if v in tfl.NEEDS_CALIBRATION
           else Conversion(v, v, None, "") for v in tfl.VARIANTS]
    for k, probe in enumerate(cfg.calibration_probes):
        calib = calibration_frames(data, probe.source, probe.samples, probe_seed(seed, k))
        out.append(Conversion(probe.variant, "int", calib, f"{probe.samples} {probe.source} frames"))
    return out


def convert_all(model: Any, model_path: Path, file_format: str, jobs: list[Conversion],
                tflite_dir: Path) -> list[Variant]:
    """Write every conversion into tflite_dir; the variants in table order (the naive input
    path right after `full_int`, whose file it shares)."""

    variants = [Variant(ORIGINAL, file_format, False, model_path)]
    with tempfile.TemporaryDirectory(prefix="slimaudio-savedmodel-") as tmp:
        sm = tfl.export_saved_model(model, Path(tmp) / "saved_model")
        for job in progress_bar(jobs, desc="convert", unit="model", leave=False):
            path = tflite_dir / f"{job.name}.tflite"
            path.write_bytes(tfl.convert(sm, job.kind, job.calib))
            variants.append(Variant(job.name, "TFLite", job.kind != "basic", path, job.description))
    full = next(v for v in variants if v.name == "full_int")
    variants.insert([v.name for v in variants].index("full_int") + 1,
                    Variant(NAIVE, "TFLite", True, full.path, full.calibration))
    return variants
