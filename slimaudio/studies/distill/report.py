"""The distillation report: pure functions from the study's outcome to table.md, the Pareto
figure, the per-student MLflow metrics and the StudyReport the distill_report stage writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from slimaudio import papers, stats
from slimaudio.formatting import interval, interval_of, num
from slimaudio.studies.base import StudyReport
from slimaudio.studies.distill.assemble import StudyResult
from slimaudio.studies.distill.data import QUALITY_SD
from slimaudio.studies.distill.intervals import qualities
from slimaudio.studies.distill.pareto import frontier_order
from slimaudio.studies.distill.rules import STUDY


def render_markdown(res: StudyResult) -> str:
    return "\n".join([*headline(res), *frontier_lines(res.table), *grid_lines(res.table),
                      *regression_lines(res.regression, res.metrics)]) + "\n"


def acc(row: Mapping[str, Any], q: str, delta: bool = False) -> str:
    """An accuracy (or its difference from the teacher) with its interval."""
    k = f"delta_{q}" if delta else q
    return interval_of(stats.read(row, k), 3, delta)


def kept(row: Mapping[str, Any]) -> str:
    """The accuracy kept, as a change in percent with its interval: '-3.1% [-6.0, -0.2]'."""
    vals = [100 * (float(row.get(f"accuracy_retention{s}", float("nan"))) - 1)
            for s in ("", "_lo", "_hi")]
    return f"{num(vals[0], 1, True)}% [{num(vals[1], 1, True)}, {num(vals[2], 1, True)}]"


def intervals_note(m: Mapping[str, Any]) -> str:
    return (f"- Intervals: {100 * float(m['bootstrap_level']):.0f}% percentile bootstrap over "
            f"the {m['probe_speakers']:.0f} probe speakers ({m['bootstrap_resamples']:.0f} "
            "resamples; a speaker's utterances move together, as their answers are correlated),"
            " paired: every model is scored on the same resamples, so a difference from the "
            "teacher has its own, narrower interval. The speed-up's interval resamples the "
            "interleaved timing rounds.")


def seed_note(m: Mapping[str, Any]) -> str:
    """Whether the intervals include the training seed, in one sentence."""
    n = int(m.get("replicates", 1))
    if n > 1:
        return (f"- Training seed: included - every student, the final one too, was trained "
                f"{n} times (seeds base.seed + 0..{n - 1}), its accuracies are the replicates' "
                f"mean and every resample also draws {n} of its replicates (the same draw for "
                f"all); the seed's sd of the mean accuracy, pooled over the grid, is "
                f"{float(m['replicate_sd']):.3f} against a median interval half-width of "
                f"{float(m['median_mean_accuracy_half_width']):.3f}.")
    return ("- Training seed: not included - each student was trained once "
            "(distill_student.replicates 1), so the intervals hold the probe speakers' noise "
            "but not the seed's, which measured about as large (intervals.py); set "
            "distill_student.replicates >= 2 (the paper profile does) to include it.")


def headline(res: StudyResult) -> list[str]:
    """The teacher, the final student and its grid run beside the paper's FRILL vs TRILL."""
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
             f"**{interval(f['speedup'], f.get('speedup_lo'), f.get('speedup_hi'), 1)}x "
             f"faster** | {ref['speedup']:.0f}x faster | {m['grid_chosen_latency_ms']:.3f} |",
             f"| size (MiB) | {t['size_mib']:.3f} | {f['size_mib']:.3f} | "
             f"**{100 * f['size_fraction']:.0f}% of the size** | "
             f"{100 * ref['size_fraction']:.0f}% of the size | {g['size_mib']:.3f} |",
             f"| mean accuracy | {acc(t, 'mean_accuracy')} | {acc(f, 'mean_accuracy')} | "
             f"**{kept(f)}**, {acc(f, 'mean_accuracy', True)} | about "
             f"{-100 * ref['accuracy_drop']:.0f}% | {acc(g, 'mean_accuracy')} ({kept(g)}) |"]
    for task in res.tasks:
        q = f"acc_{task}"
        lines.append(f"| accuracy: {task} | {acc(t, q)} | {acc(f, q)} | {acc(f, q, True)} | | "
                     f"{acc(g, q)} |")
    return [*lines, "", *[f"- {n}" for n in res.notes], intervals_note(m), seed_note(m),
            "- Latency: models timed interleaved in one process (batch 1, one input "
            "patch of 0.96 s, base.threads threads); students with LiteRT, the teacher with "
            "ONNX Runtime (it takes 80-band log-mel features, so its frontend is outside, like "
            "the `outside` students'). The table above is one such run (final student, its "
            "grid run, teacher; distill_report); the frontier below and table.csv's grid "
            "rows another (every grid student and the teacher; distill_select)."]


def frontier_lines(df: pd.DataFrame) -> list[str]:
    lines = ["", "## Frontier", "",
             "| student | label | latency (ms) | size (MiB) | mean accuracy | vs teacher |",
             "|---|---|---|---|---|---|"]
    st = df[df["role"] == "grid"]
    for i in frontier_order(st["latency_ms"].to_numpy(), st["mean_accuracy"].to_numpy()):
        r = st.iloc[i]
        lines.append(f"| {r['student']} | `{r['label']}` | {r['latency_ms']:.3f} | "
                     f"{r['size_mib']:.3f} | {acc(r, 'mean_accuracy')} | "
                     f"{acc(r, 'mean_accuracy', True)} |")
    return lines


def grid_lines(df: pd.DataFrame) -> list[str]:
    """Every grid student's accuracy with its interval and its paired difference (and, with
    training replicates, their sd of the mean accuracy)."""
    st = df[df["role"] == "grid"]
    sd = QUALITY_SD in st and bool(st[QUALITY_SD].notna().any())
    lines = ["", "## Every grid student", "",
             "| student | label | latency (ms) | size (MiB) | mean accuracy | vs teacher |"
             + (" seed sd |" if sd else ""), "|---|---|---|---|---|---|" + ("---|" if sd else "")]
    for _, r in st.sort_values("latency_ms").iterrows():
        lines.append(f"| {r['student']} | `{r['label']}` | {r['latency_ms']:.3f} | "
                     f"{r['size_mib']:.3f} | {acc(r, 'mean_accuracy')} | "
                     f"{acc(r, 'mean_accuracy', True)} |"
                     + (f" {num(r[QUALITY_SD], 3)} |" if sd else ""))
    return lines


def regression_lines(regression: pd.DataFrame, m: Mapping[str, Any]) -> list[str]:
    dof = float(m["regression_dof"])
    level = 100 * float(m["regression_level"])
    lines = ["", "## Regression on standardised hyperparameters", "",
             "Weight = change of the target for +1 standard deviation of the hyperparameter "
             "(positive = larger, on, GAP, inside), with its "
             f"{level:.0f}% t interval from the OLS standard error. "
             f"R^2: quality {m['regression_quality_r2']:.2f}, latency "
             f"{m['regression_latency_r2']:.2f}, size {m['regression_size_r2']:.2f}; "
             f"residual degrees of freedom {dof:.0f}"
             + (" (an exact fit: more students are needed to test it)." if dof <= 0 else ".")
             + f" {replicates_phrase(m)}",
             "", "| hyperparameter | quality (accuracy) | latency (ms) | size (MiB) |",
             "|---|---|---|---|"]
    for name, g in regression.groupby("hyperparameter", sort=True):
        cells = {r["target"]: interval(r["weight"], r["lo"], r["hi"], 4, True)
                 for _, r in g.iterrows()}
        lines.append(f"| {name} | {cells.get('quality')} | {cells.get('latency')} | "
                     f"{cells.get('size')} |")
    return [*lines, "", "Paper: QAT, bottleneck compression and global average pooling cut "
            "latency the most; compression cost the most quality and pooling the least; the "
            "width multiplier mattered most for size. The summary judges each direction on "
            "its interval (rules.REGRESSION_CLAIMS)."]


def replicates_phrase(m: Mapping[str, Any]) -> str:
    """What the quality regressed is: each student's mean over its training replicates."""
    n = int(m.get("replicates", 1))
    if n > 1:
        return (f"Quality is each student's mean accuracy over its {n} training replicates, "
                "so the residuals hold what is left of the seed's noise.")
    return ("Quality is each student's accuracy from one training (1 replicate), so the "
            "residuals hold the training seed's noise too.")


def _steps(row: Mapping[str, Any]) -> str:
    n = row.get("train_steps")
    return "? steps" if n is None or pd.isna(n) else f"{int(n)} steps"


def plot_pareto(res: StudyResult):  # -> matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

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
    """A student's MLflow metrics: its measurements, every accuracy with its interval and its
    paired difference from the teacher."""
    keys = ["size_bytes", "size_mib", "latency_ms", "latency_p90_ms", "speedup",
            "size_fraction", "accuracy_retention", "accuracy_retention_lo",
            "accuracy_retention_hi", "speedup_lo", "speedup_hi", "replicates", QUALITY_SD]
    for q in qualities(tasks):
        keys += [*stats.column_names(q), *stats.column_names(f"delta_{q}")]
    return {k: float(row[k]) for k in keys if row.get(k) is not None and pd.notna(row.get(k))}


def build(res: StudyResult) -> StudyReport:
    """What distill_report writes and logs: table.csv (the table), rows.csv, table.md,
    metrics.json, regression.csv and pareto.png; one MLflow child run per student."""
    students = [r for r in res.table.to_dict("records") if r["student"] != "teacher"]
    return StudyReport(
        study=STUDY, table=res.table, markdown=render_markdown(res), metrics=res.metrics,
        tables={"regression": res.regression}, figures={"pareto": plot_pareto(res)},
        variant_metrics={f"{r['student']} {r['label']}": flat_metrics(r, res.tasks)
                         for r in students},
        variant_tags={f"{r['student']} {r['label']}": {
            "on_frontier": str(r["on_frontier"]), "chosen": str(r["chosen"]), "role": r["role"]}
            for r in students})


def describe(res: StudyResult) -> list[str]:
    m = res.metrics
    return [f"distill: {m['n_students']} students, {m['n_frontier']} on the frontier; teacher "
            f"{m['teacher_latency_ms']:.3f} ms, {m['teacher_size_mib']:.3f} MiB, "
            f"accuracy {m['teacher_mean_accuracy']:.3f}",
            f"chosen {res.chosen} ({m['chosen_label']}), trained {m['chosen_train_steps']} steps: "
            f"{m['chosen_speedup']:.1f}x faster, {100 * m['chosen_size_fraction']:.0f}% of the "
            f"size, {100 * m['chosen_accuracy_retention']:.1f}% of the teacher's accuracy "
            f"(grid run: {100 * m['grid_chosen_accuracy_retention']:.1f}%)"]
