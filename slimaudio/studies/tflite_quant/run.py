"""The study's steps in order (convert, evaluate, time, tabulate) and its StudyReport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import runtime
from slimaudio.datasets.sounds import SoundFrames
from slimaudio.latency import SIMPLE, Spread
from slimaudio.studies.base import StudyReport
from slimaudio.studies.tflite_quant import intervals, report
from slimaudio.studies.tflite_quant.config import Config
from slimaudio.studies.tflite_quant.measure import kernel_throughput, predict_all, time_all
from slimaudio.studies.tflite_quant.naive_input import seen_by_naive
from slimaudio.studies.tflite_quant.rules import STUDY
from slimaudio.studies.tflite_quant.table import build_table
from slimaudio.studies.tflite_quant.variants import conversions, convert_all

# StudyReport roles of the figures (the stage maps them to --size-plot / --latency-plot).
FIGURES = {"size_plot": report.plot_f1_vs_size, "latency_plot": report.plot_f1_vs_latency}


@dataclass
class StudyResult:
    table: pd.DataFrame
    diagnostics: dict[str, Any]
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def run_study(data: SoundFrames, model_path: Path, tflite_dir: Path, cfg: Config,
              threads: int, seed: int, file_format: str, spread: Spread = SIMPLE
              ) -> StudyResult:
    """Convert, evaluate and time every variant; .tflite files are written into tflite_dir."""
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
                            "bootstrap": bootstrap_info(clusters, unit, cfg)}
    table = build_table(variants, scores, test, lat, data.n_classes, diag,
                        intervals.resampler(clusters, cfg.bootstrap, seed), seed)
    diag.update(seen_by_naive(test.x, next(v.path for v in variants if v.name == "full_int")))
    if cfg.latency.kernel_probe:
        diag["kernel"] = kernel_throughput(threads, seed)
    return StudyResult(table=table, diagnostics=diag, scores=scores)


def bootstrap_info(clusters: np.ndarray, unit: str, cfg: Config) -> dict[str, Any]:
    """What the intervals rest on, for metrics.json and the markdown."""
    return {"unit": unit, "clusters": int(len(np.unique(clusters))),
            "resamples": cfg.bootstrap.resamples, "level": cfg.bootstrap.level}


def build_report(res: StudyResult, baseline: Mapping[str, Any] | None) -> StudyReport:
    """Everything the stage writes and logs: table, rows, markdown, metrics, the two figures,
    one child run per variant (its numeric columns; tags file_format, quantized, calibration)
    and `<variant>.f1` on the stage run."""
    records = res.table.to_dict("records")
    return StudyReport(
        study=STUDY, table=res.table, markdown=report.render_markdown(res.table, res.diagnostics, baseline),
        metrics=report.study_metrics(res.table, res.diagnostics),
        figures={role: plot(res.table) for role, plot in FIGURES.items()},
        variant_metrics={r["variant"]: report.flat_metrics(r) for r in records},
        variant_tags={r["variant"]: {k: str(r[k]) for k in ("file_format", "quantized",
                                                            "calibration")} for r in records},
        run_metrics={f"{r['variant']}.f1": float(r["f1"]) for r in records})
