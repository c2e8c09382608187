"""The student grid: FRILL's hyperparameters, their levels, and which students a run trains.

The full grid is the product of the levels in params `distill_grid` (FRILL: 2 sizes x 3 widths
x 3 bottlenecks x pooling x QAT x frontend = 144 students). Every student has a stable id, its
index in that product (`s000` ... `s143`), so a student keeps its id and its DVC stage
(`distill_student@s037`) in any design drawn from the same levels.

Why the student list is a config group (`conf/students/<design>.yaml`, composed into
`distill_grid.students` of params.yaml): DVC expands `foreach: ${distill_grid.students}` from
params.yaml alone, so the set of stages must be in the composed params, and a profile picks a
design by choosing the group (`profile=paper` selects `students: full`). The files are generated
by this module, never edited by hand (a test regenerates them and compares):

    python -m slimaudio.studies.distill.grid --design fractional --runs 8 --write  # default
    python -m slimaudio.studies.distill.grid --design full --write                 # paper

A fractional design covers every level of every hyperparameter and, among such subsets,
maximises the information the study's standardised main-effects regression gets per unit of
training compute: det(X'X)^(1/p) / (sum of the students' relative step costs), by coordinate
exchange from several seeded random starts. Pure D-optimality (`--cost-weight 0`) spends
most of the default profile's budget on large width-1.0 students, each about 3.5x the
training time of a small width-0.5 one; the compute-aware design keeps every level and buys
the time back. Each student stage declares only `distill_grid.students.<id>`, so
`dvc exp run -S distill_grid.students.s037.width=1.0` re-runs that student and the report only.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.config import CONF_DIR
from slimaudio.errors import ParamError

FACTORS = ("arch", "width", "bottleneck", "pool", "qat", "frontend")
LEVELS_FILE = Path(CONF_DIR) / "config.yaml"


def full_grid(levels: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """Every combination of the levels, keyed by its stable id."""
    missing = [f for f in FACTORS if f not in levels]
    if missing:
        raise ParamError(f"params: distill_grid misses {', '.join(missing)}")
    combos = itertools.product(*(levels[f] for f in FACTORS))
    width = max(3, len(str(math.prod(len(levels[f]) for f in FACTORS) - 1)))
    return {f"s{i:0{width}d}": dict(zip(FACTORS, c, strict=True)) for i, c in enumerate(combos)}


def encode(students: Mapping[str, Mapping[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """Numeric design matrix [n, 6]: arch large=1, width, log2(bottleneck), pool gap=1,
    qat=1, frontend inside=1 (so a positive weight is the effect of 'more/on')."""
    rows = []
    for s in students.values():
        rows.append([1.0 if s["arch"] == "large" else 0.0, float(s["width"]),
                     math.log2(float(s["bottleneck"])), 1.0 if s["pool"] == "gap" else 0.0,
                     1.0 if s["qat"] else 0.0, 1.0 if s["frontend"] == "inside" else 0.0])
    names = ["arch_large", "width", "log2_bottleneck", "pool_gap", "qat", "frontend_inside"]
    return np.asarray(rows, dtype=np.float64), names


def covers_all_levels(students: Mapping[str, Mapping[str, Any]],
                      levels: Mapping[str, Sequence[Any]]) -> list[str]:
    """The (factor=level) pairs the students miss; empty when every level is covered."""
    missing = []
    for f in FACTORS:
        seen = {norm_value(s[f]) for s in students.values()}
        missing += [f"{f}={v}" for v in levels[f] if norm_value(v) not in seen]
    return missing


def norm_value(v: Any) -> Any:
    """Numbers compare as floats (YAML may give 1 or 1.0), everything else as is."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


# Relative training cost of one step (batch 32, 2 threads), measured on the 2-core reference
# machine: MobileNetV3 size x width in ms; QAT's fake quantization multiplies it, an in-model
# log-mel frontend adds to it. Only ratios matter to the design.
STEP_MS = {("small", 0.5): 74.0, ("small", 0.75): 86.0, ("small", 1.0): 95.0,
           ("large", 0.5): 146.0, ("large", 0.75): 220.0, ("large", 1.0): 260.0}
QAT_FACTOR = 1.2
INSIDE_MS = 10.0


def step_cost(s: Mapping[str, Any]) -> float:
    """Predicted ms per training step of a student (interpolated in width off the table)."""
    arch, w = str(s["arch"]), float(s["width"])
    known = sorted((k[1], v) for k, v in STEP_MS.items() if k[0] == arch)
    if not known:
        raise ParamError(f"distill grid: no step cost for arch {arch!r}")
    ms = float(np.interp(w, [k for k, _ in known], [v for _, v in known]))
    if w > known[-1][0]:  # extrapolate: compute grows about linearly with width here
        ms *= w / known[-1][0]
    return (ms * (QAT_FACTOR if s["qat"] else 1.0)
            + (INSIDE_MS if s["frontend"] == "inside" else 0.0))


def standardised(students: Mapping[str, Mapping[str, Any]],
                 levels: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """The students' design matrix standardised with the full grid's mean and std, the scale
    on which designs are compared."""
    x_all, _ = encode(full_grid(levels))
    mu, sd = x_all.mean(0), np.where(x_all.std(0) > 0, x_all.std(0), 1.0)
    return (encode(students)[0] - mu) / sd


def _logdet(x: np.ndarray) -> float:
    z = np.column_stack([np.ones(len(x)), x])
    sign, val = np.linalg.slogdet(z.T @ z + 1e-9 * np.eye(z.shape[1]))
    return float(val) if sign > 0 else -np.inf


def fractional(levels: Mapping[str, Sequence[Any]], runs: int, seed: int = 0,
               restarts: int = 20, cost_weight: float = 1.0) -> dict[str, dict[str, Any]]:
    """A `runs`-student subset covering every level, maximising
    log det(X'X) / p - cost_weight * log(total step cost) (p: regression coefficients);
    cost_weight 0 is plain D-optimality, 1 is information per unit of training compute."""
    grid = full_grid(levels)
    ids = list(grid)
    if runs >= len(ids):
        return grid
    if runs < max(len(levels[f]) for f in FACTORS):
        raise ParamError(f"distill grid: {runs} students cannot cover every level")
    x_all = standardised(grid, levels)
    n_coef = x_all.shape[1] + 1
    cost = np.array([step_cost(grid[i]) for i in ids])
    rng = np.random.default_rng(seed)
    best: tuple[float, list[int]] | None = None

    def score(sel: list[int]) -> float:
        if covers_all_levels({ids[i]: grid[ids[i]] for i in sel}, levels):
            return -np.inf
        return _logdet(x_all[sel]) / n_coef - cost_weight * math.log(float(cost[sel].sum()))

    for _ in range(restarts):
        sel = list(rng.choice(len(ids), size=runs, replace=False))
        cur = score(sel)
        improved = True
        while improved:  # coordinate exchange: swap one member for one outsider at a time
            improved = False
            for pos in range(runs):
                for cand in rng.permutation(len(ids)):
                    if cand in sel:
                        continue
                    trial = sel.copy()
                    trial[pos] = int(cand)
                    val = score(trial)
                    if val > cur + 1e-9:
                        sel, cur, improved = trial, val, True
        if np.isfinite(cur) and (best is None or cur > best[0]):
            best = (cur, sorted(sel))
    if best is None:
        raise ParamError(f"distill grid: found no {runs}-student design covering every level")
    return {ids[i]: grid[ids[i]] for i in best[1]}


def design(levels: Mapping[str, Sequence[Any]], kind: str, runs: int = 8,
           seed: int = 0, cost_weight: float = 1.0) -> dict[str, dict[str, Any]]:
    if kind == "full":
        return full_grid(levels)
    if kind == "fractional":
        return fractional(levels, runs, seed, cost_weight=cost_weight)
    raise ParamError(f"distill grid: unknown design {kind!r} (full or fractional)")


def is_full(students: Mapping[str, Mapping[str, Any]], levels: Mapping[str, Sequence[Any]]) -> bool:
    want = {tuple(norm_value(v) for v in s.values()) for s in full_grid(levels).values()}
    have = {tuple(norm_value(s[f]) for f in FACTORS) for s in students.values()}
    return want <= have


def render(students: Mapping[str, Mapping[str, Any]], header: str) -> str:
    """A `students` group file: Hydra's package header, then one flow mapping per student."""
    lines = ["# @package distill_grid.students"]
    lines += [f"# {line}" for line in header.splitlines()]
    for sid, s in students.items():
        qat = "true" if s["qat"] else "false"
        lines.append(f"{sid}: {{arch: {s['arch']}, width: {s['width']}, bottleneck: "
                     f"{s['bottleneck']}, pool: {s['pool']}, qat: {qat}, frontend: {s['frontend']}}}")
    return "\n".join(lines) + "\n"


def command(design_kind: str, runs: int = 8, seed: int = 0, cost_weight: float = 1.0) -> str:
    """The command line that regenerates one design's group file."""
    extra = (f" --runs {runs} --seed {seed} --cost-weight {cost_weight:g}"
             if design_kind == "fractional" else "")
    return f"python -m slimaudio.studies.distill.grid --design {design_kind}{extra} --write"


def group_file(levels: Mapping[str, Sequence[Any]], design_kind: str, runs: int = 8,
               seed: int = 0, cost_weight: float = 1.0) -> str:
    """The text of conf/students/<design>.yaml for these levels."""
    students = design(levels, design_kind, runs, seed, cost_weight)
    header = (f"Generated by `{command(design_kind, runs, seed, cost_weight)}` "
              f"({len(students)} students).\nIds are indices into the full grid of "
              "distill_grid.levels (conf/config.yaml). Do not edit by hand.")
    return render(students, header)


def main(argv: Sequence[str] | None = None) -> None:
    import yaml

    p = argparse.ArgumentParser(description="Generate the distillation student list.")
    p.add_argument("--design", choices=["fractional", "full"], default="fractional")
    p.add_argument("--runs", type=int, default=8, help="students in a fractional design")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cost-weight", type=float, default=1.0,
                   help="0: plain D-optimal; 1: information per unit of training compute")
    p.add_argument("--config", default=str(LEVELS_FILE), help="read distill_grid.levels here")
    p.add_argument("--write", action="store_true",
                   help="write conf/students/<design>.yaml beside --config")
    args = p.parse_args(argv)
    path = Path(args.config)
    levels = yaml.safe_load(path.read_text(encoding="utf-8"))["distill_grid"]["levels"]
    text = group_file(levels, args.design, args.runs, args.seed, args.cost_weight)
    if args.write:
        out = path.parent / "students" / f"{args.design}.yaml"
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} ({text.count(chr(10)) - 3} students)", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
