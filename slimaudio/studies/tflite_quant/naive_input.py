"""STUDY ONLY - NOT A DEPLOYABLE PATH: the naive app's input step behind the paper's collapse.

A naive app feeds float features straight into the full-int model's int8 input tensor
(`x.astype(int8)`, what `np.array(x, dtype=input_details["dtype"])` does) instead of
quantizing them with the tensor's scale and zero point. This module reproduces exactly that,
to measure it as the `full_int_naive` row; anything real uses
`slimaudio.compress.tflite.TFLiteClassifier`, which always quantizes its input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import tflite as tfl
from slimaudio.latency import Runner, litert_interpreter, litert_runner


def cast_unquantized(x: np.ndarray, dtype: Any) -> np.ndarray:
    """The naive app's input step, `x.astype(int8)`, with no scale or zero point."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError("the unquantized-input reproduction applies to integer-input models only")
    with np.errstate(invalid="ignore", over="ignore"):  # out-of-range casts wrap, as in the app
        return np.asarray(x, dtype=np.float32).astype(dtype)


def predict_unquantized_input(model: str | os.PathLike[str] | bytes, x: np.ndarray,
                              batch_size: int = 64, threads: int = 1) -> np.ndarray:
    """Class scores with the input cast, not quantized; the output is dequantized properly, so
    the input mistake alone is measured."""
    interp = litert_interpreter(model, threads)
    d = tfl.io_details(interp)
    raw = cast_unquantized(x, np.dtype(d["input_dtype"]))
    out = tfl.run_batches(interp, raw, batch_size)
    scale, zp = d["output_quant"]
    return tfl.dequantize(out, scale, zp) if np.issubdtype(out.dtype, np.integer) else out


def naive_runner(path: Path, x1: np.ndarray, threads: int) -> Runner:
    """Batch-1 call of the full-int model with the raw float frame cast to int8."""
    interp = litert_interpreter(path, threads)
    raw = cast_unquantized(x1, interp.get_input_details()[0]["dtype"])
    return litert_runner(interp, [raw], threads)


def seen_by_naive(x: np.ndarray, path: Path) -> dict[str, float]:
    """What the naive int8 cast turns raw log-mel values into, read back with the model's
    own input scale and zero point."""
    inp = litert_interpreter(path, 1).get_input_details()[0]
    scale, zp = inp["quantization"]
    codes = cast_unquantized(x, inp["dtype"])
    seen = (codes.astype(np.float32) - zp) * scale
    return {"naive_codes_min": int(codes.min()), "naive_codes_max": int(codes.max()),
            "naive_distinct_codes": int(len(np.unique(codes))),
            "naive_seen_min": float(seen.min()), "naive_seen_max": float(seen.max()),
            "naive_mean_abs_input_error": float(np.abs(seen - x).mean())}
