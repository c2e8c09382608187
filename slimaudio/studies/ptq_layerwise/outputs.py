"""The study's numbers as the stage writes and logs them: metrics.json, the errors table and
what MLflow gets per row (report.build assembles them with the prose and figures)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from slimaudio.studies.ptq_layerwise.error_analysis import rank_correlations
from slimaudio.studies.ptq_layerwise.result import StudyResult
from slimaudio.studies.ptq_layerwise.speed_report import speed_finding

# What MLflow gets per row (one child run each) and per ablation variant (on the stage run).
ROW_KEYS = ("eer", "eer_lo", "eer_hi", "delta_eer", "delta_eer_lo", "delta_eer_hi", "min_dcf",
            "min_dcf_lo", "min_dcf_hi", "delta_min_dcf", "delta_min_dcf_lo", "delta_min_dcf_hi",
            "min_dcf_p05", "score_shift", "score_shift_lo", "score_shift_hi", "size_bytes",
            "size_mib", "size_ratio", "latency_ms", "latency_p90_ms", "speedup", "speedup_lo",
            "speedup_hi", "emb_cos")
HEADLINE_ROWS = ("all", "paper_choice", "proposed", "dynamic", "float16")  # those made


def metrics_summary(res: StudyResult) -> dict[str, Any]:
    """metrics.json: the headline figures, every row, the search, the machine and timing."""
    r = res.rows
    out: dict[str, Any] = {
        "eer_none": r["none"].metrics["eer"],
        "size_bytes_none": r["none"].metrics["size_bytes"],
        "latency_ms_none": r["none"].metrics["latency_ms"],
        "runtime_s": res.timings["total"],
        "timings_s": res.timings,
        "machine": res.info,
        "proposed_groups": res.search.groups,
        "search": res.search.as_dict(),
        "delta_eer_resolution": resolution(res),
    }
    for n in (n for n in HEADLINE_ROWS if n in r):
        m = r[n].metrics
        out |= {f"{k}_{n}": m[k] for k in ("eer", "delta_eer", "size_ratio", "speedup")}
    out["rows"] = {n: row.metrics for n, row in r.items()}
    out["ablation"] = {a["variant"]: {k: a[k] for k in ROW_KEYS
                                      if isinstance(a.get(k), float) and math.isfinite(a[k])}
                       for a in res.ablation}
    out |= speed_finding(res.speed)
    out |= rank_correlations(res.errors, {g: row.metrics["delta_eer"] for g, row in r.items()})
    return out


def resolution(res: StudyResult) -> float:
    """The smallest ΔEER the trial list resolves: the median half-width of the per-group
    paired ΔEER intervals (points)."""
    hw = [(res.rows[g].metrics["delta_eer_hi"] - res.rows[g].metrics["delta_eer_lo"]) / 2
          for g in res.groups]
    return float(pd.Series(hw).median())


def errors_table(res: StudyResult) -> pd.DataFrame:
    return pd.DataFrame([{"group": e.group, "delta_eer": res.rows[e.group].metrics["delta_eer"],
                          "out_rel_err": e.out_rel_err, "emb_rel_err": e.emb_rel_err,
                          "emb_cos": e.emb_cos, "weight_sqnr_db": e.weight_sqnr_db,
                          "n_nodes": res.n_nodes[e.group], "tensors": " ".join(e.tensors)}
                         for e in res.errors])
