"""Interleaved batch-1 latency of students (LiteRT) beside the teacher (ONNX Runtime), in one
process, so ratios stay fair under load (slimaudio.latency.measure_interleaved)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.studies.distill.config import Latency
from slimaudio.studies.distill.teacher import teacher_session


def time_with_teacher(models: Mapping[str, Path], teacher: Path, teacher_frames: int,
                      teacher_mels: int, threads: int, latency_cfg: Latency,
                      seed: int) -> dict[str, Any]:
    """Latency of every TFLite model and of the teacher (key "teacher"), timed interleaved."""
    from slimaudio import latency
    from slimaudio.latency import litert_interpreter

    rng = runtime.rng(seed, "distill.latency_input")
    runners = {}
    for name, path in models.items():
        interp = litert_interpreter(path, threads)
        shape = interp.get_input_details()[0]["shape"]
        x = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        runners[name] = latency.litert_runner(interp, [x], threads)
    sess = teacher_session(teacher, threads)
    feats = rng.standard_normal((1, teacher_frames, teacher_mels)).astype(np.float32)
    runners["teacher"] = latency.onnx_runner(sess, {sess.get_inputs()[0].name: feats})
    return latency.measure_interleaved(runners, warmup=latency_cfg.warmup,
                                       repeats=latency_cfg.repeats, threads=threads, seed=seed)
