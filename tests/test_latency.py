from __future__ import annotations

import time

import numpy as np
import pytest

from slimaudio import latency


def test_interleaved_orders_by_cost() -> None:
    def fast() -> None:
        time.sleep(0.0005)

    def slow() -> None:
        time.sleep(0.010)

    res = latency.measure_interleaved({"fast": fast, "slow": slow}, warmup=2, repeats=30)
    assert res["fast"].repeats == res["slow"].repeats == 30
    assert res["fast"].median_ms < res["slow"].median_ms
    assert res["slow"].p90_ms >= res["slow"].median_ms >= res["slow"].min_ms
    r = latency.ratios(res, "slow")
    assert r["slow"] == 1.0 and r["fast"] < 0.6


def test_refuses_too_few_repeats() -> None:
    with pytest.raises(ValueError, match="30"):
        latency.measure(lambda: None, repeats=5)


def test_as_dict_uses_shared_metric_names() -> None:
    res = latency.measure(lambda: None, warmup=1, repeats=30)
    assert set(res.as_dict()) == {"latency_ms", "latency_p90_ms", "latency_std_ms"}


def test_torch_and_onnx_runners(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())
    x = torch.randn(1, 16)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    run_t = latency.torch_runner(model, x, threads=1)
    run_o = latency.onnx_runner(path, {"x": x.numpy()}, threads=1)
    np.testing.assert_allclose(run_t().numpy(), run_o()[0], rtol=1e-5, atol=1e-6)
    res = latency.measure_interleaved({"torch": run_t, "onnx": run_o}, warmup=3, repeats=30)
    assert all(r.median_ms > 0 for r in res.values())


def test_litert_runner(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")

    class Sq(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            return {"y": x * 2.0 + 1.0}

    m = Sq()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.__call__.get_concrete_function()], m)
    blob = conv.convert()
    run = latency.litert_runner(blob, [np.arange(4, dtype=np.float32)[None]], threads=1)
    np.testing.assert_allclose(run(), [[1, 3, 5, 7]])


def test_litert_runner_refuses_float_for_int8_input() -> None:
    tf = pytest.importorskip("tensorflow")

    class Lin(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            return {"y": x * 2.0}

    m = Lin()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.__call__.get_concrete_function()], m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.full((1, 4), v, np.float32)] for v in np.linspace(-1, 1, 8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    blob = conv.convert()
    with pytest.raises(ValueError, match="quantize float features"):
        latency.litert_runner(blob, [np.zeros((1, 4), np.float32)])
    latency.litert_runner(blob, [np.zeros((1, 4), np.int8)])()
