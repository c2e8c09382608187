"""Measurements: every variant's scores on the test split, batch-1 latency interleaved
(slimaudio.latency), and the raw int8-versus-float32 throughput of one convolution."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import tflite as tfl
from slimaudio.frame_classifier.evaluate import predict_keras
from slimaudio.latency import (
    Factory,
    Latency,
    Runner,
    Spread,
    Timing,
    measure_factories,
    measure_interleaved,
)
from slimaudio.progress import progress_bar
from slimaudio.schemas import tflite as schema
from slimaudio.studies.tflite_quant.naive_input import naive_runner, predict_unquantized_input
from slimaudio.studies.tflite_quant.variants import NAIVE, ORIGINAL, Variant

BUILTIN = "@builtin"  # suffix of a variant's runner on the built-in kernels (XNNPACK off)


def predict_all(model: Any, variants: list[Variant], x: np.ndarray,
                cfg: schema.TfliteQuant) -> dict[str, np.ndarray]:
    """Class scores of every variant on the whole test split."""

    scores: dict[str, np.ndarray] = {}
    threads, bs = cfg.eval_threads, cfg.eval_batch_size
    for v in progress_bar(variants, desc="evaluate", unit="variant", leave=False):
        if v.name == ORIGINAL:
            scores[v.name] = predict_keras(model, x, bs)
        elif v.name == NAIVE:
            scores[v.name] = predict_unquantized_input(v.path, x, bs, threads)
        else:
            scores[v.name] = tfl.TFLiteClassifier(v.path, threads).predict(x, bs)
    return scores


def original_runner(model_path: str, x1: np.ndarray, threads: int) -> Runner:
    """The Keras model in TensorFlow, traced once with tf.function (no Keras predict overhead);
    loaded from its file, so that a timing worker builds it."""
    import tensorflow as tf

    from slimaudio import runtime
    from slimaudio.frame_classifier.train import load_model

    runtime.set_tf_threads(threads)
    model = load_model(Path(model_path))
    fn = tf.function(lambda t: model(t, training=False))
    t = tf.constant(x1)
    fn(t)
    return lambda: fn(t).numpy()


def tflite_runner(path: str, x1: np.ndarray, threads: int, xnnpack: bool = True) -> Runner:
    return tfl.TFLiteClassifier(path, threads, xnnpack=xnnpack).latency_runner(x1)


def latency_factories(model_path: Path, variants: list[Variant], x1: np.ndarray, threads: int,
                      builtin_kernels: bool) -> dict[str, Factory]:
    """A batch-1 runner's factory per variant; with builtin_kernels also `<variant>@builtin`
    for the paper's TFLite variants."""
    factories: dict[str, Factory] = {}
    for v in variants:
        if v.name == ORIGINAL:
            factories[v.name] = partial(original_runner, str(model_path), x1, threads)
        elif v.name == NAIVE:
            factories[v.name] = partial(naive_runner, v.path, x1, threads)
        else:
            factories[v.name] = partial(tflite_runner, str(v.path), x1, threads)
    if builtin_kernels:
        for v in variants:
            if v.name in tfl.VARIANTS:
                factories[f"{v.name}{BUILTIN}"] = partial(tflite_runner, str(v.path), x1,
                                                          threads, False)
    return factories


def time_all(model_path: Path, variants: list[Variant], x1: np.ndarray, cfg: schema.Latency,
             threads: int, seed: int, spread: Spread) -> dict[str, Latency]:
    """Batch 1, `threads` threads, all variants interleaved (slimaudio.latency)."""
    factories = latency_factories(model_path, variants, x1, threads, cfg.builtin_kernels)
    return measure_factories(factories, Timing.of(cfg.warmup, cfg.repeats, spread), threads,
                             seed)


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
