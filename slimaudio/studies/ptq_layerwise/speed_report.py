"""The speed part of the PTQ report: INT8 speed-up against width and input length (table and
plot), and why the slow rows are slow, read from ORT's per-operator profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from slimaudio.formatting import num

SPEED_VARIANT = "all"  # the variant the width plot and the summary's finding follow
# What each slow row's dominant kernel means, for the sentence under the profile table.
KERNEL_NOTES = {
    "ConvInteger": "ORT's dynamic-quantization convolution, a reference kernel without the "
                   "packed int8 GEMM of the static QDQ path; every call also re-quantizes its "
                   "input on the fly",
    "DynamicQuantizeLinear": "the on-the-fly input quantization of dynamic quantization",
    "Cast": "float16-float32 casts: x86 CPUs have no float16 convolution kernel in ORT, so "
            "the graph converts back and forth",
    "Conv": "float convolutions",
    "FusedConv": "float convolutions (fused with their activation)",
    "QLinearConv": "int8 convolutions",
}


def speed_table_markdown(speed: pd.DataFrame, level: float) -> list[str]:
    """Speed-up over the float model, by width (rows) and input length (columns)."""
    if speed.empty:
        return []
    secs = sorted(speed["seconds"].unique())
    lines = ["", "## INT8 speed-up against width and input length", "",
             "Random-weight ECAPA-TDNNs of the paper's proportions (MFA 1.5C, attention and SE "
             "bottlenecks 128) with BatchNorm statistics from the calibration utterances, "
             "quantized with this study's settings: speed does not depend on what the weights "
             "learnt, so EER stays on the trained model above. Speed-up = float latency / "
             f"variant latency at the same width and length, with {level:.0%} intervals over "
             "timing processes and rounds; batch 1, one thread.", "",
             "| C | params (M) | variant | " + " | ".join(f"{s:g} s" for s in secs) + " |",
             "|---|---|---|" + "---|" * len(secs)]
    for (c, v), g in speed[speed["variant"] != "none"].groupby(["channels", "variant"],
                                                               sort=False):
        cells = [_cell(g[g["seconds"] == s]) for s in secs]
        lines.append(f"| {c} | {g['params_m'].iloc[0]:.2f} | {v} | " + " | ".join(cells) + " |")
    return lines


def _cell(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "-"
    r = rows.iloc[0]
    return f"{r['speedup']:.2f}x [{r['speedup_lo']:.2f}, {r['speedup_hi']:.2f}]"


def speed_finding(speed: pd.DataFrame) -> dict[str, float]:
    """Every width and length's `all` speed-up, and the headline: the widest model at the
    study's 3 s input (the longest input timed when 3 s is not)."""
    s = speed[speed["variant"] == SPEED_VARIANT]
    if s.empty:
        return {}
    out = {f"speedup_all_c{int(r['channels'])}_{r['seconds']:g}s": float(r["speedup"])
           for _, r in s.iterrows()}
    length = 3.0 if (s["seconds"] == 3.0).any() else float(s["seconds"].max())
    head = s[(s["channels"] == s["channels"].max()) & (s["seconds"] == length)].iloc[0]
    return out | {"speedup_all_widest": float(head["speedup"]),
                  "speedup_all_widest_lo": float(head["speedup_lo"]),
                  "speedup_all_widest_hi": float(head["speedup_hi"]),
                  "speedup_all_widest_channels": int(head["channels"]),
                  "speedup_all_widest_seconds": length}


def plot_speed(speed: pd.DataFrame) -> Any:
    """INT8 speed-up against input length, one line per width and variant, with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    s = speed[speed["variant"] != "none"]
    for (c, v), g in s.groupby(["channels", "variant"], sort=False):
        g = g.sort_values("seconds")
        ax.errorbar(g["seconds"], g["speedup"],
                    yerr=[g["speedup"] - g["speedup_lo"], g["speedup_hi"] - g["speedup"]],
                    marker="o" if v == SPEED_VARIANT else ".", capsize=3,
                    linestyle="-" if v == SPEED_VARIANT else ":", label=f"C={c} {v}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("input length (s)")
    ax.set_ylabel("speed-up over float (ONNX Runtime)")
    ax.set_title("INT8 speed-up against ECAPA-TDNN width and input length")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def slow_rows(profile: Sequence[Mapping[str, Any]], speedups: Mapping[str, float],
              models: Sequence[str] = ("all", "dynamic", "float16")) -> list[str]:
    """One sentence per profiled row: its speed-up and the op types that take its time."""
    lines: list[str] = []
    for m in models:
        ops = sorted((p for p in profile if p["model"] == m), key=lambda p: -p["share"])
        if not ops or m not in speedups:
            continue
        top = ops[0]
        rest = ", ".join(f"{p['op_type']} {p['share']:.0%}" for p in ops[1:3])
        note = KERNEL_NOTES.get(top["op_type"], "")
        lines.append(f"- `{m}` runs at {num(speedups[m], 2)}x the float speed: "
                     f"{top['op_type']} takes {top['share']:.0%} of its time"
                     + (f" ({note})" if note else "") + (f"; then {rest}." if rest else "."))
    return ["", "Why these rows run at the speed they do (from the profile):", "", *lines] \
        if lines else []
