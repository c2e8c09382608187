"""ONNX Runtime post-training quantization of an ECAPA-TDNN export, one layer group at a time.

The pieces the layer-wise study (slimaudio.studies.ptq_layerwise) is built from:

- `preprocess`: ORT's quantization pre-processing (symbolic + ONNX shape inference, basic
  graph optimisation such as constant folding and Conv+BN fusion), run once.
- `group_nodes`: which ONNX nodes belong to which of the paper's layer groups, by the node-name
  prefix the TorchScript exporter writes (`/conv_in/...`, `/block1/...`, `/asp/...`,
  `/bn_asp/...`, `/fc/...`, `/bn_fc/...`). A BN that the export or the pre-processing folds
  into the Conv before it disappears, so the mapping is done on the surviving nodes of the
  pre-processed model (ECAPA's BNs follow a ReLU and survive, in their submodule's group);
  a weight-bearing node whose name carries no prefix (one an optimiser renamed) falls back to
  the torch parameter name of its weight (`block2.conv1.0.weight`), and a node that still has
  no group is an error, never silently float.
- `SpeakerCalibrationReader`: calibration inputs from train-split utterances only.
- `calibrate` + `quantize_static_nodes`: one calibration (tensor ranges cached as JSON), then
  any number of static QDQ models that quantize only the named nodes.
- `quantize_dynamic_model`, `convert_float16`: the comparison rows.
- `compact_names`, `size_breakdown`: short names for converter-added tensors; what a file holds.
- `group_output_error`: relative error of a group's output activations, float vs quantized.
- `op_profiles`: ORT's per-operator profile (where the time goes in a quantized graph).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.errors import DataError, ParamError

# The paper's Table 1 rows, in network order, and the torch submodules each one covers.
GROUPS: tuple[str, ...] = ("conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "fc")
GROUP_MODULES: dict[str, tuple[str, ...]] = {
    "conv_in": ("conv_in",),
    "block1": ("block1",),
    "block2": ("block2",),
    "block3": ("block3",),
    "conv_mfa": ("conv_mfa",),
    "asp": ("asp", "bn_asp"),
    "fc": ("fc", "bn_fc"),
}
MODULE_TO_GROUP: dict[str, str] = {m: g for g, mods in GROUP_MODULES.items() for m in mods}
OTHER = "other"  # nodes outside every named submodule (the input transpose, the MFA concat)
# Operators whose parameters are weights (what the size of a model is made of).
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
                        "InstanceNormalization", "LayerNormalization"})
MAIN_WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
ACTIVATION_TYPES = ("uint8", "int8")
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")


@contextlib.contextmanager
def quiet_ort_quantization() -> Iterator[None]:
    """ORT's quantizer logs a root-level warning per non-float tensor it skips; mute them."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(old)


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
    import onnx

    model = onnx.load(str(dst))
    if unshare_initializers(model):
        onnx.save(model, str(dst))
    return dst


def unshare_initializers(model: Any) -> int:
    """Give each layer group its own copy of any initializer that several groups read.

    ORT's optimiser merges identical constants (an untrained BN's ones and zeros, shared
    scalars), and the quantizer quantizes an initializer for every reader at once, so a shared
    one would leak quantization into groups meant to stay float. Returns the copies made.
    """
    import onnx

    inits = {i.name: i for i in model.graph.initializer}
    group = group_nodes(model).group_of()
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


# ----------------------------------------------------------------------------- layer groups


def module_of(name: str) -> str | None:
    """Top-level torch submodule of a TorchScript-exported node name ('/block1/se/Mul' -> 'block1')."""
    if not name.startswith("/"):
        return None
    head = name[1:].split("/", 1)[0]
    return head if "/" in name[1:] else None  # '/Concat' is a top-level op, not a submodule


def _group_from_weight(node: Any, initializers: set[str]) -> str | None:
    """Group from the torch parameter name of a weight input ('fc.weight' -> 'fc')."""
    for inp in node.input:
        if inp in initializers and "." in inp:
            grp = MODULE_TO_GROUP.get(inp.split(".", 1)[0])
            if grp:
                return grp
    return None


def is_weight_node(node: Any, initializers: set[str]) -> bool:
    return node.op_type in WEIGHT_OPS and any(i in initializers for i in node.input[1:])


@dataclass(frozen=True)
class GroupMap:
    """Node names per layer group (plus OTHER), in graph order."""

    nodes: dict[str, list[str]]
    weight_nodes: dict[str, list[str]]

    def union(self, groups: Sequence[str]) -> list[str]:
        out: list[str] = []
        for g in groups:
            if g not in self.nodes:
                raise ParamError(f"ptq: unknown layer group {g!r} (known: {', '.join(GROUPS)})")
            out += self.nodes[g]
        return out

    def group_of(self) -> dict[str, str]:
        return {n: g for g, names in self.nodes.items() for n in names}


def group_nodes(model: Any) -> GroupMap:
    """Map every node of a (pre-processed) ECAPA ONNX graph to its layer group.

    Raises DataError when a weight-bearing node belongs to no group or a group is empty,
    so that a renamed export can never make the study quantize less than it says.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    nodes: dict[str, list[str]] = {g: [] for g in (*GROUPS, OTHER)}
    weights: dict[str, list[str]] = {g: [] for g in GROUPS}
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            # nodes_to_quantize works by name: every node needs a unique one
            raise DataError(f"ONNX node #{i} ({node.op_type}) has no unique name {node.name!r}")
        seen.add(node.name)
        mod = module_of(node.name)
        grp = MODULE_TO_GROUP.get(mod) if mod else None
        weighty = is_weight_node(node, inits)
        if grp is None and weighty:
            grp = _group_from_weight(node, inits)
        if grp is None:
            if weighty:
                raise DataError(f"weight-bearing ONNX node {node.name!r} ({node.op_type}) maps to "
                                f"no layer group (expected a /<module>/ prefix, modules: "
                                f"{', '.join(MODULE_TO_GROUP)})")
            nodes[OTHER].append(node.name)
            continue
        nodes[grp].append(node.name)
        if weighty:
            weights[grp].append(node.name)
    empty = [g for g in GROUPS if not weights[g]]
    if empty:
        raise DataError(f"layer group(s) {', '.join(empty)} have no weight-bearing ONNX node: "
                        "is this an ECAPA-TDNN export with the contract's submodule names?")
    return GroupMap(nodes=nodes, weight_nodes=weights)


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Utterances:
    """Rows of data/speakers/manifest.csv and the memory-mapped feature matrix."""

    ids: list[str]
    offsets: np.ndarray
    frames: np.ndarray
    split: np.ndarray
    speaker: np.ndarray
    feats: np.ndarray  # float16 [total_frames, n_mels], memory-mapped

    def index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.ids)}

    def feats_of(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray:
        n = int(self.frames[i]) if length is None else min(int(length), int(self.frames[i]) - start)
        o = int(self.offsets[i]) + start
        return np.asarray(self.feats[o:o + n], dtype=np.float32)


def load_utterances(data_dir: str | os.PathLike[str]) -> Utterances:
    import pandas as pd

    data_dir = Path(data_dir)
    man, fe = data_dir / "manifest.csv", data_dir / "feats.npy"
    for p in (man, fe):
        if not p.is_file():
            raise DataError(f"{p}: missing (run the prepare_speakers stage)")
    df = pd.read_csv(man, dtype={"utt_id": str, "speaker": str, "split": str})
    need = {"utt_id", "speaker", "split", "feat_offset", "feat_frames"}
    if need - set(df.columns):
        raise DataError(f"{man}: missing column(s) {', '.join(sorted(need - set(df.columns)))}")
    feats = np.load(fe, mmap_mode="r")
    if feats.ndim != 2:
        raise DataError(f"{fe}: expected [frames, n_mels], got shape {feats.shape}")
    ends = df["feat_offset"].to_numpy() + df["feat_frames"].to_numpy()
    if len(df) and ends.max() > feats.shape[0]:
        raise DataError(f"{man}: feat_offset + feat_frames exceeds the {feats.shape[0]} rows of {fe}")
    return Utterances(ids=df["utt_id"].tolist(), offsets=df["feat_offset"].to_numpy(np.int64),
                      frames=df["feat_frames"].to_numpy(np.int64),
                      split=df["split"].to_numpy(str), speaker=df["speaker"].to_numpy(str),
                      feats=feats)


class SpeakerCalibrationReader:
    """ORT CalibrationDataReader over train-split utterances only (never test data).

    `n` utterances are drawn with a seeded RNG from the train split; each gives one
    `[1, crop_frames, n_mels]` input, a random fixed-length crop (an utterance shorter than the
    crop is used whole). Fixed-length crops keep the calibration set's statistics comparable
    between utterances and bound its cost; 3 s matches the latency input. Re-iterable via
    `rewind()`.
    """

    def __init__(self, utts: Utterances, n: int, crop_frames: int, seed: int,
                 input_name: str = "feats") -> None:
        train = np.flatnonzero(utts.split == "train")
        if len(train) == 0:
            raise DataError("calibration: the manifest has no train-split utterances")
        rng = np.random.default_rng(seed)
        pick = rng.choice(train, size=min(n, len(train)), replace=False)
        self.indices = [int(i) for i in sorted(pick)]
        self.utt_ids = [utts.ids[i] for i in self.indices]
        self.input_name = input_name
        self._inputs = []
        for i in self.indices:
            total = int(utts.frames[i])
            start = int(rng.integers(0, total - crop_frames + 1)) if total > crop_frames else 0
            x = utts.feats_of(i, start, crop_frames)
            self._inputs.append(x[None])
        self._it = iter(self._inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (inp for inp in ({self.input_name: x} for x in self._inputs))

    def __len__(self) -> int:
        return len(self._inputs)

    def rewind(self) -> None:
        self._it = iter(self._inputs)


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIBRATION_METHODS:
        raise ParamError(f"ptq.calibration.method = {name!r} is not one of {CALIBRATION_METHODS}")
    return getattr(CalibrationMethod, name)


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]


def calibrate(model: str | os.PathLike[str], reader: SpeakerCalibrationReader, method: str,
              cache: str | os.PathLike[str], percentile: float = 99.999) -> Path:
    """Collect activation ranges once and save them as ORT's JSON calibration cache."""
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
    """How a static model is quantized (see the `ptq` params section)."""

    method: str = "MinMax"
    activation_type: str = "uint8"
    per_channel: bool = True
    reduce_range: bool = False
    quant_format: str = "QDQ"
    op_types: tuple[str, ...] | None = None  # None: every op type ORT can quantize

    @classmethod
    def from_params(cls, ptq: Mapping[str, Any]) -> QuantSettings:
        """The settings of the `ptq` params section."""
        return cls(method=ptq["calibration"]["method"], activation_type=ptq["activation_type"],
                   per_channel=bool(ptq["per_channel"]), reduce_range=bool(ptq["reduce_range"]),
                   quant_format=ptq["quant_format"],
                   op_types=tuple(ptq["op_types"]) if ptq["op_types"] else None)


def quantize_static_nodes(model: str | os.PathLike[str], out: str | os.PathLike[str],
                          cache: str | os.PathLike[str], nodes: Sequence[str] | None,
                          settings: QuantSettings) -> Path:
    """Static INT8 model quantizing only `nodes` (None: every node), from cached ranges.

    Of those nodes, only the op types in `settings.op_types` are quantized. Weights: symmetric
    INT8 (per channel when asked). Activations: 8-bit, uint8 asymmetric by default (what ORT's
    x86 integer kernels take: U8S8), int8 when asked.
    """
    from onnxruntime.quantization import QuantFormat, quantize_static

    if settings.activation_type not in ACTIVATION_TYPES:
        raise ParamError(f"ptq.activation_type = {settings.activation_type!r} is not one of "
                         f"{ACTIVATION_TYPES}")
    if nodes is not None and not nodes:
        raise ParamError("ptq: a quantized row needs at least one node to quantize")
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
            op_types_to_quantize=list(settings.op_types) if settings.op_types else None,
            extra_options={"WeightSymmetric": True},
        )
    return Path(out)


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
    short: dict[str, str] = {}
    counter = 0

    def rename(name: str) -> str:
        nonlocal counter
        if not name or name in keep:
            return name
        if name not in short:
            while (cand := f"q{counter:x}") in keep:
                counter += 1
            short[name] = cand
            counter += 1
        return short[name]

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
    """ORT dynamic quantization: INT8 weights, activation ranges computed at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_ort_quantization():
        quantize_dynamic(str(model), str(out), weight_type=QuantType.QInt8,
                         per_channel=per_channel)
    return Path(out)


def convert_float16(model: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Float16 weights and compute (float32 input/output kept, so callers feed the same array)."""
    import onnx
    from onnxconverter_common import float16

    # Cast nodes stay float32 (a cast whose 'to' says float would clash with the float16 type
    # the converter gives its output); the converter bridges them with casts.
    block = [*float16.DEFAULT_OP_BLOCK_LIST, "Cast"]
    m16 = float16.convert_float_to_float16(onnx.load(str(model)), keep_io_types=True,
                                           op_block_list=block)
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


def group_boundary_outputs(model: Any, gmap: GroupMap, group: str
                           ) -> list[tuple[str, str | None, int]]:
    """Tensors a group hands to the rest of the network, each with the reader that sees it.

    Returns (tensor, outside consumer node, input slot); the consumer is None for a graph
    output. The reader matters: in a QDQ model the group's output reaches it through a
    Quantize/DequantizeLinear pair (and a removable Relu may be folded into it), so the value
    it reads is found at its input slot, not under the float tensor's name.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    members = set(gmap.nodes[group])
    readers: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for n in model.graph.node:
        for k, i in enumerate(n.input):
            readers[i].append((n.name, k))
    graph_out = {o.name for o in model.graph.output}
    outs: list[tuple[str, str | None, int]] = []
    for n in model.graph.node:
        if n.name not in members:
            continue
        for o in n.output:
            if o in graph_out:
                outs.append((o, None, 0))
                continue
            outside = [(c, k) for c, k in readers.get(o, []) if c not in members]
            if outside:
                outs.append((o, *outside[0]))
    return outs


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


@dataclass
class ActivationError:
    """Float vs quantized outputs of one group, and of the embedding, over some inputs."""

    group: str
    tensors: list[str]
    out_rel_err: float  # ||q - f|| / ||f|| over the group's boundary tensors
    emb_rel_err: float
    emb_cos: float  # mean cosine between float and quantized embeddings
    weight_sqnr_db: float  # weight signal-to-quantization-noise ratio, mean over the group
    per_tensor: dict[str, float] = field(default_factory=dict)


def group_output_error(float_model: str | os.PathLike[str], quant_model: str | os.PathLike[str],
                       group: str, gmap: GroupMap, inputs: Sequence[Mapping[str, np.ndarray]],
                       output_name: str = "embedding", threads: int = 1) -> ActivationError:
    """Relative error of a group's output activations when only that group is quantized.

    Both graphs expose the group's boundary tensors as extra outputs (in the quantized graph,
    the tensor its first outside reader consumes, i.e. after any output Q/DQ); with every other
    node float, the error at the boundary is the group's own quantization error.
    """
    import onnx

    from slimaudio.latency import onnx_session

    fmodel = onnx.load(str(float_model))
    qmodel = onnx.load(str(quant_model))
    qnodes = {n.name: n for n in qmodel.graph.node}
    pairs: dict[str, str] = {}  # float tensor -> the tensor its reader sees in the quant model
    for tensor, reader, slot in group_boundary_outputs(fmodel, gmap, group):
        if reader is None:
            pairs[tensor] = tensor
        elif reader in qnodes and slot < len(qnodes[reader].input):
            pairs[tensor] = qnodes[reader].input[slot]
    if not pairs:
        raise DataError(f"{quant_model}: none of group {group}'s output readers survived")
    names = list(pairs)
    fs = onnx_session(with_outputs(fmodel, names), threads=threads, optimization="basic")
    qs = onnx_session(with_outputs(qmodel, list(pairs.values())), threads=threads,
                      optimization="basic")
    fo_names = [o.name for o in fs.get_outputs()]
    qo_names = [o.name for o in qs.get_outputs()]
    num: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    cos = []
    for feed in inputs:
        fo = dict(zip(fo_names, fs.run(None, dict(feed)), strict=True))
        qo = dict(zip(qo_names, qs.run(None, dict(feed)), strict=True))
        for t in [*names, output_name]:
            d = np.asarray(qo[pairs.get(t, t)], np.float64) - np.asarray(fo[t], np.float64)
            num[t] += float((d ** 2).sum())
            den[t] += float((np.asarray(fo[t], np.float64) ** 2).sum())
        fe, qe = fo[output_name].ravel(), qo[output_name].ravel()
        cos.append(float(fe @ qe / max(np.linalg.norm(fe) * np.linalg.norm(qe), 1e-12)))
    rel = {t: float(np.sqrt(num[t] / max(den[t], 1e-30))) for t in num}
    tot_num = sum(num[t] for t in names)
    tot_den = sum(den[t] for t in names)
    sq = weight_sqnr(fmodel, qmodel, gmap.weight_nodes[group])
    return ActivationError(
        group=group, tensors=names,
        out_rel_err=float(np.sqrt(tot_num / max(tot_den, 1e-30))),
        emb_rel_err=rel[output_name], emb_cos=float(np.mean(cos)),
        weight_sqnr_db=float(np.mean(list(sq.values()))) if sq else float("nan"),
        per_tensor={t: rel[t] for t in names},
    )


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
