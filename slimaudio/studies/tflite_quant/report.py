"""Report rendering: pure functions from the table and diagnostics to metrics.json, the
markdown (the paper's Table 2 beside ours, and sentences built from the measurements), the
two figures and the console lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import papers, runtime, stats
from slimaudio.formatting import interval, interval_of
from slimaudio.metrics import MIB
from slimaudio.studies.base import StudyReport
from slimaudio.studies.tflite_quant import rules
from slimaudio.studies.tflite_quant.result import StudyResult
from slimaudio.studies.tflite_quant.rules import STUDY

# The paper's Table 2 (slimaudio.papers, as printed: size in "MB", time in seconds).
_NAMES = {"original": ("Original Model", "HDF5"), "basic": ("Basic Model", "TFLite"),
          "int": ("Int quantized", "TFLite"), "full_int": ("Full int quantized", "TFLite"),
          "float16": ("Float16 quantized", "TFLite"),
          "dynamic_range": ("Dynamic Range quantized", "TFLite")}
PAPER_TABLE2: dict[str, dict[str, Any]] = {
    v: {"name": name, "format": fmt, "size": papers.TFLITE_QUANT["size_mb"][v],
        "time_s": papers.TFLITE_QUANT["time_s"][v], "f1": papers.TFLITE_QUANT["f1"][v]}
    for v, (name, fmt) in _NAMES.items()}
QUANTIZED_VARIANTS = ("int", "full_int", "float16", "dynamic_range")
# Below this latency ratio to `basic` int8 counts as faster and needs no explanation.
INT8_GAIN_TO_EXPLAIN = 0.6


def study_metrics(table: pd.DataFrame, diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json: every variant's row keyed by name, plus the diagnostics."""
    per = {r["variant"]: {k: (v if not isinstance(v, float) or np.isfinite(v) else None)
                          for k, v in r.items() if k != "variant"}
           for r in table.to_dict("records")}
    return {"variants": per, "diagnostics": dict(diagnostics)}


def flat_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """Numeric columns of one table row, for MLflow."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bool) or k == "quantized":
            continue
        if isinstance(v, int | float | np.floating | np.integer) and np.isfinite(v):
            out[k] = float(v)
    return out


# ------------------------------------------------------------------ why int8 collapsed


def _naive_sentence(t: pd.DataFrame, d: Mapping[str, Any], fr: Sequence[float]) -> str:
    return (
        f"- `full_int_naive` is the same full-int file fed `x.astype(int8)` instead of "
        f"`round(x / scale) + zero_point`: F1 {_iv(t.loc['full_int_naive'], 'f1')} "
        f"(paper full-int: {papers.TFLITE_QUANT['f1']['full_int']:g}). The input tensor "
        f"represents log-mel values in "
        f"[{fr[0]:.2f}, {fr[1]:.2f}] with 256 codes; the test log-mels span "
        f"[{d['test_input_min']:.2f}, {d['test_input_max']:.2f}]. Cast directly, they become "
        f"only {d['naive_distinct_codes']} codes ({d['naive_codes_min']}..{d['naive_codes_max']}), "
        f"which the model reads as values in [{d['naive_seen_min']:.2f}, {d['naive_seen_max']:.2f}] "
        f"(mean input error {d['naive_mean_abs_input_error']:.2f}); "
        f"{100 * t.loc['full_int_naive', 'pred_top_share']:.0f}% of frames then get one class.")


def _probe_sentence(t: pd.DataFrame, d: Mapping[str, Any], name: str) -> str:
    r = d["input_range"].get(name)
    sat = t.loc[name, "input_saturation"]
    rng_txt = (f"its input codes cover [{r[0]:.2f}, {r[1]:.2f}], so {100 * sat:.0f}% of test "
               f"input values saturate; " if r else "")
    return (f"- `{name}` (calibrated on {t.loc[name, 'calibration']}): {rng_txt}F1 "
            f"{_iv(t.loc[name], 'f1')} (paper int: {papers.TFLITE_QUANT['f1']['int']:g}), "
            f"{100 * t.loc[name, 'pred_top_share']:.0f}% of frames in the most predicted class.")


def _collapse_verdict(table: pd.DataFrame) -> str:
    f = rules.collapse_finding(table)
    return f.verdict if f is not None else "not measured"


def explain_collapse(table: pd.DataFrame, d: Mapping[str, Any]) -> list[str]:
    """Sentences built from the measurements: why the paper's int/full-int F1 collapsed."""
    t = table.set_index("variant")
    lines = [
        f"- Quantized correctly, `int` scores F1 {_iv(t.loc['int'], 'f1')} "
        f"(ΔF1 {_iv(t.loc['int'], 'delta_f1', sign=True)}) and `full_int` "
        f"{_iv(t.loc['full_int'], 'f1')} (ΔF1 {_iv(t.loc['full_int'], 'delta_f1', sign=True)}) "
        f"against basic {_iv(t.loc['basic'], 'f1')}. The paper's collapse, judged on the F1 "
        f"ratio to basic (collapsed below {rules.COLLAPSED_BELOW:g}): "
        f"**{_collapse_verdict(table)}**."]
    fr = d["input_range"].get("full_int")
    if fr is not None:
        lines.append(_naive_sentence(t, d, fr))
    lines += [_probe_sentence(t, d, name) for name in t.index if name.startswith("int_calib_")]
    return lines


# ------------------------------------------------------------------ does int8 run faster


def _builtin_sentence(t: pd.DataFrame) -> str:
    b = t.loc["basic"]
    bb = b["latency_builtin_ms"]
    rel = ", ".join(f"`{v}` {t.loc[v, 'latency_builtin_ms'] / bb:.2f}" for v in
                    QUANTIZED_VARIANTS if v in t.index)
    return (f"- On the built-in kernels (XNNPACK off), `basic` takes {bb:.3f} ms and, relative to "
            f"it: {rel}. XNNPACK speeds `basic` up {bb / b['latency_ms']:.1f}x and `full_int` "
            f"{t.loc['full_int', 'latency_builtin_ms'] / t.loc['full_int', 'latency_ms']:.1f}x.")


def _kernel_sentence(k: Mapping[str, float]) -> str:
    return (f"- One 3x3 convolution (32x32x128 -> 128, 151M MAC) alone: XNNPACK runs float32 at "
            f"{k['conv_gmacs_float32_xnnpack']:.1f} GMAC/s and int8 at "
            f"{k['conv_gmacs_int8_xnnpack']:.1f} GMAC/s (int8/float32 "
            f"{k['conv_gmacs_int8_xnnpack'] / k['conv_gmacs_float32_xnnpack']:.2f}); the built-in "
            f"kernels run float32 at {k['conv_gmacs_float32_builtin']:.1f} and int8 at "
            f"{k['conv_gmacs_int8_builtin']:.1f} GMAC/s.")


def _why_sentence(k: Mapping[str, float], cpu: Mapping[str, Any]) -> str:
    x_gain = k["conv_gmacs_int8_xnnpack"] / k["conv_gmacs_float32_xnnpack"]
    b_gain = k["conv_gmacs_int8_builtin"] / k["conv_gmacs_float32_builtin"]
    pt = papers.TFLITE_QUANT["time_s"]
    paper_int, paper_full = pt["int"] / pt["basic"], pt["full_int"] / pt["basic"]
    why = ("This CPU has int8 dot-product instructions, so the kernels, not the hardware, limit "
           "the gain." if runtime.has_int8_dot_product(dict(cpu)) else
           "This CPU has no VNNI-class int8 dot-product instructions, so int8 multiplies are "
           "widened to 16 bits and issue about as many multiply-adds per cycle as float32 "
           "FMA; the quantize/requantize work between layers then costs extra.")
    return (f"- So int8 is not faster here because XNNPACK's int8 convolution kernels are only "
            f"{x_gain:.2f}x as fast as its float32 ones on this CPU (the built-in kernels: "
            f"{b_gain:.2f}x). {why} The paper saw no gain either: its int and full-int models "
            f"took {paper_int:.2f}x and {paper_full:.2f}x the basic model's time.")


def _speed_headline(t: pd.DataFrame, cpu: Mapping[str, Any]) -> list[str]:
    """The speed finding first: it is the CPU's, so the line says which CPU."""
    if "speedup" not in t or not {"int", "full_int"} <= set(t.index):
        return []
    dot = runtime.int8_dot_flags(cpu)
    cells = ", ".join(f"`{v}` {interval(*t.loc[v, ['speedup', 'speedup_lo', 'speedup_hi']], 2)}x"
                      for v in ("int", "full_int"))
    return [f"**The CPU decides this result.** On this CPU ({cpu.get('model', '?')}; int8 dot "
            f"product: {'yes, ' + ', '.join(dot) if dot else 'no, AVX2 at most'}) the integer "
            f"models run at {cells} the speed of `basic` (intervals over timing processes and "
            "rounds). XNNPACK's int8 convolutions outrun float32 only where the CPU multiplies "
            "int8 into 32-bit sums in one instruction (VNNI, AMX); on AVX2 alone they widen to "
            "16 bits and gain about nothing, so the same files can be faster on one machine and "
            "not on the next.", ""]


def explain_latency(table: pd.DataFrame, d: Mapping[str, Any]) -> list[str]:
    """Sentences built from the timings: where int8 gains (or does not) on this CPU."""
    t = table.set_index("variant")
    cpu = d.get("cpu", {})
    b = t.loc["basic"]
    with_x = ", ".join(f"`{v}` {t.loc[v, 'latency_ratio']:.2f}" for v in QUANTIZED_VARIANTS
                       if v in t.index)
    lines = [*_speed_headline(t, cpu),
             f"- CPU: {cpu.get('model', '?')} ({cpu.get('cores', '?')} cores); SIMD: "
             f"{', '.join(cpu.get('simd', [])) or '?'}; {d['threads']} thread(s), batch 1.",
             f"- With XNNPACK (LiteRT's default CPU delegate), latency relative to `basic` "
             f"({b['latency_ms']:.3f} ms): {with_x}."]
    if np.isfinite(b.get("latency_builtin_ms", np.nan)):
        lines.append(_builtin_sentence(t))
    k = d.get("kernel")
    if k:
        lines.append(_kernel_sentence(k))
    best = min(t.loc["int", "latency_ratio"], t.loc["full_int", "latency_ratio"])
    if best > INT8_GAIN_TO_EXPLAIN and k:
        lines.append(_why_sentence(k, cpu))
    parts = {v: c.get("DELEGATE", 0) for v, c in d.get("ops", {}).items()}
    if parts:
        lines.append("- XNNPACK partitions per model: "
                     + ", ".join(f"`{v}` {n}" for v, n in parts.items())
                     + " (1 = the whole graph in one delegate; each extra partition is an op "
                       "left on the built-in kernels).")
    return lines


# ------------------------------------------------------------------ table.md


def _paper_table(t: pd.DataFrame) -> list[str]:
    """Our rows in the paper's Table 2 layout, the paper's numbers beside ours."""
    pb = PAPER_TABLE2["basic"]
    out = ["| Model name (file format) | Quantized | Size (ours) | Size (paper) "
           "| Size vs basic (ours / paper) | Inference time (ours, ms) "
           "| Inference time (paper, s) | Time vs basic (ours / paper) | F1 (ours) [interval] "
           "| ΔF1 vs basic [paired interval] | F1 (paper) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in t.iterrows():
        p = PAPER_TABLE2.get(str(name))
        label = f"{p['name'] if p else name} ({r['file_format']})"
        psize = f"{p['size']:.2f} MB" if p else "—"
        ptime = f"{p['time_s']:.4f}" if p else "—"
        pratio = f"{p['size'] / pb['size']:.2f}" if p else "—"
        ptratio = f"{p['time_s'] / pb['time_s']:.2f}" if p else "—"
        pf1 = f"{p['f1']:.4g}" if p else "—"
        out.append(
            f"| {label} `{name}` | {'O' if r['quantized'] else 'X'} | {r['size_mib']:.3f} MiB "
            f"| {psize} | {r['size_ratio']:.3f} / {pratio} | {r['latency_ms']:.3f} | {ptime} "
            f"| {r['latency_ratio']:.2f} / {ptratio} | {_iv(r, 'f1')} "
            f"| {_iv(r, 'delta_f1', sign=True)} | {pf1} |")
    return out


def _iv(r: Mapping[str, Any], col: str, sign: bool = False, digits: int = 3) -> str:
    """A row's value of `col` with its interval (`col`_lo, `col`_hi)."""
    return interval_of(stats.read(r, col), digits, sign)


def _bootstrap_note(d: Mapping[str, Any]) -> str:
    b = d.get("bootstrap")
    if not b:
        return ""
    return (f"Intervals: {100 * b['level']:g}% percentile bootstrap over the {b['clusters']} test "
            f"clusters (`{b['unit']}`: a clip's frames are resampled together), "
            f"{b['resamples']} resamples; one set of resamples for every variant, so each ΔF1 "
            f"is paired with `basic`.")


def _accuracy_section(t: pd.DataFrame) -> list[str]:
    """Accuracy and F1 relative to basic, with their paired intervals."""
    out = ["## Accuracy and F1 relative to `basic`", "",
           "| variant | accuracy [interval] | Δaccuracy vs basic | F1 / basic F1 |",
           "|---|---|---|---|"]
    for name, r in t.iterrows():
        out.append(f"| `{name}` | {_iv(r, 'accuracy')} | {_iv(r, 'delta_accuracy', sign=True)} "
                   f"| {_iv(r, 'f1_ratio')} |")
    return [*out, ""]


def _baseline_section(b: Mapping[str, Any]) -> list[str]:
    return ["## Baseline (Keras, test split)", "",
            "| level | precision | recall | F1 | accuracy |", "|---|---|---|---|---|",
            f"| frame | {b['precision']:.4f} | {b['recall']:.4f} | {b['f1']:.4f} "
            f"| {b['accuracy']:.4f} |",
            f"| clip (mean of frame scores) | {b['clip_precision']:.4f} | {b['clip_recall']:.4f} "
            f"| {b['clip_f1']:.4f} | {b['clip_accuracy']:.4f} |",
            "| paper (frame) | {precision} | {recall} | {f1} | {accuracy} |".format(
                **papers.TFLITE_QUANT["baseline"]), ""]


def _ops_section(ops: Mapping[str, Mapping[str, int]]) -> list[str]:
    out = ["## Graph and delegation (LiteRT, XNNPACK)", "",
           "`DELEGATE` counts the partitions XNNPACK took over; more than one means some ops "
           "run on the built-in kernels in between.", "",
           "| variant | ops | XNNPACK partitions |", "|---|---|---|"]
    for name, counts in ops.items():
        body = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "DELEGATE")
        out.append(f"| `{name}` | {body} | {counts.get('DELEGATE', 0)} |")
    return [*out, ""]


def render_markdown(table: pd.DataFrame, diagnostics: Mapping[str, Any],
                    baseline: Mapping[str, Any] | None = None) -> str:
    """The paper's Table 2 layout with our measurements beside the paper's numbers."""
    out = [
        "# TFLite quantization study (Ha et al., Table 2)",
        "",
        "Ours: test frames of data/sounds; latency is batch 1, "
        f"{diagnostics['threads']} thread(s), median of the interleaved timed runs "
        "(LiteRT interpreter; `original` is the Keras model in TensorFlow). "
        "Paper: AIHub noise-environment sounds, 363 classes, full ResNet50; size in MB and "
        "inference time in seconds as printed.",
        "",
        *_paper_table(table.set_index("variant")),
        "", _bootstrap_note(diagnostics), "", "`full_int_naive`: the `full_int` file fed raw float features cast to int8 "
        "(no input quantization), for comparison with the paper's full-int row. "
        "`int_calib_*`: the `int` conversion calibrated on an unrepresentative set.", ""]
    out += _accuracy_section(table.set_index("variant"))
    if baseline:
        out += _baseline_section(baseline)
    out += ["## Why the paper's int / full-int models collapsed", "",
            *explain_collapse(table, diagnostics), ""]
    out += ["## Latency: does int8 run faster?", "", *explain_latency(table, diagnostics), ""]
    if diagnostics.get("ops", {}):
        out += _ops_section(diagnostics["ops"])
    return "\n".join(out)


# ------------------------------------------------------------------ figures, console


def _scatter(table: pd.DataFrame, x: str, xlabel: str, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    fig, ax = plt.subplots(figsize=(9, 4.8))
    # Several variants share a size or a latency: a legend, not labels, names the points.
    colors = plt.get_cmap("tab10")
    for i, r in enumerate(table.itertuples()):
        broken = r.variant == "full_int_naive" or str(r.variant).startswith("int_calib_")
        ax.scatter(getattr(r, x), r.f1, s=70 if not broken else 60, marker="X" if broken else "o",
                   color=colors(i % 10), edgecolors="k", linewidths=0.4, alpha=0.85,
                   label=f"{r.variant} (F1 {r.f1:.3f})", zorder=3)
        lo, hi = getattr(r, "f1_lo", np.nan), getattr(r, "f1_hi", np.nan)
        if np.isfinite(lo) and np.isfinite(hi):  # the clip-bootstrap interval
            ax.errorbar(getattr(r, x), r.f1, yerr=[[r.f1 - lo], [hi - r.f1]], fmt="none",
                        ecolor=colors(i % 10), elinewidth=1, capsize=3, zorder=2)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    ax.set_xscale("log")
    for axis_fmt in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis_fmt(FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("macro F1 (test frames)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title)
    return fig


def plot_f1_vs_size(table: pd.DataFrame) -> Any:
    return _scatter(table, "size_mib", "model file size (MiB, log)", "F1 against size")


def plot_f1_vs_latency(table: pd.DataFrame) -> Any:
    return _scatter(table, "latency_ms", "latency, batch 1 (ms, median, log)", "F1 against latency")


def describe(table: pd.DataFrame) -> Sequence[str]:
    """One console line per variant."""
    return [f"{r.variant:28s} size {r.size_bytes / MIB:8.3f} MiB ({r.size_ratio:5.3f})  "
            f"latency {r.latency_ms:8.3f} ms ({r.latency_ratio:4.2f})  "
            f"F1 {_iv(r._asdict(), 'f1')}  ΔF1 {_iv(r._asdict(), 'delta_f1', sign=True)}"
            for r in table.itertuples()]


# The figures by their StudyReport role (STUDY.extra_roles; publish writes them at --size-plot / --latency-plot).
FIGURES = {"size_plot": plot_f1_vs_size, "latency_plot": plot_f1_vs_latency}


def build(res: StudyResult, baseline: Mapping[str, Any] | None) -> StudyReport:
    """Everything the stage writes and logs: table, rows, markdown, metrics, the two figures,
    one child run per variant (its numeric columns; tags file_format, quantized, calibration)
    and `<variant>.f1` on the stage run."""
    records = res.table.to_dict("records")
    return StudyReport(
        study=STUDY, table=res.table, markdown=render_markdown(res.table, res.diagnostics, baseline),
        metrics=study_metrics(res.table, res.diagnostics),
        figures={role: plot(res.table) for role, plot in FIGURES.items()},
        variant_metrics={r["variant"]: flat_metrics(r) for r in records},
        variant_tags={r["variant"]: {k: str(r[k]) for k in ("file_format", "quantized",
                                                            "calibration")} for r in records},
        run_metrics={f"{r['variant']}.f1": float(r["f1"]) for r in records})
