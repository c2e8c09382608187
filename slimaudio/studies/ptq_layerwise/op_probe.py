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
NOTABLE_SHARE = 0.05  # smaller single losses are not listed


def added_op_types(model: Any, op_types: Sequence[str] | None) -> Counter[str]:
    """{op type: nodes} of the model's types that ORT's static quantization takes with no op
    list (its QLinear and QDQ registries) but `op_types` leaves out; recurrent ops are not
    static."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if op_types is None:
        return Counter()
    static = (set(QDQRegistry) | set(QLinearOpsRegistry)) - set(op_types) - onnx_int8.RECURRENT_OPS
    return Counter(n.op_type for n in model.graph.node if n.op_type in static)


def run_op_probe(bench: Bench, cfg: Config, err_inputs: Sequence[Mapping[str, np.ndarray]],
                 all_cos: float, all_ops_cos: float) -> list[dict[str, Any]]:
    """One record per added op type (op_type, nodes, emb_cos of `all` + that type); when none
    alone accounts for MAJOR_SHARE of all_ops's cosine loss, one more record for the fewest
    worst types whose single losses add up to it, quantized together ("Mul+Softmax")."""
    import onnx

    added = added_op_types(onnx.load(str(bench.float_path), load_external_data=False),
                           cfg.quant_settings.op_types)
    out = [_row(bench, cfg, err_inputs, (op,), n) for op, n in sorted(added.items())]
    loss = all_cos - all_ops_cos
    if loss <= 0 or not out or max(_share(r, all_cos, loss) for r in out) >= MAJOR_SHARE:
        return out
    ranked, chosen, total = sorted(out, key=lambda r: r["emb_cos"]), [], 0.0
    for r in ranked:
        chosen.append(r)
        total += _share(r, all_cos, loss)
        if total >= MAJOR_SHARE:
            break
    if len(chosen) > 1:
        types = tuple(sorted(r["op_type"] for r in chosen))
        out.append(_row(bench, cfg, err_inputs, types, sum(r["nodes"] for r in chosen)))
    return out


def _share(row: Mapping[str, Any], all_cos: float, loss: float) -> float:
    return (all_cos - row["emb_cos"]) / loss


def _row(bench: Bench, cfg: Config, err_inputs: Sequence[Mapping[str, np.ndarray]],
         types: tuple[str, ...], nodes: int) -> dict[str, Any]:
    """`all` plus `types`, quantized and compared with the float model."""
    name = "+".join(types)
    st = replace(cfg.quant_settings, op_types=(*cfg.quant_settings.op_types, *types))
    p, _ = onnx_int8.quantize_nodes(bench.float_path,
                                    bench.models_dir / "op_probe" / f"all+{name}.onnx",
                                    bench.cache, None, st)
    cos = embedding_cosine(bench.float_path, p, err_inputs, cfg.eval.threads)
    if bench.progress:
        print(f"op probe: all + {name} ({nodes} nodes): cosine {cos:.5f}", flush=True)
    return {"op_type": name, "types": len(types), "nodes": nodes, "emb_cos": cos}


def finding(probe: Sequence[Mapping[str, Any]], all_cos: float, all_ops_cos: float) -> str:
    """One sentence: which added types carry all_ops's embedding drift, from the probe."""
    loss = all_cos - all_ops_cos
    drift = f"all_ops's drift (cosine {all_cos:.5f} → {all_ops_cos:.5f})"
    if not probe or loss <= 0:
        return (f"all_ops does not drift further than all (cosine {all_ops_cos:.5f} vs "
                f"{all_cos:.5f}): no op type to blame.")
    single = sorted((r for r in probe if r["types"] == 1), key=lambda r: r["emb_cos"])
    major = [r for r in single if _share(r, all_cos, loss) >= MAJOR_SHARE]
    if major:
        blamed = ", ".join(f"{r['op_type']} ({r['nodes']} nodes: "
                           f"{100 * _share(r, all_cos, loss):.0f}% of the loss alone)"
                           for r in major)
        return (f"{drift} comes from quantizing {blamed}; the other added types each lose "
                f"less than {100 * MAJOR_SHARE:.0f}%.")
    alone = ", ".join(f"{r['op_type']} loses {100 * _share(r, all_cos, loss):.0f}%"
                      for r in single[:3] if _share(r, all_cos, loss) >= NOTABLE_SHARE)
    combined = [r for r in probe if r["types"] > 1]
    if not combined:
        return f"No single added op type explains {drift}: alone, {alone}; the types add up."
    c = combined[0]
    return (f"No single added op type explains {drift}: alone, {alone}; together "
            f"{' and '.join(c['op_type'].split('+'))} ({c['nodes']} nodes) give cosine "
            f"{c['emb_cos']:.5f}, {100 * _share(c, all_cos, loss):.0f}% of the loss.")
