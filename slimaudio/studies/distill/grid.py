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

    python -m slimaudio.studies.distill.grid --design fractional --write  # default (below)
    python -m slimaudio.studies.distill.grid --design full --write        # paper

A fractional design holds the factors given by --fix at one level (the default: DEFAULT_FIXED,
see there why), covers every level of every other hyperparameter and, among such subsets,
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

# The default profile's design: 10 small students, 5 factors varied, so the regression keeps
# 10 - 6 = 4 residual degrees of freedom for its standard errors (8 students and 6 factors
# left 1). Why fix arch at small: a large student costs more to train and at the screen's
# steps is the least converged, so the default spends its minutes on the factors FRILL's
# findings are about (docs/measurements.md). The paper profile trains the full grid, large
# students included.
DEFAULT_RUNS = 10
DEFAULT_FIXED: dict[str, Any] = {"arch": "small"}


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


def fixed_factors(students: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The factors with a single level over the students (a design that fixes them): the
    regression has no weight for them."""
    out = {}
    for f in FACTORS:
        seen = {norm_value(s[f]) for s in students.values()}
        if len(seen) == 1:
            out[f] = next(iter(students.values()))[f]
    return out


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


def effective_levels(levels: Mapping[str, Sequence[Any]],
                     fixed: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The levels a design draws from: a fixed factor keeps its one level."""
    for f, v in fixed.items():
        if f not in FACTORS or norm_value(v) not in {norm_value(x) for x in levels.get(f, [])}:
            raise ParamError(f"distill grid: cannot fix {f}={v!r} (factors {', '.join(FACTORS)};"
                             " the level must be one of distill_grid.levels)")
    return {f: [fixed[f]] if f in fixed else list(levels[f]) for f in FACTORS}


def fractional(levels: Mapping[str, Sequence[Any]], runs: int, seed: int = 0,
               restarts: int = 20, cost_weight: float = 1.0,
               fixed: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """A `runs`-student subset covering every level of every factor not `fixed` (a fixed
    factor keeps one level, so the regression leaves it out), maximising
    log det(X'X) / p - cost_weight * log(total step cost) (p: regression coefficients);
    cost_weight 0 is plain D-optimality, 1 is information per unit of training compute."""
    fixed = dict(fixed or {})
    grid = full_grid(levels)
    use = effective_levels(levels, fixed)
    ids = [i for i, s in grid.items()
           if all(norm_value(s[f]) == norm_value(v) for f, v in fixed.items())]
    if runs >= len(ids):
        return {i: grid[i] for i in ids}
    if runs < max(len(use[f]) for f in FACTORS):
        raise ParamError(f"distill grid: {runs} students cannot cover every level")
    free = [j for j, f in enumerate(FACTORS) if f not in fixed]
    x_all = standardised({i: grid[i] for i in ids}, levels)[:, free]
    n_coef = len(free) + 1
    cost = np.array([step_cost(grid[i]) for i in ids])
    rng = np.random.default_rng(seed)

    def score(sel: list[int]) -> float:
        if covers_all_levels({ids[i]: grid[ids[i]] for i in sel}, use):
            return -np.inf
        return _logdet(x_all[sel]) / n_coef - cost_weight * math.log(float(cost[sel].sum()))

    best = _exchange(score, len(ids), runs, restarts, rng)
    if best is None:
        raise ParamError(f"distill grid: found no {runs}-student design covering every level")
    return {ids[i]: grid[ids[i]] for i in best}


def _exchange(score: Any, n: int, runs: int, restarts: int,
              rng: np.random.Generator) -> list[int] | None:
    """The best `runs`-subset of range(n) by coordinate exchange from `restarts` random
    starts: swap one member for one outsider at a time while the score improves."""
    best: tuple[float, list[int]] | None = None
    for _ in range(restarts):
        sel = list(rng.choice(n, size=runs, replace=False))
        cur = score(sel)
        improved = True
        while improved:
            improved = False
            for pos in range(runs):
                for cand in rng.permutation(n):
                    if cand in sel:
                        continue
                    trial = sel.copy()
                    trial[pos] = int(cand)
                    val = score(trial)
                    if val > cur + 1e-9:
                        sel, cur, improved = trial, val, True
        if np.isfinite(cur) and (best is None or cur > best[0]):
            best = (cur, sorted(sel))
    return None if best is None else best[1]


def design(levels: Mapping[str, Sequence[Any]], kind: str, runs: int = DEFAULT_RUNS,
           seed: int = 0, cost_weight: float = 1.0,
           fixed: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """A design's students; `fixed` applies to the fractional design only (the default's
    DEFAULT_FIXED unless given)."""
    if kind == "full":
        return full_grid(levels)
    if kind == "fractional":
        return fractional(levels, runs, seed, cost_weight=cost_weight,
                          fixed=DEFAULT_FIXED if fixed is None else fixed)
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


def fix_arg(fixed: Mapping[str, Any]) -> str:
    """`fixed` as the generator's --fix arguments ('none' when nothing is fixed)."""
    return " ".join(f"--fix {f}={v}" for f, v in fixed.items()) or "--fix none"


def parse_fix(values: Sequence[str] | None) -> dict[str, Any]:
    """--fix factor=level ... (levels read as YAML scalars: 0.5, true); 'none' fixes nothing;
    no --fix at all is the default design's DEFAULT_FIXED."""
    import yaml

    if not values:
        return dict(DEFAULT_FIXED)
    out: dict[str, Any] = {}
    for v in values:
        if v == "none":
            continue
        factor, sep, level = v.partition("=")
        if not sep:
            raise ParamError(f"distill grid: --fix {v!r} is not factor=level")
        out[factor] = yaml.safe_load(level)
    return out


def command(design_kind: str, runs: int = DEFAULT_RUNS, seed: int = 0,
            cost_weight: float = 1.0, fixed: Mapping[str, Any] | None = None) -> str:
    """The command line that regenerates one design's group file."""
    fixed = DEFAULT_FIXED if fixed is None else fixed
    extra = (f" --runs {runs} --seed {seed} --cost-weight {cost_weight:g} {fix_arg(fixed)}"
             if design_kind == "fractional" else "")
    return f"python -m slimaudio.studies.distill.grid --design {design_kind}{extra} --write"


def group_file(levels: Mapping[str, Sequence[Any]], design_kind: str, runs: int = DEFAULT_RUNS,
               seed: int = 0, cost_weight: float = 1.0,
               fixed: Mapping[str, Any] | None = None) -> str:
    """The text of conf/students/<design>.yaml for these levels."""
    students = design(levels, design_kind, runs, seed, cost_weight, fixed)
    header = (f"Generated by `{command(design_kind, runs, seed, cost_weight, fixed)}` "
              f"({len(students)} students).\nIds are indices into the full grid of "
              "distill_grid.levels (conf/config.yaml). Do not edit by hand.")
    return render(students, header)


def main(argv: Sequence[str] | None = None) -> None:
    import yaml

    p = argparse.ArgumentParser(description="Generate the distillation student list.")
    p.add_argument("--design", choices=["fractional", "full"], default="fractional")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                   help="students in a fractional design")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cost-weight", type=float, default=1.0,
                   help="0: plain D-optimal; 1: information per unit of training compute")
    p.add_argument("--fix", action="append", metavar="FACTOR=LEVEL",
                   help="hold a factor at one level in a fractional design (repeatable; "
                        f"'none': vary all; default: {fix_arg(DEFAULT_FIXED)})")
    p.add_argument("--config", default=str(LEVELS_FILE), help="read distill_grid.levels here")
    p.add_argument("--write", action="store_true",
                   help="write conf/students/<design>.yaml beside --config")
    args = p.parse_args(argv)
    path = Path(args.config)
    levels = yaml.safe_load(path.read_text(encoding="utf-8"))["distill_grid"]["levels"]
    text = group_file(levels, args.design, args.runs, args.seed, args.cost_weight,
                      parse_fix(args.fix))
    if args.write:
        out = path.parent / "students" / f"{args.design}.yaml"
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} ({text.count(chr(10)) - 3} students)", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
