"""Stage pwl_int8: each method's fine-tuned model as float, `all` and `all_ops`, scored.

  float    models/pwl_softmax/<method>.onnx after ORT pre-processing
  all      the weight layers quantized (ptq_layerwise.op_types), static QDQ
  all_ops  every op ORT can quantize, the attentive pooling's included (the PTQ study's
           all_ops ablation)

Each model is calibrated on its own activations with the PTQ study's calibration (train-split
crops) and settings. Every model is scored on one TrialStats, so every difference is paired:
  delta_eer         against the method's own float model (what INT8 costs it)
  delta_eer_vs_ref  against the softmax reference's float model
  int8_gap          delta_eer minus the reference's at the same quantization (a difference in
                    differences: below 0, the method loses less to INT8 than softmax pooling)
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from slimaudio import latency, runtime, stats
from slimaudio.compress import onnx_int8
from slimaudio.datasets import speakers
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError, ParamError
from slimaudio.metrics import file_size
from slimaudio.schemas.base import Bootstrap
from slimaudio.speaker import calibration
from slimaudio.speaker.onnx_eval import (
    EvalSet,
    embedding_cosine,
    latency_input,
    model_io,
)
from slimaudio.speaker.uncertainty import Scored, TrialStats
from slimaudio.studies.pwl_int8.config import BEST_BENCH, Config
from slimaudio.studies.pwl_int8.result import QUANTIZED, StudyResult

EMB_COS_UTTERANCES = 8  # test utterances (latency-length crops) for the embedding cosine


def variant(method: str, quantized: str) -> str:
    return f"{method}/{quantized}"


def resolve_methods(cfg: Config, pwl_table: pd.DataFrame) -> list[str]:
    """The reference first, then `methods` in order, `best_bench` replaced by the bench form
    (params pwl_softmax.bench) with the lowest EER after fine-tuning in pwl_softmax's table."""
    t = pwl_table.set_index("method")
    out = [cfg.reference]
    for m in cfg.methods:
        if m == BEST_BENCH:
            bench = [b for b in cfg.bench if b in t.index and pd.notna(t.loc[b, "eer_after_ft"])]
            if not bench:
                raise ParamError("params: pwl_int8.methods: best_bench needs a bench form in "
                                 "pwl_softmax's table (set pwl_softmax.bench)")
            m = min(bench, key=lambda b: float(t.loc[b, "eer_after_ft"]))
        if m not in t.index:
            raise ParamError(f"params: pwl_int8.methods: {m!r} is not a method of pwl_softmax's "
                             f"table ({', '.join(t.index)})")
        if m not in out:
            out.append(m)
    return out


def quantize_method(src: Path, work: Path, corpus: SpeakerData, cfg: Config, seed: int
                    ) -> dict[str, Path]:
    """float, all and all_ops of one fine-tuned model, calibrated on its own activations."""
    fl = onnx_int8.preprocess(src, work / "float.onnx")
    _, cache = calibration.calibrate(fl, corpus, cfg.ptq.calibration, seed,
                                     work / "calibration.json", "feats")
    out = {"float": fl}
    settings = cfg.ptq.quant_settings
    for name, st in (("all", settings), ("all_ops", replace(settings, op_types=None))):
        out[name] = onnx_int8.quantize_static_nodes(fl, work / f"{name}.onnx", cache, None, st)
        onnx_int8.compact_names(out[name], fl)
    return out


def run_study(cfg: Config, onnx_dir: Path, data_dir: Path, models_dir: Path,
              pwl_table: pd.DataFrame, seed: int, threads: int, boot: Bootstrap,
              progress: bool = True, spread: latency.Spread = latency.SIMPLE) -> StudyResult:
    """Quantize, score, time and compare every method; see the module docstring."""
    t0, seconds = time.perf_counter(), {}
    methods = resolve_methods(cfg, pwl_table)
    for m in methods:  # every model is there before any work starts
        if not (onnx_dir / f"{m}.onnx").is_file():
            raise DataError(f"{onnx_dir / m}.onnx: no such fine-tuned model (run stage "
                            "pwl_softmax)")
    corpus = speakers.load(data_dir)
    paths: dict[str, Path] = {}
    for m in methods:
        got = quantize_method(onnx_dir / f"{m}.onnx", models_dir / m, corpus, cfg, seed)
        paths |= {variant(m, q): p for q, p in got.items()}
    seconds["quantize"] = time.perf_counter() - t0
    io = model_io(paths[variant(methods[0], "float")], paths[variant(methods[0], "float")],
                  corpus, cfg.ptq.input)
    evalset = EvalSet(corpus, io, cfg.ptq.eval.max_frames)
    ts = TrialStats.build(evalset.trials, evalset.speaker_of, boot.resamples, boot.level, seed)
    scored = {v: ts.score(evalset.scores(p, cfg.ptq.eval.threads, progress))
              for v, p in paths.items()}
    seconds["score"] = time.perf_counter() - t0 - seconds["quantize"]
    feeds = io.feed(latency_input(corpus, cfg.latency.frames))
    lat = latency.measure_factories(
        {v: latency.OnnxFactory(str(p), dict(feeds), threads) for v, p in paths.items()},
        latency.Timing.of(cfg.latency.warmup, cfg.latency.repeats, spread), threads, seed,
        progress)
    cos_inputs = [io.feed(x[:, :cfg.latency.frames])
                  for x in list(evalset.inputs.values())[:EMB_COS_UTTERANCES]]
    rows = [_row(m, q, methods[0], paths, scored, ts, lat, cos_inputs, threads, boot, seed)
            for m in methods for q in QUANTIZED]
    table = pd.DataFrame(rows, columns=COLUMNS)
    rest = table[(table["method"] != methods[0]) & (table["quantized"] == "all_ops")]
    winner = str(rest.sort_values("eer").iloc[0]["method"]) if len(rest) else methods[0]
    seconds["total"] = time.perf_counter() - t0
    return StudyResult(table, methods, methods[0], winner, paths, seconds)


COLUMNS = ["variant", "method", "quantized",
           *[c for n in ("eer", "delta_eer", "delta_eer_vs_ref", "int8_gap", "min_dcf")
             for c in stats.column_names(n)],
           "emb_cos", "size_bytes", "size_mib", "latency_ms", "latency_p90_ms",
           *stats.column_names("speedup")]


def _row(m: str, q: str, ref: str, paths: Mapping[str, Path], scored: Mapping[str, Scored],
         ts: TrialStats, lat: Mapping[str, latency.Latency], cos_inputs: Sequence[Any],
         threads: int, boot: Bootstrap, seed: int) -> dict[str, Any]:
    v, own, ref_float = variant(m, q), variant(m, "float"), variant(ref, "float")
    rec: dict[str, Any] = {"variant": v, "method": m, "quantized": q,
                           **ts.metrics(scored[v]), **file_size(paths[v])}
    rec |= {k: val for k, val in ts.deltas(scored[own], scored[v]).items()
            if k.startswith("delta_eer")}
    rec |= {k.replace("delta_eer", "delta_eer_vs_ref"): val
            for k, val in ts.deltas(scored[ref_float], scored[v]).items()
            if k.startswith("delta_eer")}
    rec |= _int8_gap(scored, m, ref, q, ts.resampler.level)
    rec["emb_cos"] = (1.0 if q == "float" else
                      embedding_cosine(paths[own], paths[v], cos_inputs, threads))
    iv = latency.speedup(lat[ref_float], lat[v], boot.resamples,
                         runtime.rng(seed, "bootstrap"), boot.level)
    return rec | {"latency_ms": lat[v].median_ms, "latency_p90_ms": lat[v].p90_ms,
                  **stats.columns("speedup", iv)}


def _int8_gap(scored: Mapping[str, Scored], m: str, ref: str, q: str, level: float
              ) -> dict[str, float]:
    """(EER change of m under q) minus (the reference's under q), paired on every resample."""
    if q == "float" or m == ref:
        return {}
    a, af = scored[variant(m, q)], scored[variant(m, "float")]
    b, bf = scored[variant(ref, q)], scored[variant(ref, "float")]
    samples = (a.samples["eer"] - af.samples["eer"]) - (b.samples["eer"] - bf.samples["eer"])
    value = (a.values["eer"] - af.values["eer"]) - (b.values["eer"] - bf.values["eer"])
    iv = stats.percentile(samples, value, level)
    return stats.columns("int8_gap", iv)


def export_winner(res: StudyResult, out: Path) -> Path:
    """The winner's all_ops model as one file beside the others (it loads alone: QDQ ONNX
    with every weight inside)."""
    src = res.paths[variant(res.winner, "all_ops")]
    shutil.copyfile(src, out)
    return out
