"""The study's steps in order (convert, evaluate, time, tabulate) and its StudyReport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.datasets.sounds import SoundFrames
from slimaudio.latency import SIMPLE, Spread
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.tflite import TfliteQuant
from slimaudio.studies.tflite_quant import intervals
from slimaudio.studies.tflite_quant.measure import kernel_throughput, predict_all, time_all
from slimaudio.studies.tflite_quant.naive_input import seen_by_naive
from slimaudio.studies.tflite_quant.result import StudyResult
from slimaudio.studies.tflite_quant.table import build_table
from slimaudio.studies.tflite_quant.variants import conversions, convert_all


def run_study(data: SoundFrames, model_path: Path, tflite_dir: Path, cfg: TfliteQuant,
              file_format: str, seed: int, threads: int, bootstrap: Bootstrap,
              spread: Spread = SIMPLE) -> StudyResult:
    """Convert, evaluate and time every variant; .tflite files are written into tflite_dir.
    `bootstrap` (params base.bootstrap) sets every quality interval's resamples and level."""
    from slimaudio.frame_classifier.train import load_model

    model = load_model(model_path)
    test = data.split("test")
    variants = convert_all(model, model_path, file_format, conversions(data, cfg, seed),
                           tflite_dir)
    scores = predict_all(model, variants, test.x, cfg)
    lat = time_all(model_path, variants, test.x[:1], cfg.latency, threads, seed, spread)
    clusters, unit = intervals.cluster_ids(data, "test")
    diag: dict[str, Any] = {"test_input_min": float(test.x.min()),
                            "test_input_max": float(test.x.max()), "n_test_frames": len(test),
                            "threads": threads, "ops": {}, "input_range": {},
                            "cpu": runtime.cpu_info(),
                            "bootstrap": bootstrap_info(clusters, unit, bootstrap)}
    table = build_table(variants, scores, test, lat, data.n_classes, diag,
                        intervals.resampler(clusters, bootstrap, seed), seed)
    diag.update(seen_by_naive(test.x, next(v.path for v in variants if v.name == "full_int")))
    if cfg.latency.kernel_probe:
        diag["kernel"] = kernel_throughput(threads, seed)
    return StudyResult(table=table, diagnostics=diag, scores=scores)


def bootstrap_info(clusters: np.ndarray, unit: str, bootstrap: Bootstrap
                   ) -> dict[str, Any]:
    """What the intervals rest on, for metrics.json and the markdown."""
    return {"unit": unit, "clusters": int(len(np.unique(clusters))),
            "resamples": bootstrap.resamples, "level": bootstrap.level}
