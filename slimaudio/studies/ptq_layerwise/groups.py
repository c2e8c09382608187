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

Any other model (`ptq_layerwise.groups: {group: regex}`, ordered): each group is a regex,
`re.search`ed in the node names of the pre-processed model, as NNCF's ignored scopes and ORT's
nodes_to_exclude select nodes. A weight-bearing node whose name matches no pattern is matched
through the name of its weight initializer instead (exporters keep the torch parameter name
there, `layer1.0.conv1.weight`; the copies `prepare` makes add a `__<group>` suffix, so do not
end such a pattern with `$`). Every weight-bearing node must fall in exactly one group, every
other node in at most one (it decides whether an Add or a Relu is quantized with a group), and
every group must hold a weight-bearing node: otherwise a one-line ParamError names the node and
its groups, or the group. Nodes no pattern matches go to OTHER, quantized only by `all`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
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



@dataclass(frozen=True)
class GroupMap:
    """Node names per layer group (plus OTHER), in graph order."""

    nodes: dict[str, list[str]]
    weight_nodes: dict[str, list[str]]

    @property
    def groups(self) -> tuple[str, ...]:
        """The layer groups, in order (OTHER is not one)."""
        return tuple(self.weight_nodes)

    def union(self, groups: Sequence[str]) -> list[str]:
        out: list[str] = []
        for g in groups:
            if g not in self.weight_nodes:
                raise ParamError(f"ptq_layerwise: unknown layer group {g!r} "
                                 f"(known: {', '.join(self.groups)})")
            out += self.nodes[g]
        return out

    def group_of(self) -> dict[str, str]:
        return {n: g for g, names in self.nodes.items() for n in names}


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
    _check_names(model)
    if patterns is not None:
        return _group_by_patterns(model, patterns)
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


def _check_names(model: Any) -> None:
    """nodes_to_quantize works by name: every node needs a unique one."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            raise DataError(f"ONNX node #{i} ({node.op_type}) has no unique name {node.name!r}")
        seen.add(node.name)


def _weight_name(node: Any, initializers: set[str]) -> str | None:
    """The initializer a weight node applies (its first initializer input after the data)."""
    return next((i for i in node.input[1:] if i in initializers), None)


def _group_by_patterns(model: Any, patterns: Mapping[str, str]) -> GroupMap:
    """GroupMap of regex groups (module docstring): weight nodes by match_patterns, every other
    node into the one group whose pattern its name matches, or OTHER."""
    check_patterns(patterns)
    compiled = compile_patterns(patterns)
    inits = {i.name for i in model.graph.initializer}
    weighty = [n for n in model.graph.node if onnx_int8.is_weight_node(n, inits)]
    aliases = {n.name: w for n in weighty if (w := _weight_name(n, inits))}
    weights = match_patterns([n.name for n in weighty], patterns, SOURCE, aliases)
    group = {n: g for g, names in weights.items() for n in names}
    nodes: dict[str, list[str]] = {g: [] for g in (*patterns, OTHER)}
    for node in model.graph.node:
        grp = group.get(node.name)
        if grp is None:
            hits = _hits(node.name, compiled)
            if len(hits) > 1:
                raise ParamError(f"params: {SOURCE}: node {node.name!r} ({node.op_type}) is in "
                                 f"groups {' and '.join(hits)}")
            grp = hits[0] if hits else OTHER
        nodes[grp].append(node.name)
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


def compile_patterns(patterns: Mapping[str, str], source: str = SOURCE
                     ) -> dict[str, re.Pattern[str]]:
    """The groups' regexes, compiled; a one-line ParamError for a bad regex."""
    out: dict[str, re.Pattern[str]] = {}
    for g, p in patterns.items():
        if not isinstance(p, str) or not p:
            raise ParamError(f"params: {source}.{g} = {p!r}: expected a regex string")
        try:
            out[g] = re.compile(p)
        except re.error as e:
            raise ParamError(f"params: {source}.{g}: bad regex {p!r} ({e})") from None
    return out


def _hits(name: str, compiled: Mapping[str, re.Pattern[str]]) -> list[str]:
    return [g for g, rx in compiled.items() if rx.search(name)]


def match_patterns(weight_nodes: Sequence[str], patterns: Mapping[str, str],
                   source: str = SOURCE, aliases: Mapping[str, str] | None = None
                   ) -> dict[str, list[str]]:
    """{group: nodes} for a model of any naming: each group is a regex over node names (as
    NNCF's ignored scopes and ORT's nodes_to_exclude); every weight-bearing node must match
    exactly one group, by its name or, when its name matches none, by its alias (its weight
    initializer's name). One-line ParamError naming an uncovered or doubly covered node, or a
    group that matches no weight node."""
    compiled = compile_patterns(patterns, source)
    aliases = aliases or {}
    out: dict[str, list[str]] = {g: [] for g in patterns}
    for node in weight_nodes:
        hits, via = _hits(node, compiled), ""
        if not hits and node in aliases:
            hits, via = _hits(aliases[node], compiled), f" (by its weight {aliases[node]!r})"
        if not hits:
            alias = f" (nor is its weight {aliases[node]!r})" if node in aliases else ""
            raise ParamError(f"params: {source}: weight node {node!r} is in no group{alias}")
        if len(hits) > 1:
            raise ParamError(f"params: {source}: weight node {node!r}{via} is in groups "
                             f"{' and '.join(hits)}")
        out[hits[0]].append(node)
    empty = [g for g, nodes in out.items() if not nodes]
    if empty:
        raise ParamError(f"params: {source}.{empty[0]}: the pattern matches no weight node")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m slimaudio.studies.ptq_layerwise.groups model.onnx [--groups JSON]`: the
    weight-bearing nodes of the pre-processed model (the names the patterns see), with their
    weight names; with --groups, the group each falls in, or the one-line error."""
    import argparse
    import json
    import tempfile

    import onnx

    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--groups", help='e.g. \'{"stem": "^/conv1/", "body": "/layer"}\'')
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        model = onnx.load(str(onnx_int8.preprocess(a.model, Path(d) / "pre.onnx")))
    inits = {i.name for i in model.graph.initializer}
    group_of = group_nodes(model, json.loads(a.groups)).group_of() if a.groups else {}
    for node in model.graph.node:
        if onnx_int8.is_weight_node(node, inits):
            print(f"{node.name}\t{node.op_type}\t{_weight_name(node, inits) or '-'}"
                  + (f"\t{group_of.get(node.name, OTHER)}" if a.groups else ""))


if __name__ == "__main__":
    from slimaudio.stage import cli

    cli(main)
