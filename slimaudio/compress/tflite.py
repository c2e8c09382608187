"""TFLite conversion of a Keras classifier into the study's variants, and a deployable runner.

Variants (the paper's Table 2, TFLite converter terms):
  basic          float32, no optimisation
  float16        float16 weights (dequantized to float32 at load/inside the kernels)
  dynamic_range  int8 weights, float activations quantized on the fly
  int            int8 weights and activations, float32 input/output (representative dataset)
  full_int       int8 everywhere, int8 input/output

`TFLiteClassifier` is the only deployable way to run these models here: it ALWAYS quantizes
a float input with the input tensor's scale and zero point and dequantizes an integer output.
Feeding raw features straight into an int8 input tensor is the mistake behind the paper's
full-int collapse; it is reproduced only inside the study
(slimaudio/studies/tflite_quant/), never here.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.latency import Runner, litert_interpreter, litert_runner

__all__ = [
    "VARIANTS", "QUANTIZED", "convert", "convert_keras", "export_saved_model",
    "representative_dataset", "quantize", "dequantize", "TFLiteClassifier", "io_details",
    "input_code_range", "op_summary", "builtin_interpreter", "run_batches",
]

VARIANTS = ("basic", "int", "full_int", "float16", "dynamic_range")
QUANTIZED = {"basic": False, "int": True, "full_int": True, "float16": True, "dynamic_range": True}
NEEDS_CALIBRATION = {"int", "full_int"}


def export_saved_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Export a Keras 3 model as a TF SavedModel (the converter's most robust input)."""
    path = Path(path)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the endpoint summary
        model.export(os.fspath(path), format="tf_saved_model", verbose=False)
    return path


def representative_dataset(frames: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration generator: one float32 [1, ...] frame at a time, exactly the inference input."""
    frames = np.asarray(frames, dtype=np.float32)
    if len(frames) == 0:
        raise ValueError("the representative dataset is empty")

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(frames)):
            yield [frames[i:i + 1]]

    return gen


def convert(saved_model_dir: str | os.PathLike[str], variant: str,
            representative: np.ndarray | None = None) -> bytes:
    """Convert a SavedModel into one variant; int/full_int need representative frames."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r} (known: {', '.join(VARIANTS)})")
    if variant in NEEDS_CALIBRATION and representative is None:
        raise ValueError(f"variant {variant!r} needs a representative dataset")
    conv = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    if variant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_range":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in NEEDS_CALIBRATION:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative_dataset(representative)
        # Every op in int8: conversion fails instead of silently leaving float islands.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if variant == "full_int":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):
        return bytes(conv.convert())


def convert_keras(model: Any, variant: str, representative: np.ndarray | None = None) -> bytes:
    """Convenience: export to a temporary SavedModel and convert one variant."""
    with tempfile.TemporaryDirectory(prefix="slimaudio-savedmodel-") as tmp:
        sm = export_saved_model(model, Path(tmp) / "saved_model")
        return convert(sm, variant, representative)


# ------------------------------------------------------------------ (de)quantization


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """Real values to integer codes: round(x / scale) + zero_point, saturated to the dtype."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((np.asarray(q, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale))


def io_details(interp: Any) -> dict[str, Any]:
    """Input/output dtype and (scale, zero point) of a single-input, single-output model."""
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    return {"input_dtype": np.dtype(i["dtype"]).name, "input_quant": tuple(i["quantization"]),
            "output_dtype": np.dtype(o["dtype"]).name, "output_quant": tuple(o["quantization"])}


def builtin_interpreter(model: str | os.PathLike[str] | bytes, threads: int = 1) -> Any:
    """A LiteRT interpreter on the built-in kernels only (XNNPACK, the default delegate, off).

    Used to explain latency: it shows what int8 arithmetic gains when float32 does not get
    XNNPACK's kernels.
    """
    return litert_interpreter(model, threads, default_delegates=False)


def input_code_range(interp: Any) -> tuple[float, float] | None:
    """Real-value range the first int8 tensor can represent: the input tensor of a full-int
    model, or the output of the QUANTIZE op a float-input int model starts with. None for
    models whose activations stay float."""
    inp = interp.get_input_details()[0]
    if np.issubdtype(np.dtype(inp["dtype"]), np.integer):
        scale, zp, dtype = *inp["quantization"], np.dtype(inp["dtype"])
    else:
        ops = interp._get_ops_details()
        first = [o for o in ops if o["op_name"] == "QUANTIZE" and inp["index"] in list(o["inputs"])]
        if not first:
            return None
        t = next(d for d in interp.get_tensor_details() if d["index"] == int(first[0]["outputs"][0]))
        scale, zp, dtype = *t["quantization"], np.dtype(t["dtype"])
    info = np.iinfo(dtype)
    return float((info.min - zp) * scale), float((info.max - zp) * scale)


def op_summary(model: str | os.PathLike[str] | bytes, threads: int = 1) -> dict[str, int]:
    """Op counts of the graph, plus `DELEGATE`: how many partitions XNNPACK took over.

    More than one delegate partition means some ops fall back to the built-in kernels,
    with a tensor hand-off at each boundary.
    """
    interp = litert_interpreter(model, threads)
    counts: dict[str, int] = {}
    for o in interp._get_ops_details():
        counts[o["op_name"]] = counts.get(o["op_name"], 0) + 1
    return counts


def run_batches(interp: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Invoke on `x` (already in the input dtype) in fixed-size batches; raw output tensors.

    The caller owns the input's dtype: `TFLiteClassifier.predict` quantizes before calling it.
    """
    inp = interp.get_input_details()[0]
    shape = list(inp["shape_signature"]) if len(inp["shape_signature"]) else list(inp["shape"])
    batch_size = max(1, min(batch_size, len(x))) if shape[0] == -1 else 1
    if int(interp.get_input_details()[0]["shape"][0]) != batch_size:
        interp.resize_tensor_input(inp["index"], [batch_size, *x.shape[1:]], strict=False)
        interp.allocate_tensors()
    in_idx = interp.get_input_details()[0]["index"]
    out_idx = interp.get_output_details()[0]["index"]
    outs = []
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        n = len(chunk)
        if n < batch_size:  # pad the last batch rather than re-allocating
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, axis=0)])
        interp.set_tensor(in_idx, np.ascontiguousarray(chunk))
        interp.invoke()
        outs.append(interp.get_tensor(out_idx)[:n].copy())
    return np.concatenate(outs)


class TFLiteClassifier:
    """Deployable LiteRT classifier: float features in, float class scores out, for any variant.

    An integer input tensor always receives `quantize(x, scale, zero_point)`; an integer output
    is always dequantized. There is deliberately no switch to skip either step.
    """

    def __init__(self, model: str | os.PathLike[str] | bytes, threads: int = 1,
                 xnnpack: bool = True) -> None:
        self._model = model
        self.threads = int(threads)
        self.xnnpack = bool(xnnpack)
        self._interp = self._new_interpreter()
        d = io_details(self._interp)
        self.input_dtype = np.dtype(d["input_dtype"])
        self.output_dtype = np.dtype(d["output_dtype"])
        self.input_quant = (float(d["input_quant"][0]), int(d["input_quant"][1]))
        self.output_quant = (float(d["output_quant"][0]), int(d["output_quant"][1]))

    def _new_interpreter(self) -> Any:
        if self.xnnpack:
            return litert_interpreter(self._model, self.threads)
        return builtin_interpreter(self._model, self.threads)

    @property
    def integer_input(self) -> bool:
        return np.issubdtype(self.input_dtype, np.integer)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float features in the model's input dtype (quantized if the input is integer)."""
        if not self.integer_input:
            return np.asarray(x, dtype=self.input_dtype)
        scale, zp = self.input_quant
        if scale <= 0:
            raise ValueError("integer input tensor without quantization parameters")
        return quantize(x, scale, zp, self.input_dtype)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        if not np.issubdtype(self.output_dtype, np.integer):
            return np.asarray(y, dtype=np.float32)
        return dequantize(y, *self.output_quant)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class scores float32 [n, n_classes] for float features [n, ...]."""
        return self.dequantize_output(run_batches(self._interp, self.quantize_input(x), batch_size))

    def latency_runner(self, x1: np.ndarray) -> Runner:
        """One batch-1 inference on its own interpreter (for slimaudio.latency), input quantized."""
        return litert_runner(self._new_interpreter(), [self.quantize_input(np.asarray(x1)[:1])],
                             self.threads)

