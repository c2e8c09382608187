"""ECAPA-TDNN: layout contract, shapes, AAM-softmax, data crops and noise, training, evaluation,
ONNX export (names, dynamic axes, same EER as torch) and bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_ecapa_standin import make_standin

from slimaudio.datasets import speakers
from slimaudio.errors import DataError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.schemas.ecapa import Train
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler, NoiseConfig, add_noise
from slimaudio.speaker.train import TrainConfig, load_checkpoint, lr_at, save_checkpoint, train
from slimaudio.spec import build

CONTRACT = ["conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "bn_asp", "fc", "bn_fc"]


def _model(seed: int = 0) -> EcapaTdnn:
    torch.manual_seed(seed)
    return EcapaTdnn(channels=32, mfa_channels=48, attention_channels=16, se_bottleneck=16).eval()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> speakers.SpeakerData:
    return speakers.load(make_standin(tmp_path_factory.mktemp("spk") / "speakers"))


def test_top_level_submodules_follow_the_contract() -> None:
    assert [n for n, _ in _model().named_children()] == CONTRACT


def test_paper_scale_layout() -> None:
    m = EcapaTdnn(channels=1024, mfa_channels=1536, attention_channels=128)
    assert m.conv_mfa[0].in_channels == 3 * 1024 and m.conv_mfa[0].out_channels == 1536
    assert m.asp.attention[0].in_channels == 3 * 1536  # global context: x, mean, std
    assert [b.res2.convs[0][0].dilation[0] for b in (m.block1, m.block2, m.block3)] == [2, 3, 4]
    assert len(m.block1.res2.convs) == 7 and m.block1.se.fc1.out_channels == 128
    assert m.fc.out_features == 192


def test_embedding_shape_and_variable_length() -> None:
    m = _model()
    with torch.no_grad():
        assert m(torch.randn(3, 120, 80)).shape == (3, 192)
        assert m(torch.randn(1, 37, 80)).shape == (1, 192)


def test_channels_must_divide_by_scale() -> None:
    with pytest.raises(ValueError, match="divisible"):
        EcapaTdnn(channels=30, scale=8)


def test_aam_margin_penalises_only_the_target() -> None:
    torch.manual_seed(0)
    aam = AAMSoftmax(8, 5, margin=0.2, scale=30.0)
    plain = AAMSoftmax(8, 5, margin=0.0, scale=30.0)
    plain.weight.data.copy_(aam.weight.data)
    emb, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    lm, lp = aam.logits(emb, y), plain.logits(emb, y)
    onehot = torch.nn.functional.one_hot(y, 5).bool()
    assert torch.all(lm[onehot] < lp[onehot])
    torch.testing.assert_close(lm[~onehot], lp[~onehot])
    with torch.no_grad():
        assert float(aam(emb, y)[0]) > float(plain(emb, y)[0])


def test_lr_schedule_warms_up_then_decays() -> None:
    lrs = [lr_at(s, 100, 1.0, 0.01, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_crops_wrap_short_utterances_and_keep_labels(standin: speakers.SpeakerData) -> None:
    s = CropSampler(standin, 300, seed=0)  # longer than every stand-in utterance
    x, y = s.batch(6)
    assert x.shape == (6, 300, 80) and x.dtype == np.float32
    assert set(y) <= set(range(s.n_classes)) and s.n_classes == 8
    n = int(s.lengths[0])
    row = s.crop_one(0)
    np.testing.assert_array_equal(row[:n], row[n:2 * n])  # wrapped copy


def test_noise_raises_power_and_lowers_contrast() -> None:
    rng = np.random.default_rng(0)
    x = np.log(np.exp(rng.normal(0, 2, (100, 80))) + 1e-6).astype(np.float32)
    noisy = add_noise(x, rng, NoiseConfig(prob=1.0, snr_db=(0.0, 0.0)))
    assert np.all(noisy >= x - 1e-4)
    assert np.log(np.exp(noisy).mean()) > np.log(np.exp(x).mean()) + 0.5  # 0 dB doubles power
    assert noisy.std() < x.std()


def test_training_config_comes_from_params_alone(standin: speakers.SpeakerData) -> None:
    """No defaults in TrainConfig / NoiseConfig (they live in conf/config.yaml); the library
    defaults that remain (the AAM head's, the ONNX opset, the paper-scale ECAPA) equal conf's."""
    import inspect
    from dataclasses import MISSING, fields

    from slimaudio.compose import compose
    from slimaudio.models.ecapa import EcapaConfig
    from slimaudio.speaker.export import export_bytes

    params = compose([])
    train_p = params["ecapa"]["train"]
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(TrainConfig))
    assert [f.name for f in fields(NoiseConfig) if f.default is not MISSING] == ["fluctuation_shape"]
    cfg = TrainConfig.of(build(Train, train_p), standin, 7)
    assert (cfg.steps, cfg.margin_warmup_steps, cfg.seed) == (train_p["steps"], train_p["margin_warmup_steps"], 7)
    assert cfg.noise == NoiseConfig(train_p["noise_prob"], tuple(train_p["snr_db"]))
    aam = AAMSoftmax(8, 3)
    assert (aam.margin, aam.scale) == (train_p["margin"], train_p["scale"])
    assert inspect.signature(export_bytes).parameters["opset"].default == params["ecapa"]["eval"]["onnx_opset"]
    paper = compose(["profile=paper"])
    n_mels = paper["prepare_speakers"]["features"]["n_mels"]
    assert EcapaConfig() == EcapaConfig(n_mels=n_mels, **paper["ecapa"]["model"])


def test_missing_files_and_bad_trials_name_the_file(tmp_path: Path) -> None:
    root = make_standin(tmp_path / "spk")
    (root / "trials.txt").write_text("1 nobody-u0 spk00-u0\n")
    with pytest.raises(DataError, match="trials.txt"):
        speakers.load(root)
    (root / "feats.npy").unlink()
    with pytest.raises(DataError, match="feats.npy"):
        speakers.load(root)


def test_training_lowers_the_loss_and_checkpoints_round_trip(standin: speakers.SpeakerData,
                                                              tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = EcapaTdnn(channels=16, mfa_channels=24, attention_channels=8, se_bottleneck=8)
    s = CropSampler(standin, 60, seed=0, noise=NoiseConfig(0.5, (5.0, 20.0)))
    aam = AAMSoftmax(192, s.n_classes)
    cfg = TrainConfig(steps=30, batch_size=16, crop_frames=60, lr=3e-3, lr_min=0.0, warmup_steps=3,
                      weight_decay=0.0, margin=0.2, margin_warmup_steps=0, scale=30.0, noise=s.noise,
                      log_every=5, threads=1, seed=0)
    res = train(m, aam, s, cfg, progress=False)
    assert res.curve[-1]["loss"] < res.curve[0]["loss"]
    save_checkpoint(tmp_path / "m.pt", m, aam, s.speakers)
    m2, aam2, blob = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(1, 50, 80)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), m.eval()(x))
    assert blob["speakers"] == s.speakers


def test_onnx_export_contract_and_same_eer(standin: speakers.SpeakerData, tmp_path: Path) -> None:
    import onnx

    from slimaudio.speaker.evaluate import evaluate_torch
    from slimaudio.speaker.export import evaluate_onnx, export_onnx

    m = _model()
    path = export_onnx(m, tmp_path / "ecapa.onnx", 80)
    g = onnx.load(str(path))
    assert g.opset_import[0].version >= 17
    assert [i.name for i in g.graph.input] == ["feats"]
    assert [o.name for o in g.graph.output] == ["embedding"]
    dims = g.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param and dims[2].dim_value == 80
    prefixes = {n.name.split("/")[1] for n in g.graph.node if n.name.startswith("/")}
    assert {"conv_in", "block1", "block2", "block3", "conv_mfa", "asp", "bn_asp", "fc",
            "bn_fc"} <= prefixes
    ref = evaluate_torch(m, standin, progress=False)
    got = evaluate_onnx(path, standin.root, threads=1, progress=False)
    assert abs(got["eer"] - ref.metrics["eer"]) <= 0.01
    assert got["n_trials"] == len(standin.trials)
    np.testing.assert_allclose(got["scores"], ref.scores, atol=1e-5)
    with pytest.raises(DataError, match="no such ONNX"):
        evaluate_onnx(tmp_path / "missing.onnx", standin.root)


def test_dilated_conv_fast_path_matches_the_ordinary_one() -> None:
    from slimaudio.models.ecapa import DilatedConv1d

    torch.manual_seed(0)
    conv = DilatedConv1d(16, 16, 3, dilation=3, padding=3)
    x = torch.randn(1, 16, 77)
    with torch.no_grad():
        fast = conv(x)
    slow = conv(x)  # grad enabled: the ordinary kernel
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)
