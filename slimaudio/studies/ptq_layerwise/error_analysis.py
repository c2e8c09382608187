"""Why the groups differ: each group's own quantization error, and how it ranks with ΔEER."""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.compress.layer_groups import GroupMap, boundary_outputs
from slimaudio.errors import DataError

ERROR_KEYS = ("out_rel_err", "emb_rel_err")  # correlated with ΔEER across groups


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
                       output_name: str | None = None, threads: int = 1) -> ActivationError:
    """Relative error of a group's output activations when only that group is quantized.

    Both graphs expose the group's boundary tensors as extra outputs (in the quantized graph,
    the tensor its first outside reader consumes, i.e. after any output Q/DQ); with every other
    node float, the error at the boundary is the group's own quantization error.
    `output_name`: the embedding (None: the model's first output).
    """
    import onnx

    from slimaudio.latency import onnx_session

    fmodel = onnx.load(str(float_model))
    qmodel = onnx.load(str(quant_model))
    output_name = output_name or fmodel.graph.output[0].name
    qnodes = {n.name: n for n in qmodel.graph.node}
    pairs: dict[str, str] = {}  # float tensor -> the tensor its reader sees in the quant model
    for tensor, reader, slot in boundary_outputs(fmodel, gmap, group):
        if reader is None:
            pairs[tensor] = tensor
        elif reader in qnodes and slot < len(qnodes[reader].input):
            pairs[tensor] = qnodes[reader].input[slot]
    if not pairs:
        raise DataError(f"{quant_model}: none of group {group}'s output readers survived")
    names = list(pairs)
    fs = onnx_session(onnx_int8.with_outputs(fmodel, names), threads=threads,
                      optimization="basic")
    qs = onnx_session(onnx_int8.with_outputs(qmodel, list(pairs.values())), threads=threads,
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
    sq = onnx_int8.weight_sqnr(fmodel, qmodel, gmap.weight_nodes[group])
    return ActivationError(
        group=group, tensors=names,
        out_rel_err=float(np.sqrt(tot_num / max(tot_den, 1e-30))),
        emb_rel_err=rel[output_name], emb_cos=float(np.mean(cos)),
        weight_sqnr_db=float(np.mean(list(sq.values()))) if sq else float("nan"),
        per_tensor={t: rel[t] for t in names},
    )


def rank_correlations(errors: Sequence[ActivationError], delta_eer: Mapping[str, float]
                      ) -> dict[str, float | None]:
    """Spearman's rho of each error (ERROR_KEYS) with the groups' ΔEER; None when undefined
    (all-equal ΔEERs); nothing below three groups."""
    if len(errors) <= 2:
        return {}
    from scipy.stats import spearmanr

    d = [delta_eer[e.group] for e in errors]
    out: dict[str, float | None] = {}
    for key in ERROR_KEYS:
        with warnings.catch_warnings():  # all-equal ΔEERs: no correlation, NaN below
            warnings.simplefilter("ignore")
            rho = spearmanr([getattr(e, key) for e in errors], d).statistic
        out[f"spearman_{key}_vs_delta_eer"] = None if np.isnan(rho) else float(rho)
    return out
