"""TFLite converter variants, the deployable classifier's (de)quantization, and the naive path
kept apart from it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from slimaudio.compress import tflite as tfl  # noqa: E402
from slimaudio.models.resnet_keras import build_resnet  # noqa: E402
from slimaudio.schemas.tflite import Architecture  # noqa: E402
from slimaudio.studies.tflite_quant import naive_input  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHAPE = (12, 16, 1)


@pytest.fixture(scope="module")
def tiny() -> dict:
    """A tiny ResNet with non-trivial BN statistics, converted once into every variant."""
    import keras

    # Seeded: unseeded, the initial weights (and the int8 error, 0.004-0.06 over seeds) depend
    # on which tests ran before in the same process.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.normal(-6.0, 3.0, (48, *SHAPE)) + np.linspace(0, 3, 12)[None, :, None, None]).astype(np.float32)
    # width 16: some kernels exceed the 1024 elements dynamic-range quantization needs
    arch = Architecture(depths=(1, 1), width=16, expansion=4, dropout=0.0)
    model = build_resnet(SHAPE, 4, arch, mean=np.full(12, -4.5), variance=np.full(12, 9.0))
    for layer in model.layers:  # zero-init residual gammas would make the blocks identities
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape), m, v])
    ref = np.asarray(model(x, training=False))
    files = {v: tfl.convert_keras(model, v, x[:32]) for v in tfl.VARIANTS}
    return {"x": x, "ref": ref, "files": files}


def test_every_variant_converts_with_the_expected_io(tiny: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    expect_in = {"basic": "float32", "int": "float32", "full_int": "int8", "float16": "float32",
                 "dynamic_range": "float32"}
    weight_dtype = {"basic": "float32", "int": "int8", "full_int": "int8", "float16": "float16",
                    "dynamic_range": "int8"}
    for variant, blob in tiny["files"].items():
        interp = Interpreter(model_content=blob)
        interp.allocate_tensors()
        io = tfl.io_details(interp)
        assert io["input_dtype"] == expect_in[variant], variant
        assert io["output_dtype"] == expect_in[variant], variant
        conv_w = [d for d in interp.get_tensor_details()
                  if len(d["shape"]) == 4 and d["shape"][0] > 1 and d["shape"][1] in (1, 3, 7)
                  and d["name"] and "conv" in d["name"].lower()]
        assert conv_w, f"{variant}: no conv weights found"
        assert {np.dtype(d["dtype"]).name for d in conv_w} >= {weight_dtype[variant]}, variant
    sizes = {v: len(b) for v, b in tiny["files"].items()}
    assert sizes["float16"] < sizes["basic"]
    assert sizes["int"] < sizes["float16"] and sizes["full_int"] < sizes["float16"]
    assert sizes["dynamic_range"] < sizes["float16"]


def test_variants_agree_with_keras(tiny: dict) -> None:
    x, ref = tiny["x"], tiny["ref"]
    tol = {"basic": 1e-5, "float16": 5e-3, "dynamic_range": 0.05, "int": 0.08, "full_int": 0.08}
    for variant, blob in tiny["files"].items():
        scores = tfl.TFLiteClassifier(blob).predict(x, batch_size=7)  # ragged last batch
        assert scores.shape == ref.shape and scores.dtype == np.float32
        assert np.abs(scores - ref).max() < tol[variant], variant


def test_unknown_variant_and_missing_calibration() -> None:
    with pytest.raises(ValueError, match="unknown TFLite variant"):
        tfl.convert("/nonexistent", "int4")
    with pytest.raises(ValueError, match="representative"):
        tfl.convert("/nonexistent", "full_int", None)
    with pytest.raises(ValueError, match="empty"):
        tfl.representative_dataset(np.zeros((0, *SHAPE), np.float32))


def test_representative_dataset_yields_inference_inputs() -> None:
    frames = np.arange(3 * 12 * 16, dtype=np.float64).reshape(3, *SHAPE)
    batches = list(tfl.representative_dataset(frames)())
    assert len(batches) == 3
    assert all(b[0].shape == (1, *SHAPE) and b[0].dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(batches[2][0][0], frames[2].astype(np.float32))


def test_full_int_input_quantization_round_trips_within_one_step(tiny: dict) -> None:
    clf = tfl.TFLiteClassifier(tiny["files"]["full_int"])
    assert clf.integer_input
    scale, zp = clf.input_quant
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    x = np.linspace(lo, hi, 5001, dtype=np.float32)
    q = clf.quantize_input(x)
    assert q.dtype == np.int8
    back = tfl.dequantize(q, scale, zp)
    assert np.abs(back - x).max() <= scale * 0.5 + 1e-6  # within one step (half a step: rounding)
    # out-of-range values saturate instead of wrapping around
    assert clf.quantize_input(np.array([hi + 100 * scale]))[0] == 127
    assert clf.quantize_input(np.array([lo - 100 * scale]))[0] == -128
    # the real test frames are covered by the calibrated range
    assert lo <= tiny["x"].min() + scale and tiny["x"].max() - scale <= hi


def test_naive_path_differs_and_is_kept_apart(tiny: dict) -> None:
    blob, x = tiny["files"]["full_int"], tiny["x"]
    good = tfl.TFLiteClassifier(blob).predict(x)
    naive = naive_input.predict_unquantized_input(blob, x)
    assert np.abs(good - tiny["ref"]).max() < 0.08
    assert np.abs(naive - tiny["ref"]).max() > 0.2  # raw floats cast to int8 are garbage inputs
    with pytest.raises(ValueError, match="integer-input"):
        naive_input.predict_unquantized_input(tiny["files"]["basic"], x)
    # the naive path is the same model on cast codes: same scores as running the cast by hand
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=blob)
    interp.allocate_tensors()
    codes = naive_input.cast_unquantized(x, np.int8)
    assert np.array_equal(codes, x.astype(np.int8))
    raw = tfl.run_batches(interp, codes, 16)
    np.testing.assert_allclose(naive, tfl.dequantize(raw, *tfl.io_details(interp)["output_quant"]))


def test_no_public_way_to_skip_input_quantization() -> None:
    assert not any("naive" in n or "unquantized" in n for n in tfl.__all__)
    assert not any("naive" in n or "unquantized" in n for n in dir(tfl))
    assert not any(n.startswith("_") for n in tfl.__all__)
    for name, member in inspect.getmembers(tfl.TFLiteClassifier):
        if callable(member) and not name.startswith("__"):
            params = set(inspect.signature(member).parameters)
            assert not params & {"quantize", "raw", "naive", "skip_quantization"}, name
    # the naive path lives in the study package and only the study uses it
    users = {p.relative_to(REPO).as_posix() for p in (REPO / "slimaudio").rglob("*.py")
             if re.search(r"naive_input|unquantized", p.read_text(encoding="utf-8"))}
    assert users <= {f"slimaudio/studies/tflite_quant/{m}.py"
                     for m in ("__init__", "naive_input", "measure", "run")}
