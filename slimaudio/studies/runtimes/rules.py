"""Verdicts of the runtime comparison, each threshold beside its rule.

'Keeps its EER' uses the PWL study's tolerance (pwl_softmax.rules.ft_tolerance: 0.1 points or
5% of the EER, whichever is larger), as the pwl_int8 study does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.formatting import interval_of
from slimaudio.stats import number
from slimaudio.studies.base import Finding, Study, judge, table_row
from slimaudio.studies.pwl_softmax.rules import ft_tolerance

RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def faster(a: pd.Series, b: pd.Series) -> str:
    """Is `a` faster than `b`? Both speed-ups are against one reference in one interleaved
    run: decided when their intervals do not overlap."""
    sa, sb = stats.read(a, "speedup"), stats.read(b, "speedup")
    return "holds" if sa.lo > sb.hi else ("does not hold" if sa.hi < sb.lo else "inconclusive")


def findings(table: pd.DataFrame | None, metrics: Mapping[str, Any]) -> list[Finding]:
    if table is None or "variant" not in table:
        return [Finding("Runtimes side by side", "not measured", "no table.csv")]
    ref, ov8 = table_row(table, "variant", "ort_float"), table_row(table, "variant", "ov_int8")
    ort8 = table_row(table, "variant", "ort_int8")
    if ref is None or ov8 is None or ort8 is None:
        return [Finding("Runtimes side by side", "not measured", "no ORT/OpenVINO rows")]
    tol = ft_tolerance(number(ref["eer"]))
    d, s = stats.read(ov8, "delta_eer"), stats.read(ov8, "speedup")
    out = [Finding(f"OpenVINO INT8 (NNCF) keeps the EER of ORT float (ΔEER below {tol:.2f} "
                   "points)", judge(d.lo, d.hi, tol, "below"),
                   f"ΔEER {interval_of(d, 2, True)} points"),
           Finding("OpenVINO INT8 runs faster than ORT float at the trained width",
                   judge(s.lo, s.hi, 1.0, "above"), f"{interval_of(s, 2)}x"),
           Finding("OpenVINO INT8 runs faster than ORT INT8 at the trained width",
                   faster(ov8, ort8),
                   f"{interval_of(s, 2)}x vs {interval_of(stats.read(ort8, 'speedup'), 2)}x "
                   "over ORT float")]
    wide = table[~table["trained"].astype(bool)]
    if not wide.empty:
        c = int(wide["channels"].max())
        a, b = table_row(table, "variant", f"c{c}/ov_int8"), table_row(table, "variant",
                                                                         f"c{c}/ort_int8")
        if a is not None and b is not None:
            out.append(Finding(f"OpenVINO INT8 runs faster than ORT INT8 at C={c}", faster(a, b),
                               f"{interval_of(stats.read(a, 'speedup'), 2)}x vs "
                               f"{interval_of(stats.read(b, 'speedup'), 2)}x over ORT float"))
    return out


STUDY = Study(name="runtimes", title="6. Beyond the papers: the runtimes users ship",
              key="variant", reference="ort_float", quality="eer", lower_better=True,
              findings=findings, stages=("runtimes",),
              sections=(),  # reads ptq_layerwise's: the same models, calibration and trials
              key_metrics=("speedup", "eer", "delta_eer", "size_mib", "latency_ms"),
              extra_roles=())
