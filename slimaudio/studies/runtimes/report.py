"""table.md of the runtime comparison."""

from __future__ import annotations

from typing import Any

import pandas as pd

from slimaudio.formatting import interval, num
from slimaudio.studies.base import StudyReport
from slimaudio.studies.runtimes.rules import STUDY


def _speed(r: pd.Series) -> str:
    return f"{interval(r['speedup'], r['speedup_lo'], r['speedup_hi'], 2)}x"


def table_markdown(table: pd.DataFrame, info: dict[str, Any]) -> str:
    cpu = info["cpu"]
    trained, wide = table[table["trained"].astype(bool)], table[~table["trained"].astype(bool)]
    lines = ["# The runtimes users ship: ONNX Runtime and OpenVINO", "",
             "The PTQ study's float model and its INT8 `all` row on ONNX Runtime, beside "
             "OpenVINO running the same float model (float32, and bf16 where the CPU computes "
             "it natively) and its own INT8 model (NNCF post-training quantization, PERFORMANCE "
             f"preset, on the same {info['calibration_utterances']} calibration utterances). "
             "NNCF's default quantizes the model's input mean subtraction, which costs most of "
             "the embedding, so it is left float (NNCF ignored scope: "
             f"{', '.join(info['ov_ignored']) or 'none'}). EER over {info['trials']} trials, "
             f"ΔEER paired against ORT float ({info['level']:.0%} intervals); speed-up = ORT "
             "float latency / variant latency, all variants interleaved (batch 1, "
             f"{info['threads']} thread, {info['frames']} frames). CPU: {cpu['model']} (SIMD: "
             f"{', '.join(cpu['simd']) or 'none'}; bf16: {'yes' if info['bf16'] else 'no'}).", "",
             "| variant | runtime | precision | EER % | ΔEER (points) | MiB | ms | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in trained.iterrows():
        lines.append(f"| {r['variant']} | {r['runtime']} | {r['precision']} "
                     f"| {interval(r['eer'], r['eer_lo'], r['eer_hi'], 2)} "
                     f"| {interval(r['delta_eer'], r['delta_eer_lo'], r['delta_eer_hi'], 2, True)} "
                     f"| {num(r['size_mib'], 3)} | {num(r['latency_ms'], 2)} | {_speed(r)} |")
    if not wide.empty:
        lines += ["", "## At the widths people deploy (speed only)", "",
                  "The PTQ study's random-weight width models (EER is meaningless there); "
                  "speed-up over ORT float at the same width.", "",
                  "| C | " + " | ".join(trained["variant"]) + " |",
                  "|---|" + "---|" * len(trained)]
        for c, g in wide.groupby("channels"):
            by = {str(v).split("/", 1)[1]: r for v, r in g.set_index("variant").iterrows()}
            cells = [_speed(by[v]) if v in by else "-" for v in trained["variant"]]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    else:
        lines += ["", "Wider models: set `ptq_layerwise.speed.runtimes: true` (on in the paper "
                  "profile) to time these runtimes at the PTQ study's width models too."]
    return "\n".join(lines) + "\n"


def summary_metrics(table: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"bf16": info["bf16"], "cpu": info["cpu"],
                           "ov_ignored": info["ov_ignored"]}
    for _, r in table.iterrows():
        key = str(r["variant"]).replace("/", "_")
        out |= {f"speedup_{key}": float(r["speedup"]),
                f"size_mib_{key}": float(r["size_mib"])}
        if bool(r["trained"]):
            out |= {f"eer_{key}": float(r["eer"]), f"delta_eer_{key}": float(r["delta_eer"])}
    return out


def build(table: pd.DataFrame, info: dict[str, Any]) -> StudyReport:
    """What stage runtimes writes and logs: the table, table.md, metrics.json; one MLflow child
    run per variant (runtime and format) with its EER, size and speed."""
    return StudyReport(study=STUDY, table=table, markdown=table_markdown(table, info),
                       metrics=summary_metrics(table, info),
                       variant_metrics={str(r["variant"]): {
                           k: float(r[k]) for k in ("eer", "delta_eer", "size_mib", "latency_ms",
                                                    "speedup")
                           if r[k] == r[k]} for _, r in table.iterrows()})
