"""What the study measured, as the runner returns it and the report reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class StudyResult:
    table: pd.DataFrame
    diagnostics: dict[str, Any]
    scores: dict[str, np.ndarray] = field(default_factory=dict)
