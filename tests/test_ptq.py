"""Per-layer INT8 PTQ (slimaudio.compress.onnx_ptq, slimaudio.studies.ptq_layerwise).

A tiny EcapaTdnn (random weights, randomised BN statistics) is exported with the TorchScript
exporter, as models/ecapa/ecapa.onnx is, and quantized against a synthetic data/speakers
folder whose test utterances carry a sentinel value no train utterance has.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from slimaudio.compress import onnx_ptq as ptq
from slimaudio.errors import DataError, ParamError
from slimaudio.studies import ptq_layerwise as study

N_MELS = 20
EMB = 16
SENTINEL = 50.0  # every test-split feature frame holds this value in band 0


def _tiny_ecapa():
    import torch

    from slimaudio.models.ecapa import EcapaTdnn

    torch.manual_seed(0)
    m = EcapaTdnn(n_mels=N_MELS, channels=32, mfa_channels=48, attention_channels=8,
                  embedding_dim=EMB, scale=4, se_bottleneck=8)
    # Trained-looking BN statistics: untrained ones are identical constants that ORT merges.
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n) * 0.2)
            mod.running_var.copy_(torch.rand(n) + 0.5)
            mod.weight.data.copy_(torch.rand(n) + 0.5)
            mod.bias.data.copy_(torch.randn(n) * 0.1)
    return m.eval()


def export_tiny(path: Path, model=None) -> Path:
    import torch

    m = model if model is not None else _tiny_ecapa()
    torch.onnx.export(m, (torch.randn(1, 120, N_MELS),), str(path), input_names=["feats"],
                      output_names=["embedding"], opset_version=17, dynamo=False,
                      dynamic_axes={"feats": {0: "batch", 1: "frames"},
                                    "embedding": {0: "batch"}})
    return path


def make_speakers(root: Path, n_train: int = 4, n_test: int = 4, utts: int = 3,
                  seed: int = 0) -> Path:
    """A data/speakers-shaped folder: manifest.csv, feats.npy (float16), trials.txt."""
    rng = np.random.default_rng(seed)
    rows, chunks, off = [], [], 0
    for s in range(n_train + n_test):
        split = "train" if s < n_train else "test"
        centre = rng.normal(0, 1, N_MELS)
        for u in range(utts):
            frames = int(rng.integers(80, 160))
            x = centre + rng.normal(0, 1, (frames, N_MELS))
            if split == "test":
                x[:, 0] = SENTINEL
            chunks.append(x.astype(np.float16))
            rows.append({"utt_id": f"s{s}_u{u}", "speaker": f"s{s}", "split": split,
                         "feat_offset": off, "feat_frames": frames})
            off += frames
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    np.save(root / "feats.npy", np.concatenate(chunks))
    test = [r for r in rows if r["split"] == "test"]
    lines = []
    for a in test:
        for b in test:
            if a["utt_id"] < b["utt_id"]:
                lines.append(f"{int(a['speaker'] == b['speaker'])} {a['utt_id']} {b['utt_id']}")
    (root / "trials.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ptq")
    raw = export_tiny(d / "ecapa.onnx")
    pre = ptq.preprocess(raw, d / "pre.onnx")
    data = make_speakers(d / "speakers")
    utts = ptq.load_utterances(data)
    reader = ptq.SpeakerCalibrationReader(utts, 4, 60, seed=1)
    cache = ptq.calibrate(pre, reader, "MinMax", d / "calib.json")
    return {"dir": d, "raw": raw, "pre": pre, "data": data, "cache": cache}


def _float32_bytes(path: Path) -> int:
    m = onnx.load(str(path))
    return sum(onnx.numpy_helper.to_array(i).nbytes for i in m.graph.initializer
               if i.data_type == onnx.TensorProto.FLOAT)


def _weight_nodes(model: onnx.ModelProto) -> list[str]:
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if ptq.is_weight_node(n, inits)]


# ----------------------------------------------------------------------------- mapping


def test_group_mapping_covers_every_weight_node_exactly_once(work) -> None:
    model = onnx.load(str(work["pre"]))
    gmap = ptq.group_nodes(model)
    weight_nodes = _weight_nodes(model)
    mapped = [n for g in ptq.GROUPS for n in gmap.weight_nodes[g]]
    assert sorted(mapped) == sorted(weight_nodes)
    assert len(mapped) == len(set(mapped))
    # groups partition the graph: no node in two groups, every node somewhere
    every = [n for names in gmap.nodes.values() for n in names]
    assert sorted(every) == sorted(n.name for n in model.graph.node)
    assert len(every) == len(set(every))
    # the paper's groups: BN of the pooling and of the embedding go with asp and fc
    assert {"/bn_asp/BatchNormalization", "/bn_fc/BatchNormalization"} <= set(every)
    assert "/bn_asp/BatchNormalization" in gmap.nodes["asp"]
    assert "/bn_fc/BatchNormalization" in gmap.nodes["fc"]
    assert any(n.startswith("/fc/") for n in gmap.weight_nodes["fc"])
    # the first conv and the aggregation conv are their own groups
    assert all(n.startswith("/conv_in/") for n in gmap.nodes["conv_in"])
    assert all(n.startswith("/conv_mfa/") for n in gmap.nodes["conv_mfa"])
    assert not any(ptq.is_weight_node(n, set()) for n in model.graph.node
                   if n.name in gmap.nodes[ptq.OTHER])


def test_group_mapping_falls_back_to_weight_names_and_refuses_orphans(work) -> None:
    model = onnx.load(str(work["raw"]))  # un-preprocessed: torch parameter names intact
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.name = "Gemm_renamed_by_an_optimiser"
    gmap = ptq.group_nodes(model)
    assert gemm.name in gmap.weight_nodes["fc"]
    # a weight node with neither a module prefix nor a torch weight name is an error
    inits = {i.name: i for i in model.graph.initializer}
    for k in (1, 2):
        inits[gemm.input[k]].name = f"anonymous_{k}"
        gemm.input[k] = f"anonymous_{k}"
    with pytest.raises(DataError, match="Gemm_renamed_by_an_optimiser"):
        ptq.group_nodes(model)


def test_group_mapping_rejects_a_model_without_the_contract_names(work) -> None:
    model = onnx.load(str(work["raw"]))
    for n in model.graph.node:
        if n.name.startswith("/block2/"):
            n.name = n.name.replace("/block2/", "/blockX/")
        for i, name in enumerate(n.input):
            if name.startswith("block2."):
                n.input[i] = name.replace("block2.", "blockX.")
    for init in model.graph.initializer:
        init.name = init.name.replace("block2.", "blockX.")
    with pytest.raises(DataError, match="blockX"):
        ptq.group_nodes(model)


def test_preprocess_unshares_initializers_across_groups(tmp_path) -> None:
    # An untrained model: BN ones/zeros are identical, so ORT merges them across groups.
    import torch

    from slimaudio.models.ecapa import EcapaTdnn

    torch.manual_seed(0)
    m = EcapaTdnn(n_mels=N_MELS, channels=16, mfa_channels=16, attention_channels=4,
                  embedding_dim=8, scale=4, se_bottleneck=4).eval()
    pre = ptq.preprocess(export_tiny(tmp_path / "raw.onnx", m), tmp_path / "pre.onnx")
    model = onnx.load(str(pre))
    group = ptq.GroupMap.group_of(ptq.group_nodes(model))
    readers: dict[str, set[str]] = {}
    inits = {i.name for i in model.graph.initializer}
    for n in model.graph.node:
        for i in n.input:
            if i in inits:
                readers.setdefault(i, set()).add(group[n.name])
    shared = {k: v for k, v in readers.items() if len(v) > 1}
    assert not shared, f"initializers read by several groups: {shared}"


# ----------------------------------------------------------------------------- quantization


CONFIGURED_OPS = ("Conv", "Gemm", "MatMul", "Relu", "Add", "Concat", "Split")


@pytest.mark.parametrize("ops", [CONFIGURED_OPS, None], ids=["configured_ops", "every_op"])
@pytest.mark.parametrize("group", ptq.GROUPS)
def test_quantizing_one_group_leaves_every_other_node_float(work, group, ops) -> None:
    gmap = ptq.group_nodes(work["pre"])
    out = ptq.quantize_static_nodes(work["pre"], work["dir"] / f"q_{group}_{bool(ops)}.onnx",
                                    work["cache"], gmap.nodes[group],
                                    ptq.QuantSettings(op_types=ops))
    ptq.compact_names(out, work["pre"])
    q = onnx.load(str(out))
    float_w = ptq.float_weight_nodes(q)
    members = set(gmap.nodes[group])
    main = [n for n in gmap.weight_nodes[group]
            if next(x for x in q.graph.node if x.name == n).op_type in ptq.MAIN_WEIGHT_OPS]
    assert main and not any(float_w[n] for n in main), "the group's weights were not quantized"
    others = [n for n in float_w if n not in members]
    assert others and all(float_w[n] for n in others)
    # every Q/DQ node sits on an edge of the group: it feeds or is fed by one of its nodes
    producer = {o: n for n in q.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in q.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def touches_group(node, depth: int = 0) -> bool:
        if node.name in members:
            return True
        if depth > 2 or node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            return False
        near = [producer[i] for i in node.input if i in producer]
        near += [c for o in node.output for c in consumers.get(o, [])]
        return any(touches_group(x, depth + 1) for x in near)

    qdq = [n for n in q.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(touches_group(n) for n in qdq)
    # non-QDQ nodes outside the group are untouched (same names, same op types)
    orig = {n.name: n.op_type for n in onnx.load(str(work["pre"])).graph.node}
    for n in q.graph.node:
        if n.name in orig and n.name not in members:
            assert n.op_type == orig[n.name]
    # it loads and runs in a fresh session on its own
    from slimaudio.latency import onnx_session

    y = onnx_session(out).run(None, {"feats": np.zeros((1, 90, N_MELS), np.float32)})[0]
    assert y.shape == (1, EMB) and np.isfinite(y).all()


def test_all_dynamic_float16_are_smaller_and_close(work) -> None:
    from slimaudio.latency import onnx_session

    d = work["dir"]
    paths = {
        "all": ptq.quantize_static_nodes(work["pre"], d / "all.onnx", work["cache"], None,
                                         ptq.QuantSettings()),
        "dynamic": ptq.quantize_dynamic_model(work["pre"], d / "dyn.onnx"),
        "float16": ptq.convert_float16(work["pre"], d / "f16.onnx"),
    }
    x = {"feats": np.random.default_rng(0).normal(size=(1, 100, N_MELS)).astype(np.float32)}
    ref = onnx_session(work["pre"]).run(None, x)[0].ravel()
    assert ptq.float_weight_nodes(onnx.load(str(paths["all"]))) and not any(
        v for k, v in ptq.float_weight_nodes(onnx.load(str(paths["all"]))).items()
        if not k.endswith("BatchNormalization"))
    for name, p in paths.items():
        # the tiny model's Q/DQ node overhead outweighs its weights: compare float weight bytes
        assert _float32_bytes(p) < 0.35 * _float32_bytes(work["pre"]), name
        y = onnx_session(p).run(None, x)[0].ravel()
        cos = float(y @ ref / np.linalg.norm(y) / np.linalg.norm(ref))
        assert cos > 0.9, (name, cos)


def test_compact_names_keeps_the_maths_and_the_original_names(work) -> None:
    from slimaudio.latency import onnx_session

    p = ptq.quantize_static_nodes(work["pre"], work["dir"] / "compact.onnx", work["cache"], None,
                                  ptq.QuantSettings())
    ref = onnx.load(str(p))
    x = {"feats": np.random.default_rng(1).normal(size=(1, 90, N_MELS)).astype(np.float32)}
    y0 = onnx_session(p).run(None, x)[0]
    before = p.stat().st_size
    saved = ptq.compact_names(p, work["pre"])
    assert saved > 0 and p.stat().st_size < before
    np.testing.assert_array_equal(onnx_session(p).run(None, x)[0], y0)
    float_names = {n.name for n in onnx.load(str(work["pre"])).graph.node}
    kept = {n.name for n in onnx.load(str(p)).graph.node} & float_names
    assert kept == {n.name for n in ref.graph.node} & float_names
    parts = ptq.size_breakdown(p)
    assert sum(parts.values()) == p.stat().st_size and parts["init_int8"] > 0


def test_quantize_rejects_an_empty_node_list(work) -> None:
    with pytest.raises(ParamError, match="at least one node"):
        ptq.quantize_static_nodes(work["pre"], work["dir"] / "x.onnx", work["cache"], [],
                                  ptq.QuantSettings())


# ----------------------------------------------------------------------------- calibration


def test_calibration_reader_never_sees_test_data(work) -> None:
    utts = ptq.load_utterances(work["data"])
    reader = ptq.SpeakerCalibrationReader(utts, 1000, 60, seed=3)  # asks for more than exist
    index = utts.index()
    assert reader.utt_ids and all(utts.split[index[u]] == "train" for u in reader.utt_ids)
    assert len(reader) == int((utts.split == "train").sum())
    seen = 0
    while (feed := reader.get_next()) is not None:
        x = feed["feats"]
        assert x.dtype == np.float32 and x.shape[0] == 1 and x.shape[1] <= 60
        assert not np.any(x[..., 0] == SENTINEL), "a test utterance reached calibration"
        seen += 1
    assert seen == len(reader)
    reader.rewind()
    assert reader.get_next() is not None


@pytest.mark.parametrize("method", ["Entropy", "Percentile"])
def test_other_calibration_methods_give_working_models(work, method) -> None:
    from slimaudio.latency import onnx_session

    utts = ptq.load_utterances(work["data"])
    reader = ptq.SpeakerCalibrationReader(utts, 3, 60, seed=2)
    cache = ptq.calibrate(work["pre"], reader, method, work["dir"] / f"cal_{method}.json")
    p = ptq.quantize_static_nodes(work["pre"], work["dir"] / f"all_{method}.onnx", cache, None,
                                  ptq.QuantSettings(method=method, op_types=CONFIGURED_OPS))
    y = onnx_session(p).run(None, {"feats": np.ones((1, 80, N_MELS), np.float32)})[0]
    assert y.shape == (1, EMB) and np.isfinite(y).all()


def test_calibration_reader_refuses_a_manifest_without_train(tmp_path) -> None:
    data = make_speakers(tmp_path / "speakers", n_train=0, n_test=3)
    with pytest.raises(DataError, match="no train-split"):
        ptq.SpeakerCalibrationReader(ptq.load_utterances(data), 4, 50, seed=0)


def test_load_utterances_names_the_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match="manifest.csv"):
        ptq.load_utterances(tmp_path)


# ----------------------------------------------------------------------------- error analysis


def test_group_output_error_is_zero_for_float_and_positive_when_quantized(work) -> None:
    gmap = ptq.group_nodes(work["pre"])
    q = ptq.quantize_static_nodes(work["pre"], work["dir"] / "err_block1.onnx", work["cache"],
                                  gmap.nodes["block1"], ptq.QuantSettings())
    utts = ptq.load_utterances(work["data"])
    inputs = [{"feats": utts.feats_of(i, 0, 80)[None]} for i in range(2)]
    err = ptq.group_output_error(work["pre"], q, "block1", gmap, inputs)
    assert err.tensors and 0 < err.out_rel_err < 0.5
    assert 0 < err.emb_rel_err < 1 and 0.5 < err.emb_cos <= 1.0
    assert 25 < err.weight_sqnr_db < 80  # 8-bit symmetric weights: ~6 dB per bit
    same = ptq.group_output_error(work["pre"], work["pre"], "block1", gmap, inputs)
    assert same.out_rel_err == 0 and same.emb_rel_err == 0


def test_op_profile_reports_integer_kernels(work) -> None:
    q = ptq.quantize_static_nodes(work["pre"], work["dir"] / "prof_all.onnx", work["cache"], None,
                                  ptq.QuantSettings())
    x = {"feats": np.zeros((1, 100, N_MELS), np.float32)}
    prof = ptq.op_profile(q, x, runs=2)
    assert "QLinearConv" in prof and prof["QLinearConv"]["count"] > 0
    fprof = ptq.op_profile(work["pre"], x, runs=2)
    assert "QLinearConv" not in fprof and all(v["ms"] >= 0 for v in fprof.values())


# ----------------------------------------------------------------------------- proposed search


def test_greedy_search_takes_free_groups_and_fits_the_budget() -> None:
    delta = {"a": -0.02, "b": 0.05, "c": 0.04, "d": 0.5}
    saving = {"a": 10.0, "b": 100.0, "c": 20.0, "d": 400.0}
    calls = []

    def verify(groups):
        calls.append(groups)
        return sum(max(delta[g], 0) for g in groups)

    res = study.greedy_search(delta, saving, 0.1, verify)
    assert res.order[0] == "a"  # no loss ranks first
    assert res.order == ["a", "b", "d", "c"]  # bytes per point: inf, 2000, 800, 500
    # d does not fit next to b; the walk goes on and still takes c
    assert res.predicted == ["a", "b", "c"] and res.chosen == ["a", "b", "c"]
    assert abs(res.chosen_delta - 0.09) < 1e-12
    assert len(calls) == 1  # d cannot fit next to the measured 0.09: not even tried


def test_greedy_search_backs_off_when_the_joint_loss_exceeds_the_prediction() -> None:
    delta = {"a": 0.01, "b": 0.02, "c": 0.03}
    saving = {"a": 50.0, "b": 50.0, "c": 50.0}
    measured = {("a", "b", "c"): 0.3, ("a", "b"): 0.2, ("a",): 0.05, ("a", "c"): 0.12}
    res = study.greedy_search(delta, saving, 0.1, lambda g: measured[tuple(g)])
    assert [s["groups"] for s in res.steps][:3] == [["a", "b", "c"], ["a", "b"], ["a"]]
    assert [s["within_budget"] for s in res.steps][:3] == [False, False, True]
    assert [s["action"] for s in res.steps][:3] == ["verify", "back off", "back off"]
    # then each dropped group that still fits next to the measured 0.05 is tried alone,
    # except a set already measured (a, b)
    assert [s["groups"] for s in res.steps][3:] == [["a", "c"]]
    assert res.steps[3]["action"] == "extend" and not res.steps[3]["within_budget"]
    assert res.chosen == ["a"] and res.chosen_delta == 0.05


def test_greedy_search_extends_when_the_joint_loss_is_below_the_sum() -> None:
    delta = {"a": 0.0, "b": 0.06, "c": 0.08}
    saving = {"a": 10.0, "b": 60.0, "c": 40.0}
    joint = {("a", "b"): 0.01, ("a", "b", "c"): 0.09}
    res = study.greedy_search(delta, saving, 0.1, lambda g: joint[tuple(g)])
    assert res.predicted == ["a", "b"]  # 0.06 + 0.08 > 0.1: c left out by the prediction
    assert [s["action"] for s in res.steps] == ["verify", "extend"]
    assert res.chosen == ["a", "b", "c"] and res.chosen_delta == 0.09


def test_greedy_search_may_choose_nothing() -> None:
    res = study.greedy_search({"a": 0.5}, {"a": 10.0}, 0.1, lambda g: 1.0)
    assert res.chosen == [] and res.steps == []
    res = study.greedy_search({"a": 0.05}, {"a": 10.0}, 0.1, lambda g: 1.0)
    assert res.chosen == [] and res.steps[0]["within_budget"] is False


# ----------------------------------------------------------------------------- the study


def _ptq_params(profile: str) -> dict:
    """The ptq section of the params composed for a profile, validated."""
    from slimaudio import config

    composed = config.compose([f"profile={profile}"])
    config.validate(composed)
    return composed["ptq"]


@pytest.mark.parametrize("profile", ["default", "tiny", "paper"])
def test_ptq_params_validate(profile) -> None:
    cfg = _ptq_params(profile)
    assert cfg["budget_eer"] == 0.1
    assert cfg["calibration"]["method"] in ptq.CALIBRATION_METHODS


def test_ptq_params_reject_a_bad_method() -> None:
    from slimaudio import config

    cfg = _ptq_params("default")
    cfg["calibration"]["method"] = "Histogram"
    with pytest.raises(ParamError, match="ptq.calibration.method"):
        config._validate_mapping("ptq", cfg, config.SCHEMAS["ptq"])


def test_study_runs_every_row(work, tmp_path) -> None:
    from slimaudio.latency import onnx_session

    cfg = _ptq_params("default")
    cfg = {**cfg, "calibration": {**cfg["calibration"], "utterances": 4, "crop_frames": 60},
           "eval": {"threads": 1, "max_frames": 60}, "error_analysis": {"utterances": 2},
           "latency": {"frames": 60, "warmup": 0, "repeats": 30}, "profile_runs": 1,
           "ablation": ["s8s8"], "ablation_eer": []}
    res = study.run_study(cfg, {"seed": 0, "threads": 1}, work["raw"], work["data"],
                          tmp_path / "models", progress=False)
    tab = res.table()
    assert list(tab.columns) == study.COLUMNS
    assert tab["quantized"].tolist() == list(study.ROWS)
    assert tab.drop(columns="quantized").notna().all().all()
    m = {r: res.rows[r].metrics for r in study.ROWS}
    assert m["none"]["delta_eer"] == 0 and m["none"]["size_ratio"] == 1
    assert m["all"]["size_ratio"] > 0 and m["float16"]["size_ratio"] < 1
    assert m["proposed"]["delta_eer"] <= cfg["budget_eer"] + 1e-9
    if m["paper_choice"]["delta_eer"] <= cfg["budget_eer"]:
        assert m["proposed"]["size_bytes"] <= m["paper_choice"]["size_bytes"]
    for r in study.ROWS:  # one file per row, each loads in a fresh session
        p = tmp_path / "models" / f"{r}.onnx"
        y = onnx_session(p).run(None, {"feats": np.zeros((1, 70, N_MELS), np.float32)})[0]
        assert y.shape == (1, EMB)
    assert not list((tmp_path / "models").glob("search_*"))
    assert [e.group for e in res.errors] == list(ptq.GROUPS)
    files = study.write_reports(res, cfg, tmp_path / "reports")
    assert pd.read_csv(files["table"]).shape == (len(study.ROWS), len(study.COLUMNS))
    assert {p.name for p in files.values()} == set(study.REPORT_FILES.values())
    md = files["table_md"].read_text()
    assert "Table 1" in md and "Table 2" in md and "5994" in md


@pytest.mark.slow
def test_stage_writes_every_output_and_one_mlflow_run_per_row(work, tmp_path) -> None:
    """The stage script end to end on the tiny profile, with its own MLflow store."""
    import os
    import subprocess
    import sys

    from slimaudio import config

    root = Path(__file__).resolve().parents[1]
    config.compose_params(tmp_path / "params.yaml", ["profile=tiny"], root / "conf")
    rep = tmp_path / "reports"
    files = {k: rep / f for k, f in study.REPORT_FILES.items()}
    cmd = [sys.executable, str(root / "stages" / "ptq_layerwise.py"),
           "--params", str(tmp_path / "params.yaml"), "--model", str(work["raw"]),
           "--data", str(work["data"]), "--models-dir", str(tmp_path / "models")]
    for k, p in files.items():
        cmd += [f"--{k.replace('_', '-')}", str(p)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert all(p.is_file() for p in files.values())
    assert {p.stem for p in (tmp_path / "models").glob("*.onnx")} == set(study.ROWS)

    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["ptq_layerwise"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert sorted(children["tags.mlflow.runName"]) == sorted(study.ROWS)
    assert children["metrics.eer"].notna().all() and children["metrics.speedup"].notna().all()


def test_preprocess_names_a_missing_model(tmp_path) -> None:
    with pytest.raises(DataError, match="nope.onnx: ONNX model not found"):
        ptq.preprocess(tmp_path / "nope.onnx", tmp_path / "o.onnx")


def test_study_refuses_features_of_another_width(work, tmp_path) -> None:
    data = tmp_path / "speakers"
    shutil.copytree(work["data"], data)
    feats = np.load(data / "feats.npy")
    np.save(data / "feats.npy", np.concatenate([feats, feats[:, :4]], axis=1))
    cfg = _ptq_params("tiny")
    with pytest.raises(DataError, match="mel bands"):
        study.run_study(cfg, {"seed": 0, "threads": 1}, work["raw"], data, tmp_path / "m",
                        progress=False)


def test_size_scaling_quantizes_every_weight_and_shrinks_with_width() -> None:
    from slimaudio.compress import size_scaling

    settings = ptq.QuantSettings(per_channel=True, reduce_range=True,
                                 op_types=("Conv", "Gemm", "MatMul", "Relu", "Add"))
    small, wide = (size_scaling.measure(c, settings, n_mels=20) for c in (32, 128))
    for r in (small, wide):
        assert r["int8_bytes"] < r["float_bytes"]
        assert r["int8_breakdown"]["init_int8"] > 0
    # per-channel metadata grows as C, weights as C^2: a wider model compresses better
    assert wide["ratio"] < small["ratio"] and wide["ratio"] < 0.5
