"""Loading data/sounds, training the ResNet, saving it in both formats, augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_tflite_study import N_MELS, TINY_RESNET, T, write_fake_sounds

from slimaudio import spec
from slimaudio.datasets.sounds import load_sounds
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.tflite import Augment, Resnet


def test_load_sounds_reads_the_contract_layout(tmp_path: Path) -> None:
    data = load_sounds(write_fake_sounds(tmp_path / "s"))
    assert data.n_classes == 3 and data.input_shape == (N_MELS, T, 1)
    test = data.split("test")
    assert test.x.shape == (24, N_MELS, T, 1) and test.x.dtype == np.float32
    assert len(set(test.clip_ids)) == 12
    assert data.weight_vector() == {0: 1.0, 1: 1.0, 2: 1.0}


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "frames.npy").unlink(), "frames.npy: missing"),
    (lambda r: (r / "classes.json").write_text("{}"), "classes.json"),
    (lambda r: (r / "class_weights.json").write_text('{"class0": 1}'), "class_weights.json"),
    (lambda r: np.save(r / "frames.npy", np.zeros((3, N_MELS, T), np.float16)), "3 frames but"),
    (lambda r: pd.read_csv(r / "manifest.csv").drop(columns="split").to_csv(r / "manifest.csv"),
     "missing column"),
    (lambda r: pd.read_csv(r / "manifest.csv").assign(label=7).to_csv(r / "manifest.csv"),
     "labels must be"),
    (lambda r: pd.read_csv(r / "manifest.csv").assign(split="dev").to_csv(r / "manifest.csv"),
     "unknown split"),
])
def test_load_sounds_names_the_broken_file(tmp_path: Path, breakage, message: str) -> None:
    root = write_fake_sounds(tmp_path / "s")
    breakage(root)
    with pytest.raises(DataError, match=message):
        load_sounds(root)


def test_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="prepare_sounds"):
        load_sounds(tmp_path / "nope")


def test_augmentation_keeps_shapes_and_changes_frames() -> None:
    import tensorflow as tf

    from slimaudio.frame_classifier.train import _augmenter

    x = tf.constant(np.random.default_rng(0).normal(-5, 2, (4, N_MELS, T, 1)).astype(np.float32))
    y, w = tf.constant([0, 1, 2, 0]), tf.ones(4)
    off = {"time_shift": False, "gain_db": 0.0, "time_masks": 0, "time_mask_max": 0,
           "freq_masks": 0, "freq_mask_max": 0}
    same, _, _ = _augmenter(spec.build(Augment, off))(x, y, w)
    np.testing.assert_array_equal(same.numpy(), x.numpy())
    on, y2, _ = _augmenter(spec.build(Augment, TINY_RESNET["augment"] | {"time_mask_max": 5}))(
        x, y, w)
    assert on.shape == x.shape and np.array_equal(y2.numpy(), y.numpy())
    assert not np.allclose(on.numpy(), x.numpy())


@pytest.mark.slow
def test_training_learns_and_both_save_formats_round_trip(tmp_path: Path) -> None:
    from slimaudio.frame_classifier import train
    from slimaudio.frame_classifier.evaluate import evaluate_scores, predict_keras

    data = load_sounds(write_fake_sounds(tmp_path / "s"))
    res = train.train_resnet(data, spec.build(Resnet, TINY_RESNET | {"epochs": 6}), seed=3)
    assert list(res.history.columns[:3]) == ["epoch", "loss", "accuracy"]
    assert "val_accuracy" in res.history and len(res.history) == 6
    assert res.history["loss"].iloc[-1] < res.history["loss"].iloc[0]
    test = data.split("test")
    scores = predict_keras(res.model, test.x, 16)
    assert evaluate_scores(scores, test.y, test.clip_ids, 3)["accuracy"] > 0.6  # chance: 1/3
    for fmt, name in (("keras", "model.keras"), ("h5", "model.h5")):
        out = tmp_path / fmt
        out.mkdir()
        path = train.save_model(res.model, out, fmt)
        assert path.name == name and train.find_model(out) == path
        again = predict_keras(train.load_model(path), test.x, 16)
        np.testing.assert_allclose(again, scores, atol=1e-5)
    with pytest.raises(ParamError):
        train.save_model(res.model, tmp_path, "onnx")
    with pytest.raises(DataError):
        train.find_model(tmp_path / "empty")
    json.dumps(res.history.to_dict("records"))
