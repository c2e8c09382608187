"""Train, convert and measure one student (one DVC stage, one MLflow run).

Training: MSE between the student's output and the teacher's standardised embedding of the
same patch (FRILL), Adam, a fixed number of steps of random mini-batches.
Deployment: TFLite float32; QAT students also int8 (weights and activations, float I/O), and
their int8 model is the one measured and probed (float32 kept beside it for comparison).
Quality: the probe suite on the TFLite model's embeddings (what a phone would run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.models.mobilenet_students import StudentConfig
from slimaudio.speaker.scoring import l2_normalise
from slimaudio.studies.distill import probes
from slimaudio.studies.distill.config import ProbeConfig, TrainConfig
from slimaudio.studies.distill.data import PREDICTIONS, DistillData, target_stats

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
    from tqdm import tqdm

    from slimaudio.latency import litert_interpreter

    interp = litert_interpreter(model, threads=1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    res = []
    for i in tqdm(range(len(inputs)), desc="probe embeddings", disable=not progress, leave=False):
        interp.set_tensor(inp["index"], np.asarray(inputs[i:i + 1], dtype=inp["dtype"]))
        interp.invoke()
        res.append(np.array(interp.get_tensor(out["index"])[0], dtype=np.float32))
    return np.stack(res)


@dataclass
class StudentResult:
    cfg: StudentConfig
    metrics: dict[str, float]
    losses: list[float]
    files: dict[str, Path] = field(default_factory=dict)
    probe_results: dict[str, probes.ProbeResult] = field(default_factory=dict)


def run_student(cfg: StudentConfig, data: DistillData, train: TrainConfig, probe: ProbeConfig,
                out_dir: str | os.PathLike[str], seed: int, latency_threads: int,
                progress: bool = True) -> StudentResult:
    """Train one student, convert it, measure size/latency, probe its TFLite embeddings."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A MobileNetV3 training step is ~2,000 small ops, so running independent ops side by side
    # (inter) beats splitting each op (intra): 1 x 2 took 26 ms a step of 16 where 2 x 1 took
    # 34 ms on the 2-core machine (measured).
    runtime.set_tf_threads(train.intra_threads, train.inter_threads)
    t0 = time.perf_counter()
    x_train = data.inputs(cfg.frontend, "train")
    model, losses = train_student(cfg, data, x_train, train, seed, progress)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    files = convert(model, cfg, x_train, train.calibration, out, seed)
    convert_s = time.perf_counter() - t1

    deployed = out / DEPLOYED
    x_probe = data.inputs(cfg.frontend, "probe")
    results = probe_student(deployed, cfg, data, x_probe, probe, seed, progress)
    lat = time_formats(files, x_probe, train, latency_threads)
    return StudentResult(cfg, student_metrics(model, cfg, files, lat, results, losses, train,
                                              train_s, convert_s), losses, files, results)


def train_student(cfg: StudentConfig, data: DistillData, x_train: np.ndarray, train: TrainConfig,
                  seed: int, progress: bool) -> tuple[Any, list[float]]:
    """Build the Keras student and fit it to the standardised teacher embeddings (MSE)."""
    from tqdm import tqdm

    from slimaudio.models import mobilenet_students as ms

    y_train = standardised_targets(data, train.l2_targets)
    model = ms.build_student(cfg, data.mel, int(data.info["frames"]), y_train.shape[1],
                             norm=input_norm(data, train.cmn), seed=seed,
                             bn_momentum=train.bn_momentum, cmn=train.cmn)
    bar = tqdm(total=train.steps, desc=f"train {cfg.label}", disable=not progress, leave=False)

    def on_step(i: int, loss: float) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(mse=f"{loss:.3f}")

    losses = ms.train_mse(model, batches(x_train, y_train, train.batch_size, seed),
                          train.steps, train.lr, on_step)
    bar.close()
    return model, losses


def convert(model: Any, cfg: StudentConfig, x_train: np.ndarray, calibration: int, out: Path,
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


def probe_student(deployed: Path, cfg: StudentConfig, data: DistillData, x_probe: np.ndarray,
                  probe: ProbeConfig, seed: int, progress: bool) -> dict[str, probes.ProbeResult]:
    """The probe suite on the deployed TFLite model's embeddings."""
    emb = tflite_embed(deployed, x_probe, progress)
    if not np.isfinite(emb).all():
        raise FloatingPointError(f"student {cfg.label}: TFLite embeddings contain NaN/inf")
    utt = probes.utterance_embeddings(emb, data.probe_utt, len(data.probe_utts))
    return probes.evaluate(utt, data.probe_utts, data.info["tasks"], probe.c, seed)


def time_formats(files: dict[str, Path], x_probe: np.ndarray, train: TrainConfig,
                 threads: int) -> dict[str, Any]:
    """Batch-1 latency of every converted model, timed interleaved."""
    from slimaudio import latency

    runners = {fmt: latency.litert_runner(path, [x_probe[:1]], threads=threads)
               for fmt, path in files.items()}
    return latency.measure_interleaved(runners, warmup=train.latency.warmup,
                                       repeats=train.latency.repeats, threads=threads)


def student_metrics(model: Any, cfg: StudentConfig, files: dict[str, Path], lat: dict[str, Any],
                    results: dict[str, probes.ProbeResult], losses: list[float],
                    train: TrainConfig, train_s: float, convert_s: float) -> dict[str, float]:
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
    """Write a trained student's metrics.json and probe answers (predictions.csv, for the
    report's intervals) into its (staging) folder and log it to its MLflow run: the metrics,
    the loss curve (every 10th step) and its role tags."""
    from slimaudio import atomic

    atomic.write_json(Path(out_dir) / "metrics.json", {
        "student": sid, "label": res.cfg.label, "hyperparameters": res.cfg.as_dict(),
        "metrics": res.metrics})
    atomic.write_csv(Path(out_dir) / PREDICTIONS, probes.predictions_frame(res.probe_results))
    run.log_metrics(res.metrics)
    for i, loss in enumerate(res.losses):
        if i % 10 == 0 or i == len(res.losses) - 1:
            run.log_metric_step("mse", loss, i + 1)
    run.set_tags({"role": role, "student": sid, "format": "int8" if res.cfg.qat else "float32"})
