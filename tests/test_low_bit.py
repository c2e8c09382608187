"""Sub-8-bit weights in QDQ models (slimaudio.compress.low_bit) and the mixed-precision search
(slimaudio.compress.budget_walk).

The ONNX tests use a tiny float graph built with onnx.helper (Conv with bias, Relu, Conv,
ReduceMean, Gemm with transB, MatMul), calibrated on random inputs and quantized whole as the
study quantizes: MinMax, U8S8, per channel, reduce_range, QDQ. The search tests run on a
synthetic sensitivity table with a fake `verify`.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from slimaudio.compress import budget_walk as mp
from slimaudio.compress import low_bit, onnx_int8
from slimaudio.errors import ParamError

SETTINGS = onnx_int8.QuantSettings("MinMax", "uint8", True, True, "QDQ", None)
WEIGHT_NODES = ("conv1", "conv2", "fc", "mm")
INTEGER_OPS = ("QLinearConv", "QGemm", "QLinearMatMul")


class ListReader:
    """The smallest calibration reader: a fixed list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds, self.i = feeds, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        self.i += 1
        return self.feeds[self.i - 1] if self.i <= len(self.feeds) else None

    def rewind(self) -> None:
        self.i = 0


def _float_model(path: Path) -> Path:
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int, sd: float = 1.0) -> onnx.TensorProto:
        return nh.from_array(rng.normal(0, sd, shape).astype(np.float32), name)

    w1 = rng.normal(0, 1, (8, 4, 3)).astype(np.float32)
    w1[5] = 0.0  # a channel of zeros keeps its scale
    inits = [nh.from_array(w1, "w1"), init("b1", 8, sd=0.5), init("w2", 8, 8, 1),
             init("b2", 8, sd=0.5), init("w3", 5, 8), init("b3", 5, sd=0.5), init("w4", 5, 3)]
    nodes = [oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1]),
             oh.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             oh.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
             oh.make_node("ReduceMean", ["c2"], ["m"], name="mean", axes=[2], keepdims=0),
             oh.make_node("Gemm", ["m", "w3", "b3"], ["g"], name="fc", transB=1),
             oh.make_node("MatMul", ["g", "w4"], ["y"], name="mm")]
    graph = oh.make_graph(nodes, "tiny", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, 4, 16])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _feeds(seed: int, n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (1, 4, 16)).astype(np.float32)} for _ in range(n)]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lowbit")
    fp = _float_model(d / "float.onnx")
    cache = onnx_int8.calibrate(fp, ListReader(_feeds(1, 8)), "MinMax", d / "calib.json")
    q8 = onnx_int8.quantize_static_nodes(fp, d / "q8.onnx", cache, None, SETTINGS)
    return {"dir": d, "float": fp, "q8": q8}


def _inits(path: Path) -> dict[str, np.ndarray]:
    return {i.name: nh.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def _run(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    sess = onnx_int8.ort_session(path)
    return np.concatenate([sess.run(None, f)[0] for f in feeds])


def _integer_ops(path: Path, out: Path) -> dict[str, int]:
    """Op counts of the graph ORT really runs (after its QDQ fusion)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    return {op: ops.count(op) for op in (*INTEGER_OPS, "Conv", "Gemm", "MatMul")}


# ----------------------------------------------------------------------------- layout


def test_weight_dequant_nodes_finds_each_weight_and_its_bias(work) -> None:
    info = low_bit.weight_dequant_nodes(work["q8"], WEIGHT_NODES)
    inits = _inits(work["q8"])
    for name, wdq in info.items():
        assert inits[wdq.weight].dtype == np.int8 and inits[wdq.scale].dtype == np.float32
        assert np.all(inits[wdq.zero_point] == 0)
        assert inits[wdq.scale].size == inits[wdq.weight].shape[wdq.axis]  # per channel
        assert (wdq.bias is None) == (name == "mm")  # the MatMul has no bias
    assert info["fc"].axis == 0 and info["mm"].axis == 1  # Gemm transB: rows; MatMul: columns
    assert sorted(low_bit.quantized_weight_nodes(work["q8"])) == sorted(WEIGHT_NODES)


def test_unknown_or_unquantized_nodes_are_named(work) -> None:
    with pytest.raises(ParamError, match="'nope' is not in the model"):
        low_bit.weight_dequant_nodes(work["q8"], ["conv1", "nope"])
    with pytest.raises(ParamError, match="'mean' has no quantized int8 weight"):
        low_bit.weight_dequant_nodes(work["q8"], ["mean"])
    with pytest.raises(ParamError, match="'conv1' has no quantized int8 weight"):
        low_bit.weight_dequant_nodes(work["float"], ["conv1"])
    with pytest.raises(ParamError, match="'nope'"):
        low_bit.set_weight_bits(work["q8"], work["dir"] / "x.onnx", {"nope": 4})
    with pytest.raises(ParamError, match="'nope'"):
        low_bit.set_weight_bits(work["q8"], work["dir"] / "x.onnx", {"nope": 8})
    with pytest.raises(ParamError, match="'nope'"):
        low_bit.packed_weight_bytes(work["q8"], {"nope": 4})


@pytest.mark.parametrize("bad", [1, 9, 0, 4.5, True])
def test_bad_bits_are_refused_with_the_value(work, bad) -> None:
    with pytest.raises(ParamError, match=f"'conv2'.*got {bad!r}"):
        low_bit.set_weight_bits(work["q8"], work["dir"] / "bad.onnx", {"conv1": 4, "conv2": bad})
    assert not (work["dir"] / "bad.onnx").exists()


# ----------------------------------------------------------------------------- rewriting


def test_four_bit_weights_follow_the_formula_and_still_run_as_integer_kernels(work) -> None:
    q4 = low_bit.set_weight_bits(work["q8"], work["dir"] / "q4.onnx", dict.fromkeys(WEIGHT_NODES, 4))
    info = low_bit.weight_dequant_nodes(q4, WEIGHT_NODES)
    old, new = _inits(work["q8"]), _inits(q4)
    for wdq in info.values():
        q, s = new[wdq.weight], new[wdq.scale]
        assert q.dtype == np.int8 and np.abs(q).max() == 7
        # the formula, computed here independently of the module
        shape = [1] * q.ndim
        shape[wdq.axis] = -1
        w = old[wdq.weight].astype(np.float64) * old[wdq.scale].astype(np.float64).reshape(shape)
        peak = np.abs(np.moveaxis(w, wdq.axis, 0).reshape(w.shape[wdq.axis], -1)).max(1)
        want_s = np.where(peak > 0, peak / 7, old[wdq.scale])
        np.testing.assert_allclose(s, want_s, rtol=1e-6)
        np.testing.assert_array_equal(q, np.clip(np.round(w / s.astype(np.float64).reshape(shape)),
                                                 -7, 7))
        assert np.all(new[wdq.zero_point] == 0)
        if wdq.bias:  # the int32 bias follows: scale x_scale * s', same float bias
            np.testing.assert_array_equal(new[wdq.bias_scale],
                                          new[wdq.input_scale].astype(np.float32) * s)
            fb_old = old[wdq.bias] * old[wdq.bias_scale].astype(np.float64)
            fb_new = new[wdq.bias] * new[wdq.bias_scale].astype(np.float64)
            assert np.all(np.abs(fb_new - fb_old) <= new[wdq.bias_scale])
    # the zero channel kept its 8-bit scale and stayed zero
    assert new["w1_scale"][5] == old["w1_scale"][5] and not new["w1_quantized"][5].any()
    # ORT still fuses every rewritten node into its integer kernel (a bias scale that no
    # longer matched x_scale * w_scale would leave a float Conv behind a DequantizeLinear)
    ops8 = _integer_ops(work["q8"], work["dir"] / "q8.opt.onnx")
    ops4 = _integer_ops(q4, work["dir"] / "q4.opt.onnx")
    assert ops4 == ops8 and sum(ops4[op] for op in INTEGER_OPS) == len(WEIGHT_NODES)
    # and runs, further from the float model than the 8-bit one
    feeds = _feeds(2, 6)
    y, y8, y4 = (_run(p, feeds) for p in (work["float"], work["q8"], q4))
    assert y4.shape == y.shape and np.isfinite(y4).all()
    assert np.abs(y4 - y).mean() > 1.5 * np.abs(y8 - y).mean()


def test_eight_bits_leaves_the_file_unchanged_and_lower_bits_cost_sqnr(work) -> None:
    q8b = low_bit.set_weight_bits(work["q8"], work["dir"] / "q8b.onnx",
                                  dict.fromkeys(WEIGHT_NODES, 8))
    a, b = _inits(work["q8"]), _inits(q8b)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # only the named node changes
    q6 = low_bit.set_weight_bits(work["q8"], work["dir"] / "q6.onnx", {"conv2": 6, "fc": 8})
    c = _inits(q6)
    changed = {k for k in a if not np.array_equal(a[k], c[k])}
    assert changed == {"w2_quantized", "w2_scale", "b2_quantized", "b2_quantized_scale"}
    assert np.abs(c["w2_quantized"]).max() == 31
    sq8 = low_bit.weight_sqnr_db(work["float"], work["q8"], ["conv2"])["conv2"]
    sq6 = low_bit.weight_sqnr_db(work["float"], q6, ["conv2"])["conv2"]
    assert 5 < sq8 - sq6 < 15  # ~6 dB per bit: 7-bit (reduce_range) -> 6-bit


def test_rewriting_after_compact_names_gives_the_same_weights(work) -> None:
    short = work["dir"] / "short.onnx"
    shutil.copy(work["q8"], short)
    assert onnx_int8.compact_names(short, work["float"]) > 0
    info = low_bit.weight_dequant_nodes(short, WEIGHT_NODES)  # node names survive
    assert all(wdq.weight.startswith("q") for wdq in info.values())  # tensor names do not
    bits = {"conv1": 3, "fc": 5}
    a = low_bit.set_weight_bits(work["q8"], work["dir"] / "long3.onnx", bits)
    b = low_bit.set_weight_bits(short, work["dir"] / "short3.onnx", bits)
    ia, ib = low_bit.weight_dequant_nodes(a, bits), low_bit.weight_dequant_nodes(b, bits)
    xa, xb = _inits(a), _inits(b)
    for n in bits:
        for f in ("weight", "scale", "bias", "bias_scale"):
            np.testing.assert_array_equal(xa[getattr(ia[n], f)], xb[getattr(ib[n], f)])


def test_a_shared_weight_is_rewritten_only_at_one_width(tmp_path) -> None:
    rng = np.random.default_rng(3)
    w = nh.from_array(rng.normal(0, 1, (4, 4)).astype(np.float32), "w")
    nodes = [oh.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
             oh.make_node("Relu", ["a"], ["r"], name="relu"),
             oh.make_node("MatMul", ["r", "w"], ["y"], name="mm2")]
    graph = oh.make_graph(nodes, "shared", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                       [2, 4])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f.onnx"))
    feeds = [{"x": rng.normal(0, 1, (2, 4)).astype(np.float32)} for _ in range(3)]
    cache = onnx_int8.calibrate(tmp_path / "f.onnx", ListReader(feeds), "MinMax", tmp_path / "c.json")
    q = onnx_int8.quantize_static_nodes(tmp_path / "f.onnx", tmp_path / "q.onnx", cache, None,
                                        SETTINGS)
    with pytest.raises(ParamError, match="'w_quantized'.*shared with mm2"):
        low_bit.set_weight_bits(q, tmp_path / "q4.onnx", {"mm1": 4})
    out = low_bit.set_weight_bits(q, tmp_path / "q4.onnx", {"mm1": 4, "mm2": 4})
    assert np.abs(_inits(out)["w_quantized"]).max() == 7


# ----------------------------------------------------------------------------- packed size


def test_packed_bytes_shrink_the_weights_by_bits_over_eight(work) -> None:
    inits = _inits(work["q8"])
    info = low_bit.weight_dequant_nodes(work["q8"], WEIGHT_NODES)
    numel = {n: inits[wdq.weight].size for n, wdq in info.items()}
    stored = sum(onnx_int8.size_breakdown(work["q8"])[k] for k in
                 onnx_int8.size_breakdown(work["q8"]) if k.startswith("init_"))
    p8 = low_bit.packed_weight_bytes(work["q8"], {})
    assert p8 == stored == low_bit.packed_weight_bytes(work["q8"], dict.fromkeys(WEIGHT_NODES, 8))
    bits = {"conv1": 4, "conv2": 2, "fc": 3}
    p = low_bit.packed_weight_bytes(work["q8"], bits)
    saved = sum(numel[n] - math.ceil(numel[n] * b / 8) for n, b in bits.items())
    assert p == p8 - saved
    # the weights alone take ~b/8 of their int8 bytes; the rest is unchanged
    rest = p8 - sum(numel.values())
    assert abs((p - rest) / sum(numel.values())
               - sum(numel[n] * bits.get(n, 8) / 8 for n in numel) / sum(numel.values())) < 0.02
    # the same number whether measured on the int8 model or on the rewritten one
    q = low_bit.set_weight_bits(work["q8"], work["dir"] / "packed.onnx", bits)
    assert low_bit.packed_weight_bytes(q, bits) == p


# ----------------------------------------------------------------------------- mixed precision

GROUPS = ("a", "b", "c")
OPTIONS = (8, 6, 4)
PARAMS = {"a": 1000, "b": 4000, "c": 2000}  # weights per group
SOLO = {("a", 8): 0.0, ("a", 6): 0.00, ("a", 4): 0.02,
        ("b", 8): 0.0, ("b", 6): 0.01, ("b", 4): 0.03,
        ("c", 8): 0.0, ("c", 6): 0.03, ("c", 4): 0.30}


def size_of(config: dict[str, int]) -> float:
    return 500.0 + sum(PARAMS[g] * b / 8 for g, b in config.items())


class FakeVerify:
    """Additive solo deltas plus penalties for chosen (group, bits) pairs; counts calls."""

    def __init__(self, penalty: dict[tuple[str, int], float] | None = None) -> None:
        self.penalty, self.calls = penalty or {}, []

    def __call__(self, config: dict[str, int]) -> float:
        self.calls.append(dict(config))
        return sum(SOLO[(g, b)] + self.penalty.get((g, b), 0.0) for g, b in config.items())


def _dominated(s: mp.WalkStep, others) -> bool:
    return any(o.size <= s.size and o.measured_delta <= s.measured_delta
               and (o.size < s.size or o.measured_delta < s.measured_delta) for o in others)


def test_mixed_precision_fits_the_budget_with_verified_configs_only() -> None:
    verify = FakeVerify()
    res = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.05, max_verify=20)
    chosen = res.chosen
    assert chosen is not None and chosen.measured_delta <= 0.05
    assert chosen.config in verify.calls  # measured, not predicted
    # a (free) then b (largest saving per point), down to 4 bits; c at 6 would exceed
    assert chosen.config == {"a": 4, "b": 4, "c": 8}
    assert [s.move for s in res.steps] == [None, ("a", 6), ("b", 6), ("b", 4), ("a", 4)]
    assert res.refused == [("c", 6)]  # predicted 0.06 > 0.05: refused unmeasured (prune)
    within = [s for s in res.steps if s.measured_delta <= 0.05]
    assert chosen.size == min(s.size for s in within)
    front = res.front
    assert front and all(not _dominated(s, res.steps) for s in front)
    assert all(_dominated(s, res.steps) or s in front for s in res.steps)
    assert [s.size for s in front] == sorted(s.size for s in front)
    json.dumps(res.as_dict())  # JSON-able


def test_mixed_precision_refuses_a_move_the_prediction_said_would_fit() -> None:
    verify = FakeVerify({("b", 4): 0.05})  # b at 4 bits interacts badly with the others
    res = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.05, max_verify=20)
    bad = next(s for s in res.steps if s.move == ("b", 4))
    assert bad.predicted_delta <= 0.05 < bad.measured_delta and not bad.accepted
    assert ("b", 4) in res.refused
    assert sum(c["b"] == 4 for c in verify.calls) == 1  # never tried again
    # the walk went on from the configuration before it: c to 6 bits, then a to 4 would not fit
    assert res.chosen.config == {"a": 6, "b": 6, "c": 6}
    assert res.chosen.measured_delta <= 0.05 and res.chosen.config in verify.calls


def test_mixed_precision_without_pruning_measures_what_the_prediction_refuses() -> None:
    verify = FakeVerify({("c", 6): -0.02})  # joint loss below the sum of the solo ones
    res = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.05, 20,
                                    prune=False)
    assert any(c["c"] == 6 for c in verify.calls)
    assert res.chosen.config["c"] == 6 and res.chosen.measured_delta <= 0.05
    pruned = mp.walk(GROUPS, OPTIONS, SOLO, size_of, FakeVerify({("c", 6): -0.02}),
                                       0.05, 20)
    assert pruned.chosen.config["c"] == 8 and pruned.chosen.size > res.chosen.size


def test_mixed_precision_caches_verify_and_stops_at_max_verify() -> None:
    verify = FakeVerify()
    cache: dict = {}
    first = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.03, 20,
                                      cache=cache)
    n_first = len(verify.calls)
    assert first.verify_calls == n_first == len(cache)
    second = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.05, 20,
                                       cache=cache)
    keys = [tuple(c[g] for g in GROUPS) for c in verify.calls]
    assert len(keys) == len(set(keys))  # no configuration measured twice
    assert second.verify_calls == len(verify.calls) - n_first < len(second.steps)
    capped = FakeVerify()
    res = mp.walk(GROUPS, OPTIONS, SOLO, size_of, capped, 0.05, max_verify=2)
    assert len(capped.calls) == 2 == len(res.steps)


def test_mixed_precision_over_budget_at_the_start_chooses_nothing() -> None:
    verify = FakeVerify({("a", 8): 0.2})
    res = mp.walk(GROUPS, OPTIONS, SOLO, size_of, verify, 0.05, 20,
                                    prune=False)  # not even unpruned moves are measured
    assert res.chosen is None and len(verify.calls) == 1 and res.as_dict()["chosen"] is None


def test_mixed_precision_validates_its_inputs() -> None:
    with pytest.raises(ParamError, match="descending"):
        mp.walk(GROUPS, (4, 8), SOLO, size_of, FakeVerify(), 0.05, 5)
    with pytest.raises(ParamError, match=r"\('c', 4\)"):
        solo = {k: v for k, v in SOLO.items() if k != ("c", 4)}
        mp.walk(GROUPS, OPTIONS, solo, size_of, FakeVerify(), 0.05, 5)
    with pytest.raises(ParamError, match="max_verify"):
        mp.walk(GROUPS, OPTIONS, SOLO, size_of, FakeVerify(), 0.05, 0)


def test_pareto_front_keeps_exactly_the_non_dominated() -> None:
    pts = [(100, 0.3), (100, 0.1), (80, 0.2), (60, 0.5), (90, 0.2), (60, 0.5), (120, 0.0)]
    steps = [mp.WalkStep({"a": 8}, None, None, d, s, True) for s, d in pts]
    front = mp.pareto_front(steps)
    assert [(s.size, s.measured_delta) for s in front] == [(60, 0.5), (80, 0.2), (100, 0.1),
                                                           (120, 0.0)]
    for s, t in itertools.combinations(front, 2):
        assert not _dominated(s, [t]) and not _dominated(t, [s])
