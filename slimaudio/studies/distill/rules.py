"""The study's rules: how the FRILL analogue is chosen, the acceptance checks of the final
student (metrics.json `done_when`), and the verdict on the paper's claim. FRILL's numbers and
the budgets come from slimaudio.papers.FRILL alone.

The choice follows FRILL's rule: FRILL is the best model under a latency budget (10 ms on a
Pixel 1, about 1/32 of TRILL). Here the budgets are relative (params distill_select.choose):
the frontier student with the best mean accuracy among those at most `max_latency_fraction` x
the teacher's latency and, unless it is null, at most `max_size_fraction` x its file size (a
phone has a storage budget too; the default asks for FRILL's 40%). If no frontier student
meets both, the fastest frontier student, and the table says so. Accuracy is then reported,
not used to filter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import papers
from slimaudio.metrics import MIB
from slimaudio.studies.base import Finding, Study, number

FRILL = papers.FRILL
CLAIM = ("A distilled student is much faster and smaller than the teacher at a small accuracy "
         f"cost (paper: {FRILL['speedup']:.0f}x faster, {100 * FRILL['size_fraction']:.0f}% of "
         f"the size, about {100 * FRILL['accuracy_drop']:.0f}% less accurate)")


def choose(df: pd.DataFrame, max_latency_fraction: float,
           max_size_fraction: float | None = None) -> tuple[str | None, str]:
    """The FRILL analogue (see the module docstring) and a sentence on how it was chosen."""
    front = df[(df["student"] != "teacher") & df["on_frontier"]]
    if front.empty:
        return None, "no students"
    teacher = df[df["student"] == "teacher"].iloc[0]
    budget = max_latency_fraction * float(teacher["latency_ms"])
    ok = front["latency_ms"] <= budget
    what = f"latency <= {max_latency_fraction:g} x teacher = {budget:.3f} ms"
    if max_size_fraction is not None:
        size_budget = max_size_fraction * float(teacher["size_bytes"])
        ok &= front["size_bytes"] <= size_budget
        what += f", size <= {max_size_fraction:g} x teacher = {size_budget / MIB:.3f} MiB"
    fit = front[ok]
    if not fit.empty:
        best = fit.sort_values(["mean_accuracy", "latency_ms"], ascending=[False, True]).iloc[0]
        return str(best["student"]), f"best frontier student within the budgets ({what})"
    best = front.sort_values("latency_ms").iloc[0]
    return str(best["student"]), (f"no frontier student within the budgets ({what}); "
                                  "the fastest frontier student")


def done_when(final: Mapping[str, Any]) -> dict[str, bool]:
    """The final student against FRILL's budgets (metrics.json `done_when`)."""
    return {
        "speedup_at_least_10x": bool(final["speedup"] >= FRILL["min_speedup"]),
        "size_at_most_40pct": bool(final["size_fraction"] <= FRILL["size_fraction"]),
        "accuracy_at_least_95pct": bool(final["accuracy_retention"]
                                        >= 1.0 - FRILL["max_accuracy_drop"]),
    }




def findings(df: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The paper's claim judged on the final student (metrics.json)."""
    if df is None or "latency_ms" not in df:
        return [Finding("Distillation study", "not measured", "no table.csv")]
    sp, sf, drop = (number(metrics.get(k)) for k in ("chosen_speedup", "chosen_size_fraction",
                                                   "chosen_accuracy_drop"))
    if math.isnan(sp):
        return [Finding("A distilled student is much faster and smaller than the teacher at a "
                        "small accuracy cost", "not measured",
                        "metrics.json has no chosen_speedup")]
    fast, accurate = sp >= FRILL["min_speedup"], drop <= FRILL["max_accuracy_drop"]
    ok = fast and sf <= FRILL["size_fraction"] and accurate
    return [Finding(
        CLAIM, "holds" if ok else ("partly holds" if fast or accurate else "does not hold"),
        f"chosen student {sp:.1f}x faster, {100 * sf:.0f}% of the size, mean accuracy "
        f"{100 * drop:+.1f}% below the teacher")]


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="distill", title="4. FRILL-style distillation into MobileNetV3 students",
              key="student", reference="teacher", quality="mean_accuracy", lower_better=False,
              findings=findings)
