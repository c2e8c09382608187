"""The Keras ResNet: topology, in-model normalisation, band statistics, frame/clip evaluation."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from slimaudio.frame_classifier.evaluate import clip_scores, evaluate_scores  # noqa: E402
from slimaudio.models.resnet_keras import band_stats, build_resnet  # noqa: E402
from slimaudio.schemas.tflite import Architecture  # noqa: E402


def arch(depths: tuple[int, ...], width: int, expansion: int = 4) -> Architecture:
    return Architecture(depths=depths, width=width, expansion=expansion, dropout=0.0)


def test_band_stats_match_numpy() -> None:
    rng = np.random.default_rng(0)
    frames = (rng.normal(-5, 2, (37, 8, 11)) + np.arange(8)[None, :, None]).astype(np.float16)
    mean, var = band_stats(frames, chunk=5)  # several chunks
    ref = frames.astype(np.float64).transpose(1, 0, 2).reshape(8, -1)
    np.testing.assert_allclose(mean, ref.mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, ref.var(axis=1), rtol=1e-4)
    with pytest.raises(ValueError):
        band_stats(np.zeros((0, 8, 11), np.float16))


def test_normalisation_lives_inside_the_model() -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(-6, 3, (64, 16, 20)) + np.linspace(0, 4, 16)[None, :, None]).astype(np.float32)
    mean, var = band_stats(x)
    model = build_resnet((16, 20, 1), 3, arch((1, 1), 4), mean, var)
    norm = keras.Model(model.input, model.get_layer("band_norm").output)
    z = np.asarray(norm(x[..., None]))[..., 0]
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1.0, atol=1e-3)


def test_shapes_and_softmax_output() -> None:
    model = build_resnet((16, 24, 1), 5, arch((1, 2), 4, expansion=2))
    y = np.asarray(model(np.zeros((3, 16, 24, 1), np.float32)))
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    # one block per depth entry, a projection at the start of every stage
    names = [layer.name for layer in model.layers]
    assert {"s1b1_add", "s2b1_add", "s2b2_add", "s1b1_proj", "s2b1_proj"} <= set(names)
    assert "s2b2_proj" not in names


def test_paper_profile_is_resnet50_sized() -> None:
    """[3, 4, 6, 3] x width 64 x expansion 4: ResNet50's ~23.5M convolutional parameters."""
    model = build_resnet((64, 99, 1), 10, arch((3, 4, 6, 3), 64))
    convs = sum(layer.count_params() for layer in model.layers
                if isinstance(layer, keras.layers.Conv2D))
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 16  # 3 + 4 + 6 + 3 bottleneck blocks
    assert 23.3e6 < convs < 23.6e6
    assert model.output_shape == (None, 10)


def test_bad_configs_are_rejected() -> None:
    with pytest.raises(ValueError):
        build_resnet((16, 24, 1), 3, arch((), 4))
    with pytest.raises(ValueError):
        build_resnet((16, 24, 1), 3, arch((1, 0), 4))
    with pytest.raises(ValueError):
        build_resnet((16, 24), 3, arch((1,), 4))
    with pytest.raises(ValueError):
        build_resnet((16, 24, 1), 3, arch((1,), 4), mean=np.zeros(15))


def test_clip_scores_average_frames() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    cs, cl, ids = clip_scores(scores, labels, ["a", "a", "b", "b"])
    np.testing.assert_allclose(cs, [[0.55, 0.45], [0.45, 0.55]])
    assert cl.tolist() == [0, 1] and ids.tolist() == ["a", "b"]


def test_evaluate_scores_frame_and_clip() -> None:
    # clip a: 2 of 3 frames right -> clip right; clip b: all right; clip c: wrong
    scores = np.array([[0.9, 0.1, 0], [0.8, 0.2, 0], [0.4, 0.6, 0],
                       [0, 1, 0], [0, 0.9, 0.1],
                       [0.7, 0, 0.3]])
    labels = np.array([0, 0, 0, 1, 1, 2])
    m = evaluate_scores(scores, labels, ["a", "a", "a", "b", "b", "c"], 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["clip_accuracy"] == pytest.approx(2 / 3)
    assert m["n_clips"] == 3 and m["n_frames"] == 6
    perfect = evaluate_scores(np.eye(3)[labels], labels, ["a", "a", "a", "b", "b", "c"], 3)
    assert perfect["f1"] == 1.0 and perfect["clip_f1"] == 1.0
    with pytest.raises(ValueError):
        evaluate_scores(scores[:, :2], labels, ["a"] * 6, 3)
