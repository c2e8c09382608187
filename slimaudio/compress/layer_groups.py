"""Layer groups of any ONNX model, as sets of nodes: the unit a per-layer quantization study
quantizes alone, mixes and searches over.

A grouping is an ordered {group: regex}: each regex is `re.search`ed in the node names of the
(pre-processed) model, as NNCF's ignored scopes and ORT's nodes_to_exclude select nodes. A
weight-bearing node whose name matches no pattern is matched through the name of its weight
initializer instead (exporters keep the torch parameter name there, `layer1.0.conv1.weight`;
copies made by onnx_int8.unshare_initializers add a `__<group>` suffix, so do not end such a
pattern with `$`). Every weight-bearing node must fall in exactly one group, every other node
in at most one (it decides whether an Add or a Relu is quantized with a group), and every
group must hold a weight-bearing node: otherwise a one-line ParamError names the node and its
groups, or the group. Nodes no pattern matches go to OTHER.

`python -m slimaudio.compress.layer_groups model.onnx [--groups JSON]` lists the names the
patterns see.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimaudio.compress import onnx_int8
from slimaudio.errors import DataError, ParamError

OTHER = "other"  # nodes in no group: quantized only when the whole model is


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
                raise ParamError(f"unknown layer group {g!r} "
                                 f"(known: {', '.join(self.groups)})")
            out += self.nodes[g]
        return out

    def group_of(self) -> dict[str, str]:
        return {n: g for g, names in self.nodes.items() for n in names}


def check_names(model: Any) -> None:
    """nodes_to_quantize works by name: every node needs a unique one."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            raise DataError(f"ONNX node #{i} ({node.op_type}) has no unique name {node.name!r}")
        seen.add(node.name)


def weight_name(node: Any, initializers: set[str]) -> str | None:
    """The initializer a weight node applies (its first initializer input after the data)."""
    return next((i for i in node.input[1:] if i in initializers), None)


def group_by_patterns(model: Any, patterns: Mapping[str, str], source: str) -> GroupMap:
    """The nodes of `model` in the regex groups of params key `source` (module docstring):
    weight nodes by match_patterns, every other node into the one group whose pattern its name
    matches, or OTHER."""
    compiled = compile_patterns(patterns, source)
    inits = {i.name for i in model.graph.initializer}
    weighty = [n for n in model.graph.node if onnx_int8.is_weight_node(n, inits)]
    aliases = {n.name: w for n in weighty if (w := weight_name(n, inits))}
    _check_weightless(model, compiled, weighty, aliases, source)
    weights = match_patterns([n.name for n in weighty], patterns, source, aliases)
    group = {n: g for g, names in weights.items() for n in names}
    nodes: dict[str, list[str]] = {g: [] for g in (*patterns, OTHER)}
    for node in model.graph.node:
        grp = group.get(node.name)
        if grp is None:
            hits = _hits(node.name, compiled)
            if len(hits) > 1:
                raise ParamError(f"params: {source}: node {node.name!r} ({node.op_type}) is in "
                                 f"groups {' and '.join(hits)}")
            grp = hits[0] if hits else OTHER
        nodes[grp].append(node.name)
    return GroupMap(nodes=nodes, weight_nodes=weights)


def _check_weightless(model: Any, compiled: Mapping[str, re.Pattern[str]], weighty: Sequence[Any],
                      aliases: Mapping[str, str], source: str) -> None:
    """A pattern that matches nodes, none of them weight-bearing: a ParamError naming what it
    matched and why those nodes do not count (match_patterns names a pattern matching none)."""
    for g, rx in compiled.items():
        if any(rx.search(n.name) or (n.name in aliases and rx.search(aliases[n.name]))
               for n in weighty):
            continue
        hit = [n for n in model.graph.node if rx.search(n.name)]
        if hit:
            shown = ", ".join(f"{n.name!r} ({n.op_type})" for n in hit[:3])
            more = f" and {len(hit) - 3} more" if len(hit) > 3 else ""
            raise ParamError(
                f"params: {source}.{g}: the pattern matches {shown}{more}, none of which holds "
                f"a weight (a weight node is one of {', '.join(sorted(onnx_int8.WEIGHT_OPS))} "
                "with an initializer weight)")


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


def compile_patterns(patterns: Mapping[str, str], source: str
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
                   source: str, aliases: Mapping[str, str] | None = None
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
    """`python -m slimaudio.compress.layer_groups model.onnx [--groups JSON]`: the
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
    check_names(model)
    group_of = (group_by_patterns(model, json.loads(a.groups), "--groups").group_of()
                if a.groups else {})
    for node in model.graph.node:
        if onnx_int8.is_weight_node(node, inits):
            print(f"{node.name}\t{node.op_type}\t{weight_name(node, inits) or '-'}"
                  + (f"\t{group_of.get(node.name, OTHER)}" if a.groups else ""))


if __name__ == "__main__":
    from slimaudio.stage import cli

    cli(main)
