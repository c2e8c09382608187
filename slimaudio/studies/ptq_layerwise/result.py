"""What the study measured, as the report modules read it (the runner fills it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.speaker.groups import GROUPS
from slimaudio.speaker.ptq_bench import Row
from slimaudio.studies.ptq_layerwise.error_analysis import ActivationError
from slimaudio.studies.ptq_layerwise.search import Proposal

COLUMNS = ["quantized", "method",  # method: float, static, dynamic, static+dynamic, float16
           *[c for n in ("eer", "delta_eer", "score_shift", "min_dcf", "delta_min_dcf")
             for c in stats.column_names(n)],
           "size_bytes", "size_mib", "size_ratio", "latency_ms", *stats.column_names("speedup")]


@dataclass
class StudyResult:
    rows: dict[str, Row]
    search: Proposal
    errors: list[ActivationError]
    ablation: list[dict[str, Any]]
    profile: list[dict[str, Any]]
    timings: dict[str, float]
    n_nodes: dict[str, int]
    info: dict[str, Any]
    groups: tuple[str, ...] = GROUPS  # the layer groups (GroupMap.groups), in order
    speed: pd.DataFrame = field(default_factory=pd.DataFrame)  # width_speed.speed_table
    op_probe: list[dict[str, Any]] = field(default_factory=list)  # op_probe.run_op_probe

    def table(self) -> pd.DataFrame:
        recs = [{"quantized": r.name, "method": r.kind,
                 **{c: r.metrics.get(c) for c in COLUMNS[2:]}}
                for r in self.rows.values()]
        return pd.DataFrame(recs, columns=COLUMNS)
