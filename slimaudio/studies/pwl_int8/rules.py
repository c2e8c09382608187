"""Verdicts of the PWL x INT8 study, each threshold beside its rule.

'Keeps its EER' uses the PWL study's fine-tuning tolerance (pwl_softmax.rules.ft_tolerance:
0.1 points or 5% of the EER, whichever is larger), so 'as good as' means the same in both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.formatting import interval_of
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, combine, judge, table_row
from slimaudio.studies.pwl_softmax.rules import ft_tolerance


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """Softmax pooling loses EER under all-op INT8; each other pooling keeps it (within the
    tolerance) and loses less than softmax (int8_gap below 0)."""
    if table is None or "variant" not in table:
        return [Finding("PWL pooling x INT8", "not measured", "no table.csv")]
    ref = metrics.get("reference")  # params pwl_int8.reference, as the study recorded it
    if ref is None:
        return [Finding("PWL pooling x INT8", "not measured", "metrics name no reference")]
    ref_row = table_row(table, "variant", f"{ref}/all_ops")
    ref_float = table_row(table, "variant", f"{ref}/float")
    if ref_row is None or ref_float is None:
        return [Finding("PWL pooling x INT8", "not measured", f"no {ref} rows")]
    tol = ft_tolerance(number(ref_float["eer"]))
    d = stats.read(ref_row, "delta_eer")
    out = [Finding(f"All-op INT8 costs softmax pooling ({ref}) EER", judge(d.lo, d.hi, 0.0, "above"),
                   f"ΔEER {interval_of(d, 2, True)} points vs its float model")]
    others = table[(table["method"] != ref) & (table["quantized"] == "all_ops")]
    if others.empty:
        return out
    keep = {r["method"]: stats.read(r, "delta_eer") for _, r in others.iterrows()}
    out.append(Finding(f"The other poolings keep their EER under all-op INT8 (ΔEER below "
                       f"{tol:.2f} points)",
                       combine([judge(v.lo, v.hi, tol, "below") for v in keep.values()]),
                       ", ".join(f"{m} {interval_of(v, 2, True)}" for m, v in keep.items())))
    gap = {r["method"]: stats.read(r, "int8_gap") for _, r in others.iterrows()}
    out.append(Finding("The other poolings lose less EER than softmax pooling to all-op INT8",
                       combine([judge(v.lo, v.hi, 0.0, "below") for v in gap.values()]),
                       ", ".join(f"{m} {interval_of(v, 2, True)}" for m, v in gap.items())
                       + " points (difference in ΔEER, paired)"))
    return [f for f in out if not math.isnan(tol)]


STUDY = Study(name="pwl_int8", title="5. Beyond the papers: PWL pooling x full-integer INT8",
              key="variant", reference="baseline_ft_control/float", quality="eer",
              lower_better=True, findings=findings, stages=("pwl_int8",),
              sections=("pwl_int8",),
              key_metrics=("eer", "delta_eer", "int8_gap", "size_mib", "latency_ms", "speedup"),
              extra_roles=("eer_png",))
