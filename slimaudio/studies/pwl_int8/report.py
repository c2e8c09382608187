"""Rendering of the PWL x INT8 study: table.md and eer.png, pure functions of its table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import stats
from slimaudio.formatting import interval_of, num
from slimaudio.studies.base import StudyReport
from slimaudio.studies.pwl_int8 import rules
from slimaudio.studies.pwl_int8.result import QUANTIZED, StudyResult
from slimaudio.studies.pwl_int8.rules import STUDY


def _iv(r: pd.Series, col: str, digits: int = 2, sign: bool = False) -> str:
    return interval_of(stats.read(r, col), digits, sign)


def table_markdown(res: StudyResult, meta: Mapping[str, Any]) -> str:
    """table.md; `meta`: channels, profile, threads, frames, settings (a one-line description
    of the quantization)."""
    lines = [f"# {rules.STUDY.title}", "",
             f"ECAPA-TDNN C={meta['channels']}, profile `{meta['profile']}`: the fine-tuned "
             f"models of pwl_softmax, quantized with ptq_layerwise's settings ({meta['settings']}); "
             "each model calibrated on its own activations. `all`: the weight layers; "
             "`all_ops`: every op ORT quantizes, the attentive pooling's included. EER in %; "
             f"speed-up against `{res.reference}/float` (batch 1, {meta['threads']} thread(s), "
             f"{meta['frames']} frames).", "",
             "| model | quantized | EER | ΔEER vs its float | ΔEER vs softmax float | "
             "ΔEER minus softmax's | emb. cosine | size MiB | speed-up |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in res.table.iterrows():
        lines.append(f"| {r['method']} | {r['quantized']} | {_iv(r, 'eer')} | "
                     f"{_iv(r, 'delta_eer', 2, True)} | {_iv(r, 'delta_eer_vs_ref', 2, True)} | "
                     f"{_iv(r, 'int8_gap', 2, True)} | {num(r['emb_cos'], 4)} | "
                     f"{num(r['size_mib'], 3)} | {_iv(r, 'speedup', 2)} |")
    lines += ["", "Intervals [lo, hi]: speaker bootstrap over the trial list, paired across every "
              "model (ΔEER minus softmax's is a difference in differences); speed-ups: bootstrap "
              "over interleaved timing rounds.", "", "## The answer", ""]
    lines += [f"- {f.sentence()}" for f in rules.findings(res.table, {"reference": res.reference})]
    lines += ["", f"Winner (lowest all-op INT8 EER among the non-softmax poolings): "
              f"`{res.winner}`, exported alone as `winner.onnx` beside the other models.", ""]
    return "\n".join(lines) + "\n"


def eer_figure(res: StudyResult) -> Any:
    """eer.png: each model's EER as float, all and all_ops, with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(res.methods)), 4))
    x = np.arange(len(res.methods))
    t = res.table.set_index("variant")
    for k, q in enumerate(QUANTIZED):
        rows = t.loc[[f"{m}/{q}" for m in res.methods]]
        err = np.vstack([rows["eer"] - rows["eer_lo"], rows["eer_hi"] - rows["eer"]])
        ax.errorbar(x + (k - 1) * 0.22, rows["eer"], yerr=err, fmt="o", capsize=3, label=q)
    ax.set_xticks(x, res.methods, rotation=20)
    ax.set_ylabel("EER % (lower is better)")
    ax.set_title("pooling x INT8: float, weight layers, every op")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def summary_metrics(res: StudyResult) -> dict[str, Any]:
    """metrics.json: every cell as <variant>_<column>, the winner and the seconds."""
    cells = {f"{r['variant']}_{k}": r[k] for r in res.table.to_dict("records")
             for k in res.table.columns if k not in ("variant", "method", "quantized")
             and isinstance(r[k], int | float) and np.isfinite(r[k])}
    return {**cells, "winner": res.winner, "reference": res.reference,
            **{f"seconds_{k}": v for k, v in res.seconds.items()}}


def build(res: StudyResult, meta: Mapping[str, Any]) -> StudyReport:
    """What stage pwl_int8 writes and logs: the table, table.md, metrics.json, eer.png; one
    MLflow child run per variant with its numeric columns."""
    return StudyReport(study=STUDY, table=res.table, markdown=table_markdown(res, meta),
                       metrics=summary_metrics(res), figures={"eer_png": eer_figure(res)},
                       variant_metrics={r["variant"]: {k: v for k, v in r.items()
                                                       if isinstance(v, int | float)}
                                        for r in res.table.to_dict("records")})
