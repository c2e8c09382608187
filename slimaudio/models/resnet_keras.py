"""A parametrised ResNet50-style bottleneck network in Keras 3 for log-mel sound frames.

The paper profile is the full ResNet50 (stage depths [3, 4, 6, 3], base width 64, expansion 4:
stem 7x7/2 conv + 3x3/2 max-pool, four stages of 1x1-3x3-1x1 bottleneck blocks, global
average pooling, softmax). The default profile keeps the topology and shrinks depth and width.

Input is the raw log-mel frame, shape [n_mels, time, 1]. Per-mel-band standardisation lives
INSIDE the model as a frozen Normalization layer (train-split mean/variance). That matters for
the TFLite study: a full-integer model's input tensor then describes raw log-mel values, so the
deployed app quantizes exactly the features it computes with the input tensor's scale and zero
point; nothing is applied outside the model that a deployment could forget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

    from slimaudio.schemas.tflite import Architecture


def band_stats(frames: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel-band mean and variance over frames and time, of [n, n_mels, time] frames.

    Accumulated in float64 chunks so a float16 memory-mapped array is never fully copied.
    """
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"expected non-empty [n, n_mels, time] frames, got shape {frames.shape}")
    n_mels = frames.shape[1]
    s = np.zeros(n_mels)
    s2 = np.zeros(n_mels)
    count = 0
    for i in range(0, len(frames), chunk):
        block = np.asarray(frames[i:i + chunk], dtype=np.float64)
        s += block.sum(axis=(0, 2))
        s2 += np.square(block).sum(axis=(0, 2))
        count += block.shape[0] * block.shape[2]
    mean = s / count
    var = np.maximum(s2 / count - mean**2, 1e-6)
    return mean.astype(np.float32), var.astype(np.float32)


def build_resnet(input_shape: Sequence[int], n_classes: int, cfg: Architecture,
                 mean: np.ndarray | None = None, variance: np.ndarray | None = None,
                 name: str = "resnet") -> keras.Model:
    """Build the network. input_shape is (n_mels, time, 1); mean/variance are per mel band."""
    import keras
    from keras import layers

    if not cfg.depths or any(d < 1 for d in cfg.depths):
        raise ValueError(f"depths must be positive integers, got {cfg.depths}")
    if cfg.width < 1 or cfg.expansion < 1:
        raise ValueError("width and expansion must be at least 1")
    n_mels = int(input_shape[0])
    if len(input_shape) != 3 or input_shape[2] != 1:
        raise ValueError(f"input_shape must be (n_mels, time, 1), got {tuple(input_shape)}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")
    mean = np.zeros(n_mels, np.float32) if mean is None else np.asarray(mean, np.float32)
    variance = np.ones(n_mels, np.float32) if variance is None else np.asarray(variance, np.float32)
    if mean.shape != (n_mels,) or variance.shape != (n_mels,):
        raise ValueError(f"mean/variance must have shape ({n_mels},)")

    def conv(x, filters: int, kernel: int, stride: int = 1, name: str = ""):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                             kernel_initializer="he_normal", name=name)(x)

    def bn(x, name: str, zero: bool = False):
        # Zero-init the last BN of each residual branch: blocks start as identities.
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name,
                                         gamma_initializer="zeros" if zero else "ones")(x)

    def bottleneck(x, width: int, stride: int, project: bool, name: str):
        out_ch = width * cfg.expansion
        shortcut = x
        if project:
            shortcut = bn(conv(x, out_ch, 1, stride, f"{name}_proj"), f"{name}_proj_bn")
        y = layers.ReLU(name=f"{name}_relu1")(bn(conv(x, width, 1, 1, f"{name}_c1"), f"{name}_bn1"))
        y = layers.ReLU(name=f"{name}_relu2")(
            bn(conv(y, width, 3, stride, f"{name}_c2"), f"{name}_bn2"))
        y = bn(conv(y, out_ch, 1, 1, f"{name}_c3"), f"{name}_bn3", zero=True)
        return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))

    inp = keras.Input(shape=tuple(int(s) for s in input_shape), name="logmel")
    x = layers.Normalization(axis=1, mean=mean, variance=variance, name="band_norm")(inp)
    x = layers.ReLU(name="stem_relu")(bn(conv(x, cfg.width, 7, 2, "stem_conv"), "stem_bn"))
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    in_ch = cfg.width
    for s, depth in enumerate(cfg.depths):
        width = cfg.width * 2**s
        for b in range(depth):
            stride = 2 if (b == 0 and s > 0) else 1
            project = b == 0 and (stride != 1 or in_ch != width * cfg.expansion)
            x = bottleneck(x, width, stride, project, f"s{s + 1}b{b + 1}")
            in_ch = width * cfg.expansion
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)
