"""Stage distill_final: train the configuration distill_select chose again, for
distill_final.steps, then convert, time and probe it like every student."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from slimaudio import atomic, config, tracking
from slimaudio.errors import DataError
from slimaudio.latency import Spread
from slimaudio.schemas.distill import Distill, DistillFinal, DistillStudent, Student
from slimaudio.spec import build, schema_of
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base", "distill", "distill_student", "distill_final")


def main() -> None:
    args = parse_args(__doc__, ["data", "choice", "out_dir"])
    params = setup(args.params, SECTIONS)
    path = Path(args.choice)
    if not path.exists():
        raise DataError(f"{path}: missing (run the distill_select stage)")
    choice = json.loads(path.read_text(encoding="utf-8"))
    from slimaudio.studies.distill.data import load_targets
    from slimaudio.studies.distill.students import record, run_student

    sid = str(choice["student"])
    hp = choice["hyperparameters"]
    config.validate_mapping(f"{path}: hyperparameters", hp, schema_of(Student))
    cfg = build(Student, hp)
    base = params["base"]
    # distill_final overrides steps, batch size and learning rate; the rest is distill_student's
    train = build(DistillStudent, params["distill_student"]).with_final(
        build(DistillFinal, params["distill_final"]))
    probe = build(Distill, params["distill"]).probe
    # every declared key (params.flat()), plus the chosen student and its effective training
    run_params = {**params.flat(), "student": sid, "label": cfg.label,
                  **{f"hp.{k}": v for k, v in asdict(cfg).items()},
                  **{f"train.{k}": v for k, v in asdict(train).items() if not isinstance(v, dict)}}
    with tracking.stage_run("distill", f"final {sid} {cfg.label}", run_params) as run, \
            atomic.atomic_dir(args.out_dir) as tmp:
        data = load_targets(args.data)
        res = run_student(cfg, data, train, probe, tmp, int(base["seed"]), int(base["threads"]),
                          spread=build(Spread, base["latency"]))
        record(res, sid, "final", tmp, run)
    m = res.metrics
    print(f"distill_final {sid} ({cfg.label}), {m['train_steps']} steps: {m['size_mib']:.3f} MiB, "
          f"{m['latency_ms']:.3f} ms, mean accuracy {m['mean_accuracy']:.3f}, final mse "
          f"{m['final_mse']:.3f}, train {m['train_seconds']:.0f} s")


if __name__ == "__main__":
    cli(main)
