"""table.md and the figures: pure functions of a StudyResult and the Config (no measuring)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from slimaudio.formatting import interval, num
from slimaudio.papers import PTQ_LAYERWISE as P
from slimaudio.schemas.ptq_layerwise import ABLATIONS
from slimaudio.speaker.groups import GROUPS
from slimaudio.studies.base import StudyReport
from slimaudio.studies.ptq_layerwise import op_probe
from slimaudio.studies.ptq_layerwise.ablation import COLUMNS as ABLATION_COLUMNS
from slimaudio.studies.ptq_layerwise.config import Config
from slimaudio.studies.ptq_layerwise.error_analysis import rank_correlations
from slimaudio.studies.ptq_layerwise.outputs import (
    ROW_KEYS,
    errors_table,
    metrics_summary,
    resolution,
)
from slimaudio.studies.ptq_layerwise.result import COLUMNS, StudyResult
from slimaudio.studies.ptq_layerwise.rules import STUDY
from slimaudio.studies.ptq_layerwise.search import INT8
from slimaudio.studies.ptq_layerwise.speed_report import (
    plot_speed,
    slow_rows,
    speed_table_markdown,
)
from slimaudio.studies.ptq_layerwise.timing import PROFILE_COLUMNS

PAPER_LABELS = {"none": "No quantization", "conv_in": "Conv1d (conv_in)",
                "block1": "1st SE-Res2Block", "block2": "2nd SE-Res2Block",
                "block3": "3rd SE-Res2Block", "conv_mfa": "Conv1d (conv_mfa)",
                "asp": "Attentive stat pooling", "fc": "Linear (fc)"}
PROFILE_TOP = 8  # op types per model in the profile table


def table_markdown(res: StudyResult, cfg: Config) -> str:
    lines = [*_setup(res, cfg), *_table1(res), *_table2(res, cfg), *_size_breakdown(res),
             *_every_row(res), *_search(res), *_errors(res),
             *_ablation(res), *_profile(res),
             *slow_rows(res.profile, {n: r.metrics["speedup"] for n, r in res.rows.items()}),
             *speed_table_markdown(res.speed, res.info["level"])]
    lines += ["", f"Study run time: {res.timings['total']:.1f} s "
              f"({', '.join(f'{k} {v:.1f} s' for k, v in res.timings.items() if k != 'total')}).",
              ""]
    return "\n".join(lines)


def _cpu(info: dict[str, Any]) -> str:
    cpu = info["cpu"]
    simd = ", ".join(cpu["simd"]) or "none found"
    return (f"{cpu['model']}, {cpu['cores']} cores (SIMD: {simd}; "
            f"int8 dot products: {'yes' if info['int8_dot_product'] else 'no'})")


def _setup(res: StudyResult, cfg: Config) -> list[str]:
    info = res.info
    model = "ECAPA-TDNN" if res.groups == GROUPS else "a speaker-embedding model"
    return [
        f"# Per-layer INT8 post-training quantization of {model}",
        "",
        f"Reproduces: {P['title']}.",
        "",
        f"Engine: ONNX Runtime, CPU, static {cfg.quant_format} quantization, "
        f"{'per-channel' if cfg.per_channel else 'per-tensor'} symmetric INT8 weights, "
        f"{cfg.activation_type} activations, {cfg.calibration.method} calibration on "
        f"{info['calibration_utterances']} train-split utterances "
        f"({cfg.calibration.crop_frames}-frame crops). EER over {info['trials']} trials "
        f"({info['eval_utterances']} test utterances, batch 1). Latency: batch 1, "
        f"{cfg.latency.frames} frames, median of per-round fastest calls (rounds over worker "
        f"processes, slimaudio.latency); CPU: {_cpu(info)}. Weights: "
        f"{'7' if cfg.quant_settings.reduce_range else '8'}-bit ({cfg.reduce_range_reason}).",
        "",
        "Quantized op types inside a chosen group: "
        f"{', '.join(cfg.op_types) if cfg.op_types else 'every type ORT can quantize'} "
        "(the weight layers, as the paper's pytorch-quantization toolkit quantizes, plus the "
        "ops that let ORT chain integer kernels; the `all_ops` variant below quantizes every "
        "op ORT can). Tensors and nodes a converter adds get short names in the saved file "
        "(original names are kept); doc strings are dropped.",
        "",
        "Sizes: the paper's model size includes the AAM-softmax classifier head for the "
        f"{P['classifier_speakers']} VoxCeleb2 training speakers; ours is the size of the ONNX "
        "file of the embedding extractor alone (no classifier head), so compare ratios, not "
        "megabytes.",
        *_groups_note(info), *_methods_note(res),
    ]


def _groups_note(info: dict[str, Any]) -> list[str]:
    """The regex groups, when params gave them (nothing for the paper's default groups)."""
    if "groups" not in info:
        return []
    return ["", "Layer groups (params ptq_layerwise.groups, regex over ONNX node names): "
            + ", ".join(f"{g} `{p}`" for g, p in info["groups"].items()) + "."]


def _methods_note(res: StudyResult) -> list[str]:
    """Which groups are not quantized statically, and why (nothing for a model without
    recurrent layers, so the default's report stays as it was)."""
    other = {g: res.rows[g].kind for g in res.groups if res.rows[g].kind != "static"}
    if not other:
        return []
    why = {"dynamic": "ORT's dynamic quantization (its only integer LSTM kernel, "
                      "DynamicQuantizeLSTM)",
           "static+dynamic": "static for the convolutions and matmuls, dynamic for the LSTMs",
           "float": "left float: ORT has no integer GRU or RNN kernel"}
    return ["", "Not every group is quantized statically (the table's `method` column): "
            + "; ".join(f"{g}: {why.get(k, k)}" for g, k in other.items()) + "."]


def _paper_rows(res: StudyResult) -> bool:
    """Whether the paper's figures are shown: some group has a paper group's name."""
    return any(g in P["eer"] for g in res.groups)


def _table1(res: StudyResult) -> list[str]:
    paper = _paper_rows(res)
    head = ("| Quantized layer | paper EER (%) | paper ΔEER | paper size (MB) | paper size ratio "
            if paper else "| Quantized layer ")
    lines = [
        "",
        "## Table 1: each layer group quantized alone",
        "",
        head + "| our EER (%) | our ΔEER | our score shift (×1000) | our size (MiB) "
        "| our size ratio |",
        "|---|" + "---|" * (9 if paper else 5),
    ]
    for n in ("none", *res.groups):
        m = res.rows[n].metrics
        lines.append(
            f"| {PAPER_LABELS.get(n, n)} | {_paper_cells(n) if paper else ''}{_eer(m)} "
            f"| {_delta(m)} | {_shift(m)} | {m['size_mib']:.3f} | {m['size_ratio']:.3f} |")
    return lines + _resolution_note(res)


def _paper_cells(n: str) -> str:
    """The paper's EER, ΔEER, size and size ratio of a row ('-' for a group it does not have)."""
    p_eer, p_size = P["eer"], P["size_mb"]
    if n not in p_eer:
        return "- | - | - | - | "
    return (f"{p_eer[n]:.3f} | {p_eer[n] - p_eer['none']:+.3f} | {p_size[n]:.3f} "
            f"| {p_size[n] / p_size['none']:.3f} | ")


def _eer(m: dict[str, float]) -> str:
    return interval(m["eer"], m.get("eer_lo"), m.get("eer_hi"), 2)


def _delta(m: dict[str, float]) -> str:
    return interval(m["delta_eer"], m.get("delta_eer_lo"), m.get("delta_eer_hi"), 3, sign=True)


def _shift(m: dict[str, float]) -> str:
    return interval(*(1000 * m.get(k, np.nan) for k in ("score_shift", "score_shift_lo",
                                                         "score_shift_hi")), 2)


def _resolution_note(res: StudyResult) -> list[str]:
    info = res.info
    return ["", f"Intervals: {info['level']:.0%} speaker bootstrap ({info['test_speakers']} test "
            f"speakers, {info['trials']} trials of which {info['target_trials']} target), "
            "paired across rows: every ΔEER has its own interval. The smallest ΔEER this "
            f"trial list resolves (median half-width over the groups) is "
            f"±{resolution(res):.3f} points. Score shift: the mean |change| of a trial's "
            "cosine score from the float model's, which does not depend on a threshold and "
            "so separates groups whose ΔEER intervals all cover 0."]


def _table2(res: StudyResult, cfg: Config) -> list[str]:
    p_eer, p_size = P["eer"], P["size_mb"]
    lines = [
        "",
        "## Table 2: the chosen mix",
        "",
        "| Quantized layers | paper EER (%) | paper size (MB) | paper size ratio | our EER (%) "
        "| our ΔEER | our size (MiB) | our size ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, label, pk in (("none", "No quantization", "none"),
                         ("paper_choice", "Proposed by the paper (all but blocks 2-3)",
                          "paper_choice"),
                         ("proposed", f"Ours, automatic (budget {cfg.budget_eer} points): "
                          f"{', '.join(res.search.groups) or 'nothing'}", None),
                         ("all", "All layers", None)):
        if n not in res.rows:  # paper_choice, for a model without the paper's groups
            continue
        m = res.rows[n].metrics
        pk = pk if _paper_rows(res) else None  # no paper group: nothing to compare with
        pe = f"{p_eer[pk]:.3f}" if pk else "-"
        ps = f"{p_size[pk]:.3f}" if pk else "-"
        pr = f"{p_size[pk] / p_size['none']:.3f}" if pk else "-"
        lines.append(f"| {label} | {pe} | {ps} | {pr} | {_eer(m)} | {_delta(m)} "
                     f"| {m['size_mib']:.3f} | {m['size_ratio']:.3f} |")
    if "paper_choice_omitted" in res.info:
        lines += ["", f"No paper_choice row: {res.info['paper_choice_omitted']}."]
    return lines


def _size_breakdown(res: StudyResult) -> list[str]:
    sb = res.info["size_breakdown"]
    kinds = sorted({k for d in sb.values() for k in d})
    size0 = res.rows["none"].metrics["size_bytes"]
    lines = ["", "What the files are made of (bytes; `graph_and_names` is everything that is not "
             "an initializer: nodes, names, shapes):", "",
             "| model | " + " | ".join(kinds) + " | total | ratio |",
             "|---|" + "---|" * (len(kinds) + 2)]
    for n, d in sb.items():
        tot = sum(d.values())
        lines.append(f"| {n} | " + " | ".join(str(d.get(k, 0)) for k in kinds)
                     + f" | {tot} | {tot / size0:.3f} |")
    init_all = sum(v for k, v in sb["all"].items() if k.startswith("init_"))
    return lines + [
        "", f"Initializers alone give `all` a ratio of {init_all / size0:.3f}: INT8 weights "
        "are a quarter of their float32 bytes, but biases (int32), BatchNorm parameters "
        "and per-channel scales stay 4 bytes per channel, which weighs more the narrower "
        "the model is."]


def _every_row(res: StudyResult) -> list[str]:
    lines = ["", "## Every row", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for _, row in res.table().iterrows():
        lines.append("| " + " | ".join(
            [str(row["quantized"]), str(row["method"])]
            + [num(row[c], 0 if c == "size_bytes" else 3) for c in COLUMNS[2:]]) + " |")
    return lines


def _search(res: StudyResult) -> list[str]:
    p, w = res.search, res.search.walk
    lines = ["", "## How `proposed` was chosen", "",
             "A greedy walk from the float model (slimaudio.compress.budget_walk, which the "
             "ptq_bits study walks over more bit widths): each step quantizes the group with the most "
             "bytes saved per point of its solo ΔEER (a group whose solo quantization did not "
             "raise the EER first) and is measured; a step measured over the budget "
             f"({num(p.budget, 2)} points) is refused, and so, unmeasured, is one whose "
             "prediction (the last accepted ΔEER plus the group's solo ΔEER) is over it.", ""]
    for st in w.steps:
        if st.move is None:
            lines.append("- start: every group float (the float model, ΔEER 0)")
            continue
        quantized = [g for g in w.groups if st.config[g] == INT8]
        lines.append(f"- + {st.move[0]}: {', '.join(quantized)} quantized, measured ΔEER "
                     f"{st.measured_delta:+.3f} ({'accepted' if st.accepted else 'refused'})")
    measured = {st.move for st in w.steps}
    unmeasured = [g for g, b in w.refused if (g, b) not in measured]
    if unmeasured:
        lines.append(f"- refused by the prediction, unmeasured: {', '.join(unmeasured)}")
    lines.append(f"- final check against the rows already measured: kept the {p.source} set "
                 f"({', '.join(p.groups) or 'nothing'}).")
    return lines


def _errors(res: StudyResult) -> list[str]:
    r = res.rows
    lines = ["", "## Why the groups differ: activation error per group", "",
             "Relative error ‖q − f‖/‖f‖ of the group's output activations (and of the "
             "embedding) with only that group quantized, and the weight SQNR.", "",
             "| group | ΔEER | output rel. error | embedding rel. error | embedding cosine "
             "| weight SQNR (dB) |", "|---|---|---|---|---|---|"]
    for e in res.errors:
        lines.append(f"| {e.group} | {_delta(r[e.group].metrics)} "
                     f"| {e.out_rel_err:.4f} | {e.emb_rel_err:.4f} | {e.emb_cos:.5f} "
                     f"| {e.weight_sqnr_db:.1f} |")
    rho = rank_correlations(res.errors, {g: row.metrics["delta_eer"] for g, row in r.items()})
    if "spearman_emb_rel_err_vs_delta_eer" in rho:
        lines += ["", "Rank correlation (Spearman) of the error with ΔEER across groups: output "
                  f"{num(rho['spearman_out_rel_err_vs_delta_eer'], 2)}, embedding "
                  f"{num(rho['spearman_emb_rel_err_vs_delta_eer'], 2)}. One target trial moves "
                  f"the EER by about {100 / max(res.info['target_trials'], 1):.3f} points: ΔEER "
                  "differences of a few trials are within the noise of the trial list."]
    return lines


def _ablation(res: StudyResult) -> list[str]:
    if not res.ablation:
        return []
    native = ABLATIONS["s8s8_native"]["session"]
    lines = ["", "## `all` with one setting changed", "",
             "s8s8: int8 activations, which ORT's x86 CPU provider rewrites to uint8 where "
             "it can (float Conv kernels left show where it cannot); s8s8_native: the same "
             f"model with `{', '.join(f'{k}={v}' for k, v in native.items())}`, so "
             "the S8S8 kernels run as such. qoperator: QLinear operators instead of QDQ; "
             "per_tensor: one weight scale per tensor; reduce_range / full_range: 7-bit / "
             "8-bit weights (whichever the configuration does not use); "
             "all_ops: every op type ORT can quantize (Softmax, Mul, Sigmoid, reductions "
             "included). EER is measured for the variants in ptq_layerwise.ablation_eer "
             f"(the others, {num(None)}: embedding cosine only).", "",
             "| variant | EER (%) | ΔEER | size ratio | embedding cosine | latency (ms) "
             "| speedup | float Conv/Gemm kernels left |", "|---|---|---|---|---|---|---|---|"]
    m = res.rows["all"].metrics
    lines.append(f"| all (as configured) | {m['eer']:.3f} | {_delta(m)} "
                 f"| {m['size_ratio']:.3f} | {m['emb_cos']:.5f} | {m['latency_ms']:.2f} "
                 f"| {m['speedup']:.2f} | {num(res.info['float_conv_kernels_all'], 0)} |")
    for a in res.ablation:
        lines.append(f"| {a['variant']} | {num(a['eer'])} | {_delta(a)} "
                     f"| {a['size_ratio']:.3f} | {a['emb_cos']:.5f} | {a['latency_ms']:.2f} "
                     f"| {a['speedup']:.2f} | {num(a['float_conv_kernels'], 0)} |")
    return lines + _op_probe(res)


def _op_probe(res: StudyResult) -> list[str]:
    """Which op type all_ops's drift comes from (ptq_layerwise.op_probe)."""
    all_ops = next((a for a in res.ablation if a["variant"] == "all_ops"), None)
    if not res.op_probe or all_ops is None:
        return []
    all_cos = res.rows["all"].metrics["emb_cos"]
    lines = ["", "### Which op type all_ops's loss comes from", "",
             "`all` plus one op type that all_ops adds, each alone, and, when none alone "
             "accounts for half of all_ops's loss, the worst few together (embedding cosine to "
             "the float model on the error-analysis inputs; not timed).", "",
             "| op type added to all | nodes | embedding cosine |", "|---|---|---|"]
    lines += [f"| {r['op_type']} | {r['nodes']} | {r['emb_cos']:.5f} |"
              for r in sorted(res.op_probe, key=lambda r: r["emb_cos"])]
    return lines + ["", op_probe.finding(res.op_probe, all_cos, all_ops["emb_cos"])]


def _profile(res: StudyResult) -> list[str]:
    lines = ["", f"## Where the time goes (ORT per-operator profile, top {PROFILE_TOP} per model)",
             "", "| model | op | ms/run | kernels/run | share |", "|---|---|---|---|---|"]
    seen: dict[str, int] = {}
    for p in res.profile:
        seen[p["model"]] = seen.get(p["model"], 0) + 1
        if seen[p["model"]] <= PROFILE_TOP:
            lines.append(f"| {p['model']} | {p['op_type']} | {p['ms_per_run']:.2f} "
                         f"| {p['count_per_run']:.0f} | {p['share']:.2f} |")
    return lines


def plot_sensitivity(res: StudyResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, groups = res.rows, list(res.groups)
    d = [r[g].metrics["delta_eer"] for g in groups]
    s = [100 * (1 - r[g].metrics["size_ratio"]) for g in groups]
    fig, (a1, a3, a2) = plt.subplots(1, 3, figsize=(14, 3.8))
    a1.bar(groups, d, yerr=_err(r, groups, "delta_eer"), capsize=3,
           color=["C3" if v > res.search.budget else "C0" for v in d])
    a1.axhline(res.search.budget, color="k", ls="--", lw=1, label="budget")
    a1.axhline(0, color="k", lw=0.5)
    a1.set_ylabel("EER increase (points)")
    a1.set_title("ΔEER, group quantized alone (paired CI)", fontsize=10)
    a1.legend()
    a3.bar(groups, [1000 * r[g].metrics["score_shift"] for g in groups],
           yerr=1000 * _err(r, groups, "score_shift"), capsize=3, color="C1")
    a3.set_ylabel("mean |Δ score| ×1000")
    a3.set_title("Score shift (threshold-free)", fontsize=10)
    a2.bar(groups, s, color="C2")
    a2.set_ylabel("size saving (% of float model)")
    a2.set_title("Size saving, group quantized alone", fontsize=10)
    for ax in (a1, a3, a2):
        ax.tick_params(axis="x", rotation=40)
    fig.tight_layout()
    return fig


def _err(rows: dict[str, Any], groups: list[str], col: str) -> np.ndarray:
    """[2, groups] distances from each group's value to its interval ends (matplotlib yerr)."""
    m = [rows[g].metrics for g in groups]
    return np.array([[x[col] - x.get(f"{col}_lo", x[col]) for x in m],
                     [x.get(f"{col}_hi", x[col]) - x[col] for x in m]]).clip(min=0)


def plot_size_vs_eer(res: StudyResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    eer0 = res.rows["none"].metrics["eer"]
    labels: dict[tuple[float, float], list[str]] = {}
    for n, row in res.rows.items():
        m = row.metrics
        mark = {"float": "s", "dynamic": "^", "float16": "D"}.get(row.kind, "o")
        col = "C3" if n == "proposed" else ("C1" if n in ("all", "paper_choice") else "C0")
        ax.scatter(m["size_mib"], m["eer"], marker=mark, color=col, zorder=3)
        labels.setdefault((round(m["size_mib"], 4), round(m["eer"], 4)), []).append(n)
    for (x, y), names in labels.items():  # rows on the same point share one label
        ax.annotate(" = ".join(names), (x, y), textcoords="offset points", xytext=(4, 3),
                    fontsize=8)
    ax.axhline(eer0 + res.search.budget, color="k", ls="--", lw=1, label="float EER + budget")
    ax.set_xlabel("ONNX file size (MiB)")
    ax.set_ylabel("EER (%)")
    ax.set_title("Size versus EER of every row")
    ax.legend()
    fig.tight_layout()
    return fig


def headline(res: StudyResult) -> str:
    """One line for the stage's console: the float EER, `all` and `proposed`."""
    r = {n: row.metrics for n, row in res.rows.items()}
    return (f"ptq_layerwise: float EER {r['none']['eer']:.3f}%; all: ratio "
            f"{r['all']['size_ratio']:.3f}, dEER {r['all']['delta_eer']:+.3f}, "
            f"speedup {r['all']['speedup']:.2f}x; proposed "
            f"[{', '.join(res.search.groups) or 'nothing'}]: ratio "
            f"{r['proposed']['size_ratio']:.3f}, dEER {r['proposed']['delta_eer']:+.3f}; "
            f"{res.timings['total']:.1f} s")


def build(res: StudyResult, cfg: Config) -> StudyReport:
    """Everything the ptq_layerwise stage writes (one output per role of STUDY) and logs."""
    return StudyReport(
        study=STUDY, table=res.table(), markdown=table_markdown(res, cfg),
        metrics=metrics_summary(res),
        tables={"errors": errors_table(res),
                "op_profile": pd.DataFrame(res.profile, columns=PROFILE_COLUMNS),
                "ablation": pd.DataFrame(res.ablation, columns=ABLATION_COLUMNS),
                "speed": res.speed},
        figures={"sensitivity_png": plot_sensitivity(res), "size_png": plot_size_vs_eer(res),
                 "speed_png": plot_speed(res.speed)},
        variant_metrics={n: {k: row.metrics[k] for k in ROW_KEYS if k in row.metrics}
                         for n, row in res.rows.items()},
        variant_tags={n: {"kind": row.kind, "groups": ",".join(row.groups) or "none"}
                      for n, row in res.rows.items()},
        run_params={"proposed_groups": ",".join(res.search.groups) or "none",
                    "proposed_source": res.search.source})
