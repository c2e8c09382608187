"""The study's verdict rules: the paper's Table 2 claims judged on our table.

Every verdict reads an interval (the paired clip bootstrap of the table's `delta_f1_*` and
`f1_ratio_*` columns) through studies.base.judge: holds, does not hold, or inconclusive when
the interval straddles the threshold. Thresholds stand beside their rule; the paper's numbers
come from slimaudio.papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import papers, runtime, stats
from slimaudio.formatting import interval_of, num
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, combine, judge, table_row

_PAPER = papers.TFLITE_QUANT
# variant, the paper's claim, the F1 drop from `basic` the claim tolerates. The claim holds
# when the whole paired ΔF1 interval lies above -tolerance, does not hold when the whole
# interval lies below it, and is inconclusive when the interval straddles it.
KEEPS_F1 = (
    ("float16", f"float16 keeps F1 at about half the size (paper: {_PAPER['f1']['float16']:.3f} "
                f"at {_PAPER['size_mb']['float16']:.0f} MB)", 0.01),
    ("dynamic_range", "Dynamic-range quantization nearly keeps F1 at a quarter of the size "
                      f"(paper: {_PAPER['f1']['dynamic_range']:.3f} at "
                      f"{_PAPER['size_mb']['dynamic_range']:.0f} MB)", 0.05),
)
COLLAPSE_CLAIM = (f"Integer quantization collapses F1 (paper: int {_PAPER['f1']['int']:.2f}, "
                  f"full-int {_PAPER['f1']['full_int']:g})")
# An F1 below this fraction of basic's counts as collapsed: the claim holds for a variant when
# the whole interval of its paired F1 ratio to basic (`f1_ratio`) lies below it, does not hold
# when the whole interval lies above it; the claim is about both variants (base.combine:
# holds when both hold, partly holds when they split, inconclusive otherwise).
COLLAPSED_BELOW = 0.5
COLLAPSE_VARIANTS = ("int", "full_int")
# Integer quantization is faster when the whole speed-up interval (basic / variant, over timing
# processes and rounds) lies above 1. Whether it is depends on the CPU: with an int8 dot product
# (VNNI, AMX) XNNPACK's int8 kernels outrun float32; on AVX2 alone they barely match it.
FASTER = 1.0


def _cell(r: pd.Series, col: str) -> float:
    return number(r.get(col))


def _iv(r: pd.Series, col: str, sign: bool = False) -> str:
    """Column `col` of a row with its interval (`col`_lo, `col`_hi), e.g. '-0.006 [-0.015, +0.003]'."""
    return interval_of(stats.read(r, col), 3, sign)


def _keeps_finding(r: pd.Series, basic: pd.Series, claim: str, tol: float) -> Finding:
    """float16 / dynamic range: the paired ΔF1 interval against -tol."""
    verdict = judge(_cell(r, "delta_f1_lo"), _cell(r, "delta_f1_hi"), -tol, "above")
    size = _cell(r, "size_bytes") / _cell(basic, "size_bytes")
    ev = (f"ΔF1 vs basic {_iv(r, 'delta_f1', True)} against a tolerated drop of {tol:.3f}; "
          f"F1 {_iv(r, 'f1')} vs basic {_iv(basic, 'f1')}; size {num(size, 2)} of basic")
    return Finding(claim, verdict, ev)


def _ratio_text(r: pd.Series) -> str:
    return f"F1 {num(_cell(r, 'f1'))}, {_iv(r, 'f1_ratio')} of basic's"


def collapse_finding(df: pd.DataFrame) -> Finding | None:
    """int and full-int (inputs quantized correctly): each paired F1-ratio interval against
    COLLAPSED_BELOW; the naive input path is evidence, not judged."""
    rows = {v: table_row(df, "variant", v) for v in (*COLLAPSE_VARIANTS, "full_int_naive")}
    if any(rows[v] is None for v in COLLAPSE_VARIANTS):
        return None
    verdicts = [judge(_cell(rows[v], "f1_ratio_lo"), _cell(rows[v], "f1_ratio_hi"),
                      COLLAPSED_BELOW, "below") for v in COLLAPSE_VARIANTS]
    ev = (f"int {_ratio_text(rows['int'])}, full-int {_ratio_text(rows['full_int'])} "
          f"(collapsed: below {COLLAPSED_BELOW:g}), with inputs quantized by the model's "
          f"scale and zero point")
    if rows["full_int_naive"] is not None:
        ev += f"; the same full-int model fed raw floats: {_ratio_text(rows['full_int_naive'])}"
    return Finding(COLLAPSE_CLAIM, combine(verdicts), ev)


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """float16 and dynamic range keep F1 at a fraction of the size; integer quantization
    collapses F1 (judged with correctly quantized inputs, the naive path as evidence). Each
    verdict reads the paired clip-bootstrap intervals of the table; without them, inconclusive."""
    df = table
    if df is None or "variant" not in df:
        return [Finding("TFLite quantization study", "not measured", "no table.csv")]
    basic = table_row(df, "variant", "basic")
    if basic is None:
        return [Finding("TFLite quantization study", "not measured", "no basic row")]
    out: list[Finding] = []
    for v, claim, f1_tol in KEEPS_F1:
        r = table_row(df, "variant", v)
        if r is not None:
            out.append(_keeps_finding(r, basic, claim, f1_tol))
    collapse = collapse_finding(df)
    if collapse is not None:
        out.append(collapse)
    speed = speed_finding(df, metrics)
    if speed is not None:
        out.append(speed)
    return out


def speed_finding(df: pd.DataFrame, metrics: Mapping[str, Any]) -> Finding | None:
    """int and full-int faster than basic: each speed-up interval against FASTER; the claim is
    the CPU's, so the claim names whether it has an int8 dot product."""
    rows = {v: table_row(df, "variant", v) for v in COLLAPSE_VARIANTS}
    if any(r is None or "speedup_lo" not in r for r in rows.values()):
        return None
    cpu = metrics.get("diagnostics", {}).get("cpu", {})
    dot = runtime.int8_dot_flags(cpu)
    where = (f"a CPU with an int8 dot product ({', '.join(dot)})" if dot else
             "a CPU without an int8 dot product (no VNNI/AMX)")
    verdict = combine([judge(_cell(r, "speedup_lo"), _cell(r, "speedup_hi"), FASTER, "above")
                       for r in rows.values()])
    return Finding(f"Integer quantization runs faster than basic in LiteRT on {where}", verdict,
                   ", ".join(f"{v} {_iv(r, 'speedup')}x" for v, r in rows.items())
                   + " basic's speed (XNNPACK, batch 1); the CPU decides this result")


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
def _runtime(variant: str) -> str | None:
    """The Keras original (variants.ORIGINAL, not imported here: that module pulls in the
    converters) runs in TensorFlow; every other row in LiteRT."""
    return "TensorFlow" if variant == "original" else None


STUDY = Study(name="tflite_quant", title="3. TFLite quantization of a ResNet50 sound-event classifier",
              key="variant", reference="basic", quality="f1", lower_better=False,
              findings=findings, stages=("train_resnet", "tflite_quant"),
              sections=("resnet", "tflite_quant"),
              key_metrics=("f1", "accuracy", "precision", "recall", "size_mib", "latency_ms"),
              extra_roles=("size_plot", "latency_plot"), runtime="LiteRT (XNNPACK)",
              runtime_of=_runtime)
