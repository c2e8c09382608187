"""The automatic choice of `proposed`: which groups to quantize under the EER budget.

The budgeted walk of slimaudio.compress.budget_walk over two options per group, float (32
bits) or INT8 (8), every configuration it reaches measured (the same walk that chooses bits
per group for mixed precision, over more options). Then a final check: any configuration
already measured as a row of its own (a group alone, `all`, `paper_choice`) that is within
the budget and smaller wins, so `proposed` is never a worse pick than a row in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slimaudio.compress.budget_walk import TOLERANCE, WalkResult

FLOAT, INT8 = 32, 8  # the walk's two options per group


@dataclass(frozen=True)
class Candidate:
    """A set of groups already measured: its name, groups, EER increase and file size."""

    source: str
    groups: Sequence[str]
    delta_eer: float
    size_bytes: float


@dataclass(frozen=True)
class Proposal:
    """How `proposed` was chosen: the walk, and the set the final check kept."""

    walk: WalkResult
    source: str               # "walk", or the already-measured row that replaced its pick
    groups: list[str]         # the groups `proposed` quantizes
    delta_eer: float | None   # their measured EER increase (None: nothing, the float model)

    @property
    def budget(self) -> float:
        return self.walk.budget

    def as_dict(self) -> dict[str, Any]:
        """What metrics.json records."""
        return {"budget": self.budget, "source": self.source, "groups": list(self.groups),
                "delta_eer": self.delta_eer, "walk": self.walk.as_dict()}


def int8_groups(config: dict[str, int], groups: Sequence[str]) -> list[str]:
    """The groups a walk configuration quantizes, in group order."""
    return [g for g in groups if config[g] == INT8]


def final_check(walked: Candidate | None, measured: Sequence[Candidate], budget: float,
                float_size: float) -> Candidate | None:
    """The walk's pick against every configuration already measured (each group alone, all,
    paper_choice): the smallest model within the budget wins; a tie keeps the earlier one.
    None: the walk's pick, and it is the float model (nothing chosen)."""
    best, best_size = walked, walked.size_bytes if walked else float_size
    for cand in measured:
        if cand.delta_eer > budget + TOLERANCE:
            continue
        if cand.size_bytes < best_size:
            best, best_size = cand, cand.size_bytes
    return best
