"""The TFLite quantization study (Ha et al., Table 2): one trained Keras ResNet converted into
every TFLite variant, all evaluated on the same test frames and timed in one process.

Besides the paper's rows it measures two ways to get the paper's integer collapse:
`full_int_naive` (the correct full-int model fed raw floats instead of quantized inputs) and
`int_calib_<source>_<n>` (the `int` conversion calibrated on an unrepresentative set).
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from slimaudio import papers
from slimaudio.compress import tflite as tfl
from slimaudio.errors import DataError
from slimaudio.latency import Runner, litert_interpreter, litert_runner, measure_interleaved
from slimaudio.metrics import MIB, file_size
from slimaudio.datasets.sounds import SoundFrames
from slimaudio.frame_classifier.evaluate import evaluate_scores, predict_keras

# The paper's Table 2 (slimaudio.papers, as printed: size in "MB", time in seconds).
_NAMES = {"original": ("Original Model", "HDF5"), "basic": ("Basic Model", "TFLite"),
          "int": ("Int quantized", "TFLite"), "full_int": ("Full int quantized", "TFLite"),
          "float16": ("Float16 quantized", "TFLite"),
          "dynamic_range": ("Dynamic Range quantized", "TFLite")}
PAPER_TABLE2: dict[str, dict[str, Any]] = {
    v: {"name": name, "format": fmt, "size": papers.TFLITE_QUANT["size_mb"][v],
        "time_s": papers.TFLITE_QUANT["time_s"][v], "f1": papers.TFLITE_QUANT["f1"][v]}
    for v, (name, fmt) in _NAMES.items()}
TABLE_COLUMNS = ["variant", "file_format", "quantized", "size_bytes", "size_mib", "latency_ms",
                 "f1", "precision", "recall", "accuracy"]
EXTRA_COLUMNS = ["latency_p90_ms", "latency_builtin_ms", "clip_f1", "clip_accuracy", "size_ratio", "latency_ratio",
                 "pred_top_share", "input_saturation", "calibration"]


@dataclass
class Variant:
    name: str
    file_format: str
    quantized: bool
    path: Path
    calibration: str = ""


@dataclass
class StudyResult:
    table: pd.DataFrame
    diagnostics: dict[str, Any]
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def calibration_frames(data: SoundFrames, source: str, n: int, seed: int) -> np.ndarray:
    """Calibration inputs, float32 [n, n_mels, time, 1], preprocessed exactly as at inference.

    train: n random training frames (the representative set when n is large enough);
    one_class: n random training frames of the first class only;
    uniform_noise / normal_noise: U[0, 1) / N(0, 1) arrays of the input shape, the
    placeholders many tutorials use (`np.random.rand` / `np.random.randn`).
    """
    rng = np.random.default_rng(seed)
    idx = data.indices("train")
    if source == "uniform_noise":
        return rng.random((n, *data.input_shape), dtype=np.float32)
    if source == "normal_noise":
        return rng.standard_normal((n, *data.input_shape), dtype=np.float32)
    if source == "one_class":
        idx = idx[data.manifest["label"].to_numpy()[idx] == 0]
    elif source != "train":
        raise ValueError(f"unknown calibration source {source!r}")
    if len(idx) == 0:
        raise DataError(f"{data.root}: no training frames for calibration source {source!r}")
    pick = np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.asarray(data.frames[pick], dtype=np.float32)[..., None]


def _original_runner(model: Any, x1: np.ndarray) -> Runner:
    """The Keras model in TensorFlow, traced once with tf.function (no Keras predict overhead)."""
    import tensorflow as tf

    fn = tf.function(lambda t: model(t, training=False))
    t = tf.constant(x1)
    fn(t)
    return lambda: fn(t).numpy()


def _naive_runner(path: Path, x1: np.ndarray, threads: int) -> Runner:
    """Batch-1 call of the full-int model with the raw float frame cast to int8 (study only)."""
    interp = litert_interpreter(path, threads)
    raw = tfl._study_only_cast_unquantized(x1, interp.get_input_details()[0]["dtype"])
    return litert_runner(interp, [raw], threads)


def _seen_by_naive(x: np.ndarray, path: Path) -> dict[str, float]:
    """What the naive int8 cast turns raw log-mel values into, read back with the model's
    own input scale and zero point."""
    inp = litert_interpreter(path, 1).get_input_details()[0]
    scale, zp = inp["quantization"]
    codes = tfl._study_only_cast_unquantized(x, inp["dtype"])
    seen = (codes.astype(np.float32) - zp) * scale
    return {"naive_codes_min": int(codes.min()), "naive_codes_max": int(codes.max()),
            "naive_distinct_codes": int(len(np.unique(codes))),
            "naive_seen_min": float(seen.min()), "naive_seen_max": float(seen.max()),
            "naive_mean_abs_input_error": float(np.abs(seen - x).mean())}


def cpu_features() -> dict[str, Any]:
    """The CPU model and the SIMD features that decide int8 vs float32 kernel speed."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags") and ":" in line:
            flags = set(line.split(":", 1)[1].split())
            info["simd"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                        "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
            break
    return info


def kernel_throughput(threads: int, seed: int, hw: int = 32, ch: int = 128,
                      warmup: int = 5, repeats: int = 40) -> dict[str, float]:
    """GMAC/s of one 3x3 convolution (hw x hw x ch -> ch) as float32 and as full-int8, with
    XNNPACK and on the built-in kernels: the CPU's raw int8-versus-float32 kernel speed,
    free of per-op overheads, to tell kernel throughput from graph effects."""
    import keras

    rng = np.random.default_rng(seed)
    inp = keras.Input((hw, hw, ch))
    conv = keras.Model(inp, keras.layers.Conv2D(ch, 3, padding="same")(inp))
    x = rng.standard_normal((8, hw, hw, ch), dtype=np.float32)
    runners: dict[str, Runner] = {}
    for v, key in (("basic", "float32"), ("full_int", "int8")):
        blob = tfl.convert_keras(conv, v, x)
        runners[f"{key}_xnnpack"] = tfl.TFLiteClassifier(blob, threads).latency_runner(x[:1])
        runners[f"{key}_builtin"] = tfl.TFLiteClassifier(blob, threads, xnnpack=False).latency_runner(x[:1])
    lat = measure_interleaved(runners, warmup=warmup, repeats=repeats, threads=threads, seed=seed)
    macs = hw * hw * 9 * ch * ch
    return {f"conv_gmacs_{k}": macs / (v.median_ms * 1e-3) / 1e9 for k, v in lat.items()}


def run_study(data: SoundFrames, model_path: Path, tflite_dir: Path, cfg: Mapping[str, Any],
              threads: int, seed: int, file_format: str) -> StudyResult:
    """Convert, evaluate and time every variant; .tflite files are written into tflite_dir."""
    from slimaudio.frame_classifier.train import load_model

    model = load_model(model_path)
    test = data.split("test")
    n_cls = data.n_classes
    rep = calibration_frames(data, "train", int(cfg["representative_samples"]), seed)
    variants = [Variant("original", file_format, False, model_path)]
    with tempfile.TemporaryDirectory(prefix="slimaudio-savedmodel-") as tmp:
        sm = tfl.export_saved_model(model, Path(tmp) / "saved_model")
        jobs: list[tuple[str, str, np.ndarray | None, str]] = [
            (v, v, rep if v in tfl.NEEDS_CALIBRATION else None,
             f"{len(rep)} train frames" if v in tfl.NEEDS_CALIBRATION else "")
            for v in tfl.VARIANTS]
        for k, probe in enumerate(cfg["calibration_probes"]):
            src, n = str(probe["source"]), int(probe["samples"])
            jobs.append((f"int_calib_{src}_{n}", "int",
                         calibration_frames(data, src, n, seed + 1 + k), f"{n} {src} frames"))
        for name, kind, calib, desc in tqdm(jobs, desc="convert", unit="model", leave=False):
            path = tflite_dir / f"{name}.tflite"
            path.write_bytes(tfl.convert(sm, kind, calib))
            variants.append(Variant(name, "TFLite", kind != "basic", path, desc))
    full = next(v for v in variants if v.name == "full_int")
    variants.insert([v.name for v in variants].index("full_int") + 1,
                    Variant("full_int_naive", "TFLite", True, full.path, full.calibration))

    # Accuracy on the whole test split.
    scores: dict[str, np.ndarray] = {}
    ev_threads, ev_bs = int(cfg["eval_threads"]), int(cfg["eval_batch_size"])
    for v in tqdm(variants, desc="evaluate", unit="variant", leave=False):
        if v.name == "original":
            scores[v.name] = predict_keras(model, test.x, ev_bs)
        elif v.name == "full_int_naive":
            scores[v.name] = tfl._study_only_predict_unquantized_input(v.path, test.x, ev_bs, ev_threads)
        else:
            scores[v.name] = tfl.TFLiteClassifier(v.path, ev_threads).predict(test.x, ev_bs)

    # Latency: batch 1, `threads` threads, all variants interleaved in this process.
    x1 = test.x[:1]
    runners: dict[str, Runner] = {}
    for v in variants:
        if v.name == "original":
            runners[v.name] = _original_runner(model, x1)
        elif v.name == "full_int_naive":
            runners[v.name] = _naive_runner(v.path, x1, threads)
        else:
            runners[v.name] = tfl.TFLiteClassifier(v.path, threads).latency_runner(x1)
    if cfg["latency"]["builtin_kernels"]:
        for v in variants:
            if v.name in tfl.VARIANTS:
                runners[f"{v.name}@builtin"] = tfl.TFLiteClassifier(
                    v.path, threads, xnnpack=False).latency_runner(x1)
    lat = measure_interleaved(runners, warmup=int(cfg["latency"]["warmup"]),
                              repeats=int(cfg["latency"]["repeats"]), threads=threads, seed=seed)

    lo_hi = (float(test.x.min()), float(test.x.max()))
    rows, diag = [], {"test_input_min": lo_hi[0], "test_input_max": lo_hi[1],
                      "n_test_frames": len(test), "threads": threads, "ops": {}, "input_range": {},
                      "cpu": cpu_features()}
    for v in variants:
        m = evaluate_scores(scores[v.name], test.y, test.clip_ids, n_cls)
        size = file_size(v.path)
        pred = scores[v.name].argmax(axis=1)
        row = {"variant": v.name, "file_format": v.file_format, "quantized": v.quantized,
               **size, "latency_ms": lat[v.name].median_ms, "latency_p90_ms": lat[v.name].p90_ms,
               "latency_builtin_ms": (lat[f"{v.name}@builtin"].median_ms
                                      if f"{v.name}@builtin" in lat else np.nan),
               "f1": m["f1"], "precision": m["precision"], "recall": m["recall"],
               "accuracy": m["accuracy"], "clip_f1": m["clip_f1"], "clip_accuracy": m["clip_accuracy"],
               "pred_top_share": float(np.bincount(pred, minlength=n_cls).max() / len(pred)),
               "input_saturation": np.nan, "calibration": v.calibration}
        if v.file_format == "TFLite" and v.name != "full_int_naive":
            rng_ = tfl.input_code_range(litert_interpreter(v.path, 1))
            if rng_ is not None:
                diag["input_range"][v.name] = rng_
                row["input_saturation"] = float(((test.x < rng_[0]) | (test.x > rng_[1])).mean())
            diag["ops"][v.name] = tfl.op_summary(v.path)
        rows.append(row)
    table = pd.DataFrame(rows)
    basic = table.set_index("variant").loc["basic"]
    table["size_ratio"] = table["size_bytes"] / basic["size_bytes"]
    table["latency_ratio"] = table["latency_ms"] / basic["latency_ms"]
    table = table[TABLE_COLUMNS + EXTRA_COLUMNS]
    diag.update(_seen_by_naive(test.x, full.path))
    if cfg["latency"]["kernel_probe"]:
        diag["kernel"] = kernel_throughput(threads, seed)
    return StudyResult(table=table, diagnostics=diag, scores=scores)


# ------------------------------------------------------------------------------ reporting


def study_metrics(res: StudyResult) -> dict[str, Any]:
    """metrics.json: every variant's row keyed by name, plus the diagnostics."""
    per = {r["variant"]: {k: (v if not isinstance(v, float) or np.isfinite(v) else None)
                          for k, v in r.items() if k != "variant"}
           for r in res.table.to_dict("records")}
    return {"variants": per, "diagnostics": res.diagnostics}


def flat_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """Numeric columns of one table row, for MLflow."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bool) or k == "quantized":
            continue
        if isinstance(v, int | float | np.floating | np.integer) and np.isfinite(v):
            out[k] = float(v)
    return out


def _fmt(x: float, nd: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def explain_collapse(res: StudyResult) -> list[str]:
    """Sentences built from the measurements: why the paper's int/full-int F1 collapsed."""
    t = res.table.set_index("variant")
    d = res.diagnostics
    f1b = t.loc["basic", "f1"]
    lines = []
    fr = d["input_range"].get("full_int")
    lines.append(
        f"- Quantized correctly, `int` keeps F1 {_fmt(t.loc['int', 'f1'])} and `full_int` "
        f"{_fmt(t.loc['full_int', 'f1'])} (basic {_fmt(f1b)}): integer quantization itself does not "
        f"collapse this model.")
    if fr is not None:
        lines.append(
            f"- `full_int_naive` is the same full-int file fed `x.astype(int8)` instead of "
            f"`round(x / scale) + zero_point`: F1 {_fmt(t.loc['full_int_naive', 'f1'])} "
            f"(paper full-int: 0.0001). The input tensor represents log-mel values in "
            f"[{fr[0]:.2f}, {fr[1]:.2f}] with 256 codes; the test log-mels span "
            f"[{d['test_input_min']:.2f}, {d['test_input_max']:.2f}]. Cast directly, they become "
            f"only {d['naive_distinct_codes']} codes ({d['naive_codes_min']}..{d['naive_codes_max']}), "
            f"which the model reads as values in [{d['naive_seen_min']:.2f}, {d['naive_seen_max']:.2f}] "
            f"(mean input error {d['naive_mean_abs_input_error']:.2f}); "
            f"{100 * t.loc['full_int_naive', 'pred_top_share']:.0f}% of frames then get one class.")
    for name in t.index:
        if not name.startswith("int_calib_"):
            continue
        r = d["input_range"].get(name)
        sat = t.loc[name, "input_saturation"]
        rng_txt = f"its input codes cover [{r[0]:.2f}, {r[1]:.2f}], so {100 * sat:.0f}% of test input values saturate; " if r else ""
        lines.append(
            f"- `{name}` (calibrated on {t.loc[name, 'calibration']}): {rng_txt}F1 "
            f"{_fmt(t.loc[name, 'f1'])} (paper int: 0.2831), "
            f"{100 * t.loc[name, 'pred_top_share']:.0f}% of frames in the most predicted class.")
    return lines


def explain_latency(res: StudyResult) -> list[str]:
    """Sentences built from the timings: where int8 gains (or does not) on this CPU."""
    t = res.table.set_index("variant")
    cpu = res.diagnostics.get("cpu", {})
    lines = [f"- CPU: {cpu.get('model', '?')}; SIMD: {', '.join(cpu.get('simd', [])) or '?'}; "
             f"{res.diagnostics['threads']} thread(s), batch 1."]
    b = t.loc["basic"]
    with_x = ", ".join(f"`{v}` {t.loc[v, 'latency_ratio']:.2f}" for v in
                       ("int", "full_int", "float16", "dynamic_range") if v in t.index)
    lines.append(f"- With XNNPACK (LiteRT's default CPU delegate), latency relative to `basic` "
                 f"({b['latency_ms']:.3f} ms): {with_x}.")
    if np.isfinite(b.get("latency_builtin_ms", np.nan)):
        bb = b["latency_builtin_ms"]
        rel = ", ".join(f"`{v}` {t.loc[v, 'latency_builtin_ms'] / bb:.2f}" for v in
                        ("int", "full_int", "float16", "dynamic_range") if v in t.index)
        lines.append(
            f"- On the built-in kernels (XNNPACK off), `basic` takes {bb:.3f} ms and, relative to "
            f"it: {rel}. XNNPACK speeds `basic` up {bb / b['latency_ms']:.1f}x and `full_int` "
            f"{t.loc['full_int', 'latency_builtin_ms'] / t.loc['full_int', 'latency_ms']:.1f}x.")
    k = res.diagnostics.get("kernel")
    if k:
        lines.append(
            f"- One 3x3 convolution (32x32x128 -> 128, 151M MAC) alone: XNNPACK runs float32 at "
            f"{k['conv_gmacs_float32_xnnpack']:.1f} GMAC/s and int8 at "
            f"{k['conv_gmacs_int8_xnnpack']:.1f} GMAC/s (int8/float32 "
            f"{k['conv_gmacs_int8_xnnpack'] / k['conv_gmacs_float32_xnnpack']:.2f}); the built-in "
            f"kernels run float32 at {k['conv_gmacs_float32_builtin']:.1f} and int8 at "
            f"{k['conv_gmacs_int8_builtin']:.1f} GMAC/s.")
    best = min(t.loc["int", "latency_ratio"], t.loc["full_int", "latency_ratio"])
    if best > 0.6 and k:
        x_gain = k["conv_gmacs_int8_xnnpack"] / k["conv_gmacs_float32_xnnpack"]
        b_gain = k["conv_gmacs_int8_builtin"] / k["conv_gmacs_float32_builtin"]
        vnni = any("vnni" in f or "amx" in f for f in cpu.get("simd", []))
        pt = papers.TFLITE_QUANT["time_s"]
        paper_int, paper_full = pt["int"] / pt["basic"], pt["full_int"] / pt["basic"]
        why = ("This CPU has no VNNI-class int8 dot-product instructions, so int8 multiplies are "
               "widened to 16 bits and issue about as many multiply-adds per cycle as float32 "
               "FMA; the quantize/requantize work between layers then costs extra."
               if not vnni else "This CPU has int8 dot-product instructions, so the kernels, "
               "not the hardware, limit the gain.")
        lines.append(
            f"- So int8 is not faster here because XNNPACK's int8 convolution kernels are only "
            f"{x_gain:.2f}x as fast as its float32 ones on this CPU (the built-in kernels: "
            f"{b_gain:.2f}x). {why} The paper saw no gain either: its int and full-int models "
            f"took {paper_int:.2f}x and {paper_full:.2f}x the basic model's time.")
    parts = {v: c.get("DELEGATE", 0) for v, c in res.diagnostics.get("ops", {}).items()}
    if parts:
        lines.append("- XNNPACK partitions per model: "
                     + ", ".join(f"`{v}` {n}" for v, n in parts.items())
                     + " (1 = the whole graph in one delegate; each extra partition is an op "
                       "left on the built-in kernels).")
    return lines


def render_markdown(res: StudyResult, baseline: Mapping[str, Any] | None = None) -> str:
    """The paper's Table 2 layout with our measurements beside the paper's numbers."""
    t = res.table.set_index("variant")
    pb = PAPER_TABLE2["basic"]
    out = [
        "# TFLite quantization study (Ha et al., Table 2)",
        "",
        "Ours: test frames of data/sounds; latency is batch 1, "
        f"{res.diagnostics['threads']} thread(s), median of the interleaved timed runs "
        "(LiteRT interpreter; `original` is the Keras model in TensorFlow). "
        "Paper: AIHub noise-environment sounds, 363 classes, full ResNet50; size in MB and "
        "inference time in seconds as printed.",
        "",
        "| Model name (file format) | Quantized | Size (ours) | Size (paper) | Size vs basic (ours / paper) "
        "| Inference time (ours, ms) | Inference time (paper, s) | Time vs basic (ours / paper) "
        "| F1 (ours) | F1 (paper) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in t.iterrows():
        p = PAPER_TABLE2.get(str(name))
        label = f"{p['name'] if p else name} ({r['file_format']})"
        psize = f"{p['size']:.2f} MB" if p else "—"
        ptime = f"{p['time_s']:.4f}" if p else "—"
        pratio = f"{p['size'] / pb['size']:.2f}" if p else "—"
        ptratio = f"{p['time_s'] / pb['time_s']:.2f}" if p else "—"
        pf1 = f"{p['f1']:.4g}" if p else "—"
        out.append(
            f"| {label} `{name}` | {'O' if r['quantized'] else 'X'} | {r['size_mib']:.3f} MiB | {psize} "
            f"| {r['size_ratio']:.3f} / {pratio} | {r['latency_ms']:.3f} | {ptime} "
            f"| {r['latency_ratio']:.2f} / {ptratio} | {r['f1']:.4f} | {pf1} |")
    out += ["", "`full_int_naive`: the `full_int` file fed raw float features cast to int8 "
            "(no input quantization), for comparison with the paper's full-int row. "
            "`int_calib_*`: the `int` conversion calibrated on an unrepresentative set.", ""]
    if baseline:
        out += ["## Baseline (Keras, test split)", "",
                "| level | precision | recall | F1 | accuracy |", "|---|---|---|---|---|",
                f"| frame | {baseline['precision']:.4f} | {baseline['recall']:.4f} | {baseline['f1']:.4f} | {baseline['accuracy']:.4f} |",
                f"| clip (mean of frame scores) | {baseline['clip_precision']:.4f} | {baseline['clip_recall']:.4f} | {baseline['clip_f1']:.4f} | {baseline['clip_accuracy']:.4f} |",
                "| paper (frame) | {precision} | {recall} | {f1} | {accuracy} |".format(
                    **papers.TFLITE_QUANT["baseline"]), ""]
    out += ["## Why the paper's int / full-int models collapsed", "", *explain_collapse(res), ""]
    out += ["## Latency: does int8 run faster?", "", *explain_latency(res), ""]
    ops = res.diagnostics.get("ops", {})
    if ops:
        out += ["## Graph and delegation (LiteRT, XNNPACK)", "",
                "`DELEGATE` counts the partitions XNNPACK took over; more than one means some ops "
                "run on the built-in kernels in between.", "",
                "| variant | ops | XNNPACK partitions |", "|---|---|---|"]
        for name, counts in ops.items():
            body = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "DELEGATE")
            out.append(f"| `{name}` | {body} | {counts.get('DELEGATE', 0)} |")
        out.append("")
    return "\n".join(out)


def _scatter(table: pd.DataFrame, x: str, xlabel: str, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    # Several variants share a size or a latency: a legend, not labels, names the points.
    colors = plt.get_cmap("tab10")
    for i, r in enumerate(table.itertuples()):
        broken = r.variant == "full_int_naive" or str(r.variant).startswith("int_calib_")
        ax.scatter(getattr(r, x), r.f1, s=70 if not broken else 60, marker="X" if broken else "o",
                   color=colors(i % 10), edgecolors="k", linewidths=0.4, alpha=0.85,
                   label=f"{r.variant} (F1 {r.f1:.3f})")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

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


def describe(res: StudyResult) -> Sequence[str]:
    """One console line per variant."""
    return [f"{r.variant:28s} size {r.size_bytes / MIB:8.3f} MiB ({r.size_ratio:5.3f})  "
            f"latency {r.latency_ms:8.3f} ms ({r.latency_ratio:4.2f})  F1 {r.f1:.4f}"
            for r in res.table.itertuples()]
