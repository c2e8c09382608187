"""ONNX Runtime and OpenVINO side by side, on the PTQ study's models.

Trained width (models/ptq/none.onnx, all.onnx): EER with paired intervals against ORT float,
size, and speed relative to ORT float, every variant timed interleaved. Wider models (the
PTQ study's random-weight width models, models/ptq/speed/, with ptq_layerwise.speed.runtimes
on, as in the paper profile): speed only. OpenVINO INT8 is NNCF
post-training quantization on the PTQ study's calibration utterances, with the in-graph mean
subtraction left float (NNCF's default quantizes it and loses most of the embedding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio import latency, runtime, stats
from slimaudio.compress import openvino_rt as ovrt
from slimaudio.datasets import speakers
from slimaudio.errors import DataError
from slimaudio.metrics import MIB
from slimaudio.schemas.base import Bootstrap
from slimaudio.speaker.calibration import SpeakerCalibrationReader
from slimaudio.speaker.onnx_eval import EvalSet, ModelIO, latency_input
from slimaudio.speaker.scoring import cosine_scores
from slimaudio.speaker.uncertainty import TrialStats
from slimaudio.studies.runtimes.config import Config
from slimaudio.studies.runtimes.rules import RUNTIME_NAMES

REFERENCE = "ort_float"
COLUMNS = ["variant", "runtime", "precision", "channels", "trained", *stats.column_names("eer"),
           *stats.column_names("delta_eer"), "size_mib", "latency_ms",
           *stats.column_names("speedup")]
IO = ModelIO(input="feats", layout="BTF", output="embedding")  # our ECAPA exports


@dataclass(frozen=True)
class Model:
    runtime: str    # onnxruntime | openvino
    precision: str  # float32 | int8 | bf16
    path: Path      # .onnx or .xml

    def factory(self, feeds: Mapping[str, np.ndarray], threads: int) -> latency.Factory:
        if self.runtime == "onnxruntime":
            return latency.OnnxFactory(str(self.path), dict(feeds), threads)
        prec = "bf16" if self.precision == "bf16" else "f32"
        return ovrt.OpenVinoFactory(str(self.path), dict(feeds), threads, prec)

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.suffix == ".onnx" else \
            ovrt.model_size(self.path)


def variants(float_onnx: Path, int8_onnx: Path, reader: SpeakerCalibrationReader, out: Path,
             bf16: bool) -> dict[str, Model]:
    """The runtimes' variants of one float model; OpenVINO files written into `out`."""
    stem = float_onnx.stem
    ov_float = ovrt.save_float(float_onnx, out / f"{stem}_ov_float.xml")
    calib = [d[reader.input_name] for d in reader]
    ov_int8 = ovrt.quantize_nncf(float_onnx, out / f"{stem}_ov_int8.xml", calib)
    out_models = {"ort_float": Model("onnxruntime", "float32", float_onnx),
                  "ort_int8": Model("onnxruntime", "int8", int8_onnx),
                  "ov_float": Model("openvino", "float32", ov_float),
                  "ov_int8": Model("openvino", "int8", ov_int8)}
    if bf16:
        out_models["ov_bf16"] = Model("openvino", "bf16", ov_float)
    return out_models


def scores(model: Model, evalset: EvalSet, threads: int) -> np.ndarray:
    """Cosine score of every trial, batch-1 embeddings on the model's runtime."""
    if model.runtime == "onnxruntime":
        return evalset.scores(model.path, threads, progress=False)
    embed = ovrt.ov_embedder(model.path, threads, "bf16" if model.precision == "bf16" else "f32")
    emb = {u: embed(x[0]) for u, x in evalset.inputs.items()}
    return cosine_scores(emb, evalset.trials)


def time_models(models: Mapping[str, Model], feeds: Mapping[str, np.ndarray],
                timing: latency.Timing, threads: int, seed: int, n_boot: int, level: float
                ) -> dict[str, dict[str, float]]:
    """Median latency and speed-up over ORT float with its interval, per variant."""
    lat = latency.measure_factories({n: m.factory(feeds, threads) for n, m in models.items()},
                                    timing, threads, seed)
    out = {}
    for n in models:
        iv = latency.speedup(lat[REFERENCE], lat[n], n_boot, runtime.rng(seed, "bootstrap"),
                             level)
        out[n] = {"latency_ms": lat[n].median_ms, **stats.columns("speedup", iv)}
    return out


@dataclass
class StudyResult:
    table: pd.DataFrame
    info: dict[str, Any]


def run_study(ptq_models: Path, data_dir: Path, work: Path, ptq: Config, trained_channels: int,
              seed: int, threads: int, boot: Bootstrap, spread: latency.Spread,
              progress: bool = True) -> StudyResult:
    """Every runtime variant of the trained model (EER, size, speed) and of each width model
    (speed); see the module docstring."""
    for f in ("none.onnx", "all.onnx"):
        if not (ptq_models / f).is_file():
            raise DataError(f"{ptq_models / f}: missing (run stage ptq_layerwise)")
    corpus = speakers.load(data_dir)
    reader = SpeakerCalibrationReader(corpus, ptq.calibration.utterances,
                                      ptq.calibration.crop_frames, seed)
    bf16 = ovrt.has_bf16()
    timing = latency.Timing.of(ptq.latency.warmup, ptq.latency.repeats, spread)
    feeds = IO.feed(latency_input(corpus, ptq.latency.frames))
    work.mkdir(parents=True, exist_ok=True)
    models = variants(ptq_models / "none.onnx", ptq_models / "all.onnx", reader, work, bf16)
    evalset = EvalSet(corpus, IO, ptq.eval.max_frames)
    ts = TrialStats.build(evalset.trials, evalset.speaker_of, boot.resamples, boot.level, seed)
    scored = {n: ts.score(scores(m, evalset, ptq.eval.threads)) for n, m in models.items()}
    timed = time_models(models, feeds, timing, threads, seed, boot.resamples, boot.level)
    recs = [_row(n, m, trained_channels, True, timed[n])
            | ts.metrics(scored[n]) | _delta(ts, scored, n) for n, m in models.items()]
    for c in ptq.speed.widths if ptq.speed.runtimes else ():
        f, q = ptq_models / "speed" / f"c{c}_none.onnx", ptq_models / "speed" / f"c{c}_all.onnx"
        if not (f.is_file() and q.is_file()):
            continue
        if progress:
            print(f"  runtimes: width C={c}", flush=True)
        wide = variants(f, q, reader, work, bf16)
        t = time_models(wide, feeds, timing, threads, seed, boot.resamples, boot.level)
        recs += [_row(f"c{c}/{n}", m, c, False, t[n]) for n, m in wide.items()]
    table = pd.DataFrame(recs)
    table = table.reindex(columns=COLUMNS)
    info = {"cpu": runtime.cpu_info(), "bf16": bf16, "threads": threads,
            "frames": ptq.latency.frames, "ov_ignored": ovrt.ignored_names(
                models["ov_int8"].path), "calibration_utterances": len(reader),
            "trials": len(evalset.trials.labels), "level": boot.level}
    return StudyResult(table, info)


def _row(name: str, m: Model, channels: int, trained: bool, t: Mapping[str, float]
         ) -> dict[str, Any]:
    return {"variant": name, "runtime": RUNTIME_NAMES[m.runtime], "precision": m.precision,
            "channels": channels, "trained": trained, "size_mib": m.size_bytes() / MIB, **t}


def _delta(ts: TrialStats, scored: Mapping[str, Any], n: str) -> dict[str, float]:
    d = ts.deltas(scored[REFERENCE], scored[n])
    return {k: d[k] for k in ("delta_eer", "delta_eer_lo", "delta_eer_hi")}
