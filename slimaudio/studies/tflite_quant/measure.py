"""Measurements: every variant's scores on the test split, batch-1 latency interleaved in one
process, and the raw int8-versus-float32 throughput of one convolution."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimaudio.compress import tflite as tfl
from slimaudio.frame_classifier.evaluate import predict_keras
from slimaudio.latency import Latency, Runner, measure_interleaved
from slimaudio.studies.tflite_quant.config import Config, LatencyConfig
from slimaudio.studies.tflite_quant.naive_input import naive_runner, predict_unquantized_input
from slimaudio.studies.tflite_quant.variants import NAIVE, ORIGINAL, Variant

BUILTIN = "@builtin"  # suffix of a variant's runner on the built-in kernels (XNNPACK off)


def predict_all(model: Any, variants: list[Variant], x: np.ndarray,
                cfg: Config) -> dict[str, np.ndarray]:
    """Class scores of every variant on the whole test split."""
    scores: dict[str, np.ndarray] = {}
    threads, bs = cfg.eval_threads, cfg.eval_batch_size
    for v in tqdm(variants, desc="evaluate", unit="variant", leave=False):
        if v.name == ORIGINAL:
            scores[v.name] = predict_keras(model, x, bs)
        elif v.name == NAIVE:
            scores[v.name] = predict_unquantized_input(v.path, x, bs, threads)
        else:
            scores[v.name] = tfl.TFLiteClassifier(v.path, threads).predict(x, bs)
    return scores


def original_runner(model: Any, x1: np.ndarray) -> Runner:
    """The Keras model in TensorFlow, traced once with tf.function (no Keras predict overhead)."""
    import tensorflow as tf

    fn = tf.function(lambda t: model(t, training=False))
    t = tf.constant(x1)
    fn(t)
    return lambda: fn(t).numpy()


def latency_runners(model: Any, variants: list[Variant], x1: np.ndarray, threads: int,
                    builtin_kernels: bool) -> dict[str, Runner]:
    """A batch-1 runner per variant; with builtin_kernels also `<variant>@builtin` for the
    paper's TFLite variants."""
    runners: dict[str, Runner] = {}
    for v in variants:
        if v.name == ORIGINAL:
            runners[v.name] = original_runner(model, x1)
        elif v.name == NAIVE:
            runners[v.name] = naive_runner(v.path, x1, threads)
        else:
            runners[v.name] = tfl.TFLiteClassifier(v.path, threads).latency_runner(x1)
    if builtin_kernels:
        for v in variants:
            if v.name in tfl.VARIANTS:
                runners[f"{v.name}{BUILTIN}"] = tfl.TFLiteClassifier(
                    v.path, threads, xnnpack=False).latency_runner(x1)
    return runners


def time_all(model: Any, variants: list[Variant], x1: np.ndarray, cfg: LatencyConfig,
             threads: int, seed: int) -> dict[str, Latency]:
    """Batch 1, `threads` threads, all variants interleaved in this process."""
    runners = latency_runners(model, variants, x1, threads, cfg.builtin_kernels)
    return measure_interleaved(runners, warmup=cfg.warmup, repeats=cfg.repeats, threads=threads,
                               seed=seed)


def kernel_throughput(threads: int, seed: int, hw: int = 32, ch: int = 128,
                      warmup: int = 5, repeats: int = 40) -> dict[str, float]:
    """GMAC/s of one 3x3 convolution (hw x hw x ch -> ch) as float32 and as full-int8, with
    XNNPACK and on the built-in kernels: the CPU's raw int8-versus-float32 kernel speed,
    free of per-op overheads, to tell kernel throughput from graph effects."""
    import keras

    rng = np.random.default_rng(seed)
    inp = keras.Input((hw, hw, ch))
    conv = keras.Model(inp, keras.layers.Conv2D(ch, 3, padding="same")(inp))
    x = rng.standard_normal((8, hw, hw, ch), dtype=np.float32)
    runners: dict[str, Runner] = {}
    for v, key in (("basic", "float32"), ("full_int", "int8")):
        blob = tfl.convert_keras(conv, v, x)
        runners[f"{key}_xnnpack"] = tfl.TFLiteClassifier(blob, threads).latency_runner(x[:1])
        runners[f"{key}_builtin"] = tfl.TFLiteClassifier(blob, threads, xnnpack=False).latency_runner(x[:1])
    lat = measure_interleaved(runners, warmup=warmup, repeats=repeats, threads=threads, seed=seed)
    macs = hw * hw * 9 * ch * ch
    return {f"conv_gmacs_{k}": macs / (v.median_ms * 1e-3) / 1e9 for k, v in lat.items()}
