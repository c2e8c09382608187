"""What the study measured, as the runner returns it and the report reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from slimaudio.speaker.evaluate import Verification
from slimaudio.studies.pwl_softmax.variants import Variant


@dataclass
class StudyResult:
    table: pd.DataFrame
    rows: dict[str, dict[str, Any]]
    after: dict[str, Verification]   # baseline (no FT), the control and methods after FT
    ft_curves: dict[str, list[dict[str, float]]]
    latency: pd.DataFrame
    onnx: dict[str, bytes]
    seconds: dict[str, float]
    variants: list[Variant]
