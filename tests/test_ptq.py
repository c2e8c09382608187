"""Per-layer INT8 PTQ (slimaudio.compress.onnx_int8, slimaudio.studies.ptq_layerwise).

A tiny EcapaTdnn (random weights, randomised BN statistics) is exported with the TorchScript
exporter, as models/ecapa/ecapa.onnx is, and quantized against a synthetic data/speakers
folder whose test utterances carry a sentinel value no train utterance has.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from slimaudio import compose as composer
from slimaudio.compress import budget_walk, onnx_int8
from slimaudio.datasets import speakers
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas import ptq_layerwise as schema
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.ecapa import EXPORT_INPUT
from slimaudio.schemas.ptq_layerwise import PtqRecipe
from slimaudio.speaker import groups, ptq_recipe
from slimaudio.speaker.calibration import SpeakerCalibrationReader
from slimaudio.spec import build
from slimaudio.studies.ptq_layerwise import ablation, result, run, search
from slimaudio.studies.ptq_layerwise import config as study_config
from slimaudio.studies.ptq_layerwise import report as ptq_report
from slimaudio.studies.ptq_layerwise.error_analysis import group_output_error
from slimaudio.studies.ptq_layerwise.rows import ROWS

N_MELS = 20
EMB = 16
SENTINEL = 50.0  # every test-split feature frame holds this value in band 0
# The stage's report outputs (roles) and their file names in a report folder.
REPORT_FILES = {"table": "table.csv", "rows": "rows.csv", "table_md": "table.md",
                "metrics": "metrics.json", "errors": "error_analysis.csv",
                "op_profile": "op_profile.csv", "ablation": "ablation.csv",
                "sensitivity_png": "sensitivity.png", "size_png": "size_vs_eer.png",
                "speed": "speed.csv", "speed_png": "speed.png"}
BITS_FILES = {"table": "table.csv", "rows": "rows.csv", "table_md": "table.md",
              "metrics": "metrics.json", "mixed_png": "mixed_precision.png"}

BOOT = Bootstrap(resamples=200, level=0.95)


def settings(**changes) -> onnx_int8.QuantSettings:
    """Static quantization settings: MinMax, U8S8, per-channel, 8-bit, QDQ, every op type."""
    base = onnx_int8.QuantSettings(method="MinMax", activation_type="uint8", per_channel=True,
                                   reduce_range=False, quant_format="QDQ", op_types=None)
    return dataclasses.replace(base, **changes)


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
    """A data/speakers-shaped folder: manifest.csv, feats.npy (float16), trials.txt, info.json."""
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
    (root / "info.json").write_text(json.dumps({"sample_rate": 16000, "hop_length": 160,
                                                "n_mels": N_MELS}))
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ptq")
    raw = export_tiny(d / "ecapa.onnx")
    pre = groups.prepare(raw, d / "pre.onnx")
    data = make_speakers(d / "speakers")
    reader = SpeakerCalibrationReader(speakers.load(data), 4, 60, seed=1)
    cache = onnx_int8.calibrate(pre, reader, "MinMax", d / "calib.json")
    return {"dir": d, "raw": raw, "pre": pre, "data": data, "cache": cache}


def quantize(work, name: str, nodes, st: onnx_int8.QuantSettings | None = None,
             cache: Path | None = None) -> Path:
    """A static model of the fixture's float model, in the fixture's folder."""
    return onnx_int8.quantize_static_nodes(work["pre"], work["dir"] / name,
                                           cache or work["cache"], nodes, st or settings())


def _float32_bytes(path: Path) -> int:
    m = onnx.load(str(path))
    return sum(onnx.numpy_helper.to_array(i).nbytes for i in m.graph.initializer
               if i.data_type == onnx.TensorProto.FLOAT)


def _weight_nodes(model: onnx.ModelProto) -> list[str]:
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if onnx_int8.is_weight_node(n, inits)]


# ----------------------------------------------------------------------------- mapping


def test_group_mapping_covers_every_weight_node_exactly_once(work) -> None:
    model = onnx.load(str(work["pre"]))
    gmap = groups.group_nodes(model)
    weight_nodes = _weight_nodes(model)
    mapped = [n for g in groups.GROUPS for n in gmap.weight_nodes[g]]
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
    assert not any(onnx_int8.is_weight_node(n, set()) for n in model.graph.node
                   if n.name in gmap.nodes[groups.OTHER])


def test_group_mapping_falls_back_to_weight_names_and_refuses_orphans(work) -> None:
    model = onnx.load(str(work["raw"]))  # un-preprocessed: torch parameter names intact
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.name = "Gemm_renamed_by_an_optimiser"
    gmap = groups.group_nodes(model)
    assert gemm.name in gmap.weight_nodes["fc"]
    # a weight node with neither a module prefix nor a torch weight name is an error
    inits = {i.name: i for i in model.graph.initializer}
    for k in (1, 2):
        inits[gemm.input[k]].name = f"anonymous_{k}"
        gemm.input[k] = f"anonymous_{k}"
    with pytest.raises(DataError, match="Gemm_renamed_by_an_optimiser"):
        groups.group_nodes(model)


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
        groups.group_nodes(model)


def test_preprocess_unshares_initializers_across_groups(tmp_path) -> None:
    # An untrained model: BN ones/zeros are identical, so ORT merges them across groups.
    import torch

    from slimaudio.models.ecapa import EcapaTdnn

    torch.manual_seed(0)
    m = EcapaTdnn(n_mels=N_MELS, channels=16, mfa_channels=16, attention_channels=4,
                  embedding_dim=8, scale=4, se_bottleneck=4).eval()
    pre = groups.prepare(export_tiny(tmp_path / "raw.onnx", m), tmp_path / "pre.onnx")
    model = onnx.load(str(pre))
    group = groups.GroupMap.group_of(groups.group_nodes(model))
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
@pytest.mark.parametrize("group", groups.GROUPS)
def test_quantizing_one_group_leaves_every_other_node_float(work, group, ops) -> None:
    gmap = groups.group_nodes(work["pre"])
    out = quantize(work, f"q_{group}_{bool(ops)}.onnx", gmap.nodes[group], settings(op_types=ops))
    onnx_int8.compact_names(out, work["pre"])
    q = onnx.load(str(out))
    float_w = onnx_int8.float_weight_nodes(q)
    members = set(gmap.nodes[group])
    main = [n for n in gmap.weight_nodes[group]
            if next(x for x in q.graph.node if x.name == n).op_type in onnx_int8.MAIN_WEIGHT_OPS]
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
        "all": quantize(work, "all.onnx", None),
        "dynamic": onnx_int8.quantize_dynamic_model(work["pre"], d / "dyn.onnx"),
        "float16": onnx_int8.convert_float16(work["pre"], d / "f16.onnx"),
    }
    x = {"feats": np.random.default_rng(0).normal(size=(1, 100, N_MELS)).astype(np.float32)}
    ref = onnx_session(work["pre"]).run(None, x)[0].ravel()
    assert onnx_int8.float_weight_nodes(onnx.load(str(paths["all"]))) and not any(
        v for k, v in onnx_int8.float_weight_nodes(onnx.load(str(paths["all"]))).items()
        if not k.endswith("BatchNormalization"))
    for name, p in paths.items():
        # the tiny model's Q/DQ node overhead outweighs its weights: compare float weight bytes
        assert _float32_bytes(p) < 0.35 * _float32_bytes(work["pre"]), name
        y = onnx_session(p).run(None, x)[0].ravel()
        cos = float(y @ ref / np.linalg.norm(y) / np.linalg.norm(ref))
        assert cos > 0.9, (name, cos)


def test_compact_names_keeps_the_maths_and_the_original_names(work) -> None:
    from slimaudio.latency import onnx_session

    p = quantize(work, "compact.onnx", None)
    ref = onnx.load(str(p))
    x = {"feats": np.random.default_rng(1).normal(size=(1, 90, N_MELS)).astype(np.float32)}
    y0 = onnx_session(p).run(None, x)[0]
    before = p.stat().st_size
    saved = onnx_int8.compact_names(p, work["pre"])
    assert saved > 0 and p.stat().st_size < before
    np.testing.assert_array_equal(onnx_session(p).run(None, x)[0], y0)
    float_names = {n.name for n in onnx.load(str(work["pre"])).graph.node}
    kept = {n.name for n in onnx.load(str(p)).graph.node} & float_names
    assert kept == {n.name for n in ref.graph.node} & float_names
    parts = onnx_int8.size_breakdown(p)
    assert sum(parts.values()) == p.stat().st_size and parts["init_int8"] > 0


def test_quantize_rejects_an_empty_node_list(work) -> None:
    with pytest.raises(ParamError, match="at least one node"):
        quantize(work, "x.onnx", [])


# ----------------------------------------------------------------------------- calibration


def test_calibration_reader_never_sees_test_data(work) -> None:
    corpus = speakers.load(work["data"])
    reader = SpeakerCalibrationReader(corpus, 1000, 60, seed=3)  # asks for more than exist
    split = corpus.manifest.set_index("utt_id")["split"]
    assert reader.utt_ids and all(split[u] == "train" for u in reader.utt_ids)
    assert len(reader) == len(corpus.split("train"))
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

    reader = SpeakerCalibrationReader(speakers.load(work["data"]), 3, 60, seed=2)
    cache = onnx_int8.calibrate(work["pre"], reader, method, work["dir"] / f"cal_{method}.json")
    p = quantize(work, f"all_{method}.onnx", None,
                 settings(method=method, op_types=CONFIGURED_OPS), cache)
    y = onnx_session(p).run(None, {"feats": np.ones((1, 80, N_MELS), np.float32)})[0]
    assert y.shape == (1, EMB) and np.isfinite(y).all()


def test_calibration_reader_refuses_a_manifest_without_train(work, tmp_path) -> None:
    data = make_speakers(tmp_path / "speakers", n_train=0, n_test=3)
    with pytest.raises(DataError, match="no train utterances"):
        speakers.load(data)  # the corpus reader refuses first
    corpus = speakers.load(work["data"])
    test_only = speakers.SpeakerData(corpus.root, corpus.split("test").reset_index(drop=True),
                                       corpus.feats, corpus.trials, corpus.info)
    with pytest.raises(DataError, match="no train-split"):
        SpeakerCalibrationReader(test_only, 4, 50, seed=0)


def test_calibration_draw_is_the_base_seed_stream(work) -> None:
    """The calibration stream is np.random.default_rng(seed) itself (its ids are empty), so
    the calibration set is the one the study drew before the named streams."""
    corpus = speakers.load(work["data"])
    reader = SpeakerCalibrationReader(corpus, 3, 60, seed=7)
    train = np.flatnonzero(corpus.manifest["split"].to_numpy(str) == "train")
    pick = np.random.default_rng(7).choice(train, size=3, replace=False)
    assert reader.indices == sorted(int(i) for i in pick)


def test_loading_names_the_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match="manifest.csv"):
        speakers.load(tmp_path)


# ----------------------------------------------------------------------------- error analysis


def test_group_output_error_is_zero_for_float_and_positive_when_quantized(work) -> None:
    gmap = groups.group_nodes(work["pre"])
    q = quantize(work, "err_block1.onnx", gmap.nodes["block1"])
    corpus = speakers.load(work["data"])
    inputs = [{"feats": corpus.feats_of(i, 0, 80)[None]} for i in range(2)]
    err = group_output_error(work["pre"], q, "block1", gmap, inputs)
    assert err.tensors and 0 < err.out_rel_err < 0.5
    assert 0 < err.emb_rel_err < 1 and 0.5 < err.emb_cos <= 1.0
    assert 25 < err.weight_sqnr_db < 80  # 8-bit symmetric weights: ~6 dB per bit
    same = group_output_error(work["pre"], work["pre"], "block1", gmap, inputs)
    assert same.out_rel_err == 0 and same.emb_rel_err == 0


def test_op_profile_reports_integer_kernels(work) -> None:
    q = quantize(work, "prof_all.onnx", None)
    x = {"feats": np.zeros((1, 100, N_MELS), np.float32)}
    prof = onnx_int8.op_profile(q, x, runs=2)
    assert "QLinearConv" in prof and prof["QLinearConv"]["count"] > 0
    fprof = onnx_int8.op_profile(work["pre"], x, runs=2)
    assert "QLinearConv" not in fprof and all(v["ms"] >= 0 for v in fprof.values())


# ----------------------------------------------------------------------------- proposed search


def _propose(delta, saving, budget, verify):
    """The walk `proposed` takes: float (32) or INT8 (8) per group, sizes additive."""
    groups = list(delta)
    calls = []

    def measured(config):
        chosen = search.int8_groups(config, groups)
        calls.append(chosen)
        return verify(chosen) if chosen else 0.0

    res = budget_walk.walk(groups, (search.FLOAT, search.INT8),
                           {(g, search.INT8): d for g, d in delta.items()},
                           lambda c: 1000.0 - sum(saving[g] for g in search.int8_groups(c, groups)),
                           measured, budget, max_verify=len(groups) + 1)
    chosen = search.int8_groups(res.chosen.config, groups) if res.chosen else None
    return res, chosen, calls


def test_the_walk_for_proposed_takes_free_groups_first_and_fits_the_budget() -> None:
    delta = {"a": -0.02, "b": 0.05, "c": 0.04, "d": 0.5}
    saving = {"a": 10.0, "b": 100.0, "c": 20.0, "d": 400.0}
    res, chosen, calls = _propose(delta, saving, 0.1,
                                  lambda gs: sum(max(delta[g], 0) for g in gs))
    # bytes per point: a free, b 2000, d 800, c 500; d's prediction (0.05 + 0.5) is over the
    # budget, so it is refused unmeasured and the walk still takes c
    assert [s.move[0] for s in res.steps[1:]] == ["a", "b", "c"] and res.refused == [("d", 8)]
    assert chosen == ["a", "b", "c"] and abs(res.chosen.measured_delta - 0.09) < 1e-12
    assert calls == [[], ["a"], ["a", "b"], ["a", "b", "c"]]  # every step measured once


def test_the_walk_refuses_a_step_whose_joint_loss_exceeds_the_budget() -> None:
    delta = {"a": 0.01, "b": 0.02, "c": 0.03}
    saving = {"a": 50.0, "b": 50.0, "c": 50.0}
    joint = {("a",): 0.01, ("a", "b"): 0.2, ("a", "c"): 0.05}
    res, chosen, _ = _propose(delta, saving, 0.1, lambda gs: joint[tuple(gs)])
    assert [s.accepted for s in res.steps] == [True, True, False, True]
    assert chosen == ["a", "c"] and res.refused == [("b", 8)]


def test_the_walk_may_choose_nothing() -> None:
    res, chosen, calls = _propose({"a": 0.5}, {"a": 10.0}, 0.1, lambda gs: 1.0)
    assert chosen == [] and calls == [[]]  # a's prediction is over the budget: not measured
    res, chosen, _ = _propose({"a": 0.05}, {"a": 10.0}, 0.1, lambda gs: 1.0)
    assert chosen == [] and res.steps[-1].accepted is False


def test_final_check_keeps_a_smaller_measured_row_within_the_budget() -> None:
    walked = search.Candidate("walk", ["a", "b"], 0.05, 800.0)
    measured = [search.Candidate("c", ["c"], 0.2, 100.0),       # smaller, over budget
                search.Candidate("all", ["a", "b", "c"], 0.1, 500.0),  # smaller, at the budget
                search.Candidate("b", ["b"], 0.0, 500.0)]       # as small: the earlier one stays
    assert search.final_check(walked, measured, 0.1, 1000.0).source == "all"
    assert search.final_check(walked, measured[:1], 0.1, 1000.0) is walked
    assert search.final_check(None, measured[:1], 0.1, 1000.0) is None  # the float model


# ----------------------------------------------------------------------------- the study


def _ptq_params(profile: str) -> dict:
    """The ptq_layerwise section of the params composed for a profile, validated."""
    from slimaudio import config

    composed = composer.compose([f"profile={profile}"])
    config.validate(composed)
    return composed["ptq_layerwise"]


def _typed(section) -> study_config.Config:
    """The section as the stage hands it to the study (our export's input)."""
    return study_config.study_config(build(schema.PtqLayerwise, section), EXPORT_INPUT)


@pytest.mark.parametrize("profile", ["default", "tiny", "paper"])
def test_ptq_params_validate(profile) -> None:
    cfg = _ptq_params(profile)
    assert cfg["budget_eer"] == 0.1
    assert cfg["calibration"]["method"] in onnx_int8.CALIBRATION_METHODS
    typed = _typed(cfg)
    assert typed.budget_eer == 0.1 and typed.quant_settings.method == cfg["calibration"]["method"]


def test_ptq_params_reject_a_bad_method() -> None:
    from slimaudio import config

    cfg = _ptq_params("default")
    cfg["calibration"]["method"] = "Histogram"
    with pytest.raises(ParamError, match="ptq_layerwise.calibration.method"):
        config.validate_mapping("ptq_layerwise", cfg, config.SCHEMAS["ptq_layerwise"])


def test_the_recipe_reads_only_its_keys() -> None:
    """pwl_int8 and runtimes declare single keys of ptq_layerwise, not the section: what they
    build from it must read nothing else (a Declared mapping refuses any other key)."""
    from slimaudio import config
    from slimaudio.studies.runtimes import config as rt_config

    composed = composer.compose([])
    for keys, cls in ((ptq_recipe.RECIPE_KEYS, PtqRecipe), (rt_config.KEYS, rt_config.Config)):
        declared = config.select(composed, [f"ptq_layerwise.{k}" for k in keys])
        build(cls, declared["ptq_layerwise"])
    recipe = ptq_recipe.recipe(build(PtqRecipe, composed["ptq_layerwise"]), EXPORT_INPUT)
    assert recipe.quant_settings == _typed(composed["ptq_layerwise"]).quant_settings


def test_every_ablation_changes_one_setting_of_all() -> None:
    from slimaudio.schemas.ptq_layerwise import ABLATIONS

    base = settings(reduce_range=True, op_types=CONFIGURED_OPS)
    changed = {n: ablation.variant_settings(base, n) for n in ABLATIONS}
    assert changed["reduce_range"] is None  # the configuration already is that variant
    assert changed["full_range"][0].reduce_range is False
    assert changed["all_ops"][0].op_types is None
    assert changed["s8s8"] == (settings(reduce_range=True, op_types=CONFIGURED_OPS,
                                        activation_type="int8"), {})
    assert changed["s8s8_native"][1] == {"session.qdqisint8allowed": "1"}
    assert {ablation.variant_name(n) for n in ABLATIONS} >= {"all_s8s8", "all_ops"}


def _small_config() -> study_config.Config:
    cfg = _typed(_ptq_params("default"))
    return dataclasses.replace(
        cfg, calibration=dataclasses.replace(cfg.calibration, utterances=4, crop_frames=60),
        eval=schema.Eval(threads=1, max_frames=60),
        error_analysis=schema.ErrorAnalysis(utterances=2),
        latency=schema.Latency(frames=60, warmup=0, repeats=30), profile_runs=1,
        ablation=("s8s8", "all_ops"), ablation_eer=(), op_probe=True,
        speed=schema.Speed(widths=(16, 32), seconds=(0.5, 1.0), variants=("all",),
                           warmup=0, repeats=30, runtimes=False))


@pytest.fixture(scope="module")
def studied(work, tmp_path_factory) -> tuple[study_config.Config, run.StudyResult, Path]:
    """The study run once on the tiny model: its config, result and models folder."""
    cfg = _small_config()
    models = tmp_path_factory.mktemp("ptq") / "models"
    return cfg, run.run_study(cfg, 0, 1, BOOT, work["raw"], work["data"], models,
                              progress=False), models


def test_study_runs_every_row(studied, tmp_path) -> None:
    from slimaudio.latency import onnx_session
    from slimaudio.studies.base import ROW_COLUMNS, read_rows

    cfg, res, models = studied
    tab = res.table()
    assert list(tab.columns) == result.COLUMNS
    assert tab["quantized"].tolist() == list(ROWS)
    every = list(ROWS)
    assert tab.drop(columns=["quantized"]).notna().all().all()
    m = {r: res.rows[r].metrics for r in every}
    assert m["none"]["delta_eer"] == 0 and m["none"]["size_ratio"] == 1
    assert m["all"]["size_ratio"] > 0 and m["float16"]["size_ratio"] < 1
    assert m["proposed"]["delta_eer"] <= cfg.budget_eer + 1e-9
    if m["paper_choice"]["delta_eer"] <= cfg.budget_eer:
        assert m["proposed"]["size_bytes"] <= m["paper_choice"]["size_bytes"]
    for r in ROWS:  # one file per row, each loads in a fresh session
        p = models / f"{r}.onnx"
        y = onnx_session(p).run(None, {"feats": np.zeros((1, 70, N_MELS), np.float32)})[0]
        assert y.shape == (1, EMB)
    assert not list(models.glob("search_*"))
    assert set(np.load(models / "scores.npz").files) == set(ROWS)  # for ptq_bits
    assert [e.group for e in res.errors] == list(groups.GROUPS)
    assert res.info["cpu"]["cores"] and isinstance(res.info["int8_dot_product"], bool)
    report = ptq_report.build(res, cfg)
    files = report.write({k: tmp_path / "reports" / f for k, f in REPORT_FILES.items()})
    assert {p.name for p in files} == set(REPORT_FILES.values())
    rep = tmp_path / "reports"
    assert pd.read_csv(rep / "table.csv").shape == (len(every), len(result.COLUMNS))
    rows = read_rows(rep / "rows.csv")
    assert list(rows.columns) == list(ROW_COLUMNS) and rows["variant"].tolist() == every
    assert (rows["study"] == "ptq_layerwise").all() and rows["relative_quality"].iat[0] == 1.0
    assert set(report.variant_metrics) == set(every) and report.variant_tags["all"]["kind"] == "static"
    metrics = json.loads((rep / "metrics.json").read_text())
    assert set(metrics["ablation"]) == {"all_s8s8", "all_ops"}
    assert "eer" not in metrics["ablation"]["all_s8s8"]
    assert report.run_params["proposed_source"] == res.search.source
    walk = metrics["search"]["walk"]  # proposed: the budgeted walk over float/INT8 per group
    assert walk["bit_options"] == [32, 8] and walk["steps"][0]["config"] == dict.fromkeys(
        res.groups, 32)
    assert metrics["proposed_groups"] == metrics["search"]["groups"] == res.search.groups
    md = (rep / "table.md").read_text()
    assert "- start: every group float" in md and f"kept the {res.search.source} set" in md
    assert "Table 1" in md and "Table 2" in md and "5994" in md and "| all_s8s8 | —" in md
    # the width table: every (width, length) has `none` at 1.0 and `all` with its interval
    sp = pd.read_csv(rep / "speed.csv")
    assert set(zip(sp["channels"], sp["seconds"], sp["variant"], strict=True)) == {
        (c, t, v) for c in (16, 32) for t in (0.5, 1.0) for v in ("none", "all")}
    assert (sp.loc[sp["variant"] == "none", "speedup"] == 1.0).all()
    a = sp[sp["variant"] == "all"]
    assert ((a["speedup_lo"] <= a["speedup"]) & (a["speedup"] <= a["speedup_hi"])).all()
    assert metrics["speedup_all_widest_channels"] == 32 and "speedup_all_c16_0.5s" in metrics
    assert "## INT8 speed-up against width and input length" in md and "| 32 |" in md
    # the op probe: one row per op type all_ops adds to `all`, and the sentence that blames one
    added = {r["op_type"] for r in res.op_probe}
    assert added and not added & set(cfg.quant_settings.op_types)
    assert all(r["nodes"] > 0 and -1 <= r["emb_cos"] <= 1 for r in res.op_probe)
    assert "### Which op type all_ops's loss comes from" in md
    assert all(f"| {op} |" in md for op in added)
    assert "Why these rows run at the speed they do" in md and "`dynamic` runs at" in md
    assert res.info["reduce_range_reason"]


def _bits_config(cfg: study_config.Config, widths=(2, 4), max_verify=8):
    from slimaudio.schemas.ptq_bits import PtqBits
    from slimaudio.studies.ptq_bits.config import Config as BitsConfig

    return BitsConfig.of(PtqBits(widths=widths, budget_eer=cfg.budget_eer,
                                 max_verify=max_verify),
                         ptq_recipe.recipe(cfg, cfg.input), cfg.groups, cfg.latency)


def test_bits_study_builds_on_the_ptq_rows(studied, work, tmp_path) -> None:
    """ptq_bits on the per-layer study's models: every group at 4 and 2 bits, the walk, the
    ordering test, paired with the per-layer rows (the same EER and ΔEER for INT8)."""
    from slimaudio.studies.base import read_rows
    from slimaudio.studies.ptq_bits import report as bits_report
    from slimaudio.studies.ptq_bits import result as bits_result
    from slimaudio.studies.ptq_bits import run as bits_run

    cfg, ptq, models = studied
    bcfg = _bits_config(cfg)
    assert bcfg.widths == (4, 2)  # widest first
    res = bits_run.run_study(bcfg, 0, 1, BOOT, models, work["data"], tmp_path / "bits",
                             progress=False)
    bits = [f"{g}_w{b}" for g, b in itertools.product(groups.GROUPS, (4, 2))]
    mixed = ["mixed_precision"] if "mixed_precision" in res.rows else []
    tab = res.table()
    assert list(tab.columns) == bits_result.COLUMNS
    assert tab["quantized"].tolist() == ["none", *bits, *mixed]
    m = {n: r.metrics for n, r in res.rows.items()}
    assert m["none"]["eer"] == ptq.rows["none"].metrics["eer"]
    for g in groups.GROUPS:  # the INT8 rows re-scored from the saved scores: the same numbers
        for k in ("eer", "delta_eer", "delta_eer_lo", "delta_eer_hi"):
            assert res.int8[g].metrics[k] == pytest.approx(ptq.rows[g].metrics[k])
        assert m[f"{g}_w4"]["weight_bits"] == 4
        assert m[f"{g}_w2"]["packed_bytes"] < m[f"{g}_w4"]["packed_bytes"] < m["none"]["size_bytes"]
    assert len(res.ordering["w2"]) == 2 * 5  # blocks 2, 3 against the five others
    walk = bits_report.mixed_summary(res)
    assert walk["verify_calls"] <= bcfg.max_verify
    assert set(walk["steps"][0]["config"].values()) == {32}  # the walk starts from float
    if mixed:  # the chosen model is one file that loads alone, within the budget
        assert m["mixed_precision"]["delta_eer"] <= bcfg.budget_eer + 1e-9
    assert {p.stem for p in (tmp_path / "bits").glob("*.onnx")} == set(bits) | set(mixed)
    assert all(np.isfinite(m[n]["speedup"]) for n in m)
    report = bits_report.build(res)
    rep = tmp_path / "reports"
    report.write({k: rep / f for k, f in BITS_FILES.items()})
    rows = read_rows(rep / "rows.csv")
    assert rows["variant"].tolist() == ["none", *bits, *mixed]
    md = (rep / "table.md").read_text()
    assert "## Each layer group at fewer weight bits" in md and "| block2 | " in md
    assert "Mixed precision under the EER budget" in md
    assert json.loads((rep / "metrics.json").read_text())["widths"] == [4, 2]


def test_bits_study_names_the_missing_ptq_output(studied, work, tmp_path) -> None:
    from slimaudio.studies.ptq_bits import run as bits_run

    cfg, _, models = studied
    partial = tmp_path / "ptq"
    partial.mkdir()
    for f in ("none.onnx", "calibration.json"):
        shutil.copy(models / f, partial / f)
    with pytest.raises(DataError, match="scores.npz: the rows' trial scores are missing"):
        bits_run.run_study(_bits_config(cfg), 0, 1, BOOT, partial, work["data"],
                           tmp_path / "bits", progress=False)


def test_report_refuses_paths_that_do_not_match_its_outputs(work, tmp_path) -> None:
    from slimaudio.studies.base import StudyReport
    from slimaudio.studies.ptq_layerwise.rules import STUDY

    report = StudyReport(STUDY, pd.DataFrame({"quantized": ["none"], "size_mib": [1.0],
                                              "latency_ms": [1.0], "eer": [5.0]}), "md", {},
                         tables={"errors": pd.DataFrame()})
    paths = {k: tmp_path / f for k, f in REPORT_FILES.items()
             if k in ("table", "rows", "table_md", "metrics", "errors")}
    with pytest.raises(ValueError, match="errors"):
        report.write({k: v for k, v in paths.items() if k != "errors"})
    with pytest.raises(ValueError, match="ablation"):
        report.write({**paths, "ablation": tmp_path / "ablation.csv"})


@pytest.mark.slow
def test_stage_writes_every_output_and_one_mlflow_run_per_row(work, tmp_path) -> None:
    """The stage script end to end on the tiny profile, with its own MLflow store."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    composer.compose_params(tmp_path / "params.yaml", ["profile=tiny"], root / "conf")
    rep = tmp_path / "reports"
    files = {k: rep / f for k, f in REPORT_FILES.items()}
    cmd = [sys.executable, str(root / "stages" / "ptq_layerwise.py"),
           "--params", str(tmp_path / "params.yaml"), "--model", str(work["raw"]),
           "--data", str(work["data"]), "--models-dir", str(tmp_path / "models")]
    for k, p in files.items():
        cmd += [f"--{k.replace('_', '-')}", str(p)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert all(p.is_file() for p in files.values())
    assert {p.stem for p in (tmp_path / "models").glob("*.onnx")} == set(ROWS)

    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["ptq_layerwise"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert sorted(children["tags.mlflow.runName"]) == sorted(ROWS)
    assert children["metrics.eer"].notna().all() and children["metrics.speedup"].notna().all()
    assert set(children["tags.kind"]) == {"float", "static", "dynamic", "float16"}
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0]
    assert parent["params.proposed_source"] and parent["metrics.eer_none"] > 0
    assert parent["metrics.ablation.all_s8s8.emb_cos"] > 0

    # ptq_bits on what the stage left in models/ (the tiny profile's widths: [4])
    bits_files = {k: tmp_path / "bits_reports" / f for k, f in BITS_FILES.items()}
    cmd = [sys.executable, str(root / "stages" / "ptq_bits.py"), "--params",
           str(tmp_path / "params.yaml"), "--ptq-dir", str(tmp_path / "models"), "--data",
           str(work["data"]), "--models-dir", str(tmp_path / "bits_models")]
    for k, p in bits_files.items():
        cmd += [f"--{k.replace('_', '-')}", str(p)]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert all(p.is_file() for p in bits_files.values())
    metrics = json.loads(bits_files["metrics"].read_text())
    mixed = {"mixed_precision"} if metrics["mixed_precision"]["chosen"] else set()
    bits = {f"{g}_w4" for g in groups.GROUPS}
    assert {p.stem for p in (tmp_path / "bits_models").glob("*.onnx")} == bits | mixed
    runs = mlflow.search_runs(experiment_names=["ptq_bits"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert sorted(children["tags.mlflow.runName"]) == sorted({"none"} | bits | mixed)


def test_preprocess_names_a_missing_model(tmp_path) -> None:
    with pytest.raises(DataError, match="nope.onnx: ONNX model not found"):
        groups.prepare(tmp_path / "nope.onnx", tmp_path / "o.onnx")


def test_study_refuses_features_of_another_width(work, tmp_path) -> None:
    data = tmp_path / "speakers"
    shutil.copytree(work["data"], data)
    feats = np.load(data / "feats.npy")
    np.save(data / "feats.npy", np.concatenate([feats, feats[:, :4]], axis=1))
    cfg = _typed(_ptq_params("tiny"))
    with pytest.raises(DataError, match="mel bands"):
        run.run_study(cfg, 0, 1, BOOT, work["raw"], data, tmp_path / "m", progress=False)


def test_size_scaling_quantizes_every_weight_and_shrinks_with_width() -> None:
    from slimaudio.studies.ptq_layerwise import size_scaling

    st = settings(per_channel=True, reduce_range=True,
                  op_types=("Conv", "Gemm", "MatMul", "Relu", "Add"))
    small, wide = (size_scaling.measure(c, st, n_mels=20) for c in (32, 128))
    for r in (small, wide):
        assert r["int8_bytes"] < r["float_bytes"]
        assert r["int8_breakdown"]["init_int8"] > 0
    # per-channel metadata grows as C, weights as C^2: a wider model compresses better
    assert wide["ratio"] < small["ratio"] and wide["ratio"] < 0.5


def test_regex_groups_cover_every_weight_node_once() -> None:
    from functools import partial

    from slimaudio.compress.layer_groups import match_patterns as match

    match_patterns = partial(match, source="ptq_layerwise.groups")

    nodes = ["/front/conv/Conv", "/layer1/conv/Conv", "/layer2/conv/Conv", "/head/Gemm"]
    got = match_patterns(nodes, {"stem": r"^/front/", "body": r"^/layer\d", "fc": r"Gemm$"})
    assert got == {"stem": [nodes[0]], "body": nodes[1:3], "fc": [nodes[3]]}
    with pytest.raises(ParamError, match="'/head/Gemm' is in no group"):
        match_patterns(nodes, {"stem": r"^/front/", "body": r"^/layer\d"})
    with pytest.raises(ParamError, match="in groups body and all"):
        match_patterns(nodes, {"body": r"^/layer", "all": r"Conv$", "fc": "Gemm"})
    with pytest.raises(ParamError, match="groups.none: the pattern matches no weight node"):
        match_patterns(nodes, {"all": r".", "none": r"^$x"})


def test_sub8bit_ordering_verdict_reads_the_paired_intervals() -> None:
    from slimaudio.studies.ptq_bits.bitwidth import is_bits_row, row_name
    from slimaudio.studies.ptq_bits.rules import findings, ordering_verdict

    assert ordering_verdict({"block2 - fc": [0.5, 0.2, 0.8], "block3 - fc": [0.4, 0.1, 0.7]}) == "holds"
    assert ordering_verdict({"block2 - fc": [0.5, 0.2, 0.8], "block3 - fc": [-0.4, -0.7, -0.1]}) \
        == "does not hold"
    assert ordering_verdict({"block2 - fc": [0.2, -0.1, 0.5]}) == "inconclusive"
    assert row_name("block2", 4) == "block2_w4" and is_bits_row("block2_w4")
    assert not is_bits_row("block2") and not is_bits_row("all_ops")
    table = pd.DataFrame({"quantized": ["none"], "eer": [5.0]})
    metrics = {"ordering": {"w4": {"block2 - fc": [0.5, 0.2, 0.8]}}}
    got = [f for f in findings(table, metrics) if "4-bit" in f.claim]
    assert len(got) == 1 and got[0].verdict == "holds"


def test_op_probe_blames_the_type_that_alone_drifts_as_far() -> None:
    from slimaudio.studies.ptq_layerwise.op_probe import finding

    probe = [{"op_type": "Softmax", "types": 1, "nodes": 1, "emb_cos": 0.90},
             {"op_type": "Mul", "types": 1, "nodes": 12, "emb_cos": 0.995}]
    text = finding(probe, all_cos=0.999, all_ops_cos=0.89)
    assert "comes from quantizing Softmax (1 nodes: 91% of the loss alone)" in text
    assert "Mul" not in text
    spread = [{"op_type": t, "types": 1, "nodes": 2, "emb_cos": 0.97} for t in ("Mul", "Sigmoid")]
    assert finding(spread, 0.999, 0.90).endswith("the types add up.")
    both = [*spread, {"op_type": "Mul+Sigmoid", "types": 2, "nodes": 4, "emb_cos": 0.91}]
    assert "together Mul and Sigmoid (4 nodes) give cosine 0.91000, 90% of the loss" in finding(
        both, 0.999, 0.90)
    assert "no op type to blame" in finding(probe, 0.99, 0.995)
