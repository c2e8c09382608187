"""The sub-8-bit part of table.md and its figure (mixed_precision.png): pure functions of a
StudyResult (bitwidth.py measured everything)."""

from __future__ import annotations

from typing import Any

from slimaudio.formatting import interval, num
from slimaudio.studies.ptq_layerwise.bitwidth import FLOAT_BITS, FOCUS, MIXED, TOP_BITS, row_name
from slimaudio.studies.ptq_layerwise.result import StudyResult
from slimaudio.studies.ptq_layerwise.rules import ordering_verdict


def bits_section(res: StudyResult) -> list[str]:
    widths = res.bits.get("widths") or []
    if not widths:
        return []
    r = res.rows
    packed0 = r["none"].metrics["size_bytes"]
    lines = ["", "## Sub-8-bit weights per layer group (8-bit activations)", "",
             "Each group's INT8 row again with its weights requantized to b bits per output "
             "channel: real b-bit values run by ORT's int8 kernels (not a float simulation; "
             "the ONNX container stays 8-bit, so the packed size is given). "
             f"`{TOP_BITS}` is the study's INT8 row as quantized (7-bit values under "
             "`reduce_range`). ΔEER against the float model, paired intervals.", "",
             "| group | " + " | ".join(f"ΔEER at {b} bits" for b in (TOP_BITS, *widths))
             + " | packed size at the lowest width (x float) |",
             "|---|" + "---|" * (len(widths) + 2)]
    for g in res.groups:
        cells = [_delta(r[g].metrics)] + [_delta(r[row_name(g, b)].metrics) for b in widths]
        low = r[row_name(g, widths[-1])].metrics
        lines.append(f"| {g} | {' | '.join(cells)} | {low['packed_bytes'] / packed0:.3f} |")
    return lines + _ordering_lines(res, widths) + _mixed_lines(res)


def _delta(m: dict[str, float]) -> str:
    return interval(m["delta_eer"], m.get("delta_eer_lo"), m.get("delta_eer_hi"), 2, sign=True)


def _ordering_lines(res: StudyResult, widths: list[int]) -> list[str]:
    order = res.bits.get("ordering", {})
    if not order:
        return ["", "(The paper's ordering test needs its groups "
                f"{', '.join(FOCUS)}; this model's groups differ.)"]
    lines = ["", f"Is the paper's ordering visible ({' and '.join(FOCUS)} more sensitive "
             "than every other group)? Paired EER differences, focus group minus other group:",
             ""]
    for w, pairs in order.items():
        verdict = ordering_verdict(pairs)
        body = ", ".join(f"{k} {interval(*v, 2, sign=True)}" for k, v in pairs.items())
        lines.append(f"- at {w.removeprefix('w')} bits: **{verdict}** ({body})")
    return lines


def _mixed_lines(res: StudyResult) -> list[str]:
    mp = res.bits.get("mixed_precision")
    if not mp:
        return []
    fb = mp["float_bytes"]
    lines = ["", f"### Mixed precision under the EER budget ({mp['budget']:g} points)", "",
             "A greedy walk from the float model, each step lowering one group by one option "
             f"(float, then {TOP_BITS}, then each width; best parameter-size saving per unit "
             "of the group's solo ΔEER first); every configuration on the way is quantized "
             "and measured, none predicted. Size: parameter bytes with each group's weights "
             "packed at its bits, relative to the float model's.", "",
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


def plot_mixed_precision(res: StudyResult) -> Any:
    """mixed_precision.png: every measured configuration's packed size against its ΔEER, the
    Pareto front, the budget, and the groups alone at each width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    packed0 = res.rows["none"].metrics["size_bytes"]
    mp = res.bits.get("mixed_precision")
    if mp:
        steps, fb = mp["steps"], mp["float_bytes"]
        ax.scatter([s["size_bytes"] / fb for s in steps],
                   [float(s["measured_delta_eer"]) for s in steps], color="C0", zorder=3,
                   label="configurations measured")
        front = mp["front"]
        ax.plot([s["size_bytes"] / fb for s in front],
                [float(s["measured_delta_eer"]) for s in front], "C0-", lw=1, label="front")
        ax.axhline(mp["budget"], color="k", ls="--", lw=1, label="budget")
    for b in res.bits.get("widths") or []:
        pts = [res.rows[row_name(g, b)].metrics for g in res.groups]
        ax.scatter([p["packed_bytes"] / packed0 for p in pts], [p["delta_eer"] for p in pts],
                   marker="x",
                   label=f"one group at {b} bits")
    ax.set_xlabel("packed size (x float model)")
    ax.set_ylabel("ΔEER (points)")
    ax.set_title("Mixed-precision weights: size against measured ΔEER")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
