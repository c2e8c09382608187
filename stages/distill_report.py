"""Stage distill_report: the final student beside its grid run and the teacher, the
quality-latency frontier and the hyperparameter regression over every grid student."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slimaudio import atomic, tracking
from slimaudio.errors import DataError
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "distill_report")


def _read_json(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: missing (run the distill_select stage)")
    return json.loads(p.read_text(encoding="utf-8"))


def main() -> None:
    args = parse_args(__doc__, ["data", "teacher", "models", "grid", "choice", "selection",
                                "final", "students_csv", "regression", "table", "metrics",
                                "pareto"])
    params = setup(args.params, SECTIONS)
    from slimaudio.distill.teacher import load_distill
    from slimaudio.studies import distill as study

    base = params["base"]
    info = load_distill(args.data).info
    choice, selection = _read_json(args.choice), _read_json(args.selection)
    if not Path(args.grid).exists():
        raise DataError(f"{args.grid}: missing (run the distill_select stage)")
    grid = pd.read_csv(args.grid)
    with tracking.stage_run("distill", "distill_report", params.flat()) as run:
        res = study.run(grid, selection, choice, Path(args.final), Path(args.models), info,
                        Path(args.teacher), params["distill_report"], int(base["threads"]),
                        int(base["seed"]))
        atomic.write_csv(args.students_csv, res.table)
        atomic.write_csv(args.regression, res.regression)
        atomic.write_text(args.table, study.render_markdown(res))
        atomic.write_json(args.metrics, res.metrics)
        atomic.save_figure(args.pareto, study.plot_pareto(res))
        run.log_metrics({k: v for k, v in res.metrics.items() if isinstance(v, int | float)})
        for row in res.table.to_dict("records"):
            if row["student"] == "teacher":
                continue
            child = run.child(f"{row['student']} {row['label']}")
            child.log_metrics(study.flat_metrics(row, res.tasks))
            child.set_tags({"on_frontier": row["on_frontier"], "chosen": row["chosen"],
                            "role": row["role"]})
        for path in (args.students_csv, args.regression, args.table, args.pareto):
            run.log_artifact(path)
    print("\n".join(study.describe(res)))
    print(json.dumps(res.metrics.get("done_when", {})))


if __name__ == "__main__":
    cli(main)
