"""Train the Keras ResNet sound classifier on the prepared log-mel frames.

Class-weighted sparse cross-entropy (the saved class_weights.json, as in the paper), AdamW
with a cosine learning-rate decay, validation on the val split when it is not empty.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimaudio.datasets.sounds import SoundFrames
from slimaudio.errors import ParamError
from slimaudio.models.resnet_keras import band_stats, build_resnet
from slimaudio.progress import progress_bar
from slimaudio.schemas.tflite import Augment, Resnet

SAVE_FORMATS = {"keras": "model.keras", "h5": "model.h5"}


@dataclass
class TrainResult:
    model: Any               # keras.Model
    history: pd.DataFrame    # one row per epoch: epoch, loss, accuracy[, val_loss, val_accuracy], lr
    seconds: float
    n_params: int


def _progress_callback(total: int, desc: str) -> Any:
    """A tqdm bar over all training batches (Keras' own progress bar is off)."""
    import keras

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = progress_bar(total=total, desc=desc, unit="batch", leave=False)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", refresh=False)

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.close()

    return Bar()


def _augmenter(aug: Augment) -> Any:
    """Batched training-time augmentation of raw log-mel frames [b, n_mels, time, 1] (tf ops).

    Random circular time shift, a random gain (a constant in the natural-log power domain) and
    SpecAugment-style time/frequency masks filled with each frame's mean. Lives in the input
    pipeline, not in the model, so the exported graph holds inference ops only.
    """
    import tensorflow as tf

    gain = aug.gain_db * math.log(10.0) / 10.0  # dB of power -> natural log units

    def masks(x: Any, axis: int, count: int, max_width: int) -> Any:
        b, size = tf.shape(x)[0], tf.shape(x)[axis]
        pos = tf.range(size)[None, :]
        fill = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        for _ in range(count):
            width = tf.random.uniform([b, 1], 0, max_width + 1, dtype=tf.int32)
            room = tf.cast(tf.maximum(size - width, 1), tf.float32)
            start = tf.cast(tf.random.uniform([b, 1]) * room, tf.int32)
            hit = (pos >= start) & (pos < start + width)                  # [b, size]
            hit = hit[:, :, None, None] if axis == 1 else hit[:, None, :, None]
            x = tf.where(hit, fill, x)
        return x

    def apply(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        b, t = tf.shape(x)[0], tf.shape(x)[2]
        if aug.time_shift:
            shift = tf.random.uniform([b, 1], 0, t, dtype=tf.int32)
            idx = (tf.range(t)[None, :] + shift) % t
            x = tf.gather(x, idx, axis=2, batch_dims=1)
        if gain > 0:
            x = x + tf.random.uniform([b, 1, 1, 1], -gain, gain)
        x = masks(x, 2, aug.time_masks, aug.time_mask_max)
        x = masks(x, 1, aug.freq_masks, aug.freq_mask_max)
        return x, y, w

    return apply


def _train_dataset(x: np.ndarray, y: np.ndarray, w: np.ndarray, batch: int,
                   aug: Augment, seed: int) -> Any:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch)
    return ds.map(_augmenter(aug), num_parallel_calls=1).prefetch(2)


def train_resnet(data: SoundFrames, cfg: Resnet, seed: int) -> TrainResult:
    """Build and fit the ResNet of params section `resnet` on the train split."""
    import keras

    keras.utils.set_random_seed(int(seed) % 2**31)
    train = data.split("train")
    val = data.split("val") if len(data.indices("val")) else None
    mean, var = band_stats(data.frames[data.indices("train")])
    model = build_resnet(data.input_shape, data.n_classes, cfg, mean, var)

    batch = cfg.batch_size
    epochs = cfg.epochs
    per_epoch = max(1, math.ceil(len(train) / batch))
    steps = per_epoch * epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule,
                                         weight_decay=cfg.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False,  # XLA on CPU: a long compile and slower steps (docs/measurements.md)
    )
    # The paper's class weights, applied as per-sample loss weights.
    cw = data.weight_vector() if cfg.class_weights else {i: 1.0 for i in range(data.n_classes)}
    w = np.asarray([cw[int(c)] for c in train.y], dtype=np.float32)
    ds = _train_dataset(train.x, train.y, w, batch, cfg.augment, int(seed) % 2**31)
    t0 = time.perf_counter()
    hist = model.fit(
        ds, epochs=epochs, verbose=0, shuffle=False,  # the dataset shuffles itself
        validation_data=(val.x, val.y) if val is not None else None,
        callbacks=[_progress_callback(steps, "train resnet")],
    )
    seconds = time.perf_counter() - t0
    history = pd.DataFrame(hist.history)
    order = [c for c in ("loss", "accuracy", "val_loss", "val_accuracy") if c in history]
    history = history[order + [c for c in history if c not in order]]
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    history["lr"] = [float(schedule((e + 1) * per_epoch - 1)) for e in range(len(history))]
    return TrainResult(model=model, history=history, seconds=seconds,
                       n_params=int(model.count_params()))


def save_model(model: Any, out_dir: Path, save_format: str) -> Path:
    """Save as the paper did (HDF5) or in the native .keras format; returns the file path."""
    if save_format not in SAVE_FORMATS:
        raise ParamError(f"params: resnet.save_format = {save_format!r} is not one of "
                         f"{', '.join(SAVE_FORMATS)}")
    path = Path(out_dir) / SAVE_FORMATS[save_format]
    model.save(path)
    return path


def find_model(model_dir: str | Path) -> Path:
    """The saved model file inside models/resnet/ (either format)."""
    from slimaudio.errors import DataError

    model_dir = Path(model_dir)
    for name in SAVE_FORMATS.values():
        if (model_dir / name).exists():
            return model_dir / name
    raise DataError(f"{model_dir}: no model.keras or model.h5 (run the train_resnet stage first)")


def load_model(path: str | Path) -> Any:
    import keras

    return keras.models.load_model(path, compile=False)
