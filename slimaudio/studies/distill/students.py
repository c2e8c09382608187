"""Train, convert and measure one student (one DVC stage, one MLflow run).

Training: MSE between the student's output and the teacher's standardised embedding of the
same patch (FRILL), Adam, a fixed number of steps of random mini-batches.
Deployment: TFLite float32; QAT students also int8 (weights and activations, float I/O), and
their int8 model is the one measured and probed (float32 kept beside it for comparison).
Quality: the probe suite on the TFLite model's embeddings (what a phone would run).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.latency import SIMPLE, Spread
from slimaudio.progress import progress_bar
from slimaudio.schemas.distill import DistillStudent, Probe, Student
from slimaudio.speaker.scoring import l2_normalise
from slimaudio.studies.distill import probes
from slimaudio.studies.distill.data import (
    QUALITY,
    QUALITY_SD,
    DistillData,
    predictions_name,
    target_stats,
)

DEPLOYED = "model.tflite"          # what the study measures: int8 for QAT students, else float32
FLOAT32 = "model_fp32.tflite"      # QAT students' float32 conversion, for comparison


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless shuffled mini-batches (a new permutation per epoch)."""
    rng = runtime.rng(seed, "distill.student_batches")
    n = len(x)
    if n == 0:
        raise ValueError("no training patches")
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = np.sort(order[i:i + batch_size])
            yield np.asarray(x[idx], dtype=np.float32), np.asarray(y[idx], dtype=np.float32)


def standardised_targets(data: DistillData, l2: bool = False) -> np.ndarray:
    """The regression targets: the teacher's embeddings, standardised per dimension.

    With l2 they are first scaled to unit length. The teacher is an ECAPA-TDNN scored by
    cosine, so an embedding's length carries no speaker information, yet it is a large share
    of the variance an MSE student would otherwise spend its few hundred steps on. Measured
    on the default corpus (small w1.0 student, 200 steps of 32): speaker-probe accuracy
    0.33 -> 0.42, the other tasks unchanged."""
    if not l2:
        mu = np.asarray(data.info["target_mean"], dtype=np.float32)
        sd = np.asarray(data.info["target_std"], dtype=np.float32)
        return (np.asarray(data.train_targets, dtype=np.float32) - mu) / sd
    t = l2_normalise(data.train_targets)
    mu, sd = target_stats(t)
    return ((t - mu) / sd).astype(np.float32)


def input_norm(data: DistillData, cmn: bool) -> tuple[float, float]:
    """The model's fixed input normalisation: global log-mel mean/std of the training patches,
    measured after the per-patch mean removal when the model does it (cmn)."""
    if not cmn:
        return float(data.info["input_norm"][0]), float(data.info["input_norm"][1])
    p = np.asarray(data.train_patches[:1000], dtype=np.float32)
    return 0.0, float(max((p - p.mean(axis=1, keepdims=True)).std(), 1e-6))


def tflite_embed(model: bytes | str | os.PathLike[str], inputs: np.ndarray,
                 progress: bool = False) -> np.ndarray:
    """Run a TFLite student over inputs one at a time (batch 1, as deployed)."""

    from slimaudio.latency import litert_interpreter

    interp = litert_interpreter(model, threads=1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    res = []
    for i in progress_bar(range(len(inputs)), desc="probe embeddings", disable=not progress, leave=False):
        interp.set_tensor(inp["index"], np.asarray(inputs[i:i + 1], dtype=inp["dtype"]))
        interp.invoke()
        res.append(np.array(interp.get_tensor(out["index"])[0], dtype=np.float32))
    return np.stack(res)


@dataclass
class Replicate:
    """One training of a student: its Keras model, TFLite files and probe answers."""

    seed: int
    model: Any
    files: dict[str, Path]
    losses: list[float]
    results: dict[str, probes.ProbeResult]
    train_s: float
    convert_s: float

    def summary(self) -> dict[str, float]:
        """What metrics.json keeps of it: its seed, accuracies, loss and training time."""
        return {"seed": self.seed, **probes.accuracy_columns(self.results),
                "final_mse": float(np.mean(self.losses[-20:])), "train_seconds": self.train_s}


@dataclass
class StudentResult:
    cfg: Student
    metrics: dict[str, float]
    losses: list[float]
    files: dict[str, Path] = field(default_factory=dict)
    probe_results: dict[str, probes.ProbeResult] = field(default_factory=dict)
    # every replicate, replicate 0 (the one above) first: seed, accuracies, loss, time
    replicates: list[dict[str, float]] = field(default_factory=list)
    replicate_results: list[dict[str, probes.ProbeResult]] = field(default_factory=list)


def replicate_seed(seed: int, replicate: int) -> int:
    """Replicate r trains with base.seed + r: replicate 0 is the single run's, and replicate r of
    every student shares a seed (as the PWL fine-tuning replicates do)."""
    return seed + replicate


def run_student(cfg: Student, data: DistillData, train: DistillStudent, probe: Probe,
                out_dir: str | os.PathLike[str], seed: int, latency_threads: int,
                progress: bool = True, spread: Spread = SIMPLE) -> StudentResult:
    """Train one student `train.replicates` times; convert, probe and measure each, time
    replicate 0 (the one deployed in out_dir; the others' models are not kept). Accuracies
    are the replicates' mean, everything else replicate 0's."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A MobileNetV3 training step is ~2,000 small ops, so running independent ops side by side
    # (inter) beats splitting each op (intra) (docs/measurements.md).
    runtime.set_tf_threads(train.intra_threads, train.inter_threads)
    x_train = data.inputs(cfg.frontend, "train")
    x_probe = data.inputs(cfg.frontend, "probe")
    first = train_replicate(cfg, data, x_train, x_probe, train, probe, out, seed, progress)
    lat = time_formats(first.files, x_probe, train, latency_threads, spread)
    metrics = student_metrics(first.model, cfg, first.files, lat, first.results, first.losses,
                              train, first.train_s, first.convert_s)
    reps, answers = [first.summary()], [first.results]
    for r in range(1, train.replicates):
        with tempfile.TemporaryDirectory(prefix=f"replicate{r}-") as tmp:
            rep = train_replicate(cfg, data, x_train, x_probe, train, probe, Path(tmp),
                                  replicate_seed(seed, r), progress)
        reps.append(rep.summary())
        answers.append(rep.results)
    return StudentResult(cfg, metrics | replicate_metrics(reps), first.losses, first.files,
                         first.results, reps, answers)


def train_replicate(cfg: Student, data: DistillData, x_train: np.ndarray,
                    x_probe: np.ndarray, train: DistillStudent, probe: Probe, out: Path,
                    seed: int, progress: bool) -> Replicate:
    """Train, convert (into `out`) and probe one replicate."""
    t0 = time.perf_counter()
    model, losses = train_student(cfg, data, x_train, train, seed, progress)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    files = convert(model, cfg, x_train, train.calibration, out, seed)
    convert_s = time.perf_counter() - t1
    results = probe_student(out / DEPLOYED, cfg, data, x_probe, probe, seed, progress)
    return Replicate(seed, model, files, losses, results, train_s, convert_s)


def replicate_metrics(reps: list[dict[str, float]]) -> dict[str, float]:
    """The accuracies as the replicates' mean (one replicate: its own, unchanged), their count
    and, with two or more, the sample sd of the mean accuracy over replicates."""
    cols = [k for k in reps[0] if k.startswith("acc_") or k == QUALITY]
    out: dict[str, float] = {k: float(np.mean([r[k] for r in reps])) for k in cols}
    out["replicates"] = len(reps)
    if len(reps) > 1:
        out[QUALITY_SD] = float(np.std([r[QUALITY] for r in reps], ddof=1))
    return out


def train_student(cfg: Student, data: DistillData, x_train: np.ndarray, train: DistillStudent,
                  seed: int, progress: bool) -> tuple[Any, list[float]]:
    """Build the Keras student and fit it to the standardised teacher embeddings (MSE)."""

    from slimaudio.models import mobilenet_students as ms

    y_train = standardised_targets(data, train.l2_targets)
    model = ms.build_student(cfg, data.mel, int(data.info["frames"]), y_train.shape[1],
                             norm=input_norm(data, train.cmn), seed=seed,
                             bn_momentum=train.bn_momentum, cmn=train.cmn)
    bar = progress_bar(total=train.steps, desc=f"train {cfg.label}", disable=not progress, leave=False)

    def on_step(i: int, loss: float) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(mse=f"{loss:.3f}", refresh=False)  # redraws keep their pace

    losses = ms.train_mse(model, batches(x_train, y_train, train.batch_size, seed),
                          train.steps, train.lr, on_step)
    bar.close()
    return model, losses


def convert(model: Any, cfg: Student, x_train: np.ndarray, calibration: int, out: Path,
            seed: int) -> dict[str, Path]:
    """TFLite float32, and for a QAT student int8 too (then the deployed model)."""
    from slimaudio.models import mobilenet_students as ms

    files = {"float32": out / (FLOAT32 if cfg.qat else DEPLOYED)}
    float_model = ms.to_tflite(model)
    files["float32"].write_bytes(float_model)
    if cfg.qat:
        rng = runtime.rng(seed, "distill.qat_calibration")
        calib = x_train[np.sort(rng.choice(len(x_train), size=min(calibration, len(x_train)),
                                           replace=False))]
        files["int8"] = out / DEPLOYED
        files["int8"].write_bytes(ms.to_tflite(model, int8=True, representative=calib,
                                               float_model=float_model))
    return files


def probe_student(deployed: Path, cfg: Student, data: DistillData, x_probe: np.ndarray,
                  probe: Probe, seed: int, progress: bool) -> dict[str, probes.ProbeResult]:
    """The probe suite on the deployed TFLite model's embeddings."""
    emb = tflite_embed(deployed, x_probe, progress)
    if not np.isfinite(emb).all():
        raise FloatingPointError(f"student {cfg.label}: TFLite embeddings contain NaN/inf")
    utt = probes.utterance_embeddings(emb, data.probe_utt, len(data.probe_utts))
    return probes.evaluate(utt, data.probe_utts, data.info["tasks"], probe.c, seed)


def time_formats(files: dict[str, Path], x_probe: np.ndarray, train: DistillStudent,
                 threads: int, spread: Spread = SIMPLE) -> dict[str, Any]:
    """Batch-1 latency of every converted model, timed interleaved."""
    from slimaudio import latency

    factories = {fmt: latency.LiteRTFactory(str(path), (x_probe[:1],), threads)
                 for fmt, path in files.items()}
    timing = latency.Timing.of(train.latency.warmup, train.latency.repeats, spread)
    return latency.measure_factories(factories, timing, threads, progress=False)


def student_metrics(model: Any, cfg: Student, files: dict[str, Path], lat: dict[str, Any],
                    results: dict[str, probes.ProbeResult], losses: list[float],
                    train: DistillStudent, train_s: float, convert_s: float) -> dict[str, float]:
    from slimaudio.metrics import file_size
    from slimaudio.models import mobilenet_students as ms

    fmt = "int8" if cfg.qat else "float32"
    metrics: dict[str, float] = {
        **file_size(files[fmt]), **lat[fmt].as_dict(), **probes.accuracy_columns(results),
        "params": ms.count_params(model), "final_mse": float(np.mean(losses[-20:])),
        "train_steps": train.steps, "batch_size": train.batch_size,
        "train_seconds": train_s, "convert_seconds": convert_s,
    }
    if cfg.qat:
        metrics.update({"fp32_size_bytes": file_size(files["float32"])["size_bytes"],
                        "fp32_latency_ms": lat["float32"].median_ms})
    return metrics


def record(res: StudentResult, sid: str, role: str, out_dir: str | os.PathLike[str],
           run: Any) -> None:
    """Write a trained student's metrics.json (with every replicate's summary) and each
    replicate's probe answers (predictions.csv, predictions_r1.csv, ..., for the report's
    intervals) into its (staging) folder and log it to its MLflow run: the metrics, the loss
    curve of replicate 0 (every 10th step), each replicate's mean accuracy and its role tags."""
    from slimaudio import atomic

    atomic.write_json(Path(out_dir) / "metrics.json", {
        "student": sid, "label": res.cfg.label, "hyperparameters": asdict(res.cfg),
        "metrics": res.metrics, "per_replicate": res.replicates})
    for r, results in enumerate(res.replicate_results or [res.probe_results]):
        atomic.write_csv(Path(out_dir) / predictions_name(r), probes.predictions_frame(results))
    run.log_metrics(res.metrics)
    for i, loss in enumerate(res.losses):
        if i % 10 == 0 or i == len(res.losses) - 1:
            run.log_metric_step("mse", loss, i + 1)
    for r, rep in enumerate(res.replicates):
        run.log_metric_step("replicate_mean_accuracy", rep[QUALITY], r)
    run.set_tags({"role": role, "student": sid, "format": "int8" if res.cfg.qat else "float32"})
