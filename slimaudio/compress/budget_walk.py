"""A budgeted greedy walk over per-group options: bits per layer group under an error budget,
every configuration it reaches measured, not predicted.

In the manner of AIMET's automatic mixed precision. The options are bit widths, most precise
first (32: the group stays float; 8: INT8; below: sub-8-bit weights); the PTQ study walks
(32, 8) to choose which groups to quantize (`proposed`) and (32, 8, 4, 2) for mixed precision.
The sensitivity of each group at each option is measured alone first (`solo_delta`), then:

1. Start with every group at the first option; verify it (its measured increase anchors every
   prediction).
2. Candidate moves from the current (last accepted) configuration: lower one group by one
   option. Score = size saving / max(solo increase, eps), the solo increase being
   solo_delta[(g, new)] - solo_delta[(g, old)]: a move that costs nothing by the solo
   measurements ranks first (larger saving first); moves saving no bytes are not made.
3. Take the best move and verify the new configuration. Within the budget: accept it and go
   on from it. Over: refuse that move (that group at those bits) for good, and try the next
   best from the configuration accepted before.
   With `prune`, a move whose additive prediction (measured increase of the current
   configuration + the solo increase) already exceeds the budget is refused unmeasured.
4. Stop when no move is left or `max_verify` configurations have been measured.

`verify` is cached by configuration (`cache` may be shared between calls, e.g. for several
budgets). The result keeps every verified configuration, the Pareto front of size against
measured increase over them, and `chosen`: the smallest verified configuration within the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slimaudio.errors import ParamError

EPS = 1e-12  # the solo increase a free move is scored with (saving / EPS: ranks first)
TOLERANCE = 1e-12  # a measured increase equal to the budget is within it

ConfigKey = tuple[int, ...]  # bits per group, in `groups` order


@dataclass
class WalkStep:
    """One verified configuration of the walk."""

    config: dict[str, int]
    move: tuple[str, int] | None  # (group, its new bits); None for the start
    predicted_delta: float | None  # measured increase of the config it came from + solo increase
    measured_delta: float
    size: float
    accepted: bool

    def as_dict(self) -> dict[str, Any]:
        return {"config": dict(self.config), "move": list(self.move) if self.move else None,
                "predicted_delta_eer": (None if self.predicted_delta is None
                                        else _finite(self.predicted_delta)),
                "measured_delta_eer": _finite(self.measured_delta), "size_bytes": self.size,
                "accepted": self.accepted}


@dataclass
class WalkResult:
    budget: float
    groups: list[str]
    bit_options: list[int]
    steps: list[WalkStep] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # moves refused (g, bits)
    verify_calls: int = 0  # evaluations this run made (cache hits excluded)

    @property
    def front(self) -> list[WalkStep]:
        """Verified configurations no other one beats on both size and measured increase,
        by size (a tie on both keeps the first measured)."""
        return pareto_front(self.steps)

    @property
    def chosen(self) -> WalkStep | None:
        """The smallest verified configuration within the budget (None: none is)."""
        ok = [s for s in self.steps if s.measured_delta <= self.budget + TOLERANCE]
        return min(ok, key=lambda s: (s.size, s.measured_delta)) if ok else None

    def as_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {"budget": self.budget, "groups": list(self.groups),
                "bit_options": list(self.bit_options),
                "steps": [s.as_dict() for s in self.steps],
                "refused": [list(m) for m in self.refused],
                "front": [s.as_dict() for s in self.front],
                "chosen": chosen.as_dict() if chosen else None,
                "verify_calls": self.verify_calls}


def _finite(x: float) -> float | str:
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")


def pareto_front(steps: Sequence[WalkStep]) -> list[WalkStep]:
    """Non-dominated steps (smaller size and smaller measured increase both better), by size."""
    front: list[WalkStep] = []
    for s in sorted(steps, key=lambda s: (s.size, s.measured_delta)):  # stable: first kept
        if not front or s.measured_delta < front[-1].measured_delta:
            front.append(s)
    return front


def _validate(groups: Sequence[str], bit_options: Sequence[int],
              solo_delta: Mapping[tuple[str, int], float], max_verify: int) -> None:
    if not groups or len(set(groups)) != len(groups):
        raise ParamError(f"groups must be non-empty and distinct, got {list(groups)}")
    if not bit_options or any(a <= b for a, b in zip(bit_options, bit_options[1:], strict=False)):
        raise ParamError(f"bit_options must be strictly descending, got {list(bit_options)}")
    if max_verify < 1:
        raise ParamError(f"max_verify must be at least 1, got {max_verify}")
    missing = [(g, b) for g in groups for b in bit_options[1:] if (g, b) not in solo_delta]
    if missing:
        raise ParamError(f"solo_delta has no entry for {missing[0]}")


class _Walk:
    """The state of the greedy walk: cached verification, recorded steps."""

    def __init__(self, groups: Sequence[str], bit_options: Sequence[int],
                 solo_delta: Mapping[tuple[str, int], float],
                 size_of: Callable[[dict[str, int]], float],
                 verify: Callable[[dict[str, int]], float],
                 cache: MutableMapping[ConfigKey, float], res: WalkResult) -> None:
        self.groups, self.options = list(groups), list(bit_options)
        self.solo, self.size_of, self.verify_fn = solo_delta, size_of, verify
        self.cache, self.res = cache, res
        self.sizes: dict[ConfigKey, float] = {}

    def key(self, config: Mapping[str, int]) -> ConfigKey:
        return tuple(config[g] for g in self.groups)

    def size(self, config: dict[str, int]) -> float:
        k = self.key(config)
        if k not in self.sizes:
            self.sizes[k] = float(self.size_of(dict(config)))
        return self.sizes[k]

    def solo_at(self, group: str, bits: int) -> float:
        # the top option is the reference: absent means no increase of its own
        return float(self.solo.get((group, bits), 0.0)) if bits == self.options[0] else float(
            self.solo[(group, bits)])

    def measure(self, config: dict[str, int], move: tuple[str, int] | None,
                predicted: float | None) -> WalkStep:
        k = self.key(config)
        if k not in self.cache:
            self.cache[k] = float(self.verify_fn(dict(config)))
            self.res.verify_calls += 1
        step = WalkStep(dict(config), move, predicted, self.cache[k], self.size(config),
                         self.cache[k] <= self.res.budget + TOLERANCE)
        self.res.steps.append(step)
        return step

    def moves(self, config: dict[str, int], refused: set[tuple[str, int]]
              ) -> list[tuple[float, float, str, int, float]]:
        """(score, saving, group, new bits, solo increase) of each move, best first."""
        here = self.size(config)
        out = []
        for i, g in enumerate(self.groups):
            k = self.options.index(config[g])
            if k + 1 >= len(self.options) or (g, self.options[k + 1]) in refused:
                continue
            new = self.options[k + 1]
            saving = here - self.size({**config, g: new})
            if saving <= 0:
                continue
            inc = self.solo_at(g, new) - self.solo_at(g, config[g])
            out.append((saving / max(inc, EPS), saving, i, new, inc))
        out.sort(key=lambda m: (-m[0], -m[1], m[2]))  # ties: larger saving, then group order
        return [(s, sv, self.groups[i], b, inc) for s, sv, i, b, inc in out]


def walk(groups: Sequence[str], bit_options: Sequence[int],
         solo_delta: Mapping[tuple[str, int], float], size_of: Callable[[dict[str, int]], float],
         verify: Callable[[dict[str, int]], float], budget: float, max_verify: int,
         prune: bool = True, cache: MutableMapping[ConfigKey, float] | None = None
         ) -> WalkResult:
    """Bits per group (a config: group -> bits) by the greedy walk of the module docstring.

    `solo_delta[(g, b)]`: measured increase of group g alone at b bits (needed for every option
    but the first; the first, when given, is the reference the increases are taken from).
    `size_of(config)`: bytes. `verify(config)`: measured increase of a whole configuration
    (the PTQ study: ΔEER in points). `verify_calls` counts every call, the start included.
    `cache`: measured increase by config key (bits in `groups` order), read and filled.
    """
    _validate(groups, bit_options, solo_delta, max_verify)
    res = WalkResult(budget=budget, groups=list(groups), bit_options=list(bit_options))
    state = _Walk(groups, bit_options, solo_delta, size_of, verify,
                  cache if cache is not None else {}, res)
    current = {g: bit_options[0] for g in groups}
    start = state.measure(current, None, None)
    if not start.accepted:  # lowering bits will not bring a loss over budget back in
        return res
    base = start.measured_delta
    refused: set[tuple[str, int]] = set()
    while res.verify_calls < max_verify:
        moves = state.moves(current, refused)
        if not moves:
            break
        _, _, g, bits, inc = moves[0]
        predicted = base + inc
        if prune and predicted > budget + TOLERANCE:
            refused.add((g, bits))
            res.refused.append((g, bits))
            continue
        step = state.measure({**current, g: bits}, (g, bits), predicted)
        if step.accepted:
            current, base = step.config, step.measured_delta
        else:
            refused.add((g, bits))
            res.refused.append((g, bits))
    return res
