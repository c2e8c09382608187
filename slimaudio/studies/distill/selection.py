"""Stage distill_select: every grid student timed beside the teacher, the quality-latency
frontier, and the choice of the FRILL analogue (rules.choose) that distill_final trains again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.errors import DataError, ParamError
from slimaudio.latency import SIMPLE, Spread
from slimaudio.metrics import MIB
from slimaudio.schemas.distill import DistillGrid, DistillSelect
from slimaudio.studies.distill import grid as grid_mod
from slimaudio.studies.distill import rules
from slimaudio.studies.distill.data import QUALITY_SD
from slimaudio.studies.distill.pareto import frontier
from slimaudio.studies.distill.timing import time_with_teacher

HYPER = list(grid_mod.FACTORS)


def read_student(folder: Path, sid: str, expect: Mapping[str, Any]) -> dict[str, Any]:
    """A grid student's metrics.json, checked against the hyperparameters params give it."""
    path = folder / "metrics.json"
    if not path.exists():
        raise DataError(f"{path}: missing (run the distill_student@{sid} stage)")
    rec = json.loads(path.read_text(encoding="utf-8"))
    have = rec.get("hyperparameters", {})
    for k in HYPER:
        if grid_mod.norm_value(have.get(k)) != grid_mod.norm_value(expect[k]):
            raise DataError(f"{path}: trained with {k}={have.get(k)!r} but params say "
                            f"{expect[k]!r}; re-run distill_student@{sid}")
    return rec


def student_row(sid: str, hp: Mapping[str, Any], rec: Mapping[str, Any], lat: Mapping[str, Any],
                tasks: Sequence[str]) -> dict[str, Any]:
    m = rec["metrics"]
    row: dict[str, Any] = {"student": sid, "label": rec["label"], **{k: hp[k] for k in HYPER}}
    row["format"] = "int8" if hp["qat"] else "float32"
    row["params"] = int(m["params"])
    row["size_bytes"] = int(m["size_bytes"])
    row["size_mib"] = m["size_bytes"] / MIB
    row["latency_ms"] = lat[sid].median_ms
    row["latency_p90_ms"] = lat[sid].p90_ms
    row["fp32_size_bytes"] = int(m.get("fp32_size_bytes", m["size_bytes"]))
    row["fp32_latency_ms"] = lat[f"{sid}:fp32"].median_ms if f"{sid}:fp32" in lat else lat[sid].median_ms
    for t in tasks:
        row[f"acc_{t}"] = m[f"acc_{t}"]
    row["mean_accuracy"] = m["mean_accuracy"]
    row["final_mse"] = m.get("final_mse", math.nan)
    row["train_steps"] = m.get("train_steps")
    row.update(replicate_columns(m))
    return row


def replicate_columns(m: Mapping[str, Any]) -> dict[str, Any]:
    """How many training replicates the accuracies average and their sd of the mean accuracy
    (NaN with one; a metrics.json older than replicates had one)."""
    return {"replicates": int(m.get("replicates", 1)),
            QUALITY_SD: float(m.get(QUALITY_SD, math.nan))}


def teacher_row(teacher: Mapping[str, Any], lat: Mapping[str, Any], tasks: Sequence[str],
                teacher_size: int) -> dict[str, Any]:
    t_acc = teacher["accuracy"]
    return {"student": "teacher", "label": "ECAPA-TDNN (ONNX Runtime)",
            **{k: None for k in HYPER}, "format": "onnx-float32",
            "params": int(teacher["teacher"]["params"]), "size_bytes": teacher_size,
            "size_mib": teacher_size / MIB, "latency_ms": lat["teacher"].median_ms,
            "latency_p90_ms": lat["teacher"].p90_ms,
            "fp32_size_bytes": teacher_size,
            "fp32_latency_ms": lat["teacher"].median_ms,
            **{f"acc_{t}": t_acc[f"acc_{t}"] for t in tasks},
            "mean_accuracy": t_acc["mean_accuracy"], "final_mse": math.nan}


def build_table(students: Mapping[str, Mapping[str, Any]], records: Mapping[str, dict[str, Any]],
                teacher: Mapping[str, Any], lat: Mapping[str, Any], tasks: Sequence[str],
                teacher_size: int) -> pd.DataFrame:
    """Grid students and the teacher, one row each, with the frontier and the ratios."""
    rows = [student_row(sid, hp, records[sid], lat, tasks) for sid, hp in students.items()]
    df = pd.DataFrame([*rows, teacher_row(teacher, lat, tasks, teacher_size)])
    is_student = df["student"] != "teacher"
    mask = np.zeros(len(df), dtype=bool)
    mask[is_student.to_numpy()] = frontier(df.loc[is_student, "latency_ms"].to_numpy(),
                                           df.loc[is_student, "mean_accuracy"].to_numpy())
    df["on_frontier"] = mask
    t_lat, t_acc_m = lat["teacher"].median_ms, teacher["accuracy"]["mean_accuracy"]
    df["speedup"] = t_lat / df["latency_ms"]
    df["size_fraction"] = df["size_bytes"] / teacher_size
    df["accuracy_retention"] = df["mean_accuracy"] / t_acc_m if t_acc_m > 0 else math.nan
    return df


@dataclass
class Selection:
    table: pd.DataFrame                    # grid students + teacher, one row each
    chosen: str
    how: str                               # the rule that chose it, in words
    notes: list[str] = field(default_factory=list)

    def choice(self, students: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """choice.json: only what decides the final training, so a re-timing that keeps the
        same choice leaves the file (and the distill_final stage) unchanged."""
        return {"student": self.chosen,
                "hyperparameters": {k: students[self.chosen][k] for k in HYPER}}

    def info(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "how": self.how, "notes": self.notes}


def check_grid(grid: DistillGrid, require_full: bool) -> list[str]:
    """Refuse an empty (or, when required, partial) grid; notes on factors the design holds
    at one level and on other levels no student covers."""
    students, levels = grid.students, asdict(grid.levels)
    if not students:
        raise ParamError("params: distill_grid.students is empty")
    if require_full and not grid_mod.is_full(students, levels):
        raise ParamError(
            f"params: distill_select.require_full_grid is set (profile paper) but "
            f"distill_grid.students has {len(students)} of the {len(grid_mod.full_grid(levels))} "
            "grid students; run `python -m slimaudio.studies.distill.grid --design full --write` "
            "first")
    fixed = grid_mod.fixed_factors(students) if len(students) > 1 else {}
    held = {**levels, **{f: [v] for f, v in fixed.items()}}
    missing = grid_mod.covers_all_levels(students, held)
    notes = [f"held at one level by the design, so without a regression weight: "
             f"{', '.join(f'{f}={v}' for f, v in fixed.items())}"] if fixed else []
    return notes + ([f"levels not covered by any student: {', '.join(missing)}"]
                    if missing else [])


def student_models(students: Mapping[str, Mapping[str, Any]], models_dir: Path) -> dict[str, Path]:
    """Every deployed student model, plus the float32 model of each QAT student ("<id>:fp32")."""
    models: dict[str, Path] = {}
    for sid, hp in students.items():
        models[sid] = models_dir / sid / "model.tflite"
        if hp["qat"]:
            models[f"{sid}:fp32"] = models_dir / sid / "model_fp32.tflite"
    for name, path in models.items():
        if not path.exists():
            raise DataError(f"{path}: missing (run distill_student@{name.split(':')[0]})")
    return models


def select(grid: DistillGrid, models_dir: Path, teacher_info: Mapping[str, Any],
           teacher_model: Path, cfg: DistillSelect, threads: int, seed: int,
           spread: Spread = SIMPLE) -> Selection:
    """Time every grid student and the teacher interleaved, find the frontier, choose."""
    notes = check_grid(grid, cfg.require_full_grid)
    students = grid.students
    records = {sid: read_student(models_dir / sid, sid, hp) for sid, hp in students.items()}
    models = student_models(students, models_dir)
    tasks = list(teacher_info["tasks"])
    lat = time_with_teacher(models, teacher_model, int(teacher_info["frames"]),
                            int(teacher_info["teacher"]["n_mels"]), threads, cfg.latency, seed,
                            spread)
    teacher_size = int(teacher_model.stat().st_size)
    df = build_table(students, records, teacher_info, lat, tasks, teacher_size)
    chosen, how = rules.choose(df, cfg.choose.max_latency_fraction, cfg.choose.max_size_fraction)
    if chosen is None:  # unreachable with at least one student, kept for the type checker
        raise DataError("no student could be chosen")
    df["chosen"] = df["student"] == chosen
    return Selection(df, chosen, how, notes)
