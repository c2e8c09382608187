"""MobileNetV3 students for FRILL-style distillation (Keras 3, TensorFlow backend).

A student maps one 0.96 s patch to the teacher's embedding space:

  [frontend]   LogMelLayer: waveform [B, samples] -> log-mel [B, 96, 64]  (frontend="inside")
  [cmn]        subtract the patch's mean over time per band (cmn=True; ECAPA does the same)
  normalise    (x - mean) / std with the training patches' global statistics (fixed constants)
  backbone     keras.applications MobileNetV3Small/Large(alpha=width, include_top=False,
               weights=None) on [96, 64, 1]; its last 1x1 conv (576/960 x width channels)
  pool         global average pooling ("gap") or flatten of the 3 x 2 map ("flatten")
  bottleneck   Dense(bottleneck), linear: the compression layer
  output       Dense(out_dim), linear: the teacher-embedding estimate (trained with MSE)

Quantization-aware training (qat=True): every Conv2D, DepthwiseConv2D and Dense of the
backbone and head fake-quantizes, in training only, its weights (symmetric int8 per output
channel) and its input activations (asymmetric 8-bit per tensor, range of the current batch),
with straight-through gradients. tensorflow_model_optimization does not support Keras 3, so
this is our own compact version; it does not fold batch norm into the weights before
quantizing, and the int8 TFLite model takes its activation ranges from calibration on training
patches rather than from training. The log-mel frontend is never quantized: int8 cannot hold
a power spectrum's dynamic range, so in an int8 model it stays float (see `to_tflite`).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from slimaudio.features import MelConfig, hann, mel_filterbank
from slimaudio.schemas.distill import Student

FRONTEND_NAME = "logmel"   # the layer (and TFLite node-name prefix) of the in-model frontend


def patch_samples(mel: MelConfig, frames: int) -> int:
    """Waveform samples that give exactly `frames` STFT frames (no centring, see features)."""
    return mel.win_length + (frames - 1) * mel.hop_length


# ------------------------------------------------------------------------------ fake quant


def _ops() -> Any:
    from keras import ops

    return ops


def fake_quant_weights(w: Any, channel_axis: int = -1, bits: int = 8) -> Any:
    """Symmetric per-channel fake quantization with a straight-through gradient."""
    ops = _ops()
    axes = [a for a in range(len(w.shape)) if a != channel_axis % len(w.shape)]
    qmax = 2.0 ** (bits - 1) - 1.0
    scale = ops.maximum(ops.max(ops.abs(w), axis=axes, keepdims=True), 1e-8) / qmax
    q = ops.clip(ops.round(w / scale), -qmax, qmax) * scale
    return w + ops.stop_gradient(q - w)


def fake_quant_activations(x: Any, bits: int = 8) -> Any:
    """Asymmetric per-tensor fake quantization over the batch's range (range includes 0)."""
    ops = _ops()
    lo = ops.minimum(ops.min(x), 0.0)
    hi = ops.maximum(ops.max(x), 0.0)
    levels = 2.0 ** bits - 1.0
    scale = ops.maximum(hi - lo, 1e-8) / levels
    zero = ops.round(-lo / scale)
    q = (ops.clip(ops.round(x / scale) + zero, 0.0, levels) - zero) * scale
    return x + ops.stop_gradient(q - x)


def _qat_layer_classes() -> dict[str, type]:
    import keras

    class QConv2D(keras.layers.Conv2D):
        """Conv2D that fake-quantizes its input and kernel while training."""

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if not training:
                return super().call(inputs)
            ops = _ops()
            y = self.convolution_op(fake_quant_activations(inputs),
                                    fake_quant_weights(self.kernel, -1))
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

    class QDepthwiseConv2D(keras.layers.DepthwiseConv2D):
        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if not training:
                return super().call(inputs)
            ops = _ops()
            k = self.kernel  # [kh, kw, in, multiplier]: one output channel per (in, multiplier)
            kq = ops.reshape(fake_quant_weights(ops.reshape(k, (*k.shape[:2], -1)), -1), k.shape)
            y = ops.depthwise_conv(fake_quant_activations(inputs), kq, strides=self.strides,
                                   padding=self.padding, dilation_rate=self.dilation_rate,
                                   data_format=self.data_format)
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

    class QDense(keras.layers.Dense):
        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if not training:
                return super().call(inputs)
            ops = _ops()
            y = ops.matmul(fake_quant_activations(inputs), fake_quant_weights(self.kernel, -1))
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

    return {"Conv2D": QConv2D, "DepthwiseConv2D": QDepthwiseConv2D, "Dense": QDense}


def with_fake_quant(model: Any) -> Any:
    """A fresh copy of `model` whose Conv2D/DepthwiseConv2D/Dense layers fake-quantize."""
    import keras

    classes = _qat_layer_classes()

    def clone(layer: Any) -> Any:
        cls = classes.get(type(layer).__name__)
        if cls is None or layer.name.startswith(FRONTEND_NAME):
            return layer.__class__.from_config(layer.get_config())
        return cls.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


# ------------------------------------------------------------------------------ frontend


def _logmel_layer_class() -> type:
    import keras
    import tensorflow as tf

    class LogMelLayer(keras.layers.Layer):
        """slimaudio.features.log_mel in TensorFlow: waveform [B, samples] -> [B, frames, mels].

        tf.signal.stft (no centring, periodic Hann, zero-padded n_fft DFT) is exactly the
        features' definition; it converts to TFLite builtins (STRIDED_SLICE/RFFT2D/...).
        """

        def __init__(self, mel: dict[str, Any], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mel = dict(mel)
            cfg = MelConfig(**self.mel)
            self._cfg = cfg
            self._fb = mel_filterbank(cfg).T.astype(np.float32)   # [bins, mels]
            self._win = hann(cfg.win_length).astype(np.float32)

        def call(self, wav: Any) -> Any:
            c = self._cfg
            frames = tf.signal.frame(wav, c.win_length, c.hop_length, axis=-1)
            frames = frames * tf.constant(self._win)
            spec = tf.signal.rfft(frames, fft_length=[c.n_fft])
            power = tf.math.square(tf.math.real(spec)) + tf.math.square(tf.math.imag(spec))
            mel = tf.tensordot(power, tf.constant(self._fb), axes=1)
            return tf.math.log(mel + 1e-6)

        def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
            n = self._cfg.n_frames(int(input_shape[-1]))
            return (input_shape[0], n, self._cfg.n_mels)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mel": self.mel}

    return LogMelLayer


def _cmn_layer() -> type:
    import keras

    class CMN(keras.layers.Layer):
        """Per-patch mean normalisation over time, per band (the teacher does the same)."""

        def call(self, x: Any) -> Any:
            return x - keras.ops.mean(x, axis=1, keepdims=True)

    return CMN


def LogMelLayer(mel: MelConfig, **kwargs: Any) -> Any:  # noqa: N802 - a layer factory
    return _logmel_layer_class()(mel.as_dict(), **kwargs)


# ------------------------------------------------------------------------------ model


def build_student(cfg: Student, mel: MelConfig, frames: int, out_dim: int,
                  norm: tuple[float, float] = (0.0, 1.0), seed: int = 0,
                  bn_momentum: float | None = None, cmn: bool = False) -> Any:
    """The Keras student (fake-quantizing layers when cfg.qat). Input: [B, frames, n_mels]
    log-mel patches (frontend outside) or [B, samples] waveforms in [-1, 1] (inside).

    bn_momentum replaces keras.applications' 0.999: after a few hundred steps, moving
    statistics with momentum 0.999 are still mostly their initial values, so the inference
    graph (and its TFLite conversion) would normalise with the wrong statistics."""
    import keras

    keras.utils.set_random_seed(seed)
    mean, std = float(norm[0]), float(norm[1])
    if cfg.frontend == "inside":
        inp = keras.Input((patch_samples(mel, frames),), name="waveform")
        x = LogMelLayer(mel, name=FRONTEND_NAME)(inp)
    else:
        inp = keras.Input((frames, mel.n_mels), name="logmel_patch")
        x = inp
    if cmn:
        x = _cmn_layer()(name="cmn")(x)
    x = keras.layers.Reshape((frames, mel.n_mels, 1), name="to_image")(x)
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="normalise")(x)
    app = keras.applications.MobileNetV3Small if cfg.arch == "small" \
        else keras.applications.MobileNetV3Large
    backbone = app(input_shape=(frames, mel.n_mels, 1), alpha=cfg.width, include_top=False,
                   weights=None, include_preprocessing=False, name=f"mobilenetv3_{cfg.arch}")
    x = backbone(x)
    if cfg.pool == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = keras.layers.Flatten(name="pool")(x)
    x = keras.layers.Dense(cfg.bottleneck, name="bottleneck")(x)
    out = keras.layers.Dense(out_dim, name="embedding")(x)
    model = keras.Model(inp, out, name=f"student_{cfg.label}")
    model = with_fake_quant(model) if cfg.qat else model
    if bn_momentum is not None:
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return model


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out += _all_layers(layer)
    return out


def count_params(model: Any) -> int:
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))


# ------------------------------------------------------------------------------ training


class FusedAdam:
    """Adam on a Keras model's trainable variables with TF's fused ResourceApplyAdam op.

    Why not keras.optimizers.Adam: it builds ~10 graph ops per variable, and tracing that for
    the ~150-300 variables of a MobileNetV3 costs 15-20 s of CPU per student on this machine;
    one fused op per variable traces in a fraction of that. Same update rule (Kingma & Ba).
    """

    def __init__(self, variables: Sequence[Any], lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-7) -> None:
        import tensorflow as tf

        self.vars = list(variables)
        self.handles = [_tf_variable(v).handle for v in self.vars]
        self.m = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in self.vars]
        self.v = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in self.vars]
        self.t = tf.Variable(0.0, trainable=False)
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon

    def apply(self, grads: Sequence[Any]) -> None:
        import tensorflow as tf

        self.t.assign_add(1.0)
        b1p, b2p = tf.pow(self.beta1, self.t), tf.pow(self.beta2, self.t)
        for h, m, v, g in zip(self.handles, self.m, self.v, grads, strict=True):
            tf.raw_ops.ResourceApplyAdam(var=h, m=m.handle, v=v.handle, beta1_power=b1p,
                                         beta2_power=b2p, lr=self.lr, beta1=self.beta1,
                                         beta2=self.beta2, epsilon=self.epsilon, grad=g)


def _tf_variable(v: Any) -> Any:
    inner = getattr(v, "value", v)
    return inner if hasattr(inner, "handle") else v


def train_mse(model: Any, batches: Iterator[tuple[np.ndarray, np.ndarray]], steps: int,
              lr: float, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Minimise MSE(student(x), target) with Adam for `steps` batches; returns the losses."""
    import tensorflow as tf

    opt = FusedAdam(model.trainable_variables, lr)
    tvars = model.trainable_variables

    @tf.function(jit_compile=False, reduce_retracing=True)
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        opt.apply(tape.gradient(loss, tvars))
        return loss

    losses: list[float] = []
    for i in range(steps):
        x, y = next(batches)
        loss = float(step(tf.constant(x), tf.constant(y)))
        if not math.isfinite(loss):
            raise FloatingPointError(f"student training: loss became {loss} at step {i}")
        losses.append(loss)
        if on_step is not None:
            on_step(i, loss)
    return losses


# ------------------------------------------------------------------------------ TFLite


def _frozen_function(model: Any) -> Any:
    """The inference graph (training=False) at batch 1 with variables folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([1, *model.inputs[0].shape[1:]], tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def to_tflite(model: Any, int8: bool = False, representative: np.ndarray | None = None,
              float_model: bytes | None = None) -> bytes:
    """Convert a student to a TFLite flatbuffer: float32, or int8 weights and activations
    (float32 input/output, calibrated on `representative` inputs) with the log-mel frontend,
    if any, left in float. `float_model`, the model's float32 conversion when already made,
    saves converting it again to find the frontend's ops."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([_frozen_function(model)])
    if not int8:
        with contextlib.redirect_stdout(io.StringIO()):
            return bytes(conv.convert())
    if representative is None or len(representative) == 0:
        raise ValueError("int8 conversion needs representative inputs")
    rep = np.asarray(representative, dtype=np.float32)

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    has_frontend = any(layer.name == FRONTEND_NAME for layer in model.layers)
    with contextlib.redirect_stdout(io.StringIO()):
        if not has_frontend:
            return bytes(conv.convert())
        # Keep every op of the frontend float: the selective-quantization path of the
        # converter's QuantizationDebugger, with the frontend's nodes denylisted.
        if float_model is None:
            float_model = bytes(tf.lite.TFLiteConverter.from_concrete_functions(
                [_frozen_function(model)]).convert())
        float_ops = _frontend_node_names(float_model)
        opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_ops)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=gen, debug_options=opts)
        return bytes(debugger.get_nondebug_quantized_model())


def _frontend_node_names(float_model: bytes) -> list[str]:
    """Output-tensor names of the ops of the log-mel frontend in a float TFLite model."""
    from slimaudio.latency import litert_interpreter

    interp = litert_interpreter(float_model)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():
        for t in op["outputs"]:
            name = names.get(int(t), "")
            # names are fused scope paths: ".../logmel_1/rfft4;.../logmel_1/..."
            segs = [seg for part in name.split(";") for seg in part.split("/")]
            if any(seg.startswith(FRONTEND_NAME) for seg in segs):
                out.append(name)
    if not out:
        raise RuntimeError("could not find the log-mel frontend's ops in the TFLite graph")
    return out
