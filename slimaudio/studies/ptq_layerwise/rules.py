"""The paper's claims, judged from the table by explicit rules (thresholds beside each rule;
the paper's numbers from slimaudio.papers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio.papers import PTQ_LAYERWISE as PAPER
from slimaudio.studies.base import Finding, Study, number, table_row

BLOCKS = {"block1", "block2", "block3"}  # the SE-Res2Blocks
HALF_SIZE_RATIO = 0.6  # paper_choice "roughly halves the model": size ratio at most this
SMALL_EER_COST = 0.15  # ...at a small EER cost: ΔEER at most this many points
FASTER = 1.0           # full INT8 is faster: speed-up above this


def _row(df: pd.DataFrame, value: str) -> pd.Series | None:
    return table_row(df, "quantized", value)




def _paper_order() -> str:
    """The paper's two most sensitive groups: 'block3 > block2 > the rest'."""
    eer = PAPER["eer"]
    top = sorted(PAPER["groups"], key=lambda g: eer[g], reverse=True)[:2]
    return f"{top[0]} > {top[1]} > the rest"


def _paper_choice() -> str:
    """The paper's proposal: '53% of the size, +0.07 points'."""
    size, eer = PAPER["size_mb"], PAPER["eer"]
    return (f"{size['paper_choice'] / size['none']:.0%} of the size, "
            f"{eer['paper_choice'] - eer['none']:+.2f} points")


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The study's findings from table.csv (metrics are not needed)."""
    df = table
    if df is None or "quantized" not in df:
        return [Finding("Per-layer PTQ study", "not measured", "no table.csv")]
    out = [*_sensitivity(df)]
    pc = _row(df, "paper_choice")
    if pc is not None:
        out.append(Finding(
            "Quantizing every group but blocks 2 and 3 roughly halves the model at a small EER "
            f"cost (paper: {_paper_choice()})",
            "holds" if (number(pc["size_ratio"]) <= HALF_SIZE_RATIO
                        and number(pc["delta_eer"]) <= SMALL_EER_COST) else "does not hold",
            f"size ratio {number(pc['size_ratio']):.2f}, EER {number(pc['delta_eer']):+.2f} points"))
    allq = _row(df, "all")
    if allq is not None and "speedup" in df:
        out.append(Finding(
            "Full INT8 is faster than float in ONNX Runtime on this CPU",
            "holds" if number(allq["speedup"]) > FASTER else "does not hold",
            f"speed-up {number(allq['speedup']):.2f}x, size ratio {number(allq['size_ratio']):.2f}, "
            f"EER {number(allq['delta_eer']):+.2f} points"))
    return out


def _sensitivity(df: pd.DataFrame) -> list[Finding]:
    """The blocks are the most sensitive: holds when the top two are blocks, partly when the
    most sensitive or one of the top two is."""
    groups = [g for g in PAPER["groups"] if _row(df, g) is not None]
    delta = {g: number(_row(df, g)["delta_eer"]) for g in groups}
    if not delta:
        return []
    top2 = sorted(delta, key=lambda g: delta[g], reverse=True)[:2]
    most = max(delta, key=lambda g: delta[g])
    verdict = ("holds" if most in BLOCKS and set(top2) <= BLOCKS else
               ("partly holds" if most in BLOCKS or set(top2) & BLOCKS else "does not hold"))
    return [Finding(
        f"The SE-Res2Blocks are the layers most sensitive to INT8 (paper: {_paper_order()})",
        verdict, "EER increase per group: " + ", ".join(f"{g} {delta[g]:+.2f}" for g in groups))]


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="ptq_layerwise",
              title="2. Per-layer INT8 post-training quantization of ECAPA-TDNN",
              key="quantized", reference="none", quality="eer", lower_better=True,
              findings=findings)
