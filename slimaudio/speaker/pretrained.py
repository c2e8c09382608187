"""Where the speaker studies' model comes from (params `ecapa.init`): trained here, or imported.

- `train`: the pipeline trains ECAPA-TDNN on the prepared corpus (the synthetic default).
- `speechbrain`: a SpeechBrain ECAPA-TDNN folder (hyperparams.yaml + embedding_model.ckpt) is
  imported into the project's EcapaTdnn; nothing is trained.
- `onnx`: any speaker-embedding ONNX file; the studies that work on ONNX (evaluation, PTQ) use it
  as it is, and the PWL study, which rewrites and fine-tunes torch modules, does not run.

An imported model comes without the AAM-softmax head the PWL fine-tuning trains with: the head
for the prepared train-split speakers is imprinted from the model's own embeddings (each row the
normalised mean embedding of that speaker's crops), so fine-tuning starts from a sensible head.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.ecapa import Init

if TYPE_CHECKING:  # the torch side is imported where it is used: the schema stays light
    from slimaudio.datasets.speakers import SpeakerData
    from slimaudio.models.ecapa import EcapaTdnn
    from slimaudio.speaker.aamsoftmax import AAMSoftmax

IMPRINT_CROPS = 4  # crops per speaker that imprint the AAM head


def import_torch(cfg: Init, data: SpeakerData) -> EcapaTdnn:
    """The imported torch model (kind `speechbrain`), checked against the prepared features."""
    from slimaudio.models.speechbrain_import import load_folder

    if cfg.kind != "speechbrain":
        raise ParamError(f"params: ecapa.init.kind = {cfg.kind!r} has no torch model to import")
    model = load_folder(cfg.file)
    if model.cfg.n_mels != data.n_mels:
        raise DataError(f"{cfg.path}: the model takes {model.cfg.n_mels} mel bands, "
                        f"{data.root}/feats.npy has {data.n_mels} "
                        "(set prepare_speakers.features.n_mels)")
    return model


def imprinted_head(model: EcapaTdnn, data: SpeakerData, crop_frames: int, margin: float,
                   scale: float, seed: int) -> tuple[AAMSoftmax, list[str]]:
    """An AAM-softmax head over the train-split speakers, each row the unit mean embedding of
    IMPRINT_CROPS random crops of that speaker (train split only: never test audio)."""
    import numpy as np
    import torch

    from slimaudio.speaker.aamsoftmax import AAMSoftmax
    from slimaudio.speaker.data import CropSampler

    sampler = CropSampler(data, crop_frames, seed)
    aam = AAMSoftmax(model.cfg.embedding_dim, sampler.n_classes, margin, scale)
    rows = torch.zeros(sampler.n_classes, model.cfg.embedding_dim)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for label in range(sampler.n_classes):
            utts = np.flatnonzero(sampler.labels == label)
            picks = rng.choice(utts, size=IMPRINT_CROPS, replace=len(utts) < IMPRINT_CROPS)
            x = torch.from_numpy(np.stack([sampler.crop_one(int(i)) for i in picks])).float()
            emb = torch.nn.functional.normalize(model(x), dim=1).mean(0)
            rows[label] = torch.nn.functional.normalize(emb, dim=0)
        aam.weight.copy_(rows)
    return aam.eval(), sampler.speakers


def check_onnx(path: Path, n_mels: int, input_name: str | None = None,
               layout: str = "BTF") -> dict[str, Any]:
    """The input (`input_name`, else the only one) is [batch, frames, n_mels] (BTF) or
    [batch, n_mels, frames] (BFT) with dynamic frames: else a one-line DataError naming the
    file."""
    import onnx

    if not path.is_file():
        raise DataError(f"{path}: no such ONNX file (ecapa.init.path)")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends
        raise DataError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    if input_name is None and len(inputs) != 1:
        raise DataError(f"{path}: {len(inputs)} inputs ({', '.join(inputs)}); name the one "
                        "that takes the features in ecapa.init.input.name")
    name = input_name or next(iter(inputs))
    if name not in inputs:
        raise DataError(f"{path}: no input {name!r} (ecapa.init.input.name); it has "
                        f"{', '.join(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
            for d in inputs[name].type.tensor_type.shape.dim]
    frames, feats = (1, 2) if layout == "BTF" else (2, 1)
    if len(dims) != 3 or isinstance(dims[frames], int) or dims[feats] != n_mels:
        want = f"[batch, frames (dynamic), {n_mels}]" if layout == "BTF" else \
            f"[batch, {n_mels}, frames (dynamic)]"
        raise DataError(f"{path}: input {name} has shape {dims}; expected {want} (layout "
                        f"{layout}, n_mels from prepare_speakers.features)")
    import hashlib

    import numpy as np

    n = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    # the file's hash goes into ecapa_model's output, so a changed file reruns eval_ecapa
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"input": f"{name} {dims} {layout}", "parameters": n, "sha256": digest}


def save_onnx_pointer(dst: str | Path, onnx_path: Path, info: Mapping[str, Any]) -> None:
    """The ecapa_model output for an ONNX import: no torch weights, where the model is."""
    import torch

    from slimaudio.atomic import atomic_path

    with atomic_path(dst) as tmp:
        torch.save({"onnx_import": str(onnx_path), "info": dict(info)}, tmp)
