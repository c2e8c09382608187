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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError, ParamError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler

KINDS = ("train", "speechbrain", "onnx")
IMPRINT_CROPS = 4  # crops per speaker that imprint the AAM head


@dataclass(frozen=True)
class InitConfig:
    kind: str
    path: Path

    @classmethod
    def from_params(cls, init: Mapping[str, Any]) -> InitConfig:
        kind = str(init["kind"])
        if kind not in KINDS:
            raise ParamError(f"params: ecapa.init.kind = {kind!r} (known: {', '.join(KINDS)})")
        return cls(kind=kind, path=Path(str(init["path"])))

    @property
    def imported(self) -> bool:
        return self.kind != "train"


def import_torch(cfg: InitConfig, data: SpeakerData) -> EcapaTdnn:
    """The imported torch model (kind `speechbrain`), checked against the prepared features."""
    from slimaudio.models.speechbrain_import import load_folder

    if cfg.kind != "speechbrain":
        raise ParamError(f"params: ecapa.init.kind = {cfg.kind!r} has no torch model to import")
    model = load_folder(cfg.path)
    if model.cfg.n_mels != data.n_mels:
        raise DataError(f"{cfg.path}: the model takes {model.cfg.n_mels} mel bands, "
                        f"{data.root}/feats.npy has {data.n_mels} "
                        "(set prepare_speakers.features.n_mels)")
    return model


@torch.no_grad()
def imprinted_head(model: EcapaTdnn, data: SpeakerData, crop_frames: int, margin: float,
                   scale: float, seed: int) -> tuple[AAMSoftmax, list[str]]:
    """An AAM-softmax head over the train-split speakers, each row the unit mean embedding of
    IMPRINT_CROPS random crops of that speaker (train split only: never test audio)."""
    sampler = CropSampler(data, crop_frames, seed)
    aam = AAMSoftmax(model.cfg.embedding_dim, sampler.n_classes, margin, scale)
    rows = torch.zeros(sampler.n_classes, model.cfg.embedding_dim)
    rng = np.random.default_rng(seed)
    for label in range(sampler.n_classes):
        utts = np.flatnonzero(sampler.labels == label)
        picks = rng.choice(utts, size=IMPRINT_CROPS, replace=len(utts) < IMPRINT_CROPS)
        x = torch.from_numpy(np.stack([sampler.crop_one(int(i)) for i in picks])).float()
        emb = torch.nn.functional.normalize(model(x), dim=1).mean(0)
        rows[label] = torch.nn.functional.normalize(emb, dim=0)
    aam.weight.copy_(rows)
    return aam.eval(), sampler.speakers


def check_onnx(path: Path, n_mels: int) -> dict[str, Any]:
    """One input [batch, frames, n_mels] with dynamic frames, one output: else a one-line
    DataError naming the file."""
    import onnx

    if not path.is_file():
        raise DataError(f"{path}: no such ONNX file (ecapa.init.path)")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends
        raise DataError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise DataError(f"{path}: {len(inputs)} inputs; a speaker-embedding model takes one "
                        "[batch, frames, n_mels] tensor")
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
            for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 3 or isinstance(dims[1], int) or dims[2] != n_mels:
        raise DataError(f"{path}: input {inputs[0].name} has shape {dims}; expected [batch, "
                        f"frames (dynamic), {n_mels}] as prepare_speakers.features gives")
    import hashlib

    n = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    # the file's hash goes into ecapa_model's output, so a changed file reruns eval_ecapa
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"input": f"{inputs[0].name} {dims}", "parameters": n, "sha256": digest}


def save_onnx_pointer(dst: str | Path, onnx_path: Path, info: Mapping[str, Any]) -> None:
    """The ecapa_model output for an ONNX import: no torch weights, where the model is."""
    from slimaudio.atomic import atomic_path

    with atomic_path(dst) as tmp:
        torch.save({"onnx_import": str(onnx_path), "info": dict(info)}, tmp)
