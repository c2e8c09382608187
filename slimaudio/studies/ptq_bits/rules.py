"""The paper's ordering claim judged where sub-8-bit weights make the effects large enough to
see (the paper's numbers from slimaudio.papers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from slimaudio.formatting import interval
from slimaudio.papers import ptq_sensitivity_order
from slimaudio.studies.base import Finding, Study


def ordering_verdict(pairs: Mapping[str, Sequence[float]]) -> str:
    """'focus group more sensitive than every other', from paired differences [v, lo, hi]
    (focus minus other): holds when every interval is above 0, does not hold when some
    interval is wholly below 0, inconclusive otherwise."""
    if not pairs:
        return "not measured"
    if all(lo > 0 for _, lo, _ in pairs.values()):
        return "holds"
    return "does not hold" if any(hi < 0 for _, _, hi in pairs.values()) else "inconclusive"


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    """The paper's ordering (blocks 2 and 3 the most sensitive) at each weight width, from the
    paired EER differences in metrics.json."""
    order = metrics.get("ordering")
    if order is None:
        return [Finding("Sub-8-bit weights per layer group", "not measured",
                        "no metrics.json")]
    out = []
    for w, pairs in order.items():
        out.append(Finding(
            f"Blocks 2 and 3 are more sensitive than every other group with {w.removeprefix('w')}"
            f"-bit weights (paper: {ptq_sensitivity_order()} at INT8)", ordering_verdict(pairs),
            "paired EER differences " + ", ".join(
                f"{k} {interval(*v, 2, sign=True)}" for k, v in pairs.items()) + " points"))
    return out


STUDY = Study(name="ptq_bits",
              title="7. Beyond the papers: sub-8-bit weights and mixed precision per layer group",
              key="quantized", reference="none", quality="eer", lower_better=True,
              findings=findings, stages=("ptq_bits",), sections=("ptq_bits",),
              key_metrics=("eer", "delta_eer", "weight_bits", "packed_bytes", "size_mib",
                           "speedup"),
              extra_roles=("mixed_png",))
