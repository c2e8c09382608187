"""Stage distill_select: time every grid student beside the teacher, find the quality-latency
frontier and choose the FRILL analogue for distill_final."""

from __future__ import annotations

from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.distill import DistillGrid, DistillSelect
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "distill_grid", "distill_select")


def main() -> None:
    args = parse_args(__doc__, ["data", "teacher", "models", "grid", "choice", "selection"])
    params = setup(args.params, SECTIONS)
    from slimaudio.studies.distill.data import load_targets
    from slimaudio.studies.distill.selection import select

    base, grid = params["base"], build(DistillGrid, params["distill_grid"])
    info = load_targets(args.data).info
    with tracking.stage_run("distill", "distill_select", params.flat()) as run:
        sel = select(grid, Path(args.models), info, Path(args.teacher),
                     build(DistillSelect, params["distill_select"]), int(base["threads"]),
                     int(base["seed"]), build(Spread, base["latency"]))
        atomic.write_csv(args.grid, sel.table)
        atomic.write_json(args.selection, sel.info())
        atomic.write_json(args.choice, sel.choice(grid.students))
        c = sel.table[sel.table["student"] == sel.chosen].iloc[0]
        run.log_metrics({"n_students": int((sel.table["student"] != "teacher").sum()),
                         "n_frontier": int(sel.table["on_frontier"].sum()),
                         "grid_chosen_mean_accuracy": float(c["mean_accuracy"]),
                         "grid_chosen_latency_ms": float(c["latency_ms"])})
        run.set_tags({"chosen": sel.chosen})
    print(f"distill_select: chose {sel.chosen} ({c['label']}), {sel.how}; grid run "
          f"{c['latency_ms']:.3f} ms, mean accuracy {c['mean_accuracy']:.3f}")


if __name__ == "__main__":
    cli(main)
