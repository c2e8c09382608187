"""The SpeechBrain ECAPA-TDNN import gives SpeechBrain's own embeddings.

Needs `speechbrain` (the `reference` extra; conftest's `speechbrain` fixture explains the
stand-in torchaudio it imports with).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sb_models
import torch

from slimaudio.errors import DataError
from slimaudio.models.speechbrain_import import config_from_hparams, import_state_dict

HPARAMS = dict(input_size=80, channels=[64, 64, 64, 64, 192], kernel_sizes=[5, 3, 3, 3, 1],
               dilations=[1, 2, 3, 4, 1], attention_channels=16, lin_neurons=32, se_channels=16,
               res2net_scale=8)


@pytest.fixture(scope="module")
def sb_model(speechbrain):
    return sb_models.sb_ecapa(HPARAMS)


def test_imported_model_gives_speechbrains_embeddings(sb_model, tmp_path: Path) -> None:
    torch.save(sb_model.state_dict(), tmp_path / "embedding_model.ckpt")
    sd = torch.load(tmp_path / "embedding_model.ckpt", weights_only=True)
    ours = import_state_dict(sd, config_from_hparams(HPARAMS), "embedding_model.ckpt")
    x = torch.randn(2, 150, 80)
    with torch.no_grad():
        diff = (sb_model(x).squeeze(1) - ours(x)).abs().max().item()
    print(f"\nSpeechBrain ECAPA_TDNN vs imported: max abs embedding difference {diff:.2e}")
    assert diff <= 1e-4


def test_a_missing_or_misshaped_tensor_is_named(sb_model) -> None:
    sd = dict(sb_model.state_dict())
    cfg = config_from_hparams(HPARAMS)
    bad = dict(sd)
    del bad["mfa.norm.norm.running_var"]
    with pytest.raises(DataError, match="conv_mfa.2.running_var"):
        import_state_dict(bad, cfg, "ckpt")
    bad = dict(sd)
    bad["fc.conv.bias"] = torch.zeros(31)
    with pytest.raises(DataError, match="'fc.conv.bias' has shape"):
        import_state_dict(bad, cfg, "ckpt")
