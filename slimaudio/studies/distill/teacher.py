"""The teacher as the study uses it: an ONNX Runtime session, its embeddings of feature
patches, its size, parameter count and batch-1 latency (the model itself is trained by the
train_teacher stage, slimaudio.speaker.train)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimaudio.errors import DataError
from slimaudio.progress import progress_bar


def teacher_session(path: str | os.PathLike[str], threads: int) -> Any:
    from slimaudio.latency import onnx_session

    if not Path(path).exists():
        raise DataError(f"{path}: teacher model missing (run the train_teacher stage)")
    try:
        return onnx_session(path, threads)
    except Exception as exc:  # noqa: BLE001 - ORT raises several types for a bad file
        raise DataError(f"{path}: cannot load the teacher ONNX model ({exc})") from None


def embed(session: Any, feats: np.ndarray, batch: int = 64, progress: bool = True) -> np.ndarray:
    """The teacher's embeddings of [N, frames, n_mels] feature patches (ONNX Runtime)."""

    name = session.get_inputs()[0].name
    out = []
    for i in progress_bar(range(0, len(feats), batch), desc="teacher", disable=not progress, leave=False):
        out.append(session.run(None, {name: np.ascontiguousarray(feats[i:i + batch])})[0])
    emb = np.concatenate(out).astype(np.float32)
    if not np.isfinite(emb).all():
        raise DataError("the teacher produced NaN/inf embeddings")
    return emb


def teacher_cost(path: str | os.PathLike[str], frames: int, n_mels: int, threads: int,
                 warmup: int, repeats: int, spread: Any = None) -> dict[str, float]:
    """Size of the ONNX file and ONNX Runtime latency for one patch (batch 1); `spread`:
    base.latency (slimaudio.latency.Spread; None: SIMPLE)."""
    from slimaudio import latency
    from slimaudio.metrics import file_size

    x = np.random.default_rng(0).standard_normal((1, frames, n_mels)).astype(np.float32)
    sess = teacher_session(path, threads)
    factory = latency.OnnxFactory(str(path), {sess.get_inputs()[0].name: x}, threads)
    lat = latency.measure_factories({"teacher": factory},
                                    latency.Timing.of(warmup, repeats, spread or latency.SIMPLE),
                                    threads, progress=False)["teacher"]
    return {**file_size(path), **lat.as_dict()}


def onnx_params(path: str | os.PathLike[str]) -> int:
    import onnx

    model = onnx.load(os.fspath(path))
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def teacher_summary(path: str | os.PathLike[str], cost: Mapping[str, float],
                    dim: int) -> dict[str, Any]:
    return {"path": os.fspath(path), "runtime": "ONNX Runtime", "embedding_dim": dim,
            "params": onnx_params(path), **cost}
