"""The study's table (one row per variant) and its diagnostics, from the measurements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import runtime, stats
from slimaudio.compress import tflite as tfl
from slimaudio.datasets.sounds import Split
from slimaudio.frame_classifier.evaluate import evaluate_scores
from slimaudio.latency import Latency, litert_interpreter, speedup
from slimaudio.metrics import file_size
from slimaudio.studies.tflite_quant.intervals import RATIO, quality_intervals
from slimaudio.studies.tflite_quant.measure import BUILTIN
from slimaudio.studies.tflite_quant.variants import NAIVE, Variant

# Intervals (clip bootstrap, slimaudio.studies.tflite_quant.intervals) stand beside their value;
# delta_* and f1_ratio are paired differences from / ratios to `basic`.
TABLE_COLUMNS = ["variant", "file_format", "quantized", "size_bytes", "size_mib", "latency_ms",
                 *stats.column_names("f1"), *stats.column_names("delta_f1"),
                 "precision", "recall",
                 *stats.column_names("accuracy"), *stats.column_names("delta_accuracy")]
EXTRA_COLUMNS = ["latency_p90_ms", "latency_builtin_ms", "clip_f1", "clip_accuracy", "size_ratio",
                 "latency_ratio", *stats.column_names("speedup"), *stats.column_names(RATIO),
                 "pred_top_share", "input_saturation", "calibration"]
REFERENCE = "basic"  # size_ratio, latency_ratio, f1_ratio and delta_* are relative to this row


def variant_row(v: Variant, scores: np.ndarray, test: Split, lat: Mapping[str, Latency],
                n_classes: int) -> dict[str, Any]:
    """One table row, before the ratios and the input saturation."""
    m = evaluate_scores(scores, test.y, test.clip_ids, n_classes)
    pred = scores.argmax(axis=1)
    builtin = lat.get(f"{v.name}{BUILTIN}")
    return {"variant": v.name, "file_format": v.file_format, "quantized": v.quantized,
            **file_size(v.path), "latency_ms": lat[v.name].median_ms,
            "latency_p90_ms": lat[v.name].p90_ms,
            "latency_builtin_ms": builtin.median_ms if builtin is not None else np.nan,
            "f1": m["f1"], "precision": m["precision"], "recall": m["recall"],
            "accuracy": m["accuracy"], "clip_f1": m["clip_f1"], "clip_accuracy": m["clip_accuracy"],
            "pred_top_share": float(np.bincount(pred, minlength=n_classes).max() / len(pred)),
            "input_saturation": np.nan, "calibration": v.calibration}


def build_table(variants: list[Variant], scores: Mapping[str, np.ndarray], test: Split,
                lat: Mapping[str, Latency], n_classes: int, diag: dict[str, Any],
                res: stats.Resampler, seed: int = 0) -> pd.DataFrame:
    """Every variant's row, with the intervals drawn from `res` (the study's clip resamples of
    the test frames) and the speed-up over basic with its interval over timing processes and
    rounds (as many resamples, stream base.seed "bootstrap"); each TFLite file's input code
    range and op counts go into diag["input_range"] and diag["ops"]."""
    rows = []
    for v in variants:
        row = variant_row(v, scores[v.name], test, lat, n_classes)
        if v.file_format == "TFLite" and v.name != NAIVE:
            code_range = tfl.input_code_range(litert_interpreter(v.path, 1))
            if code_range is not None:
                diag["input_range"][v.name] = code_range
                lo, hi = code_range
                row["input_saturation"] = float(((test.x < lo) | (test.x > hi)).mean())
            diag["ops"][v.name] = tfl.op_summary(v.path)
        rows.append(row)
    table = pd.DataFrame(rows)
    preds = {v: np.asarray(s).argmax(axis=1) for v, s in scores.items()}
    ci = quality_intervals(preds, test.y, n_classes, res, REFERENCE)
    extra = ci.drop(columns=["f1", "accuracy"])  # the values themselves come from the row
    table = table.join(extra, on="variant")
    ref = table.set_index("variant").loc[REFERENCE]
    table["size_ratio"] = table["size_bytes"] / ref["size_bytes"]
    table["latency_ratio"] = table["latency_ms"] / ref["latency_ms"]
    speed = {v.name: speedup(lat[REFERENCE], lat[v.name], len(res.counts),
                             runtime.rng(seed, "bootstrap"), res.level) for v in variants}
    table["speedup"] = table["variant"].map(lambda v: speed[v].value)
    _, lo, hi = stats.column_names("speedup")
    table[lo] = table["variant"].map(lambda v: speed[v].lo)
    table[hi] = table["variant"].map(lambda v: speed[v].hi)
    return table[TABLE_COLUMNS + EXTRA_COLUMNS]
