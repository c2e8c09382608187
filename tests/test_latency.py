from __future__ import annotations

import time

import numpy as np
import pytest

from slimaudio import latency, latency_check


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


def test_burst_keeps_each_rounds_fastest_call() -> None:
    calls = {"n": 0}

    def every_other_slow() -> None:  # a burst of 2 always holds one fast call
        calls["n"] += 1
        time.sleep(0.02 if calls["n"] % 2 else 0.001)

    res = latency.measure_interleaved({"x": every_other_slow}, warmup=0, repeats=30, burst=2)
    assert res["x"].median_ms < 10 and res["x"].burst == 2
    one = latency.measure_interleaved({"x": every_other_slow}, warmup=0, repeats=30, burst=1)
    assert one["x"].p90_ms > 15  # one call per round keeps the slow calls


def test_rounds_spread_over_worker_processes() -> None:
    timing = latency.Timing(warmup=1, rounds=30, burst=2, processes=3)
    res = latency_check.known_ratio(timing, n=5000)
    assert res["n"].process == (0,) * 10 + (1,) * 10 + (2,) * 10
    assert res["n"].repeats == 30
    iv = latency_check.ratio_with_interval(res, "2n", "n")
    assert 1.6 < iv.value < 2.4 and iv.lo <= iv.value <= iv.hi


def test_process_bootstrap_widens_with_process_spread() -> None:
    # rounds agree within each process but processes disagree: resampling rounds alone would
    # give a narrow interval; resampling processes first must cover the spread between them
    base = np.ones(30)
    other = np.concatenate([np.full(10, 0.5), np.full(10, 0.6), np.full(10, 0.7)])
    procs = tuple(np.repeat([0, 1, 2], 10))
    ref = latency._summarise(base / 1e3, 1, procs)
    oth = latency._summarise(other / 1e3, 1, procs)
    iv = latency.speedup(ref, oth, 2000, np.random.default_rng(0))
    assert iv.lo <= 1 / 0.7 + 1e-9 and iv.hi >= 1 / 0.5 - 1e-9
    flat = latency.speedup(latency._summarise(base / 1e3, 1), latency._summarise(other / 1e3, 1),
                           2000, np.random.default_rng(0))
    assert flat.hi - flat.lo < iv.hi - iv.lo


@pytest.mark.slow
def test_ratio_holds_beside_a_one_core_hog() -> None:
    """Two workloads of known ratio (2:1), timed quiet and with a busy loop on one core: the
    burst-and-keep-the-fastest method moves the ratio by less than 5%."""
    timing = latency.Timing(warmup=5, rounds=60, burst=5, processes=3)
    quiet = latency_check.ratio_with_interval(latency_check.known_ratio(timing), "2n", "n")
    with latency_check.cpu_hog(120):
        loaded = latency_check.ratio_with_interval(latency_check.known_ratio(timing), "2n", "n")
    assert 1.7 < quiet.value < 2.3
    assert abs(loaded.value / quiet.value - 1) < 0.05, (quiet, loaded)


def test_factories_are_picklable() -> None:
    import pickle

    f = latency.OnnxFactory(b"bytes", {"x": np.arange(3, dtype=np.float32)}, 1, {"k": "v"})
    g = pickle.loads(pickle.dumps(f))
    assert (g.model, g.threads, g.config) == (b"bytes", 1, {"k": "v"})
    np.testing.assert_array_equal(g.feeds["x"], [0, 1, 2])
    assert pickle.loads(pickle.dumps(latency.LiteRTFactory("m.tflite", (np.zeros(3),)))).model \
        == "m.tflite"
    assert pickle.loads(pickle.dumps(latency_check.SpinFactory(3)))() is not None


def test_reduce_range_auto_follows_the_int8_dot_product(monkeypatch) -> None:
    from slimaudio import runtime
    from slimaudio.speaker.ptq_recipe import resolve_reduce_range

    vnni = {"simd": ["avx2", "avx512f", "avx512_vnni"]}
    avx2 = {"simd": ["avx", "avx2", "fma"]}
    assert runtime.int8_dot_flags(vnni) == ["avx512_vnni"] and runtime.int8_dot_flags(avx2) == []
    monkeypatch.setattr(runtime, "cpu_info", lambda: vnni)
    full, why = resolve_reduce_range("auto")
    assert full is False and "avx512_vnni" in why
    monkeypatch.setattr(runtime, "cpu_info", lambda: avx2)
    assert resolve_reduce_range("auto")[0] is True
    assert resolve_reduce_range(False) == (False, "set in params")
