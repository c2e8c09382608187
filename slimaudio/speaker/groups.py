"""The layer groups of a speaker-embedding ONNX model, as sets of ONNX nodes.

Default (params `ptq_layerwise.groups: null`): the paper's groups of our ECAPA-TDNN export.
Which ONNX nodes belong to which group is read from the node-name prefix the TorchScript
exporter writes (`/conv_in/...`, `/block1/...`, `/asp/...`, `/bn_asp/...`, `/fc/...`,
`/bn_fc/...`; docs/architecture.md, 'Model naming contracts'). A BN that the export or the
pre-processing folds into the Conv before it disappears, so the mapping is done on the
surviving nodes of the pre-processed model (ECAPA's BNs follow a ReLU and survive, in their
submodule's group); a weight-bearing node whose name carries no prefix (one an optimiser
renamed) falls back to the torch parameter name of its weight (`block2.conv1.0.weight`), and a
node that still has no group is an error, never silently float.

Any other model (`ptq_layerwise.groups: {group: regex}`, ordered): the regex groups of
slimaudio.compress.layer_groups, whose names must also be usable as the study's row and file
names. Nodes in no group go to OTHER, quantized only by `all`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slimaudio.compress import onnx_int8
from slimaudio.compress.layer_groups import (
    OTHER,
    GroupMap,
    check_names,
    compile_patterns,
    group_by_patterns,
)
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
SOURCE = "ptq_layerwise.groups"  # the params key the regex groups come from
# Group names are row names and file names (`<group>.onnx`): a word, none of the study's other
# rows or files, and no prefix of its search-only models or ablation variants.
GROUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
RESERVED = ("none", "all", "paper_choice", "proposed", "dynamic", "float16", "calibration", OTHER)
RESERVED_PREFIXES = ("search_", "all_")


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


def group_nodes(model: Any, patterns: Mapping[str, str] | None = None) -> GroupMap:
    """Map every node of a (pre-processed) ONNX graph to its layer group: the paper's groups of
    our ECAPA export by name prefix (`patterns` None), else the regex groups of `patterns`.

    Raises DataError (default groups) or ParamError (regex groups) when a weight-bearing node
    belongs to no group or a group is empty, so that a renamed export can never make the
    study quantize less than it says.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    check_names(model)
    if patterns is not None:
        check_patterns(patterns)
        return group_by_patterns(model, patterns, SOURCE)
    inits = {i.name for i in model.graph.initializer}
    nodes: dict[str, list[str]] = {g: [] for g in (*GROUPS, OTHER)}
    weights: dict[str, list[str]] = {g: [] for g in GROUPS}
    for node in model.graph.node:
        mod = module_of(node.name)
        grp = MODULE_TO_GROUP.get(mod) if mod else None
        weighty = onnx_int8.is_weight_node(node, inits)
        if grp is None and weighty:
            grp = group_from_weight(node, inits)
        if grp is None:
            if weighty:
                raise DataError(f"weight-bearing ONNX node {node.name!r} ({node.op_type}) maps to "
                                f"no layer group (expected a /<module>/ prefix, modules: "
                                f"{', '.join(MODULE_TO_GROUP)}; another model: give "
                                f"{SOURCE})")
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


def prepare(src: str | os.PathLike[str], dst: str | os.PathLike[str],
            patterns: Mapping[str, str] | None = None) -> Path:
    """The float model every row derives from: ORT's pre-processing, then one copy of each
    initializer per layer group (onnx_int8.unshare_initializers), so a group quantized alone
    never quantizes a weight another group reads. `patterns`: as group_nodes."""
    import onnx

    dst = onnx_int8.preprocess(src, dst)
    model = onnx.load(str(dst))
    if onnx_int8.unshare_initializers(model, group_nodes(model, patterns).group_of()):
        onnx.save(model, str(dst))
    return dst


def check_patterns(patterns: Mapping[str, str], source: str = SOURCE) -> None:
    """Regex groups as params give them: at least one, each name usable as a row and a file
    name, each pattern a valid regex; a one-line ParamError otherwise."""
    if not patterns:
        raise ParamError(f"params: {source}: give at least one group (or null for the paper's)")
    for g in patterns:
        if (not isinstance(g, str) or not GROUP_NAME.fullmatch(g) or g in RESERVED
                or g.startswith(RESERVED_PREFIXES)):
            raise ParamError(f"params: {source}.{g}: a group name is a word of letters, digits, "
                             f"_ . - (not {', '.join(RESERVED)}, nor search_* or all_*)")
    compile_patterns(patterns, source)
