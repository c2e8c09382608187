"""Sub-8-bit weights run by ONNX Runtime's INT8 kernels: b-bit values in an int8 container.

A static QDQ model made by `onnx_int8.quantize_static_nodes` stores each quantized weight as an
int8 initializer read by a DequantizeLinear (symmetric: zero point 0; per channel: one scale
per output channel along the `axis` attribute) whose output is the weight input (input 1) of a
Conv, Gemm or MatMul. `set_weight_bits` gives a node b-bit weights (2 <= b <= 8) by rewriting
that initializer and its scale, per channel:

    w  = q * s                                  (float64; what the 8-bit model computes with)
    s' = max|w| / (2^(b-1) - 1)                 (a channel of zeros keeps s)
    q' = clip(round(w / s'), -(2^(b-1) - 1), 2^(b-1) - 1)   stored as int8, scale := s'

ORT then runs exactly the integer arithmetic of a b-bit symmetric per-channel weight kernel:
the values are b-bit, only the container is 8-bit. With `reduce_range` the 8-bit model's
weights are already 7-bit ([-64, 64]); b = 8 leaves a node as it is.

The bias must follow the weight scale: the quantizer stores a Conv/Gemm bias as int32 with
scale x_scale * w_scale, and ORT fuses DQ -> Conv -> Q into QLinearConv (QGemm) only while
that relation holds; otherwise it silently runs the node as DequantizeLinear + float Conv.
So the int32 bias is requantized at x_scale * s' (the float bias it encodes stays the same
up to one rounding at the old and one at the new bias scale).

`packed_weight_bytes` is the deployable size a runtime that packs b-bit weights would store
(weights at their bit widths, everything else as stored); the ONNX file itself stays
int8-container, so a caller reports both.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress.onnx_int8 import MAIN_WEIGHT_OPS, weight_sqnr
from slimaudio.errors import ParamError

MIN_BITS, MAX_BITS = 2, 8


@dataclass(frozen=True)
class WeightDQ:
    """Where a quantized node's weight lives in a QDQ graph (initializer and node names)."""

    node: str                # the compute node (its float model name)
    dq: str                  # the DequantizeLinear producing its weight input
    weight: str              # int8 initializer
    scale: str               # float32 scale initializer (per channel or scalar)
    zero_point: str | None   # int8 zero-point initializer (all zeros: symmetric)
    axis: int                # channel axis of the scale (normalised to >= 0)
    bias: str | None = None          # int32 bias initializer, when the bias is quantized
    bias_scale: str | None = None    # its scale initializer (x_scale * w_scale)
    input_scale: str | None = None   # scale of the activation input (input 0), when quantized


def _load(model: Any) -> Any:
    import onnx

    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def _dq_attr_axis(dq: Any, ndim: int) -> int:
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)  # ONNX default: 1
    return axis + ndim if axis < 0 else axis


class _Graph:
    """Lookups over a model's graph, built once."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.nodes = {n.name: n for n in model.graph.node}
        self.producers = {o: n for n in model.graph.node for o in n.output}

    def dq_of(self, tensor: str, dtype: int | None = None) -> tuple[Any, str, str] | None:
        """(DequantizeLinear, quantized input, scale initializer) producing `tensor`, or None.
        With `dtype`, the quantized input must be an initializer of that type (a weight);
        without, it may be computed (an activation's QuantizeLinear output)."""
        dq = self.producers.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 2:
            return None
        q, s = dq.input[0], dq.input[1]
        if s not in self.inits:
            return None
        if dtype is not None and (q not in self.inits or self.inits[q].data_type != dtype):
            return None
        return dq, q, s

    def weight_dq(self, name: str) -> WeightDQ | None:
        import onnx

        node = self.nodes.get(name)
        if node is None or node.op_type not in MAIN_WEIGHT_OPS or len(node.input) < 2:
            return None
        found = self.dq_of(node.input[1], onnx.TensorProto.INT8)
        if found is None:
            return None
        dq, weight, scale = found
        # a float bias is not tied to the weight scale; an int32 one is (x_scale * w_scale)
        bias = (self.dq_of(node.input[2], onnx.TensorProto.INT32)
                if len(node.input) > 2 and node.input[2] else None)
        act = self.dq_of(node.input[0])
        return WeightDQ(
            node=name, dq=dq.name, weight=weight, scale=scale,
            zero_point=dq.input[2] if len(dq.input) > 2 and dq.input[2] else None,
            axis=_dq_attr_axis(dq, len(self.inits[weight].dims)),
            bias=bias[1] if bias else None, bias_scale=bias[2] if bias else None,
            input_scale=act[2] if act else None)


def weight_dequant_nodes(model: Any, node_names: Iterable[str]) -> dict[str, WeightDQ]:
    """For each named compute node, the DequantizeLinear feeding its weight (input 1).

    `model`: a ModelProto or a path. Node names are those of the float model (the quantizer
    and `onnx_int8.compact_names` keep them). A node without a quantized int8 weight
    initializer behind a DequantizeLinear is a ParamError naming it.
    """
    g = _Graph(_load(model))
    out: dict[str, WeightDQ] = {}
    for name in node_names:
        if name not in g.nodes:
            raise ParamError(f"node {name!r} is not in the model")
        wdq = g.weight_dq(name)
        if wdq is None:
            raise ParamError(f"node {name!r} has no quantized int8 weight (QDQ DequantizeLinear)")
        out[name] = wdq
    return out


def quantized_weight_nodes(model: Any) -> list[str]:
    """Names of the Conv/Gemm/MatMul nodes whose weight is a QDQ int8 initializer."""
    g = _Graph(_load(model))
    return [n.name for n in g.model.graph.node if n.name and g.weight_dq(n.name) is not None]


def check_bits(bits: Mapping[str, int]) -> None:
    for node, b in bits.items():
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not MIN_BITS <= b <= MAX_BITS:
            raise ParamError(f"weight bits for {node!r} must be an integer in "
                             f"[{MIN_BITS}, {MAX_BITS}], got {b!r}")


def _channel_shape(scale: np.ndarray, ndim: int, axis: int) -> tuple[int, ...]:
    """Shape broadcasting a per-channel scale along `axis` of the weight (scalar: as is)."""
    if scale.size == 1:
        return scale.shape
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def requantize(q: np.ndarray, scale: np.ndarray, axis: int, bits: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scale) of the weights q * scale at `bits` bits, symmetric, with
    the scale's granularity (per channel along `axis`, or per tensor)."""
    qmax = 2 ** (bits - 1) - 1
    shape = _channel_shape(scale, q.ndim, axis)
    s = scale.astype(np.float64).reshape(shape)
    w = q.astype(np.float64) * s
    reduce = tuple(d for d in range(q.ndim) if scale.size == 1 or d != axis)
    peak = np.abs(w).max(axis=reduce, keepdims=True).reshape(s.shape)
    new_s = np.where(peak > 0, peak / qmax, s).astype(np.float32)  # zero channel keeps s
    # round against the float32 scale ORT will multiply by, not the float64 one
    new_q = np.clip(np.round(w / new_s.astype(np.float64)), -qmax, qmax).astype(np.int8)
    return new_q, new_s.reshape(scale.shape)


def _shared_check(model: Any, info: Mapping[str, WeightDQ], bits: Mapping[str, int]) -> None:
    """Refuse to rewrite an initializer some node reads at other bits (shared weights)."""
    readers: dict[str, set[str]] = defaultdict(set)
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in MAIN_WEIGHT_OPS and len(node.input) > 1:
            dq = producers.get(node.input[1])
            if dq is not None and dq.op_type == "DequantizeLinear":
                for t in dq.input[:2]:
                    readers[t].add(node.name)
    for name, wdq in info.items():
        for t in (wdq.weight, wdq.scale):
            others = sorted(n for n in readers[t] if bits.get(n, MAX_BITS) != bits[name])
            if others:
                raise ParamError(f"initializer {t!r} of node {name!r} is shared with "
                                 f"{', '.join(others)} at other bits; unshare it first")


def _set(inits: Mapping[str, Any], name: str, arr: np.ndarray) -> None:
    from onnx import numpy_helper

    inits[name].CopyFrom(numpy_helper.from_array(arr, name))


def _array(inits: Mapping[str, Any], name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(inits[name])


def _requantize_bias(inits: Mapping[str, Any], wdq: WeightDQ, old_s: np.ndarray,
                     new_s: np.ndarray) -> None:
    """int32 bias at x_scale * new weight scale, as the quantizer would have stored it."""
    if wdq.bias is None or wdq.bias_scale is None:
        return
    bq = _array(inits, wdq.bias).astype(np.float64)
    bs_old = _array(inits, wdq.bias_scale)
    if wdq.input_scale is not None:  # float32 product, as ORT's quantizer computes it
        bs_new = _array(inits, wdq.input_scale).astype(np.float32) * new_s.astype(np.float32)
    else:
        bs_new = bs_old.astype(np.float64) * (new_s.astype(np.float64) / old_s)
    bs_new = np.asarray(bs_new, np.float32).reshape(bs_old.shape)
    fb = bq * bs_old.astype(np.float64)
    new_bq = np.round(fb / bs_new.astype(np.float64))
    info = np.iinfo(np.int32)
    _set(inits, wdq.bias, np.clip(new_bq, info.min, info.max).astype(np.int32))
    _set(inits, wdq.bias_scale, bs_new)


def set_weight_bits(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                    bits: Mapping[str, int]) -> Path:
    """Copy of the QDQ model `src` at `dst` whose named nodes have b-bit weights.

    `bits`: node name -> bits (2..8). 8 leaves a node as quantized (7-bit with reduce_range).
    Each weight initializer and its scale are rewritten (see the module docstring), and the
    node's int32 bias is requantized at the new scale so ORT still fuses the integer kernel.
    """
    import onnx

    check_bits(bits)
    model = _load(src)
    lower = {n: int(b) for n, b in bits.items() if b < MAX_BITS}
    info = weight_dequant_nodes(model, list(bits))  # unknown names fail even at 8 bits
    info = {n: info[n] for n in lower}
    _shared_check(model, info, bits)
    inits = {i.name: i for i in model.graph.initializer}
    done: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # weight -> (old scale, new scale)
    biases_done: set[str | None] = {None}
    for name, wdq in info.items():
        if wdq.weight not in done:
            zp = _array(inits, wdq.zero_point) if wdq.zero_point else np.zeros(1)
            if np.any(zp != 0):
                raise ParamError(f"node {name!r}: weight zero point is not 0 (asymmetric "
                                 "weights cannot be rewritten)")
            old_s = _array(inits, wdq.scale)
            new_q, new_s = requantize(_array(inits, wdq.weight), old_s, wdq.axis, lower[name])
            _set(inits, wdq.weight, new_q)
            _set(inits, wdq.scale, new_s)
            done[wdq.weight] = (old_s.astype(np.float64), new_s)
        if wdq.bias not in biases_done:  # a bias shared by readers of one weight: once
            _requantize_bias(inits, wdq, *done[wdq.weight])
            biases_done.add(wdq.bias)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return Path(dst)


def stored_bytes(init: Any) -> int:
    from onnx import numpy_helper

    return len(init.raw_data) or numpy_helper.to_array(init).nbytes


def packed_weight_bytes(model_path: str | os.PathLike[str], bits: Mapping[str, int]) -> int:
    """Bytes the model's parameters take with each quantized weight packed at its bit width.

    Every QDQ int8 weight of a Conv/Gemm/MatMul counts ceil(numel * b / 8) bytes, b from
    `bits` (8 for a node not named); every other initializer (scales, zero points, int32
    biases, float weights) counts as stored. This is the size a runtime with b-bit packing
    would store; the ONNX file keeps 8-bit containers, so report this beside the file size
    (graph structure and names are not included).
    """
    check_bits(bits)
    model = _load(model_path)
    weight_dequant_nodes(model, list(bits))  # a ParamError naming an unknown node
    info = weight_dequant_nodes(model, quantized_weight_nodes(model))
    weight_bits: dict[str, int] = {}
    for name, wdq in info.items():  # a shared weight: its widest reader
        weight_bits[wdq.weight] = max(weight_bits.get(wdq.weight, 0), bits.get(name, MAX_BITS))
    total = 0
    for init in model.graph.initializer:
        if init.name in weight_bits:
            total += math.ceil(math.prod(init.dims) * weight_bits[init.name] / 8)
        else:
            total += stored_bytes(init)
    return total


def weight_sqnr_db(float_model: str | os.PathLike[str], quant_model: str | os.PathLike[str],
                   nodes: Iterable[str]) -> dict[str, float]:
    """SQNR (dB) of the (possibly rewritten) weights of `nodes` against the float model's;
    ~6 dB per bit for well-spread weights."""
    return weight_sqnr(_load(float_model), _load(quant_model), list(nodes))
