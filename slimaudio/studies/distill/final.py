"""Stage distill_report's numbers: the final student (the chosen configuration after
distill_final's longer training), its grid run and the teacher timed interleaved again, the
regression over the grid, and metrics.json.

Why a final stage: FRILL trained every student to convergence on a TPU. Here the grid is a
screen, each student trained for `distill_student.steps` so that eight fit a few minutes of
a 2-core CPU, and its accuracies rank the configurations; the chosen one is then trained for
`distill_final.steps`, and the headline (speed-up, size, accuracy kept) is that model's. The
grid's short-budget accuracy of the same configuration is shown beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.errors import DataError
from slimaudio.metrics import MIB
from slimaudio.studies.distill import grid as grid_mod
from slimaudio.studies.distill import rules
from slimaudio.studies.distill.config import ReportConfig
from slimaudio.studies.distill.regression import fit
from slimaudio.studies.distill.selection import HYPER
from slimaudio.studies.distill.timing import time_with_teacher

TARGETS = {"quality": "mean_accuracy", "latency": "latency_ms", "size": "size_mib"}


@dataclass
class Outcome:
    table: pd.DataFrame                    # grid students, teacher and the final student
    regression: pd.DataFrame               # target, hyperparameter, weight
    chosen: str
    metrics: dict[str, Any]
    tasks: list[str]
    notes: list[str] = field(default_factory=list)


def read_final(folder: Path, choice: Mapping[str, Any]) -> dict[str, Any]:
    """distill_final's metrics.json, checked against the choice it was trained for."""
    path = folder / "metrics.json"
    if not path.exists():
        raise DataError(f"{path}: missing (run the distill_final stage)")
    rec = json.loads(path.read_text(encoding="utf-8"))
    if rec.get("student") != choice["student"] or any(
            grid_mod.norm_value(rec.get("hyperparameters", {}).get(k))
            != grid_mod.norm_value(choice["hyperparameters"][k]) for k in HYPER):
        raise DataError(f"{path}: trained for {rec.get('student')!r} but the selection chose "
                        f"{choice['student']!r}; re-run distill_final")
    return rec


def regressions(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Quality, latency and size regressed on the standardised hyperparameters of the grid."""
    st = df[df["student"] != "teacher"]
    x, names = grid_mod.encode({r["student"]: r for r in st.to_dict("records")})
    rows, extra = [], {}
    for target, col in TARGETS.items():
        f = fit(x, st[col].to_numpy(dtype=float), names)
        for name, w in zip(names, f.weights, strict=True):
            rows.append({"target": target, "hyperparameter": name, "weight": float(w)})
        extra[f"regression_{target}_r2"] = f.r2
        extra["regression_dof"] = f.dof
    return pd.DataFrame(rows, columns=["target", "hyperparameter", "weight"]), extra


def final_row(grid_row: Mapping[str, Any], m: Mapping[str, Any], lat: Any, tasks: list[str],
              t_lat: float, t_size: int, t_acc: float) -> dict[str, Any]:
    """The final student's row: its grid row's hyperparameters, its own measurements."""
    return {**grid_row, "student": "final", "role": "final", "on_frontier": False,
            "chosen": False, "params": int(m["params"]), "size_bytes": int(m["size_bytes"]),
            "size_mib": m["size_bytes"] / MIB, "latency_ms": lat.median_ms,
            "latency_p90_ms": lat.p90_ms,
            "fp32_size_bytes": int(m.get("fp32_size_bytes", m["size_bytes"])),
            "fp32_latency_ms": math.nan if grid_row["qat"] else lat.median_ms,
            **{f"acc_{t}": m[f"acc_{t}"] for t in tasks}, "mean_accuracy": m["mean_accuracy"],
            "final_mse": m.get("final_mse", math.nan), "train_steps": m.get("train_steps"),
            "speedup": t_lat / lat.median_ms, "size_fraction": m["size_bytes"] / t_size,
            "accuracy_retention": m["mean_accuracy"] / t_acc if t_acc > 0 else math.nan}


def assemble(grid: pd.DataFrame, selection: Mapping[str, Any], choice: Mapping[str, Any],
             final_dir: Path, grid_dir: Path, teacher_info: Mapping[str, Any],
             teacher_model: Path, cfg: ReportConfig, threads: int, seed: int) -> Outcome:
    """The final student beside its grid run and the teacher, and the regression."""
    chosen = str(choice["student"])
    grid = grid.copy()
    if chosen not in set(grid["student"]):
        raise DataError(f"the selection chose {chosen!r}, which is not in the grid table")
    rec = read_final(final_dir, choice)
    tasks = list(teacher_info["tasks"])
    final_model = final_dir / "model.tflite"
    if not final_model.exists():
        raise DataError(f"{final_model}: missing (run the distill_final stage)")
    lat = time_with_teacher({"final": final_model, chosen: grid_dir / chosen / "model.tflite"},
                            teacher_model, int(teacher_info["frames"]),
                            int(teacher_info["teacher"]["n_mels"]), threads, cfg.latency, seed)
    grid["role"] = np.where(grid["student"] == "teacher", "teacher", "grid")
    c = grid[grid["student"] == chosen].iloc[0].to_dict()
    t_lat = lat["teacher"].median_ms
    t_size = int(grid.loc[grid["student"] == "teacher", "size_bytes"].iloc[0])
    t_acc = float(teacher_info["accuracy"]["mean_accuracy"])
    final = final_row(c, rec["metrics"], lat["final"], tasks, t_lat, t_size, t_acc)
    df = pd.concat([grid, pd.DataFrame([final])], ignore_index=True)
    reg, extra = regressions(df[df["role"] != "final"])
    extra = {**extra, "report_teacher_latency_ms": t_lat,
             "grid_chosen_latency_ms": lat[chosen].median_ms,
             "grid_chosen_mean_accuracy": float(c["mean_accuracy"]),
             "grid_chosen_accuracy_retention": float(c["accuracy_retention"])}
    metrics = summary_metrics(df, chosen, extra)
    notes = [*selection.get("notes", []), f"chosen: {selection['how']}"]
    return Outcome(df, reg, chosen, metrics, tasks, notes)


def summary_metrics(df: pd.DataFrame, chosen: str, extra: Mapping[str, float]) -> dict[str, Any]:
    """metrics.json: the grid, and the FRILL analogue (the final student) against the teacher."""
    t = df[df["student"] == "teacher"].iloc[0]
    st = df[df["role"] == "grid"]
    c = df[df["role"] == "final"].iloc[0]
    out: dict[str, Any] = {
        "n_students": len(st), "n_frontier": int(st["on_frontier"].sum()),
        "teacher_latency_ms": float(t["latency_ms"]), "teacher_size_mib": float(t["size_mib"]),
        "teacher_mean_accuracy": float(t["mean_accuracy"]),
        "best_student_mean_accuracy": float(st["mean_accuracy"].max()),
        **{k: float(v) for k, v in extra.items()},
        "chosen": chosen, "chosen_label": str(c["label"]),
        "chosen_train_steps": int(c["train_steps"]),
        "chosen_latency_ms": float(c["latency_ms"]), "chosen_size_mib": float(c["size_mib"]),
        "chosen_mean_accuracy": float(c["mean_accuracy"]),
        "chosen_speedup": float(c["speedup"]), "chosen_size_fraction": float(c["size_fraction"]),
        "chosen_accuracy_retention": float(c["accuracy_retention"]),
        "chosen_accuracy_drop": float(1.0 - c["accuracy_retention"]),
    }
    out["done_when"] = rules.done_when(c)
    return out
