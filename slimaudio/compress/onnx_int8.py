"""ONNX Runtime INT8 post-training quantization of an ONNX model: the technique, no study.

- `preprocess`: ORT's quantization pre-processing (symbolic + ONNX shape inference, basic
  graph optimisation such as constant folding and Conv+BN fusion), run once.
- `unshare_initializers`: one copy of a shared initializer per group of nodes, so that
  quantizing one group never quantizes a weight another group reads.
- `calibrate` + `quantize_static_nodes`: one calibration (tensor ranges cached as JSON), then
  any number of static QDQ (or QOperator) models that quantize only the named nodes.
- `quantize_nodes`: the named nodes by the method ORT has for each: static for convolutions
  and matmuls, dynamic for LSTM (`quantize_dynamic_nodes`), none for GRU and RNN (`Methods`).
- `quantize_dynamic_model`, `convert_float16`: dynamic INT8 and float16 conversions.
- `compact_names`, `size_breakdown`: short names for converter-added tensors; what a file holds.
- `float_weight_nodes`, `with_outputs`, `weight_sqnr`: inspecting a quantized graph.
- `op_profiles`: ORT's per-operator profile (where the time goes in a quantized graph).

The PTQ studies built from these are slimaudio.studies.ptq_layerwise and ptq_bits.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio import runtime
from slimaudio.errors import DataError, ParamError

# Recurrent layers: their weights (W, R, B) are initializer inputs like a Conv's.
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
# Operators whose parameters are weights (what the size of a model is made of).
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                        "InstanceNormalization", "LayerNormalization", *RECURRENT_OPS})
MAIN_WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
ACTIVATION_TYPES = ("uint8", "int8")
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")


def quiet_ort_quantization() -> contextlib.AbstractContextManager[None]:
    """ORT's quantizer logs a root-level warning per non-float tensor it skips; mute them."""
    return runtime.quiet_logger(None)


# ----------------------------------------------------------------------------- pre-processing


def preprocess(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Shape inference and ORT basic optimisation (fusion, folding), once, before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise DataError(f"{src}: ONNX model not found")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with quiet_ort_quantization():
        quant_pre_process(str(src), str(dst))
    return dst


def unshare_initializers(model: Any, group: Mapping[str, str]) -> int:
    """Give each group of nodes (`group`: node name -> group) its own copy of any initializer
    that several groups read.

    ORT's optimiser merges identical constants (an untrained BN's ones and zeros, shared
    scalars), and the quantizer quantizes an initializer for every reader at once, so a shared
    one would leak quantization into groups meant to stay float. Returns the copies made.
    """
    import onnx

    inits = {i.name: i for i in model.graph.initializer}
    readers: dict[str, list[tuple[Any, int, str]]] = defaultdict(list)
    for node in model.graph.node:
        grp = group[node.name]
        for k, name in enumerate(node.input):
            if name in inits:
                readers[name].append((node, k, grp))
    made = 0
    for name, uses in readers.items():
        groups = sorted({g for _, _, g in uses})
        for grp in groups[1:]:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[name])
            copy.name = f"{name}__{grp}"
            model.graph.initializer.append(copy)
            for node, k, g in uses:
                if g == grp:
                    node.input[k] = copy.name
            made += 1
    return made


def is_weight_node(node: Any, initializers: set[str]) -> bool:
    return node.op_type in WEIGHT_OPS and any(i in initializers for i in node.input[1:])


# ----------------------------------------------------------------------------- calibration


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIBRATION_METHODS:
        raise ParamError(f"calibration method {name!r} is not one of {CALIBRATION_METHODS}")
    return getattr(CalibrationMethod, name)


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]


def calibrate(model: str | os.PathLike[str], reader: Any, method: str,
              cache: str | os.PathLike[str], percentile: float = 99.999) -> Path:
    """Collect activation ranges once and save them as ORT's JSON calibration cache.

    `reader`: an ORT CalibrationDataReader with `rewind()` (it is rewound first)."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    ops = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))  # what quantize_static calibrates
    extra: dict[str, Any] = {"percentile": percentile} if method == "Percentile" else {}
    reader.rewind()
    with tempfile.TemporaryDirectory(prefix="slimaudio-calib.") as tmp, quiet_ort_quantization():
        cal = create_calibrator(Path(model), ops,
                                augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                calibrate_method=_method(method), extra_options=extra)
        cal.collect_data(reader)
        ranges = cal.compute_data()
        del cal
    save_tensors_data(ranges, Path(cache))
    return Path(cache)


# ----------------------------------------------------------------------------- quantization


@dataclass(frozen=True)
class QuantSettings:
    """How a static model is quantized (no defaults: a study builds it from its params)."""

    method: str             # calibration method: MinMax | Entropy | Percentile
    activation_type: str    # uint8 (U8S8, what ORT's x86 integer kernels take) | int8 (S8S8)
    per_channel: bool       # symmetric INT8 weights per output channel (else per tensor)
    reduce_range: bool      # 7-bit weights
    quant_format: str       # QDQ | QOperator
    op_types: tuple[str, ...] | None  # None: every op type ORT can quantize


def quantize_static_nodes(model: str | os.PathLike[str], out: str | os.PathLike[str],
                          cache: str | os.PathLike[str], nodes: Sequence[str] | None,
                          settings: QuantSettings, graph: Any | None = None) -> Path:
    """Static INT8 model quantizing only `nodes` (None: every node), from cached ranges.

    Of those nodes, only the op types in `settings.op_types` are quantized. Weights: symmetric
    INT8 (per channel when asked). Activations: 8-bit, uint8 asymmetric (what ORT's x86
    integer kernels take: U8S8) or int8 when asked. `graph`: the model's ModelProto when the
    caller has it loaded (its nodes only are read).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static

    if settings.activation_type not in ACTIVATION_TYPES:
        raise ParamError(f"activation type {settings.activation_type!r} is not one of "
                         f"{ACTIVATION_TYPES}")
    if nodes is not None and not nodes:
        raise ParamError("a quantized model needs at least one node to quantize")
    fmt = {"QDQ": QuantFormat.QDQ, "QOperator": QuantFormat.QOperator}[settings.quant_format]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with quiet_ort_quantization():
        quantize_static(
            str(model), str(out), calibration_data_reader=None,
            calibration_cache_path=str(cache), calibrate_method=_method(settings.method),
            quant_format=fmt, per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            activation_type=_qtype(settings.activation_type), weight_type=_qtype("int8"),
            nodes_to_quantize=list(nodes) if nodes is not None else None,
            nodes_to_exclude=sorted(shape_only_nodes(graph or onnx.load(
                str(model), load_external_data=False))),
            op_types_to_quantize=list(settings.op_types) if settings.op_types else None,
            extra_options={"WeightSymmetric": True},
        )
    return Path(out)


@dataclass(frozen=True)
class Methods:
    """How the nodes of a quantized row are quantized: ORT has static (QDQ/QOperator) kernels
    for convolutions and matmuls, only a dynamic one for LSTM (DynamicQuantizeLSTM) and no
    integer kernel for GRU or RNN, which stay float."""

    static: list[str] | None  # nodes given to static quantization (None: every node; []: none)
    dynamic: list[str]        # recurrent nodes quantized dynamically
    float_only: list[str]     # recurrent nodes ORT cannot quantize

    @property
    def label(self) -> str:
        """static, dynamic, static+dynamic, or float (nothing ORT can quantize)."""
        parts = [m for m, on in (("static", self.static is None or bool(self.static)),
                                 ("dynamic", bool(self.dynamic))) if on]
        return "+".join(parts) or "float"


def dynamic_only_ops() -> frozenset[str]:
    """The recurrent ops ORT quantizes, all only dynamically (today: LSTM)."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    return frozenset(op for op in RECURRENT_OPS if op in IntegerOpsRegistry)


def quantization_methods(model: Any, nodes: Sequence[str] | None) -> Methods:
    """Which of `nodes` (None: every node) each method takes."""
    recurrent = {n.name: n.op_type for n in model.graph.node if n.op_type in RECURRENT_OPS}
    chosen = set(recurrent) if nodes is None else set(nodes) & set(recurrent)
    dyn = dynamic_only_ops()
    dynamic = sorted(n for n in chosen if recurrent[n] in dyn)
    float_only = sorted(n for n in chosen if recurrent[n] not in dyn)
    static = None if nodes is None else [n for n in nodes if n not in recurrent]
    inits = {i.name for i in model.graph.initializer}
    weighty = {n.name for n in model.graph.node if is_weight_node(n, inits)}
    if static is not None and not weighty & set(static):
        static = []  # no static weight node among them: nothing worth a static pass
    return Methods(static, dynamic, float_only)


def quantize_nodes(model: str | os.PathLike[str], out: str | os.PathLike[str],
                   cache: str | os.PathLike[str], nodes: Sequence[str] | None,
                   settings: QuantSettings) -> tuple[Path, Methods]:
    """`nodes` (None: every node) quantized by the method ORT has for each: static from the
    cached ranges (quantize_static_nodes), then ORT's dynamic quantization for LSTM nodes;
    GRU and RNN nodes stay float. Returns the file and the methods used."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False)
    methods = quantization_methods(graph, nodes)
    out = Path(out)
    if methods.static is None or methods.static:
        quantize_static_nodes(model, out, cache, methods.static, settings, graph)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, out)
    if methods.dynamic:
        quantize_dynamic_nodes(out, out, methods.dynamic, settings.per_channel,
                               sorted(dynamic_only_ops()))
    return out, methods


def quantize_dynamic_nodes(model: str | os.PathLike[str], out: str | os.PathLike[str],
                           nodes: Sequence[str] | None, per_channel: bool,
                           op_types: Sequence[str] | None) -> Path:
    """ORT dynamic quantization (INT8 weights, activation ranges at run time) of `nodes` (None:
    every node) of `op_types` (None: every type ORT quantizes dynamically); `out` may be
    `model`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="slimaudio-dyn.") as tmp, quiet_ort_quantization():
        dst = Path(tmp) / "q.onnx"
        quantize_dynamic(str(model), str(dst), weight_type=QuantType.QInt8,
                         per_channel=per_channel,
                         nodes_to_quantize=list(nodes) if nodes is not None else None,
                         op_types_to_quantize=list(op_types) if op_types is not None else None)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(dst, out)
    return Path(out)


class ShortNames:
    """name -> a short new name (q0, q1, ... in hex), the same one each time it is asked; names
    in `keep` (and the empty name) stay as they are, and no new name is one of them."""

    def __init__(self, keep: set[str]) -> None:
        self.keep = keep
        self.short: dict[str, str] = {}
        self.counter = 0

    def __call__(self, name: str) -> str:
        if not name or name in self.keep:
            return name
        if name not in self.short:
            while (cand := f"q{self.counter:x}") in self.keep:
                self.counter += 1
            self.short[name] = cand
            self.counter += 1
        return self.short[name]


def compact_names(path: str | os.PathLike[str], reference: str | os.PathLike[str]) -> int:
    """Give the tensors and nodes a converter added short names; returns the bytes saved.

    The quantizer names each tensor it adds after the one it quantizes
    ('/block1/conv1/conv1.0/Conv_output_0_QuantizeLinear_Output', ~50 bytes, and every name
    is stored at its producer and each reader); in a small model these strings are several
    per cent of the file. Names that exist in `reference` (the float model) are kept, so node
    and tensor names stay comparable across rows. Doc strings are dropped. Graphs with
    subgraphs are left alone.
    """
    import onnx

    path = Path(path)
    ref = onnx.load(str(reference), load_external_data=False)
    keep = {n.name for n in ref.graph.node}
    keep |= {t for n in ref.graph.node for t in (*n.input, *n.output)}
    keep |= {i.name for i in ref.graph.initializer} | {v.name for v in ref.graph.value_info}
    keep |= {v.name for v in (*ref.graph.input, *ref.graph.output)}
    model = onnx.load(str(path))
    g = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for n in g.node for a in n.attribute):
        return 0
    before = model.ByteSize()
    rename = ShortNames(keep)
    for n in g.node:
        n.name = rename(n.name)
        n.input[:] = [rename(i) for i in n.input]
        n.output[:] = [rename(o) for o in n.output]
        n.doc_string = ""
    for coll in (g.initializer, g.value_info):
        for t in coll:
            t.name = rename(t.name)
    model.doc_string = ""
    onnx.save(model, str(path))
    return before - model.ByteSize()


def quantize_dynamic_model(model: str | os.PathLike[str], out: str | os.PathLike[str],
                           per_channel: bool = True) -> Path:
    """ORT dynamic quantization of the whole model: INT8 weights, activation ranges computed at
    run time."""
    return quantize_dynamic_nodes(model, out, None, per_channel, None)


def shape_only_nodes(model: Any) -> set[str]:
    """Nodes none of whose inputs derive from the graph's data input except through Shape:
    arithmetic on sizes and constants (e.g. the length masks SpeechBrain's pooling builds).
    Quantizing them with ranges calibrated at one length breaks the model at other lengths."""
    inits = {i.name for i in model.graph.initializer}
    data = {i.name for i in model.graph.input if i.name not in inits}
    out: set[str] = set()
    for node in model.graph.node:  # graph order is topological
        if node.op_type != "Shape" and any(i in data for i in node.input):
            data.update(node.output)
        elif node.name:
            out.add(node.name)
    return out


def convert_float16(model: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Float16 weights and compute (float32 input/output kept, so callers feed the same array)."""
    import onnx
    from onnxconverter_common import float16

    # Cast nodes stay float32 (a cast whose 'to' says float would clash with the float16 type
    # the converter gives its output); the converter bridges them with casts. Blocked by name:
    # with "Cast" in the op block list the converter loops forever on a model holding a Cast
    # to float (SpeechBrain's pooling has one), as it treats the casts it inserts as blocked too.
    m = onnx.load(str(model))
    casts = [n.name for n in m.graph.node if n.op_type == "Cast"]
    m16 = float16.convert_float_to_float16(m, keep_io_types=True, node_block_list=casts)
    onnx.save(m16, str(out))
    return Path(out)


def ort_session(model: str | os.PathLike[str] | bytes, threads: int = 1,
                config: Mapping[str, str] | None = None) -> Any:
    """slimaudio.latency.onnx_session, plus ORT session config entries when given.

    The entries are what an ablation changes about the runtime (for instance
    `session.qdqisint8allowed`); everything else is the same as for every other row.
    """
    from slimaudio.latency import onnx_session

    return onnx_session(model, threads, config=config)



# ----------------------------------------------------------------------------- inspection


def float_weight_nodes(model: Any) -> dict[str, bool]:
    """For every weight-bearing node: True when all its weights are still float initializers.

    A quantized node reads its weight through a DequantizeLinear (QDQ) or is replaced by an
    integer op (QOperator); a float one reads a float32 initializer directly.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    out: dict[str, bool] = {}
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        ws = node.input[1:2] if node.op_type != "BatchNormalization" else node.input[1:3]
        float_w = True
        for w in ws:
            if w in inits:
                float_w &= inits[w].data_type == onnx.TensorProto.FLOAT
            elif w in producers and producers[w].op_type == "DequantizeLinear":
                float_w = False
        out[node.name] = float_w
    return out


def with_outputs(model: Any, names: Sequence[str]) -> bytes:
    """Serialized copy of a model that also returns the named intermediate tensors."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    return m.SerializeToString()



def weight_sqnr(float_model: Any, quant_model: Any, nodes: Sequence[str]) -> dict[str, float]:
    """SQNR (dB) of each quantized main weight (Conv/Gemm input 1) of `nodes` in a QDQ model."""
    from onnx import numpy_helper

    finit = {i.name: i for i in float_model.graph.initializer}
    qinit = {i.name: i for i in quant_model.graph.initializer}
    qprod = {o: n for n in quant_model.graph.node for o in n.output}
    fnodes = {n.name: n for n in float_model.graph.node}
    qnodes = {n.name: n for n in quant_model.graph.node}
    out: dict[str, float] = {}
    for name in nodes:
        fn_, qn = fnodes.get(name), qnodes.get(name)
        if (fn_ is None or qn is None or fn_.op_type not in MAIN_WEIGHT_OPS
                or len(qn.input) < 2 or fn_.input[1] not in finit):
            continue
        dq = qprod.get(qn.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in qinit:
            continue
        w = numpy_helper.to_array(finit[fn_.input[1]]).astype(np.float64)
        q = numpy_helper.to_array(qinit[dq.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(qinit[dq.input[1]]).astype(np.float64)
        zp = (numpy_helper.to_array(qinit[dq.input[2]]).astype(np.float64)
              if len(dq.input) > 2 and dq.input[2] in qinit else np.zeros_like(scale))
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        noise = np.linalg.norm(w - (q - zp) * scale)
        out[name] = float(20 * np.log10(max(np.linalg.norm(w), 1e-30) / max(noise, 1e-30)))
    return out



def op_profiles(models: Mapping[str, str | os.PathLike[str]], feeds: Mapping[str, np.ndarray],
                runs: int = 10, threads: int = 1,
                configs: Mapping[str, Mapping[str, str]] | None = None
                ) -> dict[str, dict[str, dict[str, float]]]:
    """ORT's own per-operator profile of several models: {model: {op type: {ms, count}}}.

    Kernel time is the median over `runs` runs of the per-run sum for an op type; runs of the
    models are interleaved round-robin (as slimaudio.latency does), so a burst of load from
    another process hits every model alike. The profile is of the optimised graph the
    session really runs, so fused and integer kernels (FusedConv, QLinearConv) and any float
    Conv left behind a DequantizeLinear show up. `configs`: extra session config entries
    per model name.
    """
    import onnxruntime as ort

    configs = configs or {}
    with tempfile.TemporaryDirectory(prefix="slimaudio-prof.") as tmp:
        sessions = {}
        for i, (name, path) in enumerate(models.items()):
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.log_severity_level = 3
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tmp) / f"m{i}")
            for k, v in configs.get(name, {}).items():
                so.add_session_config_entry(k, v)
            sessions[name] = ort.InferenceSession(str(path), sess_options=so,
                                                  providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):  # the first run is a warm-up, dropped below
            for sess in sessions.values():
                sess.run(None, dict(feeds))
        return {name: _summarise_profile(json.loads(Path(sess.end_profiling()).read_text()), runs)
                for name, sess in sessions.items()}


def _summarise_profile(events: list[dict[str, Any]], runs: int) -> dict[str, dict[str, float]]:
    starts = sorted(e["ts"] for e in events
                    if e.get("cat") == "Session" and e["name"] == "model_run")[-runs:]
    per_run: list[Counter[str]] = [Counter() for _ in starts]
    counts: list[Counter[str]] = [Counter() for _ in starts]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or not starts:
            continue
        k = int(np.searchsorted(starts, e["ts"], side="right")) - 1
        if k >= 0:
            per_run[k][e["args"]["op_name"]] += e["dur"]
            counts[k][e["args"]["op_name"]] += 1
    ops = sorted({op for c in per_run for op in c})
    return {op: {"ms": float(np.median([c[op] for c in per_run])) / 1e3,
                 "count": float(np.median([c[op] for c in counts]))} for op in ops}


def op_profile(model: str | os.PathLike[str], feeds: Mapping[str, np.ndarray], runs: int = 10,
               threads: int = 1) -> dict[str, dict[str, float]]:
    """`op_profiles` of one model."""
    return op_profiles({"m": model}, feeds, runs, threads)["m"]


def size_breakdown(path: str | os.PathLike[str]) -> dict[str, int]:
    """Bytes of a model file by what they hold: initializers per data type, and the graph."""
    import onnx

    m = onnx.load(str(path))
    out: dict[str, int] = {}
    for init in m.graph.initializer:
        key = f"init_{onnx.TensorProto.DataType.Name(init.data_type).lower()}"
        n = len(init.raw_data) or onnx.numpy_helper.to_array(init).nbytes
        out[key] = out.get(key, 0) + n
    out["graph_and_names"] = Path(path).stat().st_size - sum(out.values())
    return out
