"""Log-mel features (numpy vs torch, ONNX export) and window framing arithmetic."""

from __future__ import annotations

import mel_configs
import numpy as np
import pytest

from slimaudio.errors import ParamError
from slimaudio.features import (
    MelConfig,
    frame_signal,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    n_windows,
)

SPK = mel_configs.SPEAKER  # 16 kHz, 80 mels, n_fft 512, 25 ms / 10 ms
SND = mel_configs.SOUND  # 64 mels, n_fft 1024, 40 ms / 20 ms


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.05 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 523.0 * t)).astype(np.float32)


# --- framing arithmetic -------------------------------------------------------------------

@pytest.mark.parametrize("length, window, stride, short, expected", [
    (80000, 32000, 25600, "pad", 2),    # 5 s clip, 2 s frames every 1.6 s: 0-2, 1.6-3.6
    (83200, 32000, 25600, "pad", 3),    # 5.2 s: the third frame ends exactly at the end
    (83199, 32000, 25600, "pad", 2),    # one sample short of a third frame
    (32000, 32000, 25600, "drop", 1),   # exactly one frame
    (31999, 32000, 25600, "pad", 1),    # shorter than a frame: padded to one
    (31999, 32000, 25600, "drop", 0),   # ... or dropped
    (0, 32000, 25600, "pad", 0),        # nothing to pad
    (10, 4, 2, "pad", 4),               # 0-4, 2-6, 4-8, 6-10
    (10, 4, 4, "pad", 2),               # 0-4, 4-8; the 2-sample tail is not used
])
def test_n_windows(length, window, stride, short, expected):
    assert n_windows(length, window, stride, short) == expected
    frames = frame_signal(np.arange(length, dtype=np.float32), window, stride, short)
    assert frames.shape == (expected, window)


def test_frame_signal_content_and_padding():
    x = np.arange(10, dtype=np.float32)
    f = frame_signal(x, 4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    short = frame_signal(np.ones(3, dtype=np.float32), 5, 2, "pad")
    np.testing.assert_array_equal(short, [[1, 1, 1, 0, 0]])


def test_framing_rejects_bad_arguments():
    with pytest.raises(ValueError):
        n_windows(10, 0, 1)
    with pytest.raises(ValueError):
        n_windows(10, 4, 2, "wrap")  # type: ignore[arg-type]


# --- log-mel ------------------------------------------------------------------------------

def test_stft_frame_count_and_shape():
    assert SPK.n_frames(399) == 0
    assert SPK.n_frames(400) == 1
    assert SPK.n_frames(16000) == 1 + (16000 - 400) // 160 == 98
    feats = log_mel(_signal(16000), SPK)
    assert feats.shape == (98, 80) and feats.dtype == np.float32
    assert SND.n_frames(32000) == 99
    with pytest.raises(ValueError, match="shorter than one STFT window"):
        log_mel(np.zeros(100), SPK)


def test_mel_scale_round_trip_and_filters_cover_bins():
    f = np.array([0.0, 100.0, 1000.0, 7600.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-6)
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)
    for cfg in (SPK, SND):
        fb = mel_filterbank(cfg)
        assert fb.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
        assert (fb.sum(axis=1) > 0).all()
    with pytest.raises(ParamError, match="fall between FFT bins"):
        mel_filterbank(mel_configs.speaker(n_mels=200, n_fft=256, win_length=256, hop_length=128))
    with pytest.raises(ParamError, match="win_length"):
        mel_configs.speaker(win_length=600, n_fft=512)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_peaks_in_the_right_mel_band(freq):
    t = np.arange(16000) / 16000
    feats = log_mel((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SPK)
    peak_band = int(np.argmax(feats.mean(axis=0)))
    centres = mel_to_hz(np.linspace(hz_to_mel(SPK.f_min), hz_to_mel(SPK.f_max), SPK.n_mels + 2))[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    assert abs(peak_band - expected) <= 1, (peak_band, expected)
    # and the tone stands well above the other bands
    assert feats.mean(axis=0)[peak_band] - np.median(feats.mean(axis=0)) > 10.0


@pytest.mark.parametrize("cfg", [SPK, SND], ids=["speakers", "sounds"])
def test_torch_logmel_matches_numpy(cfg):
    torch = pytest.importorskip("torch")
    from slimaudio.features import LogMel

    x = np.stack([_signal(24000, seed=1), _signal(24000, seed=2)])
    ref = np.stack([log_mel(row, cfg) for row in x])
    with torch.no_grad():
        out = LogMel(cfg)(torch.from_numpy(x)).numpy()
    assert out.shape == ref.shape == (2, cfg.n_frames(24000), cfg.n_mels)
    # tighter than the float16 storage of feats.npy (about 1e-2 at these magnitudes)
    assert np.abs(out - ref).max() < 2e-3
    with torch.no_grad():
        single = LogMel(cfg)(torch.from_numpy(x[0])).numpy()
    np.testing.assert_allclose(single[0], out[0], atol=1e-5)


def test_logmel_exports_to_onnx_with_dynamic_length(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from slimaudio.features import LogMel

    model = LogMel(SPK).eval()
    path = tmp_path / "logmel.onnx"
    torch.onnx.export(model, (torch.zeros(1, 16000),), str(path), input_names=["wav"],
                      output_names=["feats"], opset_version=17, dynamo=False,
                      dynamic_axes={"wav": {0: "batch", 1: "samples"}, "feats": {0: "batch", 1: "frames"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _signal(20000, seed=3)[None, :]
    out = sess.run(None, {"wav": x})[0]
    np.testing.assert_allclose(out[0], log_mel(x[0], SPK), atol=2e-3)


def test_logmel_is_picklable_and_importable_by_name():
    pytest.importorskip("torch")
    import pickle

    import slimaudio.features as feats

    m = feats.LogMel(SND)
    back = pickle.loads(pickle.dumps(m))
    assert type(back) is feats.LogMel and back.cfg == SND


def test_mel_config_has_no_code_defaults() -> None:
    """Every setting comes from params (or a stored corpus's info.json), never a default."""
    import dataclasses

    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(MelConfig))
    with pytest.raises(TypeError):
        MelConfig()  # type: ignore[call-arg]

