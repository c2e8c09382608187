"""Stage distill_report's numbers: the final student (the chosen configuration after
distill_final's longer training), its grid run and the teacher timed interleaved again, the
regression over the grid, and metrics.json.

Why a final stage: FRILL trained every student to convergence on a TPU. Here the grid is a
screen, each student trained for `distill_student.steps` so that ten fit a few minutes of
a 2-core CPU, and its accuracies rank the configurations; the chosen one is then trained for
`distill_final.steps`, and the headline (speed-up, size, accuracy kept) is that model's. The
grid's short-budget accuracy of the same configuration is shown beside it.

Every accuracy gets a speaker-bootstrap interval and every student its paired difference from
the teacher (intervals.py), from the probe answers each probing stage saved; the regression
gets OLS standard errors and t intervals (regression.py).
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

from slimaudio import runtime, stats
from slimaudio.errors import DataError
from slimaudio.latency import SIMPLE, Spread, speedup
from slimaudio.metrics import MIB
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.distill import DistillReport
from slimaudio.studies.distill import grid as grid_mod
from slimaudio.studies.distill import intervals, probes, rules
from slimaudio.studies.distill.data import (
    QUALITY,
    QUALITY_SD,
    REPLICATE_PREDICTIONS,
    TEACHER_PREDICTIONS,
    predictions_name,
    read_probe_utts,
)
from slimaudio.studies.distill.regression import fit
from slimaudio.studies.distill.selection import HYPER, replicate_columns
from slimaudio.studies.distill.timing import time_with_teacher

TARGETS = {"quality": "mean_accuracy", "latency": "latency_ms", "size": "size_mib"}
REGRESSION_COLUMNS = ["target", "hyperparameter", "weight", "se", "lo", "hi"]


@dataclass
class StudyResult:
    table: pd.DataFrame                    # grid students, teacher and the final student
    regression: pd.DataFrame               # REGRESSION_COLUMNS, one row per varied factor
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


def regressions(df: pd.DataFrame, level: float
                ) -> tuple[pd.DataFrame, dict[str, float], dict[str, Any]]:
    """Quality, latency and size regressed on the standardised hyperparameters of the grid:
    the table (one row per target and hyperparameter the design varies), R^2 and residual
    degrees of freedom, and the weights by target and hyperparameter for metrics.json."""
    st = df[df["student"] != "teacher"]
    x, names = grid_mod.encode({r["student"]: r for r in st.to_dict("records")})
    rows, extra, nested = [], {"regression_level": level}, {}
    for target, col in TARGETS.items():
        f = fit(x, st[col].to_numpy(dtype=float), names, level)
        nested[target] = {}
        for j in np.flatnonzero(f.varies):
            rec = {"weight": f.weights[j], "se": f.se[j], "lo": f.lo[j], "hi": f.hi[j]}
            rows.append({"target": target, "hyperparameter": names[j],
                         **{k: float(v) for k, v in rec.items()}})
            nested[target][names[j]] = {k: float(v) for k, v in rec.items()}
        extra[f"regression_{target}_r2"] = f.r2
        extra["regression_dof"] = f.dof
    return pd.DataFrame(rows, columns=REGRESSION_COLUMNS), extra, nested


def answer_files(df: pd.DataFrame, data_dir: Path, grid_dir: Path, final_dir: Path
                 ) -> dict[str, tuple[list[Path], str]]:
    """Every model's probe-answer files, one per training replicate (as many as its row's
    `replicates`; the teacher has one), and the stage that writes them. A folder holding
    answers of more replicates than its metrics report is stale: refused."""
    where = {"teacher": ([data_dir / TEACHER_PREDICTIONS], "distill_targets")}
    folders = {sid: (grid_dir / sid, f"distill_student@{sid}")
               for sid in df.loc[df["role"] == "grid", "student"]}
    folders["final"] = (final_dir, "distill_final")
    for name, (folder, stage) in folders.items():
        n = replicates_of(df, name)
        want = [predictions_name(r) for r in range(n)]
        extra = sorted(p.name for p in folder.glob(REPLICATE_PREDICTIONS.format("*"))
                       if p.name not in want)
        if extra:
            raise DataError(f"{folder}: {', '.join(extra)} beyond the {n} replicate(s) its "
                            f"metrics report; re-run {stage}")
        where[name] = ([folder / w for w in want], stage)
    return where


def replicates_of(df: pd.DataFrame, name: str) -> int:
    """A row's training replicates (1 without the column: a table from before replicates)."""
    if "replicates" not in df.columns:
        return 1
    v = df.loc[df["student"] == name, "replicates"]
    return 1 if v.empty or pd.isna(v.iloc[0]) else int(v.iloc[0])


def common_replicates(where: Mapping[str, tuple[list[Path], str]]) -> int:
    """The students' one replicate count (the bootstrap draws replicates alike for all)."""
    counts = {name: len(paths) for name, (paths, _) in where.items() if name != "teacher"}
    if len(set(counts.values())) > 1:
        raise DataError("students trained with different distill_student.replicates ("
                        + ", ".join(f"{k}: {v}" for k, v in counts.items())
                        + "); re-run the stages whose count differs from params")
    return next(iter(counts.values()), 1)


def with_intervals(df: pd.DataFrame, data_dir: Path, grid_dir: Path, final_dir: Path,
                   tasks: list[str], boot: Bootstrap, seed: int) -> pd.DataFrame:
    """The table with every accuracy's interval and its paired difference from the teacher,
    from the probe answers the teacher's, each student's and the final student's stage saved
    (every replicate's: the intervals resample the replicates too, intervals.py)."""
    utts = read_probe_utts(data_dir)
    where = answer_files(df, data_dir, grid_dir, final_dir)
    models = {name: [intervals.answers(probes.read_predictions(p, stage), tasks, len(utts),
                                       str(p)) for p in paths]
              for name, (paths, stage) in where.items()}
    res = intervals.speaker_resampler(utts, boot, seed)
    draw = stats.replicate_draw(boot.resamples, common_replicates(where), seed)
    ivs = intervals.interval_table(res, models, "teacher", tasks, draw)
    intervals.check_matches(df, ivs, "student", tasks)
    new = [c for c in ivs.columns if c not in df.columns]  # the table keeps its own values
    return df.merge(ivs[new].astype(float), left_on="student", right_index=True, how="left")


def replicate_summary(df: pd.DataFrame) -> dict[str, float]:
    """metrics.json: the students' replicate count and, with two or more, the seed's sd of the
    mean accuracy pooled over the grid (root mean variance) beside the median half-width of
    their intervals (which, then, include it)."""
    st = df[df["role"] == "grid"]
    n = replicates_of(df, str(st["student"].iloc[0])) if len(st) else 1
    half = (st[f"{QUALITY}_hi"] - st[f"{QUALITY}_lo"]) / 2
    out = {"replicates": float(n), "median_mean_accuracy_half_width": float(half.median())}
    if n > 1:
        out["replicate_sd"] = float(np.sqrt(np.mean(st[QUALITY_SD].to_numpy(float) ** 2)))
    return out


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
            "accuracy_retention": m["mean_accuracy"] / t_acc if t_acc > 0 else math.nan,
            **replicate_columns(m)}


def assemble(grid: pd.DataFrame, selection: Mapping[str, Any], choice: Mapping[str, Any],
             final_dir: Path, grid_dir: Path, teacher_info: Mapping[str, Any],
             teacher_model: Path, cfg: DistillReport, seed: int, threads: int, *,
             data_dir: Path, boot: Bootstrap, spread: Spread = SIMPLE) -> StudyResult:
    """The final student beside its grid run and the teacher, with intervals, and the
    regression."""
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
                            int(teacher_info["teacher"]["n_mels"]), threads, cfg.latency, seed,
                            spread)
    grid["role"] = np.where(grid["student"] == "teacher", "teacher", "grid")
    c = grid[grid["student"] == chosen].iloc[0].to_dict()
    t_lat = lat["teacher"].median_ms
    t_size = int(grid.loc[grid["student"] == "teacher", "size_bytes"].iloc[0])
    t_acc = float(teacher_info["accuracy"]["mean_accuracy"])
    final = final_row(c, rec["metrics"], lat["final"], tasks, t_lat, t_size, t_acc)
    sp = speedup(lat["teacher"], lat["final"], boot.resamples, runtime.rng(seed, "bootstrap"),
                 boot.level)
    _, lo, hi = stats.column_names("speedup")  # the value is final_row's, from the medians
    final |= {lo: sp.lo, hi: sp.hi}
    df = pd.concat([grid, pd.DataFrame([final])], ignore_index=True)
    df = with_intervals(df, data_dir, grid_dir, final_dir, tasks, boot, seed)
    reg, extra, weights = regressions(df[df["role"] != "final"], boot.level)
    extra = {**extra, **replicate_summary(df), "report_teacher_latency_ms": t_lat,
             "grid_chosen_latency_ms": lat[chosen].median_ms,
             "bootstrap_resamples": boot.resamples, "bootstrap_level": boot.level,
             "probe_speakers": float(read_probe_utts(data_dir)["speaker"].nunique())}
    metrics = {**summary_metrics(df, chosen, extra), "regression": weights}
    notes = [*selection.get("notes", []), f"chosen: {selection['how']}"]
    return StudyResult(df, reg, chosen, metrics, tasks, notes)


INTERVAL_KEYS = ("mean_accuracy", "delta_mean_accuracy", "accuracy_retention")
FINAL_INTERVAL_KEYS = ("speedup",)  # timed in this stage: only the final student's has one


def with_interval(row: Mapping[str, Any], prefix: str, key: str) -> dict[str, float]:
    """{prefix_key, prefix_key_lo, prefix_key_hi} of a table row (NaN where missing)."""
    return {f"{prefix}_{key}{s}": float(row.get(f"{key}{s}", math.nan)) for s in ("", "_lo", "_hi")}


def summary_metrics(df: pd.DataFrame, chosen: str, extra: Mapping[str, float]) -> dict[str, Any]:
    """metrics.json: the grid, and the FRILL analogue (the final student) against the teacher,
    the accuracies with their intervals."""
    t = df[df["student"] == "teacher"].iloc[0]
    st = df[df["role"] == "grid"]
    c = df[df["role"] == "final"].iloc[0]
    g = df[df["student"] == chosen].iloc[0]
    out: dict[str, Any] = {
        "n_students": len(st), "n_frontier": int(st["on_frontier"].sum()),
        "teacher_latency_ms": float(t["latency_ms"]), "teacher_size_mib": float(t["size_mib"]),
        **with_interval(t, "teacher", "mean_accuracy"),
        "best_student_mean_accuracy": float(st["mean_accuracy"].max()),
        **{k: float(v) for k, v in extra.items()},
        "chosen": chosen, "chosen_label": str(c["label"]),
        "chosen_train_steps": int(c["train_steps"]),
        "chosen_latency_ms": float(c["latency_ms"]), "chosen_size_mib": float(c["size_mib"]),
        "chosen_size_fraction": float(c["size_fraction"]),
        "chosen_accuracy_drop": float(1.0 - c["accuracy_retention"]),
    }
    for key in INTERVAL_KEYS:
        out |= with_interval(c, "chosen", key) | with_interval(g, "grid_chosen", key)
    for key in FINAL_INTERVAL_KEYS:
        out |= with_interval(c, "chosen", key)
    out["done_when"] = rules.done_when(c)
    return out
