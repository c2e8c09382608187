"""The study's verdict rules: the paper's Table 2 claims judged on our table.

Thresholds stand beside their rule; the paper's numbers come from slimaudio.papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import papers
from slimaudio.studies.base import Finding, Study, number, table_row

_PAPER = papers.TFLITE_QUANT
# variant, the paper's claim, the F1 drop from `basic` the claim tolerates
KEEPS_F1 = (
    ("float16", f"float16 keeps F1 at about half the size (paper: {_PAPER['f1']['float16']:.3f} "
                f"at {_PAPER['size_mb']['float16']:.0f} MB)", 0.01),
    ("dynamic_range", "Dynamic-range quantization nearly keeps F1 at a quarter of the size "
                      f"(paper: {_PAPER['f1']['dynamic_range']:.3f} at "
                      f"{_PAPER['size_mb']['dynamic_range']:.0f} MB)", 0.05),
)
COLLAPSE_CLAIM = (f"Integer quantization collapses F1 (paper: int {_PAPER['f1']['int']:.2f}, "
                  f"full-int {_PAPER['f1']['full_int']:g})")
COLLAPSED_BELOW = 0.5  # an F1 below half of basic's counts as collapsed






def _collapse_finding(df: pd.DataFrame, f1b: float) -> Finding | None:
    ints = {v: table_row(df, "variant", v) for v in ("int", "full_int", "full_int_naive")}
    if ints["int"] is None or ints["full_int"] is None:
        return None
    f_int, f_full = number(ints["int"]["f1"]), number(ints["full_int"]["f1"])
    collapsed = f_int < COLLAPSED_BELOW * f1b and f_full < COLLAPSED_BELOW * f1b
    ev = (f"int F1 {f_int:.3f}, full-int F1 {f_full:.3f} with inputs quantized by the model's "
          f"scale and zero point")
    if ints["full_int_naive"] is not None:
        ev += f"; the same full-int model fed raw floats scores {number(ints['full_int_naive']['f1']):.3f}"
    return Finding(COLLAPSE_CLAIM,
                   "holds" if collapsed else "does not hold when inputs are quantized correctly", ev)


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """float16 and dynamic range keep F1 at a fraction of the size; integer quantization
    collapses F1 (judged with correctly quantized inputs, the naive path as evidence)."""
    df = table
    if df is None or "variant" not in df:
        return [Finding("TFLite quantization study", "not measured", "no table.csv")]
    basic = table_row(df, "variant", "basic")
    if basic is None:
        return [Finding("TFLite quantization study", "not measured", "no basic row")]
    f1b, sizeb = number(basic["f1"]), number(basic["size_bytes"])
    out: list[Finding] = []
    for v, claim, f1_tol in KEEPS_F1:
        r = table_row(df, "variant", v)
        if r is None:
            continue
        kept = number(r["f1"]) >= f1b - f1_tol
        out.append(Finding(claim, "holds" if kept else "does not hold",
                           f"F1 {number(r['f1']):.3f} vs basic {f1b:.3f}, "
                           f"size {number(r['size_bytes']) / sizeb:.2f} of basic"))
    collapse = _collapse_finding(df, f1b)
    if collapse is not None:
        out.append(collapse)
    return out


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="tflite_quant", title="3. TFLite quantization of a ResNet50 sound-event classifier",
              key="variant", reference="basic", quality="f1", lower_better=False,
              findings=findings)
