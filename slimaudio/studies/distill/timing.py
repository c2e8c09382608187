"""Interleaved batch-1 latency of students (LiteRT) beside the teacher (ONNX Runtime), timed
together so ratios stay fair under load (slimaudio.latency.measure_factories)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.latency import SIMPLE, Spread
from slimaudio.schemas.distill import Latency
from slimaudio.studies.distill.teacher import teacher_session


def time_with_teacher(models: Mapping[str, Path], teacher: Path, teacher_frames: int,
                      teacher_mels: int, threads: int, latency_cfg: Latency,
                      seed: int, spread: Spread = SIMPLE) -> dict[str, Any]:
    """Latency of every TFLite model and of the teacher (key "teacher"), timed interleaved."""
    from slimaudio import latency
    from slimaudio.latency import litert_interpreter

    rng = runtime.rng(seed, "distill.latency_input")
    factories: dict[str, latency.Factory] = {}
    for name, path in models.items():
        shape = litert_interpreter(path, threads).get_input_details()[0]["shape"]
        x = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        factories[name] = latency.LiteRTFactory(str(path), (x,), threads)
    sess = teacher_session(teacher, threads)
    feats = rng.standard_normal((1, teacher_frames, teacher_mels)).astype(np.float32)
    factories["teacher"] = latency.OnnxFactory(str(teacher), {sess.get_inputs()[0].name: feats},
                                               threads)
    timing = latency.Timing.of(latency_cfg.warmup, latency_cfg.repeats, spread)
    return latency.measure_factories(factories, timing, threads, seed)
