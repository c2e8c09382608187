"""Study 4 (FRILL): aggregate the students, time them beside the teacher, find the
quality-latency frontier, pick the FRILL analogue, train it again for longer, regress
quality/latency/size on the hyperparameters, and render students.csv, regression.csv,
table.md, metrics.json and pareto.png.

Two stages use this module:

  distill_select  every grid student's TFLite model and the teacher's ONNX model timed
                  interleaved in one process (slimaudio.latency), so ratios are fair under
                  load; the frontier; the choice (choice.json, read by distill_final)
  distill_report  the final student (the chosen configuration after distill_final's longer
                  training), the chosen grid run and the teacher timed interleaved again; the
                  regression over the grid; the tables and the plot

The choice follows FRILL's rule: FRILL is the best model under a latency budget (10 ms on a
Pixel 1, about 1/32 of TRILL). Here the budgets are relative: the frontier student with the
best mean accuracy among those at most `choose.max_latency_fraction` x the teacher's latency
and, unless it is null, at most `choose.max_size_fraction` x its file size (a phone has a
storage budget too; the default asks for FRILL's 40%). If no frontier student meets both, the
fastest frontier student, and the table says so. Accuracy is then reported, not used to filter.

Why a final stage: FRILL trained every student to convergence on a TPU. Here the grid is a
screen, each student trained for `distill_student.steps` so that eight fit a few minutes of
a 2-core CPU, and its accuracies rank the configurations; the chosen one is then trained for
`distill_final.steps`, and the headline (speed-up, size, accuracy kept) is that model's. The
grid's short-budget accuracy of the same configuration is shown beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import papers
from slimaudio.distill import grid as grid_mod
from slimaudio.distill.pareto import frontier, frontier_order
from slimaudio.distill.regression import fit
from slimaudio.errors import DataError, ParamError
from slimaudio.metrics import MIB

HYPER = list(grid_mod.FACTORS)
TARGETS = {"quality": "mean_accuracy", "latency": "latency_ms", "size": "size_mib"}


@dataclass
class StudyResult:
    table: pd.DataFrame                    # students + teacher, one row each
    regression: pd.DataFrame               # target, hyperparameter, weight
    chosen: str
    metrics: dict[str, Any]
    tasks: list[str]
    notes: list[str] = field(default_factory=list)


def read_student(folder: Path, sid: str, expect: Mapping[str, Any]) -> dict[str, Any]:
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


def measure_all(models: Mapping[str, Path], teacher: Path, teacher_frames: int,
                teacher_mels: int, threads: int, warmup: int, repeats: int,
                seed: int) -> dict[str, Any]:
    """Interleaved batch-1 latency of every TFLite model and the teacher (ONNX Runtime)."""
    from slimaudio import latency
    from slimaudio.distill.teacher import teacher_session
    from slimaudio.latency import litert_interpreter

    rng = np.random.default_rng([seed, 6, 5])
    runners = {}
    for name, path in models.items():
        interp = litert_interpreter(path, threads)
        shape = interp.get_input_details()[0]["shape"]
        x = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        runners[name] = latency.litert_runner(interp, [x], threads)
    sess = teacher_session(teacher, threads)
    feats = rng.standard_normal((1, teacher_frames, teacher_mels)).astype(np.float32)
    runners["teacher"] = latency.onnx_runner(sess, {sess.get_inputs()[0].name: feats})
    return latency.measure_interleaved(runners, warmup=warmup, repeats=repeats, threads=threads,
                                       seed=seed)


def build_table(students: Mapping[str, Mapping[str, Any]], records: Mapping[str, dict[str, Any]],
                teacher: Mapping[str, Any], lat: Mapping[str, Any], tasks: Sequence[str],
                teacher_size: int) -> pd.DataFrame:
    rows = []
    for sid, hp in students.items():
        m = records[sid]["metrics"]
        row: dict[str, Any] = {"student": sid, "label": records[sid]["label"], **{k: hp[k] for k in HYPER}}
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
        rows.append(row)
    t_acc = teacher["accuracy"]
    trow: dict[str, Any] = {"student": "teacher", "label": "ECAPA-TDNN (ONNX Runtime)",
                            **{k: None for k in HYPER}, "format": "onnx-float32",
                            "params": int(teacher["teacher"]["params"]), "size_bytes": teacher_size,
                            "size_mib": teacher_size / MIB, "latency_ms": lat["teacher"].median_ms,
                            "latency_p90_ms": lat["teacher"].p90_ms,
                            "fp32_size_bytes": teacher_size,
                            "fp32_latency_ms": lat["teacher"].median_ms,
                            **{f"acc_{t}": t_acc[f"acc_{t}"] for t in tasks},
                            "mean_accuracy": t_acc["mean_accuracy"], "final_mse": math.nan}
    df = pd.DataFrame(rows + [trow])
    is_student = df["student"] != "teacher"
    mask = np.zeros(len(df), dtype=bool)
    mask[is_student.to_numpy()] = frontier(df.loc[is_student, "latency_ms"].to_numpy(),
                                           df.loc[is_student, "mean_accuracy"].to_numpy())
    df["on_frontier"] = mask
    t_lat, t_acc_m = lat["teacher"].median_ms, t_acc["mean_accuracy"]
    df["speedup"] = t_lat / df["latency_ms"]
    df["size_fraction"] = df["size_bytes"] / teacher_size
    df["accuracy_retention"] = df["mean_accuracy"] / t_acc_m if t_acc_m > 0 else math.nan
    return df


def choose(df: pd.DataFrame, max_latency_fraction: float,
           max_size_fraction: float | None = None) -> tuple[str | None, str]:
    """The FRILL analogue (see the module docstring) and a sentence on how it was chosen."""
    front = df[(df["student"] != "teacher") & df["on_frontier"]]
    if front.empty:
        return None, "no students"
    teacher = df[df["student"] == "teacher"].iloc[0]
    budget = max_latency_fraction * float(teacher["latency_ms"])
    ok = front["latency_ms"] <= budget
    what = f"latency <= {max_latency_fraction:g} x teacher = {budget:.3f} ms"
    if max_size_fraction is not None:
        size_budget = max_size_fraction * float(teacher["size_bytes"])
        ok &= front["size_bytes"] <= size_budget
        what += f", size <= {max_size_fraction:g} x teacher = {size_budget / MIB:.3f} MiB"
    fit = front[ok]
    if not fit.empty:
        best = fit.sort_values(["mean_accuracy", "latency_ms"], ascending=[False, True]).iloc[0]
        return str(best["student"]), f"best frontier student within the budgets ({what})"
    best = front.sort_values("latency_ms").iloc[0]
    return str(best["student"]), (f"no frontier student within the budgets ({what}); "
                                  "the fastest frontier student")


def regressions(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
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


def select(students: Mapping[str, Mapping[str, Any]], levels: Mapping[str, Sequence[Any]],
           models_dir: Path, teacher_info: Mapping[str, Any], teacher_model: Path,
           section: Mapping[str, Any], threads: int, seed: int) -> Selection:
    """Time every grid student and the teacher interleaved, find the frontier, choose."""
    if not students:
        raise ParamError("params: distill_grid.students is empty")
    if section["require_full_grid"] and not grid_mod.is_full(students, levels):
        raise ParamError(
            f"params: distill_select.require_full_grid is set (profile paper) but "
            f"distill_grid.students has {len(students)} of the {len(grid_mod.full_grid(levels))} "
            "grid students; run `python -m slimaudio.distill.grid --design full --write` first")
    notes = []
    missing = grid_mod.covers_all_levels(students, levels)
    if missing:
        notes.append(f"levels not covered by any student: {', '.join(missing)}")
    records = {sid: read_student(models_dir / sid, sid, hp) for sid, hp in students.items()}
    models: dict[str, Path] = {}
    for sid, hp in students.items():
        models[sid] = models_dir / sid / "model.tflite"
        if hp["qat"]:
            models[f"{sid}:fp32"] = models_dir / sid / "model_fp32.tflite"
    for name, path in models.items():
        if not path.exists():
            raise DataError(f"{path}: missing (run distill_student@{name.split(':')[0]})")
    tasks = list(teacher_info["tasks"])
    lat = measure_all(models, teacher_model, int(teacher_info["frames"]),
                      int(teacher_info["teacher"]["n_mels"]),
                      threads, int(section["latency"]["warmup"]), int(section["latency"]["repeats"]),
                      seed)
    teacher_size = int(teacher_model.stat().st_size)
    df = build_table(students, records, teacher_info, lat, tasks, teacher_size)
    budgets = section["choose"]
    size_budget = budgets["max_size_fraction"]
    chosen, how = choose(df, float(budgets["max_latency_fraction"]),
                         None if size_budget is None else float(size_budget))
    if chosen is None:  # unreachable with at least one student, kept for the type checker
        raise DataError("no student could be chosen")
    df["chosen"] = df["student"] == chosen
    return Selection(df, chosen, how, notes)


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


def run(grid: pd.DataFrame, selection: Mapping[str, Any], choice: Mapping[str, Any],
        final_dir: Path, grid_dir: Path, teacher_info: Mapping[str, Any], teacher_model: Path,
        section: Mapping[str, Any], threads: int, seed: int) -> StudyResult:
    """The report: the final student beside its grid run and the teacher, the regression."""
    chosen = str(choice["student"])
    grid = grid.copy()
    if chosen not in set(grid["student"]):
        raise DataError(f"the selection chose {chosen!r}, which is not in the grid table")
    rec = read_final(final_dir, choice)
    tasks = list(teacher_info["tasks"])
    final_model = final_dir / "model.tflite"
    if not final_model.exists():
        raise DataError(f"{final_model}: missing (run the distill_final stage)")
    lat = measure_all({"final": final_model, chosen: grid_dir / chosen / "model.tflite"},
                      teacher_model, int(teacher_info["frames"]),
                      int(teacher_info["teacher"]["n_mels"]), threads,
                      int(section["latency"]["warmup"]), int(section["latency"]["repeats"]), seed)
    grid["role"] = np.where(grid["student"] == "teacher", "teacher", "grid")
    c = grid[grid["student"] == chosen].iloc[0].to_dict()
    m = rec["metrics"]
    t_lat = lat["teacher"].median_ms
    t_size = int(grid.loc[grid["student"] == "teacher", "size_bytes"].iloc[0])
    t_acc = float(teacher_info["accuracy"]["mean_accuracy"])
    final = {**c, "student": "final", "role": "final", "on_frontier": False, "chosen": False,
             "params": int(m["params"]), "size_bytes": int(m["size_bytes"]),
             "size_mib": m["size_bytes"] / MIB, "latency_ms": lat["final"].median_ms,
             "latency_p90_ms": lat["final"].p90_ms,
             "fp32_size_bytes": int(m.get("fp32_size_bytes", m["size_bytes"])),
             "fp32_latency_ms": math.nan if c["qat"] else lat["final"].median_ms,
             **{f"acc_{t}": m[f"acc_{t}"] for t in tasks}, "mean_accuracy": m["mean_accuracy"],
             "final_mse": m.get("final_mse", math.nan), "train_steps": m.get("train_steps"),
             "speedup": t_lat / lat["final"].median_ms, "size_fraction": m["size_bytes"] / t_size,
             "accuracy_retention": m["mean_accuracy"] / t_acc if t_acc > 0 else math.nan}
    df = pd.concat([grid, pd.DataFrame([final])], ignore_index=True)
    reg, extra = regressions(df[df["role"] != "final"])
    extra = {**extra, "report_teacher_latency_ms": t_lat,
             "grid_chosen_latency_ms": lat[chosen].median_ms,
             "grid_chosen_mean_accuracy": float(c["mean_accuracy"]),
             "grid_chosen_accuracy_retention": float(c["accuracy_retention"])}
    metrics = summary_metrics(df, chosen, extra)
    notes = [*selection.get("notes", []), f"chosen: {selection['how']}"]
    return StudyResult(df, reg, chosen, metrics, tasks, notes)


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
    out["done_when"] = {
        "speedup_at_least_10x": bool(c["speedup"] >= 10.0),
        "size_at_most_40pct": bool(c["size_fraction"] <= 0.40),
        "accuracy_at_least_95pct": bool(c["accuracy_retention"] >= 0.95),
    }
    return out


# ------------------------------------------------------------------------------ rendering


def render_markdown(res: StudyResult) -> str:
    df, m = res.table, res.metrics
    ref = papers.FRILL
    t = df[df["student"] == "teacher"].iloc[0]
    f = df[df["role"] == "final"].iloc[0]
    g = df[df["student"] == res.chosen].iloc[0]
    t_lat = float(m["report_teacher_latency_ms"])
    lines = ["# FRILL-style distillation: teacher vs the chosen frontier student", "",
             f"{m['n_students']} grid students ({m['n_frontier']} on the quality-latency "
             f"frontier), each trained for {_steps(g)}; the chosen configuration trained again "
             f"for {_steps(f)} (distill_final). The paper trained {ref['students']}.", "",
             "| | teacher | chosen student | ours (student / teacher) | paper (FRILL / TRILL) "
             f"| chosen, grid run ({_steps(g)}) |",
             "|---|---|---|---|---|---|",
             f"| model | ECAPA-TDNN, ONNX Runtime float32 | `{f['label']}` ({res.chosen}), TFLite "
             f"{f['format']}, {_steps(f)} | | MobileNetV3 / ResNet50 | same |",
             f"| latency, batch 1, 1 thread (ms) | {t_lat:.3f} | {f['latency_ms']:.3f} | "
             f"**{f['speedup']:.1f}x faster** | {ref['speedup']:.0f}x faster | "
             f"{m['grid_chosen_latency_ms']:.3f} |",
             f"| size (MiB) | {t['size_mib']:.3f} | {f['size_mib']:.3f} | "
             f"**{100 * f['size_fraction']:.0f}% of the size** | "
             f"{100 * ref['size_fraction']:.0f}% of the size | {g['size_mib']:.3f} |",
             f"| mean accuracy | {t['mean_accuracy']:.3f} | {f['mean_accuracy']:.3f} | "
             f"**{100 * (f['accuracy_retention'] - 1):+.1f}%** | about "
             f"{-100 * ref['accuracy_drop']:.0f}% | {g['mean_accuracy']:.3f} "
             f"({100 * (g['accuracy_retention'] - 1):+.1f}%) |"]
    for task in res.tasks:
        lines.append(f"| accuracy: {task} | {t[f'acc_{task}']:.3f} | {f[f'acc_{task}']:.3f} | "
                     f"{f[f'acc_{task}'] - t[f'acc_{task}']:+.3f} | | {g[f'acc_{task}']:.3f} |")
    lines += ["", *[f"- {n}" for n in res.notes],
              "- Latency: models timed interleaved in one process (batch 1, one input "
              "patch of 0.96 s, base.threads threads); students with LiteRT, the teacher with "
              "ONNX Runtime (it takes 80-band log-mel features, so its frontend is outside, like "
              "the `outside` students'). The table above is one such run (final student, its "
              "grid run, teacher; distill_report); the frontier below and students.csv's grid "
              "rows another (every grid student and the teacher; distill_select).",
              "", "## Frontier", "",
              "| student | label | latency (ms) | size (MiB) | mean accuracy |", "|---|---|---|---|---|"]
    st = df[df["role"] == "grid"]
    for i in frontier_order(st["latency_ms"].to_numpy(), st["mean_accuracy"].to_numpy()):
        r = st.iloc[i]
        lines.append(f"| {r['student']} | `{r['label']}` | {r['latency_ms']:.3f} | "
                     f"{r['size_mib']:.3f} | {r['mean_accuracy']:.3f} |")
    lines += ["", "## Regression on standardised hyperparameters", "",
              "Weight = change of the target for +1 standard deviation of the hyperparameter "
              "(positive = larger, on, GAP, inside). "
              f"R^2: quality {m['regression_quality_r2']:.2f}, latency "
              f"{m['regression_latency_r2']:.2f}, size {m['regression_size_r2']:.2f}; "
              f"residual degrees of freedom {m['regression_dof']:.0f}"
              + (" (an exact fit: more students are needed to test it)." if m["regression_dof"] <= 0 else "."),
              "", "| hyperparameter | quality (accuracy) | latency (ms) | size (MiB) |", "|---|---|---|---|"]
    wide = res.regression.pivot(index="hyperparameter", columns="target", values="weight")
    for name in wide.index:
        lines.append(f"| {name} | {wide.loc[name, 'quality']:+.4f} | {wide.loc[name, 'latency']:+.4f} | "
                     f"{wide.loc[name, 'size']:+.4f} |")
    lines += ["", "Paper: QAT, bottleneck compression and global average pooling cut latency "
              "the most; compression cost the most quality and pooling the least; the width "
              "multiplier mattered most for size."]
    return "\n".join(lines) + "\n"


def _steps(row: Mapping[str, Any]) -> str:
    n = row.get("train_steps")
    return "? steps" if n is None or pd.isna(n) else f"{int(n)} steps"


def plot_pareto(res: StudyResult):  # -> matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = res.table
    st, t = df[df["role"] == "grid"], df[df["student"] == "teacher"].iloc[0]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    off = st[~st["on_frontier"]]
    ax.scatter(off["latency_ms"], off["mean_accuracy"], c="0.6", s=30, label="student")
    on = st.iloc[frontier_order(st["latency_ms"].to_numpy(), st["mean_accuracy"].to_numpy())]
    ax.step(on["latency_ms"], on["mean_accuracy"], where="post", c="C0", lw=1.2)
    ax.scatter(on["latency_ms"], on["mean_accuracy"], c="C0", s=45, label="frontier")
    for _, r in on.iterrows():
        ax.annotate(r["student"], (r["latency_ms"], r["mean_accuracy"]), fontsize=7,
                    xytext=(3, -9), textcoords="offset points")
    c = df[df["student"] == res.chosen].iloc[0]
    f = df[df["role"] == "final"].iloc[0]
    ax.scatter([c["latency_ms"]], [c["mean_accuracy"]], s=160, facecolors="none",
               edgecolors="C3", lw=1.8, label=f"chosen ({c['label']}), grid run")
    ax.annotate("", (c["latency_ms"], f["mean_accuracy"]), (c["latency_ms"], c["mean_accuracy"]),
                arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.2})
    # drawn at the grid run's latency: the same graph, so the same cost (re-timed in table.md)
    ax.scatter([c["latency_ms"]], [f["mean_accuracy"]], marker="D", s=70, c="C3",
               label=f"chosen, trained {_steps(f)} (distill_final)")
    ax.scatter([t["latency_ms"]], [t["mean_accuracy"]], marker="*", s=220, c="C1",
               edgecolors="k", label="teacher (ECAPA-TDNN, ONNX Runtime)")
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))  # 0.2, not 2x10^-1
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("latency, batch 1, one 0.96 s patch (ms, median, log)")
    ax.set_ylabel("mean probe accuracy")
    ax.set_title("Distilled MobileNetV3 students: quality vs latency")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def flat_metrics(row: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    keys = ["size_bytes", "size_mib", "latency_ms", "latency_p90_ms", "mean_accuracy",
            "speedup", "size_fraction", "accuracy_retention", *[f"acc_{t}" for t in tasks]]
    return {k: float(row[k]) for k in keys if row.get(k) is not None and pd.notna(row.get(k))}


def describe(res: StudyResult) -> list[str]:
    m = res.metrics
    return [f"distill: {m['n_students']} students, {m['n_frontier']} on the frontier; teacher "
            f"{m['teacher_latency_ms']:.3f} ms, {m['teacher_size_mib']:.3f} MiB, "
            f"accuracy {m['teacher_mean_accuracy']:.3f}",
            f"chosen {res.chosen} ({m['chosen_label']}), trained {m['chosen_train_steps']} steps: "
            f"{m['chosen_speedup']:.1f}x faster, {100 * m['chosen_size_fraction']:.0f}% of the "
            f"size, {100 * m['chosen_accuracy_retention']:.1f}% of the teacher's accuracy "
            f"(grid run: {100 * m['grid_chosen_accuracy_retention']:.1f}%)"]
