"""What the study measured, as the report modules read it (run.run_study fills it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.compress.budget_walk import WalkResult
from slimaudio.speaker.ptq_bench import Row

COLUMNS = ["quantized", "weight_bits",
           *[c for n in ("eer", "delta_eer", "score_shift", "min_dcf", "delta_min_dcf")
             for c in stats.column_names(n)],
           "size_bytes", "size_mib", "packed_bytes", "size_ratio", "latency_ms",
           *stats.column_names("speedup")]


@dataclass(frozen=True)
class StudyResult:
    rows: dict[str, Row]            # none, every <group>_w<bits>, then mixed_precision if chosen
    int8: dict[str, Row]            # each group's INT8 row (the per-layer study's), re-scored
    groups: tuple[str, ...]         # the layer groups, in network order
    bit_groups: tuple[str, ...]     # those with static weights to requantize (bitwidth.bit_groups)
    widths: tuple[int, ...]         # the weight widths below 8, widest first
    walk: WalkResult | None         # the mixed-precision walk (None: max_verify 0)
    float_bytes: float              # the float model's parameter bytes on the walk's scale
    ordering: dict[str, dict[str, list[float]]]  # bitwidth.ordering
    info: dict[str, Any]
    timings: dict[str, float]

    def table(self) -> pd.DataFrame:
        recs = [{"quantized": r.name, **{c: r.metrics.get(c) for c in COLUMNS[1:]}}
                for r in self.rows.values()]
        return pd.DataFrame(recs, columns=COLUMNS)
