"""OpenVINO backend: float IR equals ONNX Runtime, NNCF INT8 keeps the input normalisation float,
the latency factory pickles, bf16 compiles where the CPU has it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

# First: importing it declines OpenVINO's telemetry, which `import openvino` would otherwise send.
from slimaudio.compress import openvino_rt as ovrt
from slimaudio.errors import ParamError

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _feats(rng: np.random.Generator, offset: np.ndarray, frames: int) -> np.ndarray:
    """Log-mel-like: a large per-band offset plus a smaller variation over time."""
    return (offset + rng.normal(0.0, 1.0, (frames, offset.size))).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import torch

    from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn
    from slimaudio.speaker.export import export_bytes

    torch.manual_seed(0)
    cfg = EcapaConfig(channels=32, mfa_channels=96, attention_channels=16, se_bottleneck=16,
                      embedding_dim=48)
    model = EcapaTdnn(cfg).train()
    with torch.no_grad():  # running BN statistics that are not the identity
        for _ in range(3):
            model(torch.randn(4, 120, cfg.n_mels) * 2 - 5)
    root = tmp_path_factory.mktemp("ov")
    onnx_path = root / "ecapa.onnx"
    onnx_path.write_bytes(export_bytes(model, cfg.n_mels))
    rng = np.random.default_rng(0)
    offset = rng.uniform(-12.0, 0.0, cfg.n_mels).astype(np.float32)
    calib = [_feats(rng, offset, int(rng.integers(80, 160)))[None] for _ in range(8)]
    int8 = ovrt.quantize_nncf(onnx_path, root / "int8" / "ecapa.xml", calib)
    return {"onnx": onnx_path, "float": ovrt.save_float(onnx_path, root / "float.xml"),
            "int8": int8, "tests": [_feats(rng, offset, n) for n in (90, 150, 200)],
            "dim": cfg.embedding_dim}


def test_available() -> None:
    assert ovrt.ov_available()


def test_float_ir_matches_onnx_runtime(models: dict) -> None:
    from slimaudio.speaker.export import onnx_embedder

    ort, ov = onnx_embedder(models["onnx"]), ovrt.ov_embedder(models["float"])
    for x in models["tests"]:
        a, b = ort(x), ov(x)
        assert b.shape == (models["dim"],)
        assert np.abs(a - b).max() < 1e-4 * max(1.0, float(np.abs(a).max()))
    # weights stay float32 (no fp16 compression): the IR is about as big as the ONNX file
    assert ovrt.model_size(models["float"]) > 0.9 * models["onnx"].stat().st_size
    assert sorted(p.name for p in models["float"].parent.glob(".*")) == []  # no temporaries


def test_input_norm_scope_is_the_mean_subtraction(models: dict) -> None:
    import openvino as ov

    model = ov.Core().read_model(models["onnx"])
    names = ovrt.input_norm_scope(model)
    types = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    assert names and {types[n] for n in names} >= {"ReduceMean", "Subtract"}
    assert not {types[n] for n in names} & {"Convolution", "Parameter", "Constant"}


def test_int8_keeps_input_normalisation_float(models: dict) -> None:
    import openvino as ov

    scope = ovrt.input_norm_scope(models["onnx"])
    assert ovrt.ignored_names(models["int8"]) == scope
    assert ovrt.ignored_names(models["float"]) == []
    fq = [op for op in ov.Core().read_model(models["int8"]).get_ordered_ops()
          if op.get_type_name() == "FakeQuantize"]
    assert len(fq) > 10
    fed = {t.get_node().get_friendly_name() for op in fq for t in op.output(0).get_target_inputs()}
    assert not fed & set(scope)
    ref, q = ovrt.ov_embedder(models["float"]), ovrt.ov_embedder(models["int8"])
    for x in models["tests"]:
        assert _cosine(ref(x), q(x)) > 0.95


def test_factory_pickles_and_runs(models: dict) -> None:
    x = models["tests"][1][None]
    for factory in (ovrt.OpenVinoFactory(str(models["int8"]), x),
                    ovrt.OpenVinoFactory(str(models["float"]), {"feats": x}, static=True)):
        run = pickle.loads(pickle.dumps(factory))()
        out = run()
        assert np.asarray(out[0]).shape == (1, models["dim"])
        run()  # the pre-created request is reused


def test_bf16(models: dict) -> None:
    if not ovrt.has_bf16():
        pytest.skip("no native bf16 on this CPU")
    ref, bf = ovrt.ov_embedder(models["float"]), ovrt.ov_embedder(models["float"], precision="bf16")
    assert _cosine(ref(models["tests"][0]), bf(models["tests"][0])) > 0.95


def test_bad_precision_and_path(models: dict, tmp_path: Path) -> None:
    with pytest.raises(ParamError):
        ovrt.compile(models["float"], precision="f16")
    with pytest.raises(ParamError):
        ovrt.save_float(models["onnx"], tmp_path / "model.bin")
