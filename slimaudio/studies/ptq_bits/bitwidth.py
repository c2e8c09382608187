"""Sub-8-bit weights per layer group, and a mixed-precision choice of bits under the EER budget.

At INT8 every group's EER change is within a trial or two at the default scale, so the
per-group ordering (the paper: blocks 2 and 3 most sensitive) cannot be resolved there. With
fewer weight bits the changes grow past the noise. The rows build on the per-layer study's
(models/ptq: the float model, each group's INT8 row, the calibration):

  <group>_w<b>      the group's INT8 row with its weights requantized to b bits
                    (slimaudio.compress.low_bit): real b-bit integer arithmetic in ORT's int8
                    kernels (the values use 2^b - 1 levels; the container stays 8-bit) with
                    8-bit activations, not a float simulation
  mixed_precision   bits per group (float, INT8 or a width below) chosen by
                    compress/budget_walk.py's greedy walk from the float model (AIMET AMP style)
                    under ptq_bits.budget_eer, every configuration on the way measured

Sizes: `packed_bytes` is what the parameters take packed at their bit widths; the ONNX file
(size_bytes) keeps 8-bit containers.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slimaudio import papers, stats
from slimaudio.compress import low_bit
from slimaudio.compress.budget_walk import WalkResult, walk
from slimaudio.speaker.ptq_bench import Bench, Row
from slimaudio.speaker.uncertainty import Scored

TOP_BITS = low_bit.MAX_BITS  # the INT8 rows' weights as quantized (7-bit under reduce_range)
FLOAT_BITS = 32              # a group left in float, in the mixed-precision walk
MIXED = "mixed_precision"
# The paper's most sensitive groups: those its choice leaves in float (blocks 2 and 3).
FOCUS = tuple(g for g in papers.PTQ_LAYERWISE["groups"]
              if g not in papers.PTQ_LAYERWISE["choice_groups"])


def row_name(group: str, bits: int) -> str:
    return f"{group}_w{bits}"  # MLflow names allow no '@'


def is_bits_row(name: str) -> bool:
    return re.fullmatch(r".+_w[2-7]", name) is not None


def _with_bits(bench: Bench, name: str, src: Path, node_bits: Mapping[str, int],
               groups: Sequence[str], bits: int | None) -> Row:
    """A scored row of `src` with the named nodes' weights at their bits."""
    with bench.timer.lap("weight_bits"):
        path = low_bit.set_weight_bits(src, bench.models_dir / f"{name}.onnx", node_bits)
    row = bench.evaluate(Row(name, path, "static", list(groups)))
    more = {"packed_bytes": float(low_bit.packed_weight_bytes(path, node_bits))}
    if bits is not None:
        more["weight_bits"] = float(bits)
    return row.with_metrics(more)


def bit_groups(rows: Mapping[str, Row], groups: Sequence[str]) -> list[str]:
    """The groups whose INT8 row has static QDQ weights to requantize (a group of LSTMs,
    quantized dynamically, or of GRUs, left float, has none)."""
    return [g for g in groups if low_bit.quantized_weight_nodes(rows[g].path)]


def solo_rows(bench: Bench, rows: Mapping[str, Row], groups: Sequence[str],
              widths: Sequence[int]) -> dict[str, Row]:
    """Each of `groups`' INT8 row at every width: the group's weight nodes at b bits."""
    out = {}
    for g, b in itertools.product(groups, widths):
        nodes = low_bit.quantized_weight_nodes(rows[g].path)
        out[row_name(g, b)] = _with_bits(bench, row_name(g, b), rows[g].path,
                                         {n: b for n in nodes}, [g], b)
    return out


def group_weight_counts(float_path: Path, bench: Bench) -> tuple[dict[str, int], int]:
    """Weights per group (elements of each weight node's weight initializer) in the float
    model, and the bytes of every other initializer."""
    import onnx

    model = onnx.load(str(float_path))
    inits = {i.name: i for i in model.graph.initializer}
    by_node = {n.name: n for n in model.graph.node}
    counts = {g: 0 for g in bench.gmap.groups}
    weights: set[str] = set()
    for g in bench.gmap.groups:
        for name in bench.gmap.weight_nodes.get(g, []):
            w = next((i for i in by_node[name].input[1:2] if i in inits), None)
            if w is not None and w not in weights:
                weights.add(w)
                counts[g] += math.prod(inits[w].dims)
    other = sum(low_bit.stored_bytes(i) for n, i in inits.items() if n not in weights)
    return counts, other


def mixed_precision(bench: Bench, rows: Mapping[str, Row], solo: Mapping[str, Row],
                    groups: Sequence[str], widths: Sequence[int], budget: float,
                    max_verify: int) -> tuple[WalkResult, Row | None, float]:
    """The greedy walk from the float model: each of `groups` float, INT8 or b-bit (any other
    group stays float); `rows`: `none` and each group's INT8 row, `solo`: each group at each
    width. Returns the walk, the chosen configuration's row (None: none but the float model
    is within the budget) and the float model's size on the walk's scale. Only the chosen
    model's file is kept."""
    eer0, groups = rows["none"].metrics["eer"], list(groups)
    group_of = bench.gmap.group_of()
    counts, other = group_weight_counts(bench.float_path, bench)
    other += sum(counts[g] * FLOAT_BITS / 8 for g in bench.gmap.groups if g not in groups)

    def size_of(config: Mapping[str, int]) -> float:
        """Parameter bytes with each group's weights packed at its bits (float: 4 bytes)."""
        return other + sum(counts[g] * config[g] / 8 for g in groups)

    made: dict[tuple[int, ...], Row] = {}

    def verify(config: dict[str, int]) -> float:
        quantized = [g for g in groups if config[g] <= TOP_BITS]
        if not quantized:  # the float model itself
            return 0.0
        base = bench.measure(quantized)
        bits = {n: config[group_of[n]] for n in low_bit.quantized_weight_nodes(base.path)
                if n in group_of}
        row = _with_bits(bench, f"mp_{len(made)}", base.path, bits, quantized, None)
        made[tuple(config[g] for g in groups)] = row
        return row.metrics["eer"] - eer0

    solo_delta = {(g, b): solo[row_name(g, b)].metrics["eer"] - eer0
                  for g in groups for b in widths}
    solo_delta |= {(g, TOP_BITS): rows[g].metrics["eer"] - eer0 for g in groups}
    solo_delta |= {(g, FLOAT_BITS): 0.0 for g in groups}
    res = walk(groups, (FLOAT_BITS, TOP_BITS, *widths), solo_delta, size_of, verify,
               budget, max_verify)
    chosen = res.chosen
    keep = None if chosen is None else made.get(tuple(chosen.config[g] for g in groups))
    for row in made.values():
        if row is not keep:
            row.path.unlink(missing_ok=True)
    bench.drop_search_models()
    float_size = size_of({g: FLOAT_BITS for g in groups})
    if keep is None:
        return res, None, float_size
    path = keep.path.rename(bench.models_dir / f"{MIXED}.onnx")
    mixed = Row(MIXED, path, "static", keep.groups, keep.metrics, keep.scores)
    return res, mixed.with_metrics({"weight_bits": float(min(chosen.config.values()))}), float_size


def ordering(level: float, scored: Mapping[str, Scored], groups: Sequence[str],
             widths: Sequence[int], focus: Sequence[str] = FOCUS
             ) -> dict[str, dict[str, list[float]]]:
    """Per width, the paired EER difference of each `focus` group's row minus every other
    group's row ([value, lo, hi], points) from the rows as scored for their intervals: above 0
    on the whole interval, the focus group is the more sensitive one."""
    out: dict[str, dict[str, list[float]]] = {}
    for b in widths:
        names = {g: row_name(g, b) for g in groups if row_name(g, b) in scored}
        if not all(f in names for f in focus):
            continue
        pairs = {}
        for f, h in itertools.product(focus, [g for g in names if g not in focus]):
            a, c = scored[names[f]], scored[names[h]]
            iv = stats.percentile(a.samples["eer"] - c.samples["eer"],
                                  a.values["eer"] - c.values["eer"], level)
            pairs[f"{f} - {h}"] = [iv.value, iv.lo, iv.hi]
        out[f"w{b}"] = pairs
    return out


def summary(res: WalkResult | None, float_size: float, order: Mapping[str, Any],
            widths: Sequence[int]) -> dict[str, Any]:
    """What metrics.json records of the sub-8-bit part (sizes of the walk: parameter bytes
    packed at their bits; `float_bytes`: the float model's on that scale)."""
    out: dict[str, Any] = {"widths": list(widths), "ordering": dict(order)}
    if res is not None:
        out["mixed_precision"] = res.as_dict() | {"float_bytes": float_size}
    return out

