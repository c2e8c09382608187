"""table.md, metrics.json and the figure (mixed_precision.png): pure functions of a
StudyResult (run.py and bitwidth.py measured everything)."""

from __future__ import annotations

from typing import Any

from slimaudio.formatting import interval, num
from slimaudio.studies.base import StudyReport
from slimaudio.studies.ptq_bits.bitwidth import FLOAT_BITS, FOCUS, MIXED, TOP_BITS, row_name
from slimaudio.studies.ptq_bits.result import COLUMNS, StudyResult
from slimaudio.studies.ptq_bits.rules import STUDY, ordering_verdict

# What MLflow gets per row (one child run each).
ROW_KEYS = ("eer", "eer_lo", "eer_hi", "delta_eer", "delta_eer_lo", "delta_eer_hi", "min_dcf",
            "min_dcf_lo", "min_dcf_hi", "delta_min_dcf", "delta_min_dcf_lo", "delta_min_dcf_hi",
            "score_shift", "score_shift_lo", "score_shift_hi", "size_bytes", "size_mib",
            "size_ratio", "latency_ms", "latency_p90_ms", "speedup", "speedup_lo", "speedup_hi",
            "weight_bits", "packed_bytes")


def mixed_summary(res: StudyResult) -> dict[str, Any] | None:
    """The walk as metrics.json records it (sizes: parameter bytes packed at their bits;
    `float_bytes`: the float model's on that scale)."""
    return None if res.walk is None else res.walk.as_dict() | {"float_bytes": res.float_bytes}


def metrics_summary(res: StudyResult) -> dict[str, Any]:
    out: dict[str, Any] = {"eer_none": res.rows["none"].metrics["eer"],
                           "widths": list(res.widths), "ordering": res.ordering,
                           "mixed_precision": mixed_summary(res),
                           "runtime_s": res.timings["total"], "timings_s": res.timings,
                           "machine": res.info}
    if MIXED in res.rows:
        m = res.rows[MIXED].metrics
        out |= {f"{k}_{MIXED}": m[k] for k in ("eer", "delta_eer", "packed_bytes", "speedup")}
    out["rows"] = {n: dict(r.metrics) for n, r in res.rows.items()}
    return out


def table_markdown(res: StudyResult) -> str:
    lines = ["# Sub-8-bit weights and mixed precision per layer group", "",
             "Builds on the per-layer INT8 study (reports/ptq_layerwise): its float model, its "
             "per-group INT8 rows, calibration and quantization settings "
             f"({'7' if res.info['reduce_range'] else '8'}-bit INT8 weights). Intervals: "
             f"{res.info['level']:.0%} speaker bootstrap over {res.info['trials']} trials, "
             "paired with the per-layer study's rows (the same trial scores).",
             *bits_section(res), *_ordering_lines(res), *_mixed_lines(res), *_every_row(res),
             "", f"Study run time: {res.timings['total']:.1f} s "
             f"({', '.join(f'{k} {v:.1f} s' for k, v in res.timings.items() if k != 'total')}).",
             ""]
    return "\n".join(lines)


def bits_section(res: StudyResult) -> list[str]:
    r, widths = res.rows, res.widths
    packed0 = r["none"].metrics["size_bytes"]
    lines = ["", "## Each layer group at fewer weight bits (8-bit activations)", "",
             "Each group's INT8 row again with its weights requantized to b bits per output "
             "channel: real b-bit values run by ORT's int8 kernels (not a float simulation; "
             "the ONNX container stays 8-bit, so the packed size is given). "
             f"`{TOP_BITS}` is the per-layer study's INT8 row as quantized (7-bit values under "
             "`reduce_range`). ΔEER against the float model, paired intervals.", "",
             "| group | " + " | ".join(f"ΔEER at {b} bits" for b in (TOP_BITS, *widths))
             + " | packed size at the lowest width (x float) |",
             "|---|" + "---|" * (len(widths) + 2)]
    for g in res.bit_groups:
        cells = [_delta(res.int8[g].metrics)] + [_delta(r[row_name(g, b)].metrics)
                                                  for b in widths]
        low = r[row_name(g, widths[-1])].metrics
        lines.append(f"| {g} | {' | '.join(cells)} | {low['packed_bytes'] / packed0:.3f} |")
    skipped = [g for g in res.groups if g not in res.bit_groups]
    if skipped:
        lines += ["", f"No b-bit form for {', '.join(skipped)}: its INT8 row has no static "
                  "QDQ weights (recurrent layers are quantized dynamically, or left float, by "
                  "ORT); the walk keeps it float."]
    return lines


def _delta(m: Any) -> str:
    return interval(m["delta_eer"], m.get("delta_eer_lo"), m.get("delta_eer_hi"), 2, sign=True)


def _ordering_lines(res: StudyResult) -> list[str]:
    if not res.ordering:
        return ["", "(The paper's ordering test needs its groups "
                f"{', '.join(FOCUS)}; this model's groups differ.)"]
    lines = ["", f"Is the paper's ordering visible ({' and '.join(FOCUS)} more sensitive "
             "than every other group)? Paired EER differences, focus group minus other group:",
             ""]
    for w, pairs in res.ordering.items():
        verdict = ordering_verdict(pairs)
        body = ", ".join(f"{k} {interval(*v, 2, sign=True)}" for k, v in pairs.items())
        lines.append(f"- at {w.removeprefix('w')} bits: **{verdict}** ({body})")
    return lines


def _mixed_lines(res: StudyResult) -> list[str]:
    mp = mixed_summary(res)
    if not mp:
        return []
    fb = mp["float_bytes"]
    lines = ["", f"## Mixed precision under the EER budget ({mp['budget']:g} points)", "",
             "A greedy walk from the float model (slimaudio.compress.budget_walk), each step "
             f"lowering one group by one option (float, then {TOP_BITS}, then each width; best "
             "parameter-size saving per unit of the group's solo ΔEER first); every "
             "configuration on the way is quantized and measured, none predicted. Size: "
             "parameter bytes with each group's weights packed at its bits, relative to the "
             "float model's.", "",
             "| step | bits per group | predicted ΔEER | measured ΔEER | size (x float) "
             "| accepted |", "|---|---|---|---|---|---|"]
    for k, s in enumerate(mp["steps"]):
        bits = ", ".join(f"{g} {_bits(b)}" for g, b in s["config"].items())
        lines.append(f"| {k} | {bits} | {num(s['predicted_delta_eer'], 3)} | "
                     f"{num(s['measured_delta_eer'], 3)} | {s['size_bytes'] / fb:.3f} | "
                     f"{'yes' if s['accepted'] else 'no'} |")
    chosen = mp.get("chosen")
    if chosen is None or MIXED not in res.rows:
        return lines + ["", "No quantized configuration met the budget."]
    m = res.rows[MIXED].metrics
    return lines + ["", f"Chosen (`{MIXED}`): size {chosen['size_bytes'] / fb:.3f} of the "
                    f"float model's parameters, ΔEER {_delta(m)} points on evaluation "
                    f"({mp['verify_calls']} configurations measured)."]


def _bits(b: int) -> str:
    return "float" if b == FLOAT_BITS else str(b)


def _every_row(res: StudyResult) -> list[str]:
    lines = ["", "## Every row", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for _, row in res.table().iterrows():
        lines.append("| " + " | ".join(
            [str(row["quantized"])] + [num(row[c], 0 if c in ("size_bytes", "packed_bytes")
                                           else 3) for c in COLUMNS[1:]]) + " |")
    return lines


def plot_mixed_precision(res: StudyResult) -> Any:
    """mixed_precision.png: every measured configuration's packed size against its ΔEER, the
    Pareto front, the budget, and the groups alone at each width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    packed0 = res.rows["none"].metrics["size_bytes"]
    mp = mixed_summary(res)
    if mp:
        steps, fb = mp["steps"], mp["float_bytes"]
        ax.scatter([s["size_bytes"] / fb for s in steps],
                   [float(s["measured_delta_eer"]) for s in steps], color="C0", zorder=3,
                   label="configurations measured")
        front = mp["front"]
        ax.plot([s["size_bytes"] / fb for s in front],
                [float(s["measured_delta_eer"]) for s in front], "C0-", lw=1, label="front")
        ax.axhline(mp["budget"], color="k", ls="--", lw=1, label="budget")
    for b in res.widths:
        pts = [res.rows[row_name(g, b)].metrics for g in res.bit_groups]
        ax.scatter([p["packed_bytes"] / packed0 for p in pts], [p["delta_eer"] for p in pts],
                   marker="x", label=f"one group at {b} bits")
    ax.set_xlabel("packed size (x float model)")
    ax.set_ylabel("ΔEER (points)")
    ax.set_title("Mixed-precision weights: size against measured ΔEER")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def headline(res: StudyResult) -> str:
    """One line for the stage's console."""
    if MIXED not in res.rows:
        return f"ptq_bits: no mixed-precision choice; {res.timings['total']:.1f} s"
    m, chosen = res.rows[MIXED].metrics, res.walk.chosen
    return (f"ptq_bits: mixed precision dEER {m['delta_eer']:+.3f}, parameters "
            f"{chosen.size / res.float_bytes:.3f} of float; {res.timings['total']:.1f} s")


def build(res: StudyResult) -> StudyReport:
    """Everything the ptq_bits stage writes (one output per role of STUDY) and logs."""
    return StudyReport(
        study=STUDY, table=res.table(), markdown=table_markdown(res),
        metrics=metrics_summary(res), figures={"mixed_png": plot_mixed_precision(res)},
        variant_metrics={n: {k: row.metrics[k] for k in ROW_KEYS if k in row.metrics}
                         for n, row in res.rows.items()},
        variant_tags={n: {"kind": row.kind, "groups": ",".join(row.groups) or "none"}
                      for n, row in res.rows.items()})
