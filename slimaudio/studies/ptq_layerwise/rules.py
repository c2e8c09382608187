"""The paper's claims, judged from the table by explicit rules (thresholds beside each rule;
the paper's numbers from slimaudio.papers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.formatting import interval
from slimaudio.papers import PTQ_LAYERWISE as PAPER
from slimaudio.papers import ptq_sensitivity_order
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, judge, table_row

BLOCKS = {"block1", "block2", "block3"}  # the SE-Res2Blocks
HALF_SIZE_RATIO = 0.6  # paper_choice "roughly halves the model": size ratio at most this
SMALL_EER_COST = 0.15  # ...at a small EER cost: the whole ΔEER interval below this many points
FASTER = 1.0           # full INT8 is faster: the whole speed-up interval above this


def _row(df: pd.DataFrame, value: str) -> pd.Series | None:
    return table_row(df, "quantized", value)


def _paper_choice() -> str:
    """The paper's proposal: '53% of the size, +0.07 points'."""
    size, eer = PAPER["size_mb"], PAPER["eer"]
    return (f"{size['paper_choice'] / size['none']:.0%} of the size, "
            f"{eer['paper_choice'] - eer['none']:+.2f} points")


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The study's findings from table.csv (metrics are not needed). Every rule reads the
    intervals: a claim holds only when its whole interval is on the paper's side."""
    df = table
    if df is None or "quantized" not in df:
        return [Finding("Per-layer PTQ study", "not measured", "no table.csv")]
    out = [*_sensitivity(df, "delta_eer", "ΔEER (points)", 3),
           *_sensitivity(df, "score_shift", "mean score shift ×1000", 2, scale=1000)]
    pc = _row(df, "paper_choice")
    if pc is not None:
        size_ok = number(pc["size_ratio"]) <= HALF_SIZE_RATIO
        verdict = (judge(*_iv(pc, "delta_eer")[1:], SMALL_EER_COST, "below") if size_ok
                   else "does not hold")
        out.append(Finding(
            "Quantizing every group but blocks 2 and 3 roughly halves the model at a small EER "
            f"cost (paper: {_paper_choice()})", verdict,
            f"size ratio {number(pc['size_ratio']):.2f} (at most {HALF_SIZE_RATIO}), ΔEER "
            f"{interval(*_iv(pc, 'delta_eer'), 3, sign=True)} points (at most {SMALL_EER_COST})"))
    allq = _row(df, "all")
    if allq is not None and "speedup" in df:
        out.append(Finding(
            "Full INT8 is faster than float in ONNX Runtime on this CPU",
            judge(*_iv(allq, "speedup")[1:], FASTER, "above"),
            f"speed-up {interval(*_iv(allq, 'speedup'), 2)}x over timing rounds, size ratio "
            f"{number(allq['size_ratio']):.2f}, ΔEER "
            f"{interval(*_iv(allq, 'delta_eer'), 3, sign=True)} points"))
    out += _speed_at_width(metrics)
    return out


def _speed_at_width(metrics: Mapping[str, Any]) -> list[Finding]:
    """Full INT8's speed-up at the widest ECAPA-TDNN timed (the paper's C=1024 in the paper
    profile), from the width table."""
    c = metrics.get("speedup_all_widest_channels")
    if c is None:
        return []
    v, lo, hi = (number(metrics.get(f"speedup_all_widest{s}")) for s in ("", "_lo", "_hi"))
    secs = number(metrics.get("speedup_all_widest_seconds"))
    return [Finding(f"Full INT8 is faster than float at C={c} ({secs:g} s input, random-weight "
                    "model of the paper's proportions)", judge(lo, hi, FASTER, "above"),
                    f"speed-up {interval(v, lo, hi, 2)}x; the width table in the PTQ report "
                    "has every width and length")]


def _iv(row: pd.Series, col: str, scale: float = 1.0) -> tuple[float, float, float]:
    """(value, lo, hi) of a column; NaN bounds when the table has no interval."""
    iv = stats.read(row, col, scale)
    return iv.value, iv.lo, iv.hi


def _sensitivity(df: pd.DataFrame, col: str, label: str, digits: int,
                 scale: float = 1.0) -> list[Finding]:
    """The two most sensitive groups are blocks: holds when the weaker of the two most
    sensitive blocks is above every other group's whole interval, does not hold when some
    other group is wholly above it, inconclusive when the intervals overlap."""
    groups = [g for g in PAPER["groups"] if _row(df, g) is not None and col in df]
    iv = {g: _iv(_row(df, g), col, scale) for g in groups}
    blocks = sorted((g for g in iv if g in BLOCKS), key=lambda g: iv[g][0], reverse=True)
    rest = [g for g in iv if g not in BLOCKS]
    if len(blocks) < 2 or not rest:
        return []
    second = iv[blocks[1]]
    if all(second[1] > iv[g][2] for g in rest):
        verdict = "holds"
    elif any(iv[g][1] > second[2] for g in rest):
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    return [Finding(
        f"The SE-Res2Blocks are the layers most sensitive to INT8, by {label} "
        f"(paper, by ΔEER: {ptq_sensitivity_order()})", verdict,
        ", ".join(f"{g} {interval(*iv[g], digits, sign=col.startswith('delta'))}"
                  for g in groups))]


# What the summary needs of this study: its title, its table's variant column, the reference
# variant, the quality column and direction, and the findings above.
STUDY = Study(name="ptq_layerwise",
              title="2. Per-layer INT8 post-training quantization of ECAPA-TDNN",
              key="quantized", reference="none", quality="eer", lower_better=True,
              findings=findings, stages=("ptq_layerwise",), sections=("ptq_layerwise",),
              key_metrics=("eer", "delta_eer", "min_dcf", "size_mib", "latency_ms", "speedup"),
              extra_roles=("errors", "op_profile", "ablation", "sensitivity_png", "size_png",
                           "speed", "speed_png"))
