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
from slimaudio.studies.base import Finding, Study, number, share_verdict, table_row

# A method recovers after fine-tuning when its EER is at most this far above the fine-tuned
# control's: FT_TOL_POINTS EER points or FT_TOL_SHARE of the control's EER, whichever is larger.
FT_TOL_POINTS = 0.1
FT_TOL_SHARE = 0.05
PAPER_METHODS = ("clip", "pwl1", "pwl2")   # the paper's approximations
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
    """The paper's claims judged on our table: recovery by fine-tuning, degradation without
    it, and whole-model speed (metrics are not needed)."""
    df = table
    if df is None or "method" not in df:
        return [Finding("Piecewise-linear softmax study", "not measured", "no table.csv")]
    out: list[Finding] = []
    ctrl = table_row(df, "method", "baseline_ft_control")
    base = table_row(df, "method", "baseline")
    ref = ctrl if ctrl is not None else base
    ref_eer = number(ref["eer_after_ft"]) if ref is not None else math.nan
    methods = [m for m in PAPER_METHODS if table_row(df, "method", m) is not None]
    gaps = {m: number(table_row(df, "method", m)["eer_after_ft"]) - ref_eer for m in methods}
    tol = ft_tolerance(ref_eer) if not math.isnan(ref_eer) else math.nan
    ok = [m for m, g in gaps.items() if g <= tol]
    out.append(Finding(
        f"Fine-tuning recovers the EER lost to the approximations (within {FT_TOL_POINTS:g} "
        f"points or {100 * FT_TOL_SHARE:g}% of the fine-tuned baseline)",
        share_verdict(len(ok), len(gaps)),
        ", ".join(f"{m} {g:+.2f} points" for m, g in gaps.items()) + f" vs the FT control at {ref_eer:.2f}%"))
    before = {m: number(table_row(df, "method", m)["eer_before_ft"]) for m in methods}
    base_eer = number(base["eer_before_ft"]) if base is not None else math.nan
    worse = [m for m, v in before.items() if v > base_eer]
    out.append(Finding(
        "Swapping exp() without fine-tuning degrades EER",
        share_verdict(len(worse), len(before)),
        ", ".join(f"{m} {v:.2f}%" for m, v in before.items()) + f" vs baseline {base_eer:.2f}%"))
    paper_rel = " / ".join(f"{papers.PWL_SOFTMAX['rel_time'][m]:.3f}" for m in PAPER_METHODS)
    for col, where in (("rel_time_model_torch", "torch"), ("rel_time_model_onnx", "ONNX Runtime")):
        if col not in df:
            continue
        rel = {m: number(table_row(df, "method", m)[col]) for m in methods}
        faster = [m for m, v in rel.items() if v < 1.0]
        out.append(Finding(
            f"The approximations make the whole model faster ({where}, one thread)",
            # no method measured counts as holding here (as the summary always judged it)
            "holds" if len(faster) == len(rel) else ("partly holds" if faster else "does not hold"),
            ", ".join(f"{m} {v:.3f}x" for m, v in rel.items()) + f" of softmax time (paper: {paper_rel})"))
    return out


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="pwl_softmax", title="1. Piecewise-linear softmax in ECAPA-TDNN", key="method",
              reference="baseline_ft_control", quality="eer_after_ft", lower_better=True,
              findings=findings)
