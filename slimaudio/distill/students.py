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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.distill import probes
from slimaudio.distill.teacher import DistillData, l2_normalise, target_stats
from slimaudio.models.mobilenet_students import StudentConfig

DEPLOYED = "model.tflite"          # what the study measures: int8 for QAT students, else float32
FLOAT32 = "model_fp32.tflite"      # QAT students' float32 conversion, for comparison


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless shuffled mini-batches (a new permutation per epoch)."""
    rng = np.random.default_rng([seed, 6, 3])
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


def set_tf_threads(intra: int, inter: int = 1) -> None:
    """TensorFlow's thread pools. A MobileNetV3 training step is ~2,000 small ops, so running
    independent ops side by side (inter) beats splitting each op (intra): 1 x 2 took 26 ms a
    step of 16 where 2 x 1 took 34 ms on the 2-core machine (measured)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # already initialised in this process
        pass


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


def run_student(cfg: StudentConfig, data: DistillData, train: Mapping[str, Any],
                probe: Mapping[str, Any], out_dir: str | os.PathLike[str], seed: int,
                latency_threads: int, progress: bool = True) -> StudentResult:
    """Train one student, convert it, measure size/latency, probe its TFLite embeddings."""
    from tqdm import tqdm

    from slimaudio import latency
    from slimaudio.metrics import file_size
    from slimaudio.models import mobilenet_students as ms

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_tf_threads(int(train["intra_threads"]), int(train["inter_threads"]))
    t0 = time.perf_counter()
    x_train = data.inputs(cfg.frontend, "train")
    y_train = standardised_targets(data, bool(train["l2_targets"]))
    model = ms.build_student(cfg, data.mel, int(data.info["frames"]), y_train.shape[1],
                             norm=input_norm(data, bool(train["cmn"])), seed=seed,
                             bn_momentum=float(train["bn_momentum"]), cmn=bool(train["cmn"]))
    steps = int(train["steps"])
    bar = tqdm(total=steps, desc=f"train {cfg.label}", disable=not progress, leave=False)

    def on_step(i: int, loss: float) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(mse=f"{loss:.3f}")

    losses = ms.train_mse(model, batches(x_train, y_train, int(train["batch_size"]), seed),
                          steps, float(train["lr"]), on_step)
    bar.close()
    train_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    files = {"float32": out / (FLOAT32 if cfg.qat else DEPLOYED)}
    float_model = ms.to_tflite(model)
    files["float32"].write_bytes(float_model)
    if cfg.qat:
        rng = np.random.default_rng([seed, 6, 4])
        calib = x_train[np.sort(rng.choice(len(x_train), size=min(int(train["calibration"]),
                                                                 len(x_train)), replace=False))]
        files["int8"] = out / DEPLOYED
        files["int8"].write_bytes(ms.to_tflite(model, int8=True, representative=calib,
                                               float_model=float_model))
    convert_s = time.perf_counter() - t1

    deployed = out / DEPLOYED
    x_probe = data.inputs(cfg.frontend, "probe")
    emb = tflite_embed(deployed, x_probe, progress)
    if not np.isfinite(emb).all():
        raise FloatingPointError(f"student {cfg.label}: TFLite embeddings contain NaN/inf")
    utt = probes.utterance_embeddings(emb, data.probe_utt, len(data.probe_utts))
    results = probes.evaluate(utt, data.probe_utts, data.info["tasks"], float(probe["c"]), seed)

    runners = {fmt: latency.litert_runner(path, [x_probe[:1]], threads=latency_threads)
               for fmt, path in files.items()}
    lat = latency.measure_interleaved(runners, warmup=int(train["latency"]["warmup"]),
                                      repeats=int(train["latency"]["repeats"]),
                                      threads=latency_threads)
    fmt = "int8" if cfg.qat else "float32"
    metrics: dict[str, float] = {
        **file_size(deployed), **lat[fmt].as_dict(), **probes.accuracy_columns(results),
        "params": ms.count_params(model), "final_mse": float(np.mean(losses[-20:])),
        "train_steps": steps, "batch_size": int(train["batch_size"]),
        "train_seconds": train_s, "convert_seconds": convert_s,
    }
    if cfg.qat:
        metrics.update({"fp32_size_bytes": file_size(files["float32"])["size_bytes"],
                        "fp32_latency_ms": lat["float32"].median_ms})
    return StudentResult(cfg, metrics, losses, files, results)


def record(res: StudentResult, sid: str, role: str, out_dir: str | os.PathLike[str],
           run: Any) -> None:
    """Write a trained student's metrics.json into its (staging) folder and log it to its
    MLflow run: the metrics, the loss curve (every 10th step) and its role tags."""
    from slimaudio import atomic

    atomic.write_json(Path(out_dir) / "metrics.json", {
        "student": sid, "label": res.cfg.label, "hyperparameters": res.cfg.as_dict(),
        "metrics": res.metrics})
    run.log_metrics(res.metrics)
    for i, loss in enumerate(res.losses):
        if i % 10 == 0 or i == len(res.losses) - 1:
            run.log_metric_step("mse", loss, i + 1)
    run.set_tags({"role": role, "student": sid, "format": "int8" if res.cfg.qat else "float32"})
