"""`all` with one setting changed: size, embedding drift and (for some) EER of each variant.

The variants and what each changes are slimaudio.schemas.ptq_layerwise.ABLATIONS (the one list
of them); latency and the operator profile are measured with every row (timing.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.compress import onnx_int8
from slimaudio.compress.onnx_int8 import QuantSettings
from slimaudio.metrics import file_size, verification_metrics
from slimaudio.schemas.ptq_layerwise import ABLATIONS
from slimaudio.speaker.onnx_eval import embedding_cosine
from slimaudio.speaker.ptq_bench import Bench
from slimaudio.studies.ptq_layerwise.config import Config

COLUMNS = ["variant", "activation_type", "quant_format", "per_channel", "reduce_range", "op_types",
           "session_config", "eer", "delta_eer", "delta_eer_lo", "delta_eer_hi", "min_dcf",
           "size_bytes", "size_mib", "size_ratio",
           "emb_cos", "latency_ms", "latency_p90_ms", "latency_std_ms", "speedup",
           "float_conv_kernels"]


@dataclass(frozen=True)
class Ablation:
    """The variants' records (COLUMNS), model files and ORT session config entries by name; a
    step that adds columns returns a new Ablation with new records."""

    records: list[dict[str, Any]]
    paths: dict[str, Path]
    configs: dict[str, dict[str, str]]
    scores: dict[str, np.ndarray]  # trial scores of the variants whose EER is measured


def variant_name(name: str) -> str:
    return name if name.startswith("all_") else f"all_{name}"


def variant_settings(base: QuantSettings, name: str
                     ) -> tuple[QuantSettings, dict[str, str]] | None:
    """`all`'s settings with one changed (and the session config it runs with); None when the
    configuration already is that variant."""
    spec = ABLATIONS[name]
    new = replace(base, **spec["settings"])
    config = dict(spec["session"])
    return None if (new == base and not config) else (new, config)


def run_ablation(bench: Bench, cfg: Config, eer0: float,
                 err_inputs: Sequence[Mapping[str, np.ndarray]]) -> Ablation:
    """Quantize and score every configured variant (cfg.ablation) that differs from `all`."""
    out = Ablation([], {}, {}, {})
    for name in cfg.ablation:
        got = variant_settings(cfg.quant_settings, name)
        if got is None:
            continue
        st, config = got
        variant = variant_name(name)
        p, _ = onnx_int8.quantize_nodes(bench.float_path,
                                        bench.models_dir / "ablation" / f"{variant}.onnx",
                                        bench.cache, None, st)
        onnx_int8.compact_names(p, bench.float_path)
        ev = {"eer": float("nan"), "min_dcf": float("nan")}
        if name in cfg.ablation_eer:
            out.scores[variant] = bench.evalset.scores(p, cfg.eval.threads, bench.progress, config)
            ev = verification_metrics(out.scores[variant], bench.evalset.trials.labels)
        out.paths[variant], out.configs[variant] = p, config
        out.records.append({
            "variant": variant, "activation_type": st.activation_type,
            "quant_format": st.quant_format, "per_channel": st.per_channel,
            "reduce_range": st.reduce_range,
            "op_types": " ".join(st.op_types) if st.op_types else "every",
            "eer": ev["eer"], "delta_eer": ev["eer"] - eer0,
            "session_config": " ".join(f"{k}={v}" for k, v in config.items()),
            "min_dcf": ev["min_dcf"], **file_size(p),
            "emb_cos": embedding_cosine(bench.float_path, p, err_inputs, cfg.eval.threads, config)})
    return out
