"""MobileNetV3 students: the Keras log-mel frontend, fake quantization, TFLite conversion."""

from __future__ import annotations

import mel_configs
import numpy as np
import pytest

from slimaudio.features import log_mel
from slimaudio.schemas.distill import Student

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from slimaudio.models import mobilenet_students as ms  # noqa: E402

MEL = mel_configs.speaker(n_mels=64)
FRAMES = 96


def _waves(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(ms.patch_samples(MEL, FRAMES)) / MEL.sample_rate
    tone = np.sin(2 * np.pi * rng.uniform(100, 3000, (n, 1)) * t)
    return (0.3 * tone + 0.05 * rng.standard_normal((n, t.size))).astype(np.float32)


def test_patch_is_096_s_and_gives_96_frames() -> None:
    n = ms.patch_samples(MEL, FRAMES)
    assert n == 400 + 95 * 160
    assert MEL.n_frames(n) == FRAMES


def test_keras_logmel_matches_slimaudio_features_numpy_and_torch() -> None:
    torch = pytest.importorskip("torch")
    from slimaudio.features import LogMel

    wav = _waves(3)
    layer = ms.LogMelLayer(MEL)
    ours = np.asarray(layer(tf.constant(wav)))
    ref = np.stack([log_mel(w, MEL) for w in wav])
    assert ours.shape == (3, FRAMES, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    with torch.no_grad():
        ref_t = LogMel(MEL)(torch.from_numpy(wav)).numpy()
    np.testing.assert_allclose(ours, ref_t, atol=2e-3)


def test_weight_fake_quant_has_at_most_255_levels_per_channel_and_passes_gradients() -> None:
    w = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 4, 8)).astype(np.float32))
    with tf.GradientTape() as tape:
        q = ms.fake_quant_weights(w, -1)
        loss = tf.reduce_sum(q * 2.0)
    q = q.numpy()
    for c in range(8):
        assert len(np.unique(q[..., c])) <= 255
        scale = np.abs(w.numpy()[..., c]).max() / 127
        np.testing.assert_allclose(q[..., c], np.round(w.numpy()[..., c] / scale) * scale, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 2.0)  # straight-through


def test_activation_fake_quant_is_8_bit_and_close() -> None:
    x = tf.constant(np.linspace(-1.0, 3.0, 1000, dtype=np.float32))
    q = ms.fake_quant_activations(x).numpy()
    assert len(np.unique(q)) <= 256
    assert np.abs(q - x.numpy()).max() <= 4.0 / 255 / 2 + 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [
    Student("small", 0.5, 16, "gap", qat=False, frontend="outside"),
    Student("small", 0.5, 8, "flatten", qat=True, frontend="inside"),
], ids=lambda c: c.label)
def test_student_trains_and_converts(cfg: Student) -> None:
    wav = _waves(16)
    x = wav if cfg.frontend == "inside" else np.stack([log_mel(w, MEL) for w in wav])
    y = np.random.default_rng(1).normal(size=(16, 12)).astype(np.float32)
    model = ms.build_student(cfg, MEL, FRAMES, 12, norm=(-5.0, 4.0))
    layers = {type(layer).__name__ for layer in model.layers}
    assert ("LogMelLayer" in layers) == (cfg.frontend == "inside")

    def gen():
        while True:
            yield x, y

    losses = ms.train_mse(model, gen(), 15, 1e-3)
    assert losses[-1] < losses[0]
    ref = model(x[:1], training=False).numpy()
    from slimaudio.latency import litert_runner

    fp32 = ms.to_tflite(model)
    np.testing.assert_allclose(litert_runner(fp32, [x[:1]])(), ref, atol=1e-4 * max(1, np.abs(ref).max()))
    if cfg.qat:
        from slimaudio.compress.tflite import op_summary

        q8 = ms.to_tflite(model, int8=True, representative=x)
        ops = op_summary(q8)
        assert ops.get("QUANTIZE", 0) >= 1 and len(q8) < 0.6 * len(fp32)
        # the log-mel frontend stays float: RFFT2D and LOG run before the first QUANTIZE
        assert ops.get("RFFT2D", 0) == 1 and ops.get("LOG", 0) == 1
        out = litert_runner(q8, [x[:1]])()
        assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.9
