"""What the study measured, as the runner returns it and the report reads it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

QUANTIZED = ("float", "all", "all_ops")


@dataclass
class StudyResult:
    table: pd.DataFrame
    methods: list[str]
    reference: str
    winner: str             # the non-reference method whose all_ops model has the lowest EER
    paths: dict[str, Path]  # variant -> its ONNX file
    seconds: dict[str, float]
