"""Stage distill_student: train one MobileNetV3 student on the teacher's embeddings, convert
it to TFLite, time it and probe its embeddings; with distill_student.replicates > 1, train,
convert and probe it again with seeds base.seed + 1, ... (replicate 0 alone is timed and kept)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.distill import Distill, DistillStudent, Student
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup

# Plus distill_grid.students.<id>, the one student it trains (dvc.yaml declares that key alone).
SECTIONS = ("base", "distill", "distill_student")


def _student_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--student", required=True, help="student id in distill_grid.students")


def main() -> None:
    args = parse_args(__doc__, ["data", "out_dir"], extra=_student_arg)
    # an unknown id stops here: "params: missing key 'distill_grid.students.<id>'"
    params = setup(args.params, (*SECTIONS, f"distill_grid.students.{args.student}"))
    from slimaudio.studies.distill.data import load_targets
    from slimaudio.studies.distill.students import record, run_student

    cfg = build(Student, params["distill_grid"]["students"][args.student])
    base, train = params["base"], build(DistillStudent, params["distill_student"])
    probe = build(Distill, params["distill"]).probe
    # every declared key as it ran (params.flat()), plus the student's id and hyperparameters
    run_params = {**params.flat(), "student": args.student, "label": cfg.label,
                  **{f"hp.{k}": v for k, v in asdict(cfg).items()}}
    with tracking.stage_run("distill", f"{args.student} {cfg.label}", run_params) as run, \
            atomic.atomic_dir(args.out_dir) as tmp:
        data = load_targets(args.data)
        res = run_student(cfg, data, train, probe, tmp, int(base["seed"]), int(base["threads"]),
                          spread=build(Spread, base["latency"]))
        record(res, args.student, "student", tmp, run)
    m = res.metrics
    reps = "" if train.replicates == 1 else (
        f" (mean of {train.replicates} replicates, sd {m['mean_accuracy_sd']:.3f})")
    print(f"distill_student {args.student} ({cfg.label}): {m['params']:.0f} params, "
          f"{m['size_mib']:.3f} MiB, {m['latency_ms']:.3f} ms, mean accuracy "
          f"{m['mean_accuracy']:.3f}{reps}, final mse {m['final_mse']:.3f}, "
          f"train {m['train_seconds']:.0f} s")


if __name__ == "__main__":
    cli(main)
