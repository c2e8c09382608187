"""ONNX export of the ECAPA-TDNN embedding extractor and ONNX Runtime scoring.

The graph takes `feats` float32 [batch, frames, n_mels] (dynamic batch and frames) and returns
`embedding` [batch, 192]. The TorchScript-based exporter is used on purpose: it names nodes
after the module path ("/block1/conv1/..."), which the quantization study maps to layer groups.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimaudio.errors import DataError, SlimAudioError

INPUT, OUTPUT = "feats", "embedding"


class ExportMismatch(SlimAudioError):
    """An exported model disagrees with the torch model it came from."""


def export_bytes(model: nn.Module, n_mels: int, opset: int = 17, frames: int = 200) -> bytes:
    """Serialized ONNX model of `model` (put in eval mode)."""
    model.eval()
    buf = io.BytesIO()
    dummy = torch.randn(1, frames, n_mels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), buf, input_names=[INPUT], output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch", 1: "frames"}, OUTPUT: {0: "batch"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    return buf.getvalue()


def export_onnx(model: nn.Module, path: str | os.PathLike[str], n_mels: int,
                opset: int = 17) -> Path:
    """Write the ONNX model atomically and check it with the ONNX checker."""
    import onnx

    from slimaudio.atomic import atomic_path

    blob = export_bytes(model, n_mels, opset)
    onnx.checker.check_model(onnx.load_from_string(blob))
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def onnx_embedder(model: str | os.PathLike[str] | bytes | Any, threads: int = 1,
                  input_name: str | None = None, layout: str = "BTF"):
    """A function float32 [frames, n_mels] -> embedding, running an ORT session: the features
    go to `input_name` (None: the model's first input) in `layout` (BTF or BFT, params
    ecapa.init.input); the embedding is the first output (our exports: feats -> embedding)."""
    from slimaudio.latency import onnx_session

    sess = model if hasattr(model, "run") else onnx_session(model, threads)
    name = input_name or sess.get_inputs()[0].name
    out = sess.get_outputs()[0].name

    def embed(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        feed = x[None] if layout == "BTF" else np.ascontiguousarray(x.T)[None]
        return sess.run([out], {name: feed})[0].reshape(-1)

    return embed


def evaluate_onnx(model_path: str | os.PathLike[str] | bytes, data_dir: str | os.PathLike[str] | Any,
                  threads: int = 1, progress: bool = True, input_name: str | None = None,
                  layout: str = "BTF") -> dict[str, Any]:
    """EER / minDCF of an ONNX embedding extractor on a prepared speaker folder.

    Returns dict(eer (percent), min_dcf, min_dcf_p05, scores, labels, n_trials). `data_dir` may
    also be an already loaded slimaudio.datasets.speakers.SpeakerData.
    """
    from slimaudio.datasets import speakers
    from slimaudio.speaker.evaluate import score_trials
    from slimaudio.speaker.scoring import embed_all

    if not isinstance(model_path, bytes) and not Path(model_path).exists():
        raise DataError(f"{model_path}: no such ONNX model")
    data = data_dir if isinstance(data_dir, speakers.SpeakerData) else speakers.load(data_dir)
    emb = embed_all(onnx_embedder(model_path, threads, input_name, layout), ids=data.trials.utterances,
                    loader=data.utterance, progress=progress)
    out = score_trials(emb, data.trials).as_dict()
    out["n_trials"] = len(data.trials)
    return out
