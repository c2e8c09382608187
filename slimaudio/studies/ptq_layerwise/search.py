"""The automatic choice of `proposed`: the smallest model whose EER increase stays in budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOLERANCE = 1e-12  # a measured increase equal to the budget is within it


@dataclass
class SearchResult:
    """The greedy search for `proposed`, step by step (what metrics.json records)."""

    budget: float
    order: list[str]  # groups by saving per unit of EER loss, best first
    efficiency: dict[str, float]  # bytes saved per EER point lost (inf: no loss)
    predicted: list[str]  # the greedy pick under the additive prediction
    predicted_delta: float
    chosen: list[str]
    chosen_delta: float | None  # measured EER increase of `chosen` (None: the float model)
    steps: list[dict[str, Any]] = field(default_factory=list)
    source: str = "greedy"  # or the already-measured row that replaced it in the final check

    def as_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or np.isfinite(v) else "inf")
                for k, v in self.__dict__.items()} | {
            "efficiency": {g: (e if np.isfinite(e) else "inf") for g, e in self.efficiency.items()}}


class Verifier:
    """Measures a set of groups once (`verify` returns its EER increase) and records the step."""

    def __init__(self, verify: Callable[[tuple[str, ...]], float], budget: float,
                 steps: list[dict[str, Any]]) -> None:
        self.verify, self.budget, self.steps = verify, budget, steps
        self.seen: dict[tuple[str, ...], float] = {}

    def check(self, groups: list[str], action: str) -> float:
        key = tuple(sorted(groups))
        if key in self.seen:  # measured before (a back-off step): no second evaluation
            return self.seen[key]
        measured = self.seen[key] = float(self.verify(tuple(groups)))
        self.steps.append({"action": action, "groups": list(groups),
                           "measured_delta_eer": measured,
                           "within_budget": measured <= self.budget + TOLERANCE})
        return measured


def greedy_search(delta: Mapping[str, float], saving: Mapping[str, float], budget: float,
                  verify: Callable[[tuple[str, ...]], float]) -> SearchResult:
    """Pick the layer groups to quantize: smallest model whose EER increase stays in budget.

    1. Rank groups by saving per unit of EER loss (saving / max(delta, 0)); a group whose
       solo quantization did not raise the EER ranks first, larger saving first.
    2. Walk the ranking, adding a group while the summed solo increases (an additive
       prediction of the joint increase) stay within the budget.
    3. Verify: quantize the pick and measure its EER (`verify` returns the measured increase).
       While it exceeds the budget, back off by dropping the least efficient group left, and
       verify again. The empty set (the float model) is within any budget.
    4. Extend: the joint increase is rarely the sum, so once a set is verified, each group
       left out (in ranking order) whose solo increase still fits next to the measured one is
       added and verified in turn, and kept when the measurement stays within the budget.
    """
    groups = [g for g in delta if g in saving]
    eff = {g: (float("inf") if delta[g] <= 0 else saving[g] / delta[g]) for g in groups}
    order = sorted(groups, key=lambda g: (-eff[g], -saving[g]))
    pick: list[str] = []
    predicted = 0.0
    for g in order:
        cost = max(float(delta[g]), 0.0)
        if saving[g] > 0 and predicted + cost <= budget + TOLERANCE:
            pick.append(g)
            predicted += cost
    res = SearchResult(budget=budget, order=order, efficiency=eff, predicted=list(pick),
                       predicted_delta=predicted, chosen=[], chosen_delta=None)
    verifier = Verifier(verify, budget, res.steps)
    _verify_or_back_off(res, pick, verifier)
    _extend(res, delta, saving, verifier)
    return res


def _verify_or_back_off(res: SearchResult, pick: list[str], verifier: Verifier) -> None:
    current = list(pick)
    while current:
        measured = verifier.check(current, "verify" if current == pick else "back off")
        if measured <= res.budget + TOLERANCE:
            res.chosen, res.chosen_delta = list(current), measured
            return
        current = current[:-1]  # back off: drop the least efficient group


def _extend(res: SearchResult, delta: Mapping[str, float], saving: Mapping[str, float],
            verifier: Verifier) -> None:
    base = res.chosen_delta if res.chosen_delta is not None else 0.0
    for g in res.order:
        if g in res.chosen or saving[g] <= 0 or base + max(delta[g], 0.0) > res.budget + TOLERANCE:
            continue
        measured = verifier.check([*res.chosen, g], "extend")
        if measured <= res.budget + TOLERANCE:
            res.chosen, res.chosen_delta, base = [*res.chosen, g], measured, measured


@dataclass(frozen=True)
class Candidate:
    """A set of groups already measured: its name, groups, EER increase and file size."""

    source: str
    groups: Sequence[str]
    delta_eer: float
    size_bytes: float


def final_check(greedy: Candidate | None, measured: Sequence[Candidate], budget: float,
                float_size: float) -> Candidate | None:
    """The greedy pick against every configuration already measured (each group alone, all,
    paper_choice): the smallest model within the budget wins; a tie keeps the earlier one.
    None: the greedy pick, and it is the float model (nothing chosen)."""
    best, best_size = greedy, greedy.size_bytes if greedy else float_size
    for cand in measured:
        if cand.delta_eer > budget + TOLERANCE:
            continue
        if cand.size_bytes < best_size:
            best, best_size = cand, cand.size_bytes
    return best
