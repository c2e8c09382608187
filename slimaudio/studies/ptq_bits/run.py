"""The study from start to end: the per-layer study's rows in, the sub-8-bit rows and the
mixed-precision choice made, timed against the float model, scored with paired intervals."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from slimaudio import latency, runtime, stats
from slimaudio.datasets import speakers
from slimaudio.errors import DataError
from slimaudio.latency import SIMPLE, Spread, Timing
from slimaudio.schemas.base import Bootstrap
from slimaudio.speaker import groups
from slimaudio.speaker.onnx_eval import EvalSet, latency_input, model_io
from slimaudio.speaker.ptq_bench import SCORES_FILE, Bench, Row, Timer, load_scores
from slimaudio.speaker.uncertainty import TrialStats
from slimaudio.studies.ptq_bits import bitwidth
from slimaudio.studies.ptq_bits.config import Config
from slimaudio.studies.ptq_bits.result import StudyResult


def run_study(cfg: Config, seed: int, threads: int, boot: Bootstrap,
              ptq_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str],
              models_dir: str | os.PathLike[str], progress: bool = True,
              spread: Spread = SIMPLE) -> StudyResult:
    """Every sub-8-bit row and the mixed-precision choice, from the per-layer study's models
    in `ptq_dir` (models/ptq); the new models are written into `models_dir`. `seed`,
    `threads`, `boot`, `spread`: base.seed, base.threads, base.bootstrap, base.latency."""
    timer, models_dir = Timer(), Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with timer.lap("load"):
        bench, int8, feeds = load(cfg, Path(ptq_dir), data_dir, models_dir, timer, progress)
    rows = {"none": int8.pop("none").with_metrics({"weight_bits": float(bitwidth.FLOAT_BITS)})}
    groups = bitwidth.bit_groups(int8, bench.gmap.groups)
    rows |= bitwidth.solo_rows(bench, int8, groups, cfg.widths)
    walk, float_bytes = None, float("nan")
    if cfg.max_verify and groups:
        walk, mixed, float_bytes = bitwidth.mixed_precision(
            bench, {"none": rows["none"], **int8}, rows, groups, cfg.widths, cfg.budget_eer,
            cfg.max_verify)
        rows |= {mixed.name: mixed} if mixed is not None else {}
    with timer.lap("latency"):
        lat = time_rows(rows, feeds, cfg, threads, seed, spread)
    with timer.lap("intervals"):
        ts = TrialStats.build(bench.evalset.trials, bench.evalset.speaker_of, boot.resamples,
                              boot.level, seed)
        scored = {n: ts.score(r.scores) for n, r in {**rows, **int8}.items()}
        ref = scored["none"]
        out = {n: with_intervals(r, ts.metrics(scored[n]) | ts.deltas(ref, scored[n]), lat,
                                 rows["none"], len(ts.resampler.counts), ts.resampler.level,
                                 seed) for n, r in rows.items()}
        int8 = {g: r.with_metrics(ts.metrics(scored[g]) | ts.deltas(ref, scored[g]))
                for g, r in int8.items()}
        order = bitwidth.ordering(ts.resampler.level, scored, bench.gmap.groups, cfg.widths)
    cpu = runtime.cpu_info()
    info = {"cpu": cpu, "int8_dot_product": runtime.has_int8_dot_product(cpu),
            "level": boot.level, "reduce_range": cfg.recipe.quant_settings.reduce_range,
            "trials": len(bench.evalset.trials)}
    return StudyResult(rows=out, int8=int8, groups=bench.gmap.groups,
                       bit_groups=tuple(groups), widths=cfg.widths,
                       walk=walk, float_bytes=float_bytes, ordering=order, info=info,
                       timings=timer.with_total())


def load(cfg: Config, ptq_dir: Path, data_dir: str | os.PathLike[str], models_dir: Path,
         timer: Timer, progress: bool
         ) -> tuple[Bench, dict[str, Row], dict[str, np.ndarray]]:
    """The bench the per-layer study's rows were made on (its float model, groups,
    calibration and recipe), its `none` and per-group INT8 rows with their saved trial
    scores (so that every interval here is paired with theirs), and the latency input."""
    float_path, cache = ptq_dir / "none.onnx", ptq_dir / "calibration.json"
    for p in (float_path, cache):
        if not p.is_file():
            raise DataError(f"{p}: the per-layer study's output is missing (run stage "
                            "ptq_layerwise)")
    gmap = groups.group_nodes(float_path, cfg.groups)
    corpus = speakers.load(data_dir)
    io = model_io(float_path, float_path, corpus, cfg.recipe.input)
    evalset = EvalSet(corpus, io, cfg.recipe.eval.max_frames)
    bench = Bench(float_path, gmap, cache, cfg.recipe.quant_settings, evalset,
                  cfg.recipe.eval.threads, models_dir, timer, progress)
    scores = load_scores(ptq_dir / SCORES_FILE, ("none", *gmap.groups))
    rows = {"none": bench.scored(Row("none", float_path, "float", []), scores["none"])}
    for g in gmap.groups:
        path = ptq_dir / f"{g}.onnx"
        if not path.is_file():
            raise DataError(f"{path}: group {g}'s INT8 row is missing (run stage ptq_layerwise)")
        rows[g] = bench.remember(bench.scored(Row(g, path, "int8", [g]), scores[g])
                                 .with_metrics({"weight_bits": float(bitwidth.TOP_BITS)}))
    return bench, rows, io.feed(latency_input(corpus, cfg.latency.frames))


def time_rows(rows: Mapping[str, Row], feeds: Mapping[str, np.ndarray], cfg: Config,
              threads: int, seed: int, spread: Spread) -> dict[str, latency.Latency]:
    """Every row, `none` included, timed interleaved on a real test utterance."""
    factories = {n: latency.OnnxFactory(str(r.path), dict(feeds), threads)
                 for n, r in rows.items()}
    timing = Timing.of(cfg.latency.warmup, cfg.latency.repeats, spread)
    return latency.measure_factories(factories, timing, threads, seed)


def with_intervals(row: Row, scored: Mapping[str, float], lat: Mapping[str, latency.Latency],
                   none: Row, resamples: int, level: float, seed: int) -> Row:
    """The row with its intervals, latency, and ΔEER, size ratio and speed-up against `none`."""
    ms = lat[row.name].as_dict()
    iv = latency.speedup(lat["none"], lat[row.name], resamples, runtime.rng(seed, "bootstrap"),
                         level)
    return row.with_metrics({**scored, **ms,
                             "size_ratio": row.metrics["size_bytes"] / none.metrics["size_bytes"],
                             **stats.columns("speedup", iv)})
