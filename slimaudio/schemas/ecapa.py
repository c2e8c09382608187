"""Section `ecapa`: where the speaker model comes from, its shape, its training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slimaudio.spec import Each, param, section


@dataclass(frozen=True)
class ModelInput:
    name: str | None = param("onnx: the model input fed the features (null: its first)")
    layout: Literal["BTF", "BFT"] = param(
        "onnx: BTF [batch, frames, features] or BFT [batch, features, frames]; the frames "
        "dimension must be dynamic")


# How our own exports (slimaudio.speaker.export) take their features: at the first input, BTF.
EXPORT_INPUT = ModelInput(name=None, layout="BTF")


@dataclass(frozen=True)
class Init:
    kind: Literal["train", "speechbrain", "onnx"] = param(
        "train: train ECAPA-TDNN here (ecapa.model, ecapa.train); speechbrain: import a "
        "SpeechBrain ECAPA-TDNN folder; onnx: any speaker-embedding ONNX file (evaluation and "
        "PTQ only, no PWL study). Nothing is trained unless kind is train")
    path: str = param("speechbrain: the folder with hyperparams.yaml and embedding_model.ckpt; "
                      "onnx: the .onnx file (a dependency of ecapa_model: DVC reruns it when the "
                      "files change); train: unused")
    input: ModelInput = param()

    @property
    def imported(self) -> bool:
        return self.kind != "train"

    @property
    def file(self) -> Path:
        return Path(self.path)

    @property
    def model_input(self) -> ModelInput:
        """How the studies' ONNX model takes its features: the user's settings for an ONNX
        file, our exports' otherwise."""
        return self.input if self.kind == "onnx" else EXPORT_INPUT


@dataclass(frozen=True)
class Model:
    channels: int = param("C, the width of the three SE-Res2Blocks (paper: 1024)", lo=8, hi=4096)
    mfa_channels: int = param("output of the aggregation conv (paper: 1536 = 1.5 C)",
                              lo=8, hi=8192)
    attention_channels: int = param("attentive-pooling bottleneck (paper: 128)", lo=4, hi=1024)
    embedding_dim: int = param("the embedding size the contract fixes", choices=[192])
    scale: int = param("Res2Net scale (must divide channels)", lo=2, hi=16)
    se_bottleneck: int = param("squeeze-excitation bottleneck (paper: 128)", lo=4, hi=1024)


@dataclass(frozen=True)
class Train:
    steps: int = param("optimizer steps", lo=1)
    batch_size: int = param("utterance crops per step", lo=2, hi=1024)
    crop_s: float = param("random crop length of the training utterances (s)", lo=0.2, hi=10.0)
    lr: float = param("peak Adam learning rate (linear warm-up, then cosine decay to lr_min)",
                      lo=1e-6, hi=1.0)
    lr_min: float = param("learning rate at the end of the cosine decay", lo=0.0, hi=1.0)
    warmup_steps: int = param("linear warm-up steps", lo=0)
    weight_decay: float = param("Adam weight decay", lo=0.0, hi=1.0)
    margin: float = param("AAM-softmax margin", lo=0.0, hi=1.0)
    margin_warmup_steps: int = param("steps over which the margin ramps up linearly from 0",
                                     lo=0)
    scale: float = param("AAM-softmax scale", lo=1.0, hi=100.0)
    noise_prob: float = param("share of crops given coloured noise in the log-mel domain",
                              lo=0.0, hi=1.0)
    snr_db: tuple[float, ...] = param("[low, high] SNR range of the noise augmentation (dB)",
                                      each=Each(lo=-20.0, hi=60.0), min_len=2)
    log_every: int = param("steps between training-curve points", lo=1)
    threads: int = param("torch threads for training", lo=1, hi=64)


@dataclass(frozen=True)
class ScoreNorm:
    kind: Literal["none", "as_norm"] = param(
        "as_norm: also report AS-norm scores (WeSpeaker's recipes; cohort: the train split)")
    top_k: int = param("AS-norm: best cohort scores per side", lo=1, hi=100000)
    cohort_per_speaker: int = param("AS-norm: train utterances averaged per cohort speaker",
                                    lo=1, hi=10000)


@dataclass(frozen=True)
class Eval:
    threads: int = param("threads for embedding test utterances (batch 1)", lo=1, hi=64)
    onnx_opset: int = param("ONNX opset of the export", lo=17, hi=21)
    onnx_max_eer_diff: float = param("largest allowed |EER(torch) - EER(onnx)| (points): the "
                                     "export must score like torch", lo=0.0, hi=100.0)
    score_norm: ScoreNorm = param()


@dataclass(frozen=True)
class Ecapa:
    init: Init = param()
    model: Model = param()
    train: Train = param()
    eval: Eval = param()


section("ecapa", Ecapa, orders=[("train.snr_db.0", "train.snr_db.1")])
