"""Acceptance and verdict rules of the PWL softmax study, each threshold beside its rule.

`checks` are the issue's acceptance rules as 0/1 metrics (metrics.json); `findings` judges the
paper's claims for the summary. Both use the one fine-tuning tolerance, `ft_tolerance`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import papers
from slimaudio.formatting import interval
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, combine, judge, table_row

# A method recovers after fine-tuning when its EER is at most this far above the fine-tuned
# control's: FT_TOL_POINTS EER points or FT_TOL_SHARE of the control's EER, whichever is larger.
FT_TOL_POINTS = 0.1
FT_TOL_SHARE = 0.05
PAPER_METHODS = ("clip", "pwl1", "pwl2")   # the paper's approximations
UNIFORM_METHODS = ("pwl1_uniform", "pwl2_uniform")  # the same forms, fitted without data
UNIFORM_RANGE_TEXT = "pwl_fit.uniform_range"
LEARNABLE_TIE = 1e-9   # learnable starts from pwl2's fit, so before FT they may tie exactly


def ft_tolerance(ref_eer: float) -> float:
    """The largest EER gap (points) to the fine-tuned control that still counts as recovered."""
    return max(FT_TOL_POINTS, FT_TOL_SHARE * ref_eer)


def checks(table: pd.DataFrame) -> dict[str, float]:
    """The issue's acceptance rules evaluated on the measured table (1 = holds, 0 = not)."""
    t = table.set_index("method")
    out: dict[str, float] = {}
    ref = float(t.loc["baseline_ft_control", "eer_after_ft"])
    tol = ft_tolerance(ref)
    for m in ("pwl1", "pwl2", "learnable"):
        if m in t.index:
            out[f"check_{m}_after_ft_within_tol"] = float(t.loc[m, "eer_after_ft"] - ref <= tol)
    if {"learnable", "pwl2"} <= set(t.index):
        out["check_learnable_before_ft_le_pwl2"] = float(
            t.loc["learnable", "eer_before_ft"] <= t.loc["pwl2", "eer_before_ft"] + LEARNABLE_TIE)
    if "pwl1" in t.index:
        # pwl1 must not slow the exported model down, and must speed the normaliser up.
        out["check_pwl1_rel_time_model_onnx_le_1"] = float(t.loc["pwl1", "rel_time_model_onnx"] <= 1.0)
        out["check_pwl1_rel_time_softmax_lt_1"] = float(t.loc["pwl1", "rel_time_softmax"] < 1.0)
    out["ft_tolerance_points"] = tol
    return out






def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The paper's claims judged on our table's paired intervals: recovery by fine-tuning,
    degradation without it (fitted to the model's logits, and data-free), whole-model speed."""
    df = table
    if df is None or "method" not in df:
        return [Finding("Piecewise-linear softmax study", "not measured", "no table.csv")]
    ctrl = table_row(df, "method", "baseline_ft_control")
    ref_eer = number(ctrl["eer_after_ft"]) if ctrl is not None else math.nan
    tol = ft_tolerance(ref_eer) if not math.isnan(ref_eer) else math.nan
    out = [_claim(df, PAPER_METHODS, "delta_eer_after_ft", tol, "below",
                  f"Fine-tuning recovers the EER lost to the approximations (ΔEER to the "
                  f"fine-tuned control below {FT_TOL_POINTS:g} points or "
                  f"{100 * FT_TOL_SHARE:g}% of its EER)", f" points vs the FT control at {ref_eer:.2f}%"),
           _claim(df, PAPER_METHODS, "delta_eer_before_ft", 0.0, "above",
                  "Swapping exp() without fine-tuning degrades EER (our fit to the model's "
                  "logits)", " points vs the baseline"),
           _claim(df, UNIFORM_METHODS, "delta_eer_before_ft", 0.0, "above",
                  "Swapping exp() without fine-tuning degrades EER (fitted without data, "
                  f"on z in {UNIFORM_RANGE_TEXT})", " points vs the baseline")]
    paper_rel = " / ".join(f"{papers.PWL_SOFTMAX['rel_time'][m]:.3f}" for m in PAPER_METHODS)
    for col, where in (("rel_time_model_torch", "torch"), ("rel_time_model_onnx", "ONNX Runtime")):
        out.append(_claim(df, PAPER_METHODS, col, 1.0, "below",
                          f"The approximations make the whole model faster ({where}, one "
                          "thread)", f"x of softmax time over timing rounds (paper: {paper_rel})",
                          digits=3, sign=False))
    return [f for f in out if f is not None]


def _claim(df: pd.DataFrame, methods: tuple[str, ...], col: str, threshold: float, want: str,
           claim: str, unit: str, digits: int = 2, sign: bool = True) -> Finding | None:
    """One claim over several methods: each judged on its interval of `col`, then combined."""
    rows = {m: table_row(df, "method", m) for m in methods}
    rows = {m: r for m, r in rows.items() if r is not None}
    if not rows or col not in df:
        return None
    iv = {m: tuple(number(r.get(col + e)) for e in ("", "_lo", "_hi")) for m, r in rows.items()}
    verdicts = [judge(lo, hi, threshold, want) for _, lo, hi in iv.values()]
    return Finding(claim, combine(verdicts),
                   ", ".join(f"{m} {interval(*v, digits, sign)}" for m, v in iv.items()) + unit)


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="pwl_softmax", title="1. Piecewise-linear softmax in ECAPA-TDNN", key="method",
              reference="baseline_ft_control", quality="eer_after_ft", lower_better=True,
              findings=findings, stages=("pwl_fit", "pwl_softmax"),
              sections=("pwl_fit", "pwl_softmax"),
              key_metrics=("eer_after_ft", "eer_before_ft", "min_dcf_after_ft", "latency_ms"),
              extra_roles=("latency", "det_plot", "curves_plot"))
