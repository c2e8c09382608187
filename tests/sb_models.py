"""SpeechBrain ECAPA-TDNN checkpoints made here with SpeechBrain's own class (random weights,
non-trivial batch-norm statistics), as a user's folder and as an ONNX file with SpeechBrain's
module names. Callers first request conftest's `speechbrain` fixture (it imports speechbrain)."""

from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(input_size=80, channels=[32, 32, 32, 32, 96], kernel_sizes=[5, 3, 3, 3, 1],
            dilations=[1, 2, 3, 4, 1], attention_channels=8, lin_neurons=16, se_channels=8,
            res2net_scale=8)


def sb_ecapa(hparams: dict = TINY, seed: int = 0) -> torch.nn.Module:
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    torch.manual_seed(seed)
    m = ECAPA_TDNN(**hparams).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so every BN tensor matters
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm1d)):
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_(1, 0.2)
            bn.bias.normal_(0, 0.2)
    return m


def write_folder(model: torch.nn.Module, folder: Path, hparams: dict = TINY) -> Path:
    """A SpeechBrain model folder: hyperparams.yaml (HyperPyYAML tags as the hub's) and
    embedding_model.ckpt."""
    folder.mkdir(parents=True, exist_ok=True)
    args = "\n".join(f"    {k}: {v}" for k, v in hparams.items() if k != "input_size")
    (folder / "hyperparams.yaml").write_text(
        f"n_mels: {hparams['input_size']}\n"
        "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
        f"    input_size: !ref <n_mels>\n{args}\n")
    torch.save(model.state_dict(), folder / "embedding_model.ckpt")
    return folder


class _Flat(torch.nn.Module):
    """[B, T, F] -> [B, D]: SpeechBrain's model returns [B, 1, D]."""

    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        # not squeeze(1): the exporter writes a dynamic squeeze as an If node, whose subgraph
        # reads an outer-scope tensor, and ORT 1.31 aborts on that once the Conv before it is QDQ
        return self.m(feats)[:, 0]


def export_onnx(model: torch.nn.Module, path: Path, n_mels: int = 80) -> Path:
    """SpeechBrain's module names survive in the node names (/m/blocks.0/..., /m/mfa/...)."""
    torch.onnx.export(_Flat(model).eval(), (torch.randn(1, 120, n_mels),), str(path),
                      input_names=["feats"], output_names=["embedding"],
                      dynamic_axes={"feats": {0: "batch", 1: "frames"}}, opset_version=17,
                      dynamo=False)
    return path
