"""Stage distill_report: the final student beside its grid run and the teacher, the
quality-latency frontier and the hyperparameter regression over every grid student."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slimaudio import tracking
from slimaudio.errors import DataError
from slimaudio.latency import Spread
from slimaudio.schemas.distill import DistillReport
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.distill.rules import STUDY

SECTIONS = ("base", "distill_report")


def _read_json(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: missing (run the distill_select stage)")
    return json.loads(p.read_text(encoding="utf-8"))


def main() -> None:
    args = parse_args(__doc__, ["data", "teacher", "models", "grid", "choice", "selection",
                                "final", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    from slimaudio.schemas.base import Bootstrap
    from slimaudio.studies.distill import report
    from slimaudio.studies.distill.assemble import assemble
    from slimaudio.studies.distill.data import load_targets

    base = params["base"]
    info = load_targets(args.data).info
    choice, selection = _read_json(args.choice), _read_json(args.selection)
    if not Path(args.grid).exists():
        raise DataError(f"{args.grid}: missing (run the distill_select stage)")
    grid = pd.read_csv(args.grid)
    with tracking.stage_run("distill", "distill_report", params.flat()) as run:
        res = assemble(grid, selection, choice, Path(args.final), Path(args.models), info,
                       Path(args.teacher), build(DistillReport, params["distill_report"]),
                       int(base["seed"]), int(base["threads"]), data_dir=Path(args.data),
                       boot=build(Bootstrap, base["bootstrap"]), spread=build(Spread, base["latency"]))
        report.build(res).publish(args, run)
    print("\n".join(report.describe(res)))
    print(json.dumps(res.metrics.get("done_when", {})))


if __name__ == "__main__":
    cli(main)
