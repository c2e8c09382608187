"""Checkpoints load with torch.load(weights_only=True): a tampered file is refused, not run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from slimaudio.errors import CheckpointError, SlimAudioError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.train import load_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this calls open(marker, 'w'): it stands for any code a tampered file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _tiny() -> tuple[EcapaTdnn, AAMSoftmax]:
    torch.manual_seed(0)
    return EcapaTdnn(channels=16, mfa_channels=24, attention_channels=8, se_bottleneck=8), AAMSoftmax(192, 3)


@pytest.mark.parametrize("where", ["whole file", "inside a real checkpoint"])
def test_tampered_checkpoint_is_refused_without_running_code(tmp_path: Path, where: str) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "ecapa.pt"
    if where == "whole file":
        torch.save(_Payload(marker), path)
    else:
        model, aam = _tiny()
        blob = {"model_cfg": model.cfg.as_dict(), "model": model.state_dict(), "aam": aam.state_dict(),
                "aam_cfg": {"margin": 0.2, "scale": 30.0}, "speakers": ["a"],
                "extra": {"note": _Payload(marker)}}
        torch.save(blob, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert isinstance(info.value, SlimAudioError)
    assert msg.startswith(f"{path}: refused: the checkpoint references ") and "\n" not in msg
    assert re.search(r"references (io|builtins)\.open,", msg), msg
    assert not marker.exists()


def test_checkpoint_round_trips_under_weights_only(tmp_path: Path) -> None:
    model, aam = _tiny()
    extra = {"train_seconds": np.float64(1.5), "n_mels": np.int64(80), "data": tmp_path, "dims": (1, 2)}
    save_checkpoint(tmp_path / "m.pt", model, aam, ["s1", "s2", "s3"], extra=extra)
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain data only
    m2, aam2, blob = load_checkpoint(tmp_path / "m.pt")
    assert blob["extra"] == {"train_seconds": 1.5, "n_mels": 80, "data": str(tmp_path), "dims": [1, 2]}
    x = torch.randn(1, 50, 80)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), model.eval()(x))
    torch.testing.assert_close(aam2.weight, aam.weight)


def test_checkpoint_in_the_previous_format_still_loads(tmp_path: Path) -> None:
    model, aam = _tiny()  # what save_checkpoint wrote before: the same dict, saved as it was
    torch.save({"model_cfg": model.cfg.as_dict(), "model": model.state_dict(), "aam": aam.state_dict(),
                "aam_cfg": {"margin": aam.margin, "scale": aam.scale}, "speakers": ["a", "b", "c"],
                "extra": {"train_seconds": 2.0, "n_mels": 80}}, tmp_path / "old.pt")
    _, _, blob = load_checkpoint(tmp_path / "old.pt")
    assert blob["speakers"] == ["a", "b", "c"]


def test_unreadable_checkpoint_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt: cannot load checkpoint") as info:
        load_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(info.value)
