"""The study from start to end: load, calibrate, make the rows, analyse, time, profile."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime, stats
from slimaudio.compress.layer_groups import GroupMap
from slimaudio.datasets import speakers
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.latency import SIMPLE, Latency, Spread, Timing, speedup
from slimaudio.schemas.base import Bootstrap
from slimaudio.speaker import calibration, groups
from slimaudio.speaker.onnx_eval import (
    EvalSet,
    ModelIO,
    embedding_cosine,
    latency_input,
    model_io,
)
from slimaudio.speaker.ptq_bench import SCORES_FILE, Bench, Row, Timer, save_scores
from slimaudio.speaker.uncertainty import TrialStats
from slimaudio.studies.ptq_layerwise import width_speed
from slimaudio.studies.ptq_layerwise.ablation import Ablation, run_ablation
from slimaudio.studies.ptq_layerwise.config import Config
from slimaudio.studies.ptq_layerwise.error_analysis import ActivationError, group_output_error
from slimaudio.studies.ptq_layerwise.op_probe import run_op_probe
from slimaudio.studies.ptq_layerwise.result import StudyResult
from slimaudio.studies.ptq_layerwise.rows import PAPER_CHOICE, make_rows, missing_choice
from slimaudio.studies.ptq_layerwise.timing import (
    float_convs,
    measure_latency,
    profile_ops,
)

PROFILED_ROWS = ("dynamic", "float16")  # slow rows whose profile says why, beside none and all
def run_study(cfg: Config, seed: int, threads: int, boot: Bootstrap,
              model: str | os.PathLike[str], data_dir: str | os.PathLike[str],
              models_dir: str | os.PathLike[str], progress: bool = True,
              spread: Spread = SIMPLE) -> StudyResult:
    """Run every row of the study; quantized models are written into `models_dir`.
    `seed`, `threads`, `boot`, `spread`: base.seed (calibration draw, latency order,
    resamples), base.threads (latency), base.bootstrap (intervals), base.latency (timing)."""
    timer, models_dir = Timer(), Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with timer.lap("load"):
        float_path, gmap, corpus, evalset = load(model, data_dir, models_dir, cfg)
    io = evalset.io
    with timer.lap("calibrate"):
        reader, cache = calibration.calibrate(float_path, corpus, cfg.calibration, seed,
                                              models_dir / "calibration.json", io.input,
                                              io.layout)
    bench = Bench(float_path, gmap, cache, cfg.quant_settings, evalset, cfg.eval.threads,
                  models_dir, timer, progress)
    rows, search = make_rows(bench, cfg)
    save_scores(rows, models_dir / SCORES_FILE)  # the sub-8-bit study pairs its rows with these
    with timer.lap("error_analysis"):
        err_inputs = error_inputs(evalset, cfg, io)
        rows, errors = analyse_errors(bench, rows, err_inputs)
    with timer.lap("ablation"):
        ablation = run_ablation(bench, cfg, rows["none"].metrics["eer"], err_inputs)
    with timer.lap("op_probe"):
        probe = run_op_probe(bench, cfg, err_inputs, rows["all"].metrics["emb_cos"],
                             _all_ops_cos(ablation)) if (
            cfg.op_probe and "all_ops" in ablation.paths) else []
    feeds = io.feed(latency_input(corpus, cfg.latency.frames))
    models = {n: r.path for n, r in rows.items()} | ablation.paths
    with timer.lap("latency"):
        timing = Timing.of(cfg.latency.warmup, cfg.latency.repeats, spread)
        lat = measure_latency(models, ablation.configs, feeds, timing, threads, seed)
    rows, ablation = add_relative_metrics(rows, ablation, lat)
    with timer.lap("intervals"):
        ts = TrialStats.build(evalset.trials, evalset.speaker_of, boot.resamples, boot.level,
                              seed)
        rows, ablation = add_intervals(rows, ablation, lat, ts, seed)
    with timer.lap("speed"):
        speed = width_speed.speed_table(
            cfg.speed, corpus, calibration.SpeakerCalibrationReader(
                corpus, cfg.calibration.utterances, cfg.calibration.crop_frames, seed),
            cfg.quant_settings, cfg.calibration.method, PAPER_CHOICE, spread, threads, seed,
            boot.resamples, boot.level, models_dir / "speed", progress)
    with timer.lap("profile"):
        profiled = ("none", "all", *(n for n in PROFILED_ROWS if n in models), *ablation.paths)
        profile = profile_ops({n: models[n] for n in profiled}, ablation.configs, feeds,
                              cfg.profile_runs, threads)
        ablation = replace(ablation, records=[
            a | {"float_conv_kernels": float_convs(profile, a["variant"])}
            for a in ablation.records])
    return StudyResult(rows=rows, search=search, errors=errors, ablation=ablation.records,
                       profile=profile, timings=timer.with_total(),
                       n_nodes={g: len(v) for g, v in gmap.nodes.items()},
                       info=machine_info(rows, profile, len(reader), evalset)
                       | {"level": boot.level, "reduce_range": cfg.quant_settings.reduce_range,
                          "reduce_range_reason": cfg.reduce_range_reason}
                       | group_info(cfg, gmap),
                       groups=gmap.groups, speed=speed, op_probe=probe)


def _all_ops_cos(ablation: Ablation) -> float:
    return next(a["emb_cos"] for a in ablation.records if a["variant"] == "all_ops")


def load(model: str | os.PathLike[str], data_dir: str | os.PathLike[str], models_dir: Path,
         cfg: Config) -> tuple[Path, GroupMap, SpeakerData, EvalSet]:
    """The float model every row derives from, its layer groups, the corpus, the trial set."""
    float_path = groups.prepare(model, models_dir / "none.onnx", cfg.groups)
    gmap = groups.group_nodes(float_path, cfg.groups)
    corpus = speakers.load(data_dir)
    io = model_io(model, float_path, corpus, cfg.input)
    return float_path, gmap, corpus, EvalSet(corpus, io, cfg.eval.max_frames)


def group_info(cfg: Config, gmap: GroupMap) -> dict[str, Any]:
    """What metrics.json and the report say of regex groups and of a paper_choice row left out
    (nothing for the default groups, so the default's outputs stay as they were)."""
    out: dict[str, Any] = {}
    if cfg.groups is not None:
        out["groups"] = dict(cfg.groups)
    missing = missing_choice(gmap.groups)
    if missing:
        out["paper_choice_omitted"] = (f"the model has no group {', '.join(missing)} of the "
                                       f"paper's choice ({', '.join(PAPER_CHOICE)})")
    return out


def error_inputs(evalset: EvalSet, cfg: Config, io: ModelIO) -> list[dict[str, np.ndarray]]:
    """The first `error_analysis.utterances` trial utterances, cut to the latency length, as
    feeds."""
    frames = cfg.latency.frames
    return [io.feed(x[:, :frames])
            for x in list(evalset.inputs.values())[:cfg.error_analysis.utterances]]


def analyse_errors(bench: Bench, rows: dict[str, Row],
                   inputs: Sequence[Mapping[str, np.ndarray]]
                   ) -> tuple[dict[str, Row], list[ActivationError]]:
    """Per-group activation error (each group's row has only that group quantized), and the
    rows with how far each one's embedding moved (`emb_cos`), on the same inputs."""
    threads = bench.threads
    io = bench.evalset.io
    errors = [group_output_error(bench.float_path, rows[g].path, g, bench.gmap, inputs, io.output,
                                 threads) for g in bench.gmap.groups]
    return {n: r.with_metrics({"emb_cos": embedding_cosine(bench.float_path, r.path, inputs,
                                                          threads)})
            for n, r in rows.items()}, errors


def add_relative_metrics(rows: dict[str, Row], ablation: Ablation, lat: Mapping[str, Latency]
                         ) -> tuple[dict[str, Row], Ablation]:
    """The rows with their latency, then ΔEER, size ratio and speed-up against `none`; the
    ablation records get their latency, speed-up and size ratio."""
    none = rows["none"].metrics
    ref, size0, eer0 = lat["none"].median_ms, none["size_bytes"], none["eer"]
    records = []
    for a in ablation.records:
        ms = lat[a["variant"]].as_dict()
        records.append(a | ms | {"speedup": ref / ms["latency_ms"],
                                 "size_ratio": a["size_bytes"] / size0})
    out = {}
    for n, r in rows.items():
        ms = lat[n].as_dict()
        out[n] = r.with_metrics({**ms, "delta_eer": r.metrics["eer"] - eer0,
                                 "size_ratio": r.metrics["size_bytes"] / size0,
                                 "speedup": ref / ms["latency_ms"]})
    return out, replace(ablation, records=records)


def add_intervals(rows: dict[str, Row], ablation: Ablation, lat: Mapping[str, Latency],
                  ts: TrialStats, seed: int) -> tuple[dict[str, Row], Ablation]:
    """The rows with speaker-bootstrap intervals of EER and minDCF, paired differences from
    `none`, the score shift, and the speed-up's interval over timing rounds; for the ablation
    variants whose EER is measured, the paired ΔEER interval."""
    scored = {n: ts.score(r.scores) for n, r in rows.items() if r.scores is not None}
    ref = scored["none"]
    records = []
    for a in ablation.records:
        if a["variant"] in ablation.scores:
            d = ts.deltas(ref, ts.score(ablation.scores[a["variant"]]))
            a = a | {"delta_eer_lo": d["delta_eer_lo"], "delta_eer_hi": d["delta_eer_hi"]}
        records.append(a)
    res, out = ts.resampler, dict(rows)
    for n, m in scored.items():
        iv = speedup(lat["none"], lat[n], len(res.counts), runtime.rng(seed, "bootstrap"),
                     res.level)
        out[n] = rows[n].with_metrics(ts.metrics(m) | ts.deltas(ref, m)
                                      | stats.columns("speedup", iv))
    return out, replace(ablation, records=records)


def machine_info(rows: dict[str, Row], profile: list[dict[str, Any]], calibration_utterances: int,
                 evalset: EvalSet) -> dict[str, Any]:
    """The CPU, what the files are made of, and the sizes of the data behind the numbers."""
    from slimaudio.compress.onnx_int8 import size_breakdown

    cpu = runtime.cpu_info()
    trials = evalset.trials
    return {"cpu": cpu, "int8_dot_product": runtime.has_int8_dot_product(cpu),
            "float_conv_kernels_all": float_convs(profile, "all"),
            "size_breakdown": {n: size_breakdown(rows[n].path) for n in ("none", "all")},
            "calibration_utterances": calibration_utterances,
            "eval_utterances": len(evalset.inputs),
            "trials": len(trials), "target_trials": int(trials.labels.sum()),
            "test_speakers": len({evalset.speaker_of[u] for u in trials.utterances})}
