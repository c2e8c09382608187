"""The paper's layer groups of ECAPA-TDNN, as sets of ONNX nodes.

Which ONNX nodes belong to which group is read from the node-name prefix the TorchScript
exporter writes (`/conv_in/...`, `/block1/...`, `/asp/...`, `/bn_asp/...`, `/fc/...`,
`/bn_fc/...`; docs/architecture.md, 'Model naming contracts'). A BN that the export or the
pre-processing folds into the Conv before it disappears, so the mapping is done on the
surviving nodes of the pre-processed model (ECAPA's BNs follow a ReLU and survive, in their
submodule's group); a weight-bearing node whose name carries no prefix (one an optimiser
renamed) falls back to the torch parameter name of its weight (`block2.conv1.0.weight`), and a
node that still has no group is an error, never silently float.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimaudio.compress import onnx_int8
from slimaudio.errors import DataError, ParamError
from slimaudio.papers import PTQ_LAYERWISE as PAPER

# The paper's Table 1 rows, in network order, and the torch submodules each one covers.
GROUPS: tuple[str, ...] = PAPER["groups"]
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


def module_of(name: str) -> str | None:
    """Top-level torch submodule of a TorchScript-exported node name
    ('/block1/se/Mul' -> 'block1')."""
    if not name.startswith("/"):
        return None
    head = name[1:].split("/", 1)[0]
    return head if "/" in name[1:] else None  # '/Concat' is a top-level op, not a submodule


def group_from_weight(node: Any, initializers: set[str]) -> str | None:
    """Group from the torch parameter name of a weight input ('fc.weight' -> 'fc')."""
    for inp in node.input:
        if inp in initializers and "." in inp:
            grp = MODULE_TO_GROUP.get(inp.split(".", 1)[0])
            if grp:
                return grp
    return None



@dataclass(frozen=True)
class GroupMap:
    """Node names per layer group (plus OTHER), in graph order."""

    nodes: dict[str, list[str]]
    weight_nodes: dict[str, list[str]]

    def union(self, groups: Sequence[str]) -> list[str]:
        out: list[str] = []
        for g in groups:
            if g not in self.nodes:
                raise ParamError(f"ptq_layerwise: unknown layer group {g!r} "
                                 f"(known: {', '.join(GROUPS)})")
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
        weighty = onnx_int8.is_weight_node(node, inits)
        if grp is None and weighty:
            grp = group_from_weight(node, inits)
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



def boundary_outputs(model: Any, gmap: GroupMap, group: str) -> list[tuple[str, str | None, int]]:
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



def prepare(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """The float model every row derives from: ORT's pre-processing, then one copy of each
    initializer per layer group (onnx_int8.unshare_initializers), so a group quantized alone
    never quantizes a weight another group reads."""
    import onnx

    dst = onnx_int8.preprocess(src, dst)
    model = onnx.load(str(dst))
    if onnx_int8.unshare_initializers(model, group_nodes(model).group_of()):
        onnx.save(model, str(dst))
    return dst


def match_patterns(weight_nodes: Sequence[str], patterns: dict[str, str],
                   source: str = "ptq_layerwise.groups") -> dict[str, list[str]]:
    """{group: nodes} for a model of any naming: each group is a regex over node names (as
    NNCF's ignored scopes and ORT's nodes_to_exclude); every weight-bearing node must match
    exactly one group. One-line ParamError naming an uncovered or doubly covered node.
    (WIP issue 17: not yet wired into group_nodes.)"""
    try:
        compiled = {g: re.compile(p) for g, p in patterns.items()}
    except re.error as e:
        raise ParamError(f"params: {source}: bad regex ({e})") from None
    out: dict[str, list[str]] = {g: [] for g in patterns}
    for node in weight_nodes:
        hits = [g for g, rx in compiled.items() if rx.search(node)]
        if not hits:
            raise ParamError(f"params: {source}: weight node {node!r} is in no group")
        if len(hits) > 1:
            raise ParamError(f"params: {source}: weight node {node!r} is in groups "
                             f"{' and '.join(hits)}")
        out[hits[0]].append(node)
    empty = [g for g, nodes in out.items() if not nodes]
    if empty:
        raise ParamError(f"params: {source}.{empty[0]}: the pattern matches no weight node")
    return out
