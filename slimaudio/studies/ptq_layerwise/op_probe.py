"""Which op type's quantization the `all_ops` ablation's loss comes from (ptq_layerwise.op_probe).

`all_ops` quantizes every op type ORT can, `all` only the configured ones (ptq_layerwise.op_types).
For each op type of the model that `all_ops` adds, `all` plus that type alone is quantized and
its embeddings compared with the float model's on the error-analysis inputs (mean cosine): the
types whose rows fall furthest below `all` carry the drift. One quantization per type, no
trial scoring; the rows are not timed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.speaker.onnx_eval import embedding_cosine
from slimaudio.speaker.ptq_bench import Bench
from slimaudio.studies.ptq_layerwise.config import Config

# a type explains the drift when `all` plus it alone loses this share of all_ops's cosine loss
MAJOR_SHARE = 0.5


def added_op_types(model: Any, op_types: Sequence[str] | None) -> Counter[str]:
    """{op type: nodes} of the model's types that ORT's static quantization takes with no op
    list (its QLinear and QDQ registries) but `op_types` leaves out; recurrent ops are not
    static."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if op_types is None:
        return Counter()
    static = (set(QDQRegistry) | set(QLinearOpsRegistry)) - set(op_types) - onnx_int8.RECURRENT_OPS
    return Counter(n.op_type for n in model.graph.node if n.op_type in static)


def run_op_probe(bench: Bench, cfg: Config,
                 err_inputs: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, Any]]:
    """One record per added op type: op_type, nodes, emb_cos of `all` + that type."""
    import onnx

    base = cfg.quant_settings
    added = added_op_types(onnx.load(str(bench.float_path), load_external_data=False),
                           base.op_types)
    out = []
    for op, count in sorted(added.items()):
        st = replace(base, op_types=(*base.op_types, op))
        p, _ = onnx_int8.quantize_nodes(bench.float_path,
                                        bench.models_dir / "op_probe" / f"all+{op}.onnx",
                                        bench.cache, None, st)
        out.append({"op_type": op, "nodes": count,
                    "emb_cos": embedding_cosine(bench.float_path, p, err_inputs,
                                                cfg.eval.threads)})
        if bench.progress:
            print(f"op probe: all + {op} ({count} nodes): cosine {out[-1]['emb_cos']:.5f}",
                  flush=True)
    return out


def finding(probe: Sequence[Mapping[str, Any]], all_cos: float, all_ops_cos: float) -> str:
    """One sentence: which added types carry all_ops's embedding drift, from the probe."""
    loss = all_cos - all_ops_cos
    ranked = sorted(probe, key=lambda r: r["emb_cos"])
    if not ranked or loss <= 0:
        return (f"all_ops does not drift further than all (cosine {all_ops_cos:.5f} vs "
                f"{all_cos:.5f}): no op type to blame.")
    share = {r["op_type"]: (all_cos - r["emb_cos"]) / loss for r in ranked}
    major = [op for op in share if share[op] >= MAJOR_SHARE]
    worst = ranked[0]
    if not major:
        return (f"No single added op type explains all_ops's drift (cosine {all_ops_cos:.5f}, "
                f"all {all_cos:.5f}): the largest alone is {worst['op_type']} "
                f"({100 * share[worst['op_type']]:.0f}% of the loss); the types add up.")
    nodes = {r["op_type"]: r["nodes"] for r in ranked}
    blamed = ", ".join(f"{op} ({nodes[op]} nodes: {100 * share[op]:.0f}% of the loss alone)"
                       for op in major)
    return (f"all_ops's drift (cosine {all_cos:.5f} → {all_ops_cos:.5f}) comes from quantizing "
            f"{blamed}; the other added types each lose less than {100 * MAJOR_SHARE:.0f}%.")
