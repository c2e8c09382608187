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

The verdicts (studies.base.judge) respect the intervals: holds when the whole interval is on
the paper's side of the budget, does not hold when it is wholly on the other, inconclusive
when it straddles it. Speed: the speed-up's bootstrap interval over interleaved timing rounds
against FRILL's 10x; size: the file sizes (exact, no interval); accuracy: the paired
speaker-bootstrap interval of the share of the teacher's mean accuracy the final student keeps
against 1 - FRILL's 5%; the regression's directions: a weight's t interval against 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import papers
from slimaudio.formatting import interval
from slimaudio.metrics import MIB
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, judge

FRILL = papers.FRILL
SPEED_CLAIM = (f"A distilled student is much faster and smaller than the teacher (paper: "
               f"{FRILL['speedup']:.0f}x faster, {100 * FRILL['size_fraction']:.0f}% of the size;"
               f" budget: at least {FRILL['min_speedup']:.0f}x faster, at most "
               f"{100 * FRILL['size_fraction']:.0f}% of the size)")
ACCURACY_CLAIM = (f"The distilled student costs little accuracy (paper: about "
                  f"{100 * FRILL['accuracy_drop']:.0f}%"
                  f" less accurate; budget: at least {100 * (1 - FRILL['max_accuracy_drop']):.0f}%"
                  " of the teacher's mean probe accuracy kept)")
NO_EFFECT = 0.0  # a regression weight's sign holds only when its interval excludes 0
# FRILL's regression findings as directions of our standardised weights (grid.encode: a
# positive weight means larger / on / GAP; a smaller bottleneck is more compression). The
# paper's rankings ('the most', 'the least') are not judged, only each weight's sign.
# (target, hyperparameter, want, claim)
REGRESSION_CLAIMS = (
    ("latency", "qat", "below", "QAT cuts latency"),
    ("latency", "log2_bottleneck", "above",
     "Bottleneck compression cuts latency (latency grows with the bottleneck)"),
    ("latency", "pool_gap", "below", "Global average pooling cuts latency"),
    ("quality", "log2_bottleneck", "above",
     "Bottleneck compression costs quality (accuracy grows with the bottleneck)"),
    ("size", "width", "above", "The width multiplier adds size"),
)


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


def combine(verdicts: list[str]) -> str:
    """All parts of a claim must hold: any part that does not hold sinks it, any
    inconclusive part leaves it inconclusive."""
    for v in ("does not hold", "inconclusive"):
        if v in verdicts:
            return v
    return "holds"


def speed_finding(m: Mapping[str, Any]) -> Finding:
    sp, lo, hi, sf = (number(m.get(k)) for k in ("chosen_speedup", "chosen_speedup_lo",
                                               "chosen_speedup_hi", "chosen_size_fraction"))
    verdict = combine([judge(lo, hi, FRILL["min_speedup"], "above"),
                       judge(sf, sf, FRILL["size_fraction"], "below")])
    return Finding(SPEED_CLAIM, verdict,
                   f"final student {interval(sp, lo, hi, 1)}x faster (bootstrap over "
                   f"interleaved timing rounds), {100 * sf:.0f}% of the size")


def accuracy_finding(m: Mapping[str, Any]) -> Finding:
    keep, lo, hi = (number(m.get(f"chosen_accuracy_retention{s}")) for s in ("", "_lo", "_hi"))
    d, dlo, dhi = (number(m.get(f"chosen_delta_mean_accuracy{s}")) for s in ("", "_lo", "_hi"))
    verdict = judge(lo, hi, 1.0 - FRILL["max_accuracy_drop"], "above")
    return Finding(ACCURACY_CLAIM, verdict,
                   f"final student keeps {interval(100 * keep, 100 * lo, 100 * hi, 1)}% of the "
                   f"teacher's mean accuracy, a difference of {interval(d, dlo, dhi, 3, True)} "
                   "(paired bootstrap over probe speakers)")


def regression_findings(m: Mapping[str, Any]) -> list[Finding]:
    """Each of FRILL's regression directions judged on its weight's t interval."""
    weights, dof = m.get("regression", {}), number(m.get("regression_dof"))
    out = []
    for target, hp, want, claim in REGRESSION_CLAIMS:
        w = weights.get(target, {}).get(hp)
        if w is None:
            out.append(Finding(claim, "not measured", f"{hp} does not vary in this design"))
            continue
        v, lo, hi = (number(w.get(k)) for k in ("weight", "lo", "hi"))
        out.append(Finding(claim, judge(lo, hi, NO_EFFECT, want),
                           f"{target} weight {interval(v, lo, hi, 4, True)} per standard "
                           f"deviation of {hp}, {dof:.0f} residual degrees of freedom"))
    return out


def findings(df: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The paper's claims judged on the final student and the grid's regression."""
    if df is None or "latency_ms" not in df:
        return [Finding("Distillation study", "not measured", "no table.csv")]
    if math.isnan(number(metrics.get("chosen_speedup"))):
        return [Finding(SPEED_CLAIM, "not measured", "metrics.json has no chosen_speedup")]
    return [speed_finding(metrics), accuracy_finding(metrics), *regression_findings(metrics)]


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="distill", title="4. FRILL-style distillation into MobileNetV3 students",
              key="student", reference="teacher", quality="mean_accuracy", lower_better=False,
              findings=findings,
              stages=("train_teacher", "distill_targets", "distill_student", "distill_select",
                      "distill_final", "distill_report"),
              sections=("train_teacher", "distill", "distill_grid", "distill_student",
                        "distill_select", "distill_final", "distill_report"),
              key_metrics=("mean_accuracy", "size_mib", "latency_ms", "speedup",
                           "accuracy_retention"),
              extra_roles=("regression", "pareto"), runtime="LiteRT (XNNPACK)",
              runtime_of=lambda v: "ONNX Runtime" if v == "teacher" else None)
