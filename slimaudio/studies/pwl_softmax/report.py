"""Report rendering of the PWL softmax study: pure functions from its tables to metrics.json,
table.md (the paper's Table 1 and Table 2 layouts, our numbers beside the paper's, and notes
derived from the measurements) and the figures fit.png and ft_curves.png."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from slimaudio import stats
from slimaudio.compress import exp_free
from slimaudio.formatting import interval_of, num
from slimaudio.papers import PWL_SOFTMAX as P
from slimaudio.speaker.evaluate import det_figure
from slimaudio.studies.base import StudyReport
from slimaudio.studies.pwl_softmax import rules
from slimaudio.studies.pwl_softmax.fit import FitResult
from slimaudio.studies.pwl_softmax.result import StudyResult
from slimaudio.studies.pwl_softmax.rules import STUDY
from slimaudio.studies.pwl_softmax.variants import control_variant

FEATURES = {"baseline": "Softmax", "baseline_ft_control": "Softmax, fine-tuned (control)",
            "clip": "Clipping only", "pwl1": "1-segment linear + clipping",
            "pwl2": "2-segment linear + clipping", "learnable": "learnable PWL + clipping",
            "ibert": "I-BERT polynomial exp, base-2 range reduction",
            "base2": "base-2 exponential, shift + linear (Softermax-style)",
            "consmax": "ConSmax: learned constants for max and sum"}
SPEED_COLUMNS = (("softmax alone in torch", "rel_time_softmax_torch"),
                 ("softmax alone in ORT", "rel_time_softmax_onnx"),
                 ("whole model in torch", "rel_time_model_torch"),
                 ("whole model in ORT", "rel_time_model_onnx"))


def metrics(table: pd.DataFrame, seconds: Mapping[str, float]) -> dict[str, Any]:
    """metrics.json: every measured table cell as <method>_<column>, the acceptance checks,
    and the seconds each step took."""
    cells = {f"{r['method']}_{k}": r[k] for r in table.to_dict("records")
             for k in table.columns if k != "method" and r[k] == r[k] and r[k] is not None}
    return {**cells, **rules.checks(table), **{f"seconds_{k}": v for k, v in seconds.items()}}


def rows_table(table: pd.DataFrame, onnx: Mapping[str, bytes], latency_df: pd.DataFrame) -> pd.DataFrame:
    """The table plus what the common rows need and table.csv does not carry: each variant's
    ONNX export size and its whole-model ONNX Runtime median latency (batch 1, base.threads)."""
    methods = list(table["method"])
    lat = latency_df.set_index("method")
    return table.assign(size_mib=[len(onnx[m]) / 2**20 for m in methods],
                        latency_ms=lat.loc[methods, "model_onnx_ms"].to_numpy())


def feature(method: str) -> str:
    """What a method does, in the paper's words."""
    if method.endswith("_uniform"):
        return f"{feature(method.removesuffix('_uniform'))}, fitted without data"
    return FEATURES.get(method, f"{method[3:]}-segment linear + clipping"
                        if method.startswith("pwl") else method)


def table_markdown(table: pd.DataFrame, latency_df: pd.DataFrame, fit_res: FitResult,
                   meta: Mapping[str, Any]) -> str:
    """table.md; `meta`: channels, mfa_channels, profile, ft_scope, ft_steps, threads, frames."""
    t = table.set_index("method")
    lat = latency_df.set_index("method")
    lines = [f"# {P['title']}", "",
             f"Model: ECAPA-TDNN C={meta['channels']}, MFA {meta['mfa_channels']}, "
             f"profile `{meta['profile']}`; fine-tuning: scope `{meta['ft_scope']}`, "
             f"{meta['ft_steps']} steps for every method and the control. EER in %.", ""]
    lines += eer_table(t) + speed_table(t, lat) + absolute_times(lat, meta)
    lines += speed_notes(lat) + bench_notes(t) + fit_table(fit_res)
    return "\n".join(lines) + "\n"


def best_by(t: pd.DataFrame, col: str) -> tuple[str, str | None]:
    """The method with the lowest `col` among the replacements, and the runner-up when its
    interval overlaps the best's (the ordering is then not resolved)."""
    cands = t.drop(index=[i for i in ("baseline", "baseline_ft_control") if i in t.index])
    cands = cands[cands[col].notna()].sort_values(col)
    if cands.empty:
        return "", None
    best, rest = cands.index[0], cands.iloc[1:]
    hi = cands.loc[best].get(f"{col}_hi")
    tied = rest[rest[f"{col}_lo"] <= hi] if hi is not None and f"{col}_lo" in rest else rest[:0]
    return best, (tied.index[0] if len(tied) else None)


def bench_notes(t: pd.DataFrame) -> list[str]:
    """Which replacement is best for accuracy and which for speed, measured (every method,
    the exp-free bench forms included)."""
    if not set(exp_free.EXP_FREE_METHODS) & set(t.index):
        return []
    lines = ["## Softmax-approximation bench: the best form for accuracy and for speed", ""]
    for label, col in (("accuracy (EER after FT)", "eer_after_ft"),
                       ("speed, whole model in ORT", "rel_time_model_onnx"),
                       ("speed, whole model in torch", "rel_time_model_torch")):
        best, tie = best_by(t, col)
        if not best:
            continue
        cell = _iv(t, best, col, 3)
        verdict = (f"not resolved from `{tie}` ({_iv(t, tie, col, 3)}): the intervals overlap"
                   if tie else "its interval is clear of every other method's")
        lines.append(f"- Best for {label}: `{best}` {cell}; {verdict}.")
    return lines + ["", "The bench forms: `ibert` (I-BERT's second-order polynomial exp with "
                    "base-2 range reduction), `base2` (2^n (1 + f), shift plus linear, "
                    "Softermax-style), `consmax` (learned constants in place of the max and the "
                    "sum; keeps exp). Their element-wise error against exp on the observed "
                    "logits is in the fit table below; fit.png plots them.", ""]


def eer_table(t: pd.DataFrame) -> list[str]:
    """The paper's Table 1: EER before and after fine-tuning, ours and the paper's."""
    lines = ["## Table 1: speaker verification (EER %, lower is better)", "",
             "| method | feature | ours before FT | Δ before FT | ours after FT | Δ after FT "
             "| ours minDCF after FT | paper before FT | paper after FT |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in t.index:
        pb = P["eer_before_ft"].get(m)
        pa = P["eer_after_ft"].get(m) if m != "baseline" else None
        lines.append(f"| {m} | {feature(m)} | {_iv(t, m, 'eer_before_ft')} "
                     f"| {_iv(t, m, 'delta_eer_before_ft', 2, True)} | {_iv(t, m, 'eer_after_ft')} "
                     f"| {_iv(t, m, 'delta_eer_after_ft', 2, True)} "
                     f"| {_iv(t, m, 'min_dcf_after_ft', 3)} | {num(pb, 2)} | {num(pa, 2)} |")
    return lines + ["", "The baseline is not fine-tuned; `baseline_ft_control` is the baseline "
                    "fine-tuned exactly like the methods (the paper has no such control: its after-FT "
                    "numbers compare against the untuned baseline). Δ before FT is from the "
                    "baseline, Δ after FT from the control; `pwl<k>_uniform` are the paper's "
                    "forms fitted evenly on a fixed z range, without the model's logits (as a "
                    "reader of the paper would fit them).", "", *_interval_note(t), ""]


def _iv(t: pd.DataFrame, m: str, col: str, digits: int = 2, sign: bool = False) -> str:
    return interval_of(stats.read(t.loc[m], col), digits, sign)


def _delta_half_width(t: pd.DataFrame) -> float:
    hw = (t["delta_eer_after_ft_hi"] - t["delta_eer_after_ft_lo"]) / 2
    return float(hw.drop(index=[i for i in ("baseline", "baseline_ft_control") if i in hw.index])
                 .median())


def _interval_note(t: pd.DataFrame) -> list[str]:
    sd = t["eer_after_ft_sd"].dropna() if "eer_after_ft_sd" in t else pd.Series(dtype=float)
    reps = ("one fine-tuning per method, so the after-FT intervals cover the trial list's "
            "speakers but not the training seed (set `pwl_softmax.ft.replicates` >= 2; the "
            "paper profile runs 3)" if sd.empty else
            f"the after-FT values are means over fine-tuning replicates, resampled with the "
            f"speakers; the replicates' EER spread (sd) is {num(sd.median(), 3)} points "
            f"(median over methods) against a median half-width of "
            f"{num(_delta_half_width(t), 3)} for the paired Δ after FT")
    return ["Intervals [lo, hi]: speaker bootstrap at `base.bootstrap.level`, paired across methods (every Δ has its "
            f"own interval); {reps}."]


def speed_table(t: pd.DataFrame, lat: pd.DataFrame) -> list[str]:
    """The paper's Table 2: elapsed time relative to softmax, ours four ways and the paper's."""
    lines = ["## Table 2: relative elapsed time (softmax = 1, lower is faster)", "",
             "| method | feature | ours softmax alone (torch) | ours softmax alone (ORT) | "
             "ours whole model (torch) | ours whole model (ORT) | paper |",
             "|---|---|---|---|---|---|---|"]
    for m in t.index:
        cells = [_iv(lat, m, c, 3) for c in ("rel_time_softmax_torch", "rel_time_softmax_onnx",
                                             "rel_time_model_torch", "rel_time_model_onnx")]
        lines.append(f"| {m} | {feature(m)} | {' | '.join(cells)} | "
                     f"{num(P['rel_time'].get(m), 4)} |")
    return lines + ["", "Intervals: bootstrap over interleaved timing rounds (`base.bootstrap.level`)."]


def absolute_times(lat: pd.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    b = lat.loc["baseline"]
    return ["", "Absolute medians (batch 1, "
            f"{meta['threads']} thread(s), {meta['frames']} frames): softmax alone "
            f"{1e3 * b['softmax_torch_ms']:.0f} us (torch) / {1e3 * b['softmax_onnx_ms']:.0f} us "
            f"(ORT); whole model {b['model_torch_ms']:.2f} ms (torch) / "
            f"{b['model_onnx_ms']:.2f} ms (ORT).", ""]


def speed_notes(lat: pd.DataFrame) -> list[str]:
    """What the speed numbers mean: the no-softmax floor, the noise, which method is slower
    where, and why."""
    b, f = lat.loc["baseline"], lat.loc["no_softmax"]
    gone_t = f["model_torch_ms"] / b["model_torch_ms"] - 1
    gone_o = f["model_onnx_ms"] / b["model_onnx_ms"] - 1
    ctrl = lat.loc["baseline_ft_control"]
    lines = ["## What the speed numbers mean", "",
             f"- Removing the normaliser altogether (`no_softmax` in latency.csv, a timing "
             f"floor, not a usable model) changes the whole-model time by "
             f"{100 * gone_t:+.1f}% (torch) and {100 * gone_o:+.1f}% (ORT): no replacement "
             f"of the softmax can gain more than that.",
             f"- `baseline_ft_control` runs the same graph as `baseline`; its ratios "
             f"({ctrl['rel_time_model_torch']:.3f} torch, {ctrl['rel_time_model_onnx']:.3f} "
             f"ORT) show the measurement noise of the whole-model columns."]
    for m in ("clip", "pwl1", "pwl2"):
        if m not in lat.index:
            continue
        slower = [k for k, col in SPEED_COLUMNS if lat.loc[m, col] > 1.0]
        if slower:
            lines.append(f"- `{m}` is slower than softmax for: {', '.join(slower)}.")
    p1 = lat.loc["pwl1"] if "pwl1" in lat.index else None
    if p1 is not None and p1["rel_time_softmax_torch"] < 1.0:
        torch_note = ("torch's softmax is one fused kernel but its exp() is costly, and the "
                      "few elementwise ops of pwl1 cost less than that")
    else:
        torch_note = ("at this size torch's per-op dispatch overhead of the extra elementwise "
                      "kernels outweighs the cost of exp() inside its fused softmax")
    return lines + [
        f"- Why: {torch_note}. ONNX Runtime's Softmax is "
        "one fused kernel (vectorised polynomial exp over a row in cache), while a "
        "PWL needs at least a ReduceMax, one elementwise op and a ReduceSum as separate "
        "kernels, each a pass over [channels, frames] plus dispatch overhead; exp is not "
        "the bottleneck there, memory passes are. The PWL forms here are already minimal: "
        "the slope is folded away by the normalisation, each segment's offset is folded "
        "into the per-channel max before the one full-size subtraction, and the division "
        "is deferred to after the pooling sums (one divide per channel, not per frame).", ""]


def fit_table(fit_res: FitResult) -> list[str]:
    """The fitted approximations: floors, coefficients and how close each is to softmax."""
    lines = ["## Fitted approximations (on the baseline's attention logits)", "",
             "| method | floor | coefficients | exp MSE | weight TV vs softmax |",
             "|---|---|---|---|---|",
             f"| clip | {fit_res.clip_floor:.4g} | - | - | "
             f"{fit_res.diagnostics['clip']['tv']:.3f} |"]
    fits = [(f"pwl{k}", c) for k, c in sorted(fit_res.pwl.items())]
    fits += [(f"pwl{k}_uniform", c) for k, c in sorted(fit_res.uniform.items())]
    for name, c in fits:
        d = fit_res.diagnostics[name]
        coeffs = f"c0={c.c0:.3f}, s0={c.s0:.3f}" + "".join(
            f", d{j + 1}={dj:.3f}@t={tj:.2f}" for j, (dj, tj) in enumerate(zip(c.d, c.t, strict=True)))
        lines.append(f"| {name} | {c.floor:.4g} | {coeffs} | {d['exp_mse']:.2e} | {d['tv']:.3f} |")
    return lines + exp_free_rows(fit_res)


def exp_free_rows(fit_res: FitResult) -> list[str]:
    """The exp-free forms' rows of the fit table (fixed constants but consmax's)."""
    d = fit_res.diagnostics
    lines = []
    for name, coeffs in (("ibert", f"I-BERT poly a={exp_free.IBERT_A}, b={exp_free.IBERT_B}, "
                                   f"c={exp_free.IBERT_C}, shift by 2^-q"),
                         ("base2", "2^n (1 + f) of u = log2(e) z")):
        if name in d:
            lines.append(f"| {name} | 2^-{exp_free.MAX_SHIFT:g} | {coeffs} | "
                         f"{d[name]['exp_mse']:.2e} (max rel. {d[name]['exp_max_rel_err']:.3f}) | "
                         f"{d[name]['tv']:.3f} |")
    if "consmax" in d:
        c = fit_res.consmax
        lines.append(f"| consmax | - | beta={c['beta']:.3f}, gamma={c['gamma']:.3g} (start; "
                     f"learned in fine-tuning) | - (keeps exp) | {d['consmax']['tv']:.3f} |")
    return lines


def ft_curves_figure(curves: Mapping[str, list[dict[str, float]]]) -> Any:
    """ft_curves.png: the fine-tuning loss of every method and the control."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        if c:
            ax.plot([p["step"] for p in c], [p["loss"] for p in c], label=name, lw=1.2)
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("AAM-softmax loss")
    ax.set_title("fine-tuning curves (same batches for every method)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def build(res: StudyResult, fit_res: FitResult, meta: Mapping[str, Any]) -> StudyReport:
    """Everything stage pwl_softmax writes and logs but the ONNX files; roles table, rows,
    table_md, metrics, latency, curves_plot, det_plot. Each variant's MLflow child run gets
    its row's numbers and latencies, its normaliser's coefficients and its fine-tuning curve."""
    lat = res.latency.set_index("method")
    variants = [*res.variants, control_variant()]
    per_variant = {v.name: {**{k: val for k, val in res.rows[v.name].items()
                               if isinstance(val, int | float)}, **lat.loc[v.name].to_dict()}
                   for v in variants}
    return StudyReport(
        study=STUDY, table=res.table,
        markdown=table_markdown(res.table, res.latency, fit_res, meta),
        metrics=metrics(res.table, res.seconds), tables={"latency": res.latency},
        figures={"curves_plot": ft_curves_figure(res.ft_curves),
                 "det_plot": det_figure(res.after, title="after fine-tuning")},
        variant_metrics=per_variant,
        variant_params={v.name: v.run_params() for v in variants},
        variant_series={n: {"ft_loss": [(int(p["step"]), p["loss"]) for p in c]}
                        for n, c in res.ft_curves.items() if c},
        rows_table=rows_table(res.table, res.onnx, res.latency))
