"""The per-layer PTQ study on speaker-embedding ONNX models of any naming and input layout
(params ptq_layerwise.groups: regex layer groups; ecapa.init.input: name and layout).

Two exports made here: our tiny EcapaTdnn under other module names, fed [batch, features,
frames] (BFT), and SpeechBrain's own ECAPA_TDNN class (tiny sizes, random weights). The data
folder, the tiny model and the small study config are test_ptq's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import sb_models
from test_ptq import (
    BOOT,
    CONFIGURED_OPS,
    EMB,
    N_MELS,
    REPORT_FILES,
    _bits_config,
    _small_config,
    _tiny_ecapa,
    _typed,
    _weight_nodes,
    make_speakers,
    settings,
)

from slimaudio import compose as composer
from slimaudio.compress import onnx_int8
from slimaudio.datasets import speakers
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.ecapa import Init, ModelInput
from slimaudio.schemas.ptq_layerwise import PtqLayerwise
from slimaudio.speaker import groups, onnx_eval
from slimaudio.speaker.calibration import SpeakerCalibrationReader
from slimaudio.spec import build
from slimaudio.studies.ptq_bits import report as bits_report
from slimaudio.studies.ptq_layerwise import config as study_config
from slimaudio.studies.ptq_layerwise import report as ptq_report
from slimaudio.studies.ptq_layerwise import run
from slimaudio.studies.ptq_layerwise.rows import row_names

# Regex groups of the renamed export (none is a paper group name). The Gemm is renamed after
# export, so `embed` finds it through its weight initializer (`proj.weight`).
# TorchScript names a node by the modules whose forward ran: `/stages.0/...` (the `encoder`
# container has none), while the weights keep the full parameter name `encoder.stages.0...`.
RENAMED_GROUPS = {"stem": r"^/stem/", "stage1": r"^/stages\.0/", "stage2": r"^/stages\.1/",
                  "stage3": r"^/stages\.2/", "aggregate": r"^/aggregate/",
                  "pooling": r"^/pool(_bn)?/", "embed": r"^/proj|^proj\."}
RENAMED_GEMM = "renamed_gemm"
# SpeechBrain's module names onto the paper's groups: blocks.0 is the first TDNN block
# (`blocks\.1` alone would also match a Res2Net sub-block `/blocks.2/res2net_block/blocks.1/`).
SB_GROUPS = {"conv_in": r"^/blocks\.0/", "block1": r"^/blocks\.1/", "block2": r"^/blocks\.2/",
             "block3": r"^/blocks\.3/", "conv_mfa": r"^/mfa/", "asp": r"^/asp(_bn)?/",
             "fc": r"^/fc/"}


def _renamed(m):
    """`m` (an EcapaTdnn) under other module names (`encoder.stem`, `encoder.stages.0`, `pool`,
    `proj`...), taking features [batch, features, frames]: the same maths, other node names."""
    import torch

    class Renamed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.Module()
            self.encoder.stem = m.conv_in
            self.encoder.stages = torch.nn.ModuleList([m.block1, m.block2, m.block3])
            self.encoder.aggregate = m.conv_mfa
            self.pool, self.pool_bn, self.proj, self.proj_bn = m.asp, m.bn_asp, m.fc, m.bn_fc

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if m.cfg.input_cmn:
                x = x - x.mean(dim=2, keepdim=True)
            x = self.encoder.stem(x)
            s1, s2, s3 = self.encoder.stages
            o1 = s1(x)
            o2 = s2(x + o1) if m.cfg.dense_sums else s2(o1)
            o3 = s3(x + o1 + o2) if m.cfg.dense_sums else s3(o2)
            f = self.encoder.aggregate(torch.cat([o1, o2, o3], dim=1))
            return self.proj_bn(self.proj(self.pool_bn(self.pool(f))))

    return Renamed().eval()


def _export(model, path: Path, x, name: str, frames_axis: int, out: str) -> Path:
    import torch

    torch.onnx.export(model, (x,), str(path), input_names=[name], output_names=[out],
                      opset_version=17, dynamo=False,
                      dynamic_axes={name: {0: "batch", frames_axis: "frames"}, out: {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_speakers(tmp_path_factory.mktemp("any_onnx") / "speakers")


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> dict[str, Path]:
    """The tiny EcapaTdnn exported twice: as the study's default (BTF, contract names) and
    renamed (BFT, other names, the Gemm node renamed after export)."""
    import torch

    d = tmp_path_factory.mktemp("renamed")
    m = _tiny_ecapa()
    w = _renamed(m)
    x = torch.randn(1, 90, N_MELS)
    with torch.no_grad():
        diff = float((w(x.transpose(1, 2)) - m(x)).abs().max())
    assert diff < 1e-5, diff  # the wrapper is the same model
    default = _export(m, d / "default.onnx", torch.randn(1, 120, N_MELS), "feats", 1, "embedding")
    raw = _export(w, d / "raw.onnx", torch.randn(1, N_MELS, 120), "mel", 2, "vec")
    model = onnx.load(str(raw))
    next(n for n in model.graph.node if n.op_type == "Gemm").name = RENAMED_GEMM
    onnx.save(model, str(raw))
    return {"dir": d, "default": default, "raw": raw,
            "pre": groups.prepare(raw, d / "pre.onnx", RENAMED_GROUPS)}


def _bft_config() -> study_config.Config:
    return dataclasses.replace(_small_config(), groups=dict(RENAMED_GROUPS),
                               input=ModelInput(name=None, layout="BFT"))


# ----------------------------------------------------------------------------- (a) renamed, BFT


def test_regex_groups_cover_every_weight_node_of_a_renamed_export_once(renamed) -> None:
    model = onnx.load(str(renamed["pre"]))
    gmap = groups.group_nodes(model, RENAMED_GROUPS)
    assert gmap.groups == tuple(RENAMED_GROUPS)
    mapped = [n for g in gmap.groups for n in gmap.weight_nodes[g]]
    print(f"weight nodes {len(mapped)}, per group "
          f"{ {g: len(v) for g, v in gmap.weight_nodes.items()} }, other nodes "
          f"{len(gmap.nodes[groups.OTHER])}")
    assert sorted(mapped) == sorted(_weight_nodes(model)) and len(mapped) == len(set(mapped))
    every = [n for names in gmap.nodes.values() for n in names]
    assert sorted(every) == sorted(n.name for n in model.graph.node)
    assert RENAMED_GEMM in gmap.weight_nodes["embed"]  # through its weight's name
    assert "/pool_bn/BatchNormalization" in gmap.weight_nodes["pooling"]
    assert all(n.startswith("/stages.1/") for n in gmap.nodes["stage2"])
    # the input mean and the dense sums belong to no group
    assert gmap.nodes[groups.OTHER] and not set(gmap.nodes[groups.OTHER]) & set(mapped)
    assert row_names(gmap.groups) == ("none", *RENAMED_GROUPS, "all", "proposed", "dynamic",
                                      "float16")  # no paper_choice: no paper group here


def test_bft_input_scores_as_the_default_export(renamed, data) -> None:
    """Fed in its own layout, the renamed model gives the default export's trial scores."""
    corpus = speakers.load(data)
    cfg = ModelInput(name=None, layout="BFT")
    io = onnx_eval.model_io(renamed["raw"], renamed["pre"], corpus, cfg)
    assert io == onnx_eval.ModelIO(input="mel", layout="BFT", output="vec")
    default = onnx_eval.model_io(renamed["default"], renamed["default"], corpus,
                                  ModelInput(name="feats", layout="BTF"))
    a = onnx_eval.EvalSet(corpus, io, 100).scores(renamed["pre"], progress=False)
    b = onnx_eval.EvalSet(corpus, default, 100).scores(renamed["default"], progress=False)
    print(f"max abs score difference BFT renamed vs BTF default: {np.abs(a - b).max():.2e}")
    assert np.abs(a - b).max() < 1e-4


def test_study_runs_on_a_renamed_bft_export_with_regex_groups(renamed, data, tmp_path) -> None:
    from slimaudio.latency import onnx_session

    cfg = _bft_config()
    t0 = time.perf_counter()
    res = run.run_study(cfg, 0, 1, BOOT, renamed["raw"], data, tmp_path / "models",
                        progress=False)
    print(f"run_study on the renamed BFT export: {time.perf_counter() - t0:.1f} s")
    expected = list(row_names(tuple(RENAMED_GROUPS)))
    tab = res.table()
    assert tab["quantized"].tolist() == expected and "paper_choice" not in res.rows
    assert tab.drop(columns=["quantized"]).notna().all().all()
    assert res.groups == tuple(RENAMED_GROUPS)
    assert [e.group for e in res.errors] == list(RENAMED_GROUPS)
    assert "conv_in" in res.info["paper_choice_omitted"] and res.info["groups"] == RENAMED_GROUPS
    assert set(res.search.groups) <= set(RENAMED_GROUPS)
    assert res.rows["proposed"].metrics["delta_eer"] <= cfg.budget_eer + 1e-9
    x = np.zeros((1, N_MELS, 70), np.float32)  # every row takes BFT input of any length
    for r in expected:
        y = onnx_session(tmp_path / "models" / f"{r}.onnx").run(None, {"mel": x})[0]
        assert y.shape == (1, EMB)
    report = ptq_report.build(res, cfg)
    report.write({k: tmp_path / "reports" / f for k, f in REPORT_FILES.items()})
    rep = tmp_path / "reports"
    assert pd.read_csv(rep / "table.csv")["quantized"].tolist() == expected
    md = (rep / "table.md").read_text()
    assert "of a speaker-embedding model" in md and "No paper_choice row" in md
    assert "paper EER" not in md.split("## Table 2")[0]  # no paper group: no paper columns
    assert "| No quantization | - | - | - |" in md  # ...and no paper figures in Table 2
    assert "embed `^/proj|^proj\\.`" in md
    metrics = json.loads((rep / "metrics.json").read_text())
    assert "eer_paper_choice" not in metrics and "eer_proposed" in metrics
    assert pd.read_csv(rep / "error_analysis.csv")["group"].tolist() == list(RENAMED_GROUPS)
    bits = _bits_run(cfg, tmp_path / "models", data, tmp_path / "bits")  # ptq_bits on its rows
    assert [n for n in bits.rows if n.endswith("_w4")] == [f"{g}_w4" for g in RENAMED_GROUPS]
    assert bits.ordering == {}  # no block2/block3: no ordering test
    assert "The paper's ordering test needs its groups" in bits_report.table_markdown(bits)
    y = onnx_session(tmp_path / "bits" / "stage2_w4.onnx").run(None, {"mel": x})[0]
    assert y.shape == (1, EMB)


def _bits_run(cfg: study_config.Config, ptq_models: Path, data: Path, out: Path):
    from slimaudio.studies.ptq_bits import run as bits_run

    return bits_run.run_study(_bits_config(cfg, widths=(4,), max_verify=3), 0, 1, BOOT,
                              ptq_models, data, out, progress=False)


# ----------------------------------------------------------------------------- (b) SpeechBrain


@pytest.fixture(scope="module")
def sb_export(speechbrain, tmp_path_factory, data) -> dict:
    """SpeechBrain's ECAPA_TDNN (tiny, random weights and BN statistics), exported with a
    dynamic frames axis, pre-processed with the paper-named regex groups, and calibrated."""
    import torch
    d = tmp_path_factory.mktemp("sb")
    # random BN statistics: untrained BN constants are identical and ORT would merge them
    m = sb_models.sb_ecapa({**sb_models.TINY, "input_size": N_MELS, "lin_neurons": EMB})
    raw = _export(m, d / "sb.onnx", torch.randn(1, 120, N_MELS), "x", 1, "embedding")
    pre = groups.prepare(raw, d / "pre.onnx", SB_GROUPS)
    reader = SpeakerCalibrationReader(speakers.load(data), 4, 60, seed=1, input_name="x")
    return {"torch": m, "raw": raw, "pre": pre, "dir": d,
            "cache": onnx_int8.calibrate(pre, reader, "MinMax", d / "calib.json")}


def test_speechbrain_export_runs_on_any_length(sb_export) -> None:
    import torch

    from slimaudio.latency import onnx_session

    x = np.random.default_rng(0).normal(size=(1, 77, N_MELS)).astype(np.float32)
    y = onnx_session(sb_export["pre"]).run(None, {"x": x})[0]
    with torch.no_grad():
        ref = sb_export["torch"](torch.from_numpy(x)).numpy()
    print(f"SpeechBrain ECAPA ONNX vs torch, 77 frames: max abs diff {np.abs(y - ref).max():.2e}")
    assert y.shape == ref.shape and np.abs(y - ref).max() < 1e-4


def test_regex_groups_cover_every_weight_node_of_speechbrain_ecapa_once(sb_export) -> None:
    model = onnx.load(str(sb_export["pre"]))
    gmap = groups.group_nodes(model, SB_GROUPS)
    mapped = [n for g in gmap.groups for n in gmap.weight_nodes[g]]
    print(f"SpeechBrain ECAPA: {len(mapped)} weight nodes, per group "
          f"{ {g: len(v) for g, v in gmap.weight_nodes.items()} }")
    assert sorted(mapped) == sorted(_weight_nodes(model)) and len(mapped) == len(set(mapped))
    # Res2Net sub-blocks named blocks.0..6 stay in their own SE-Res2Block
    assert all(n.startswith("/blocks.2/") for n in gmap.nodes["block2"])
    assert any("/res2net_block/blocks.1/" in n for n in gmap.weight_nodes["block3"])
    assert "/asp_bn/norm/BatchNormalization" in gmap.weight_nodes["asp"]
    assert "paper_choice" in row_names(gmap.groups)  # the paper's groups, by regex


@pytest.mark.parametrize("group", ["conv_in", "block2", "asp", "fc"])
def test_quantizing_one_speechbrain_group_changes_only_its_nodes(sb_export, group) -> None:
    """With the configured op types (conf: ptq_layerwise.op_types). Every op type (null) would
    also quantize SpeechBrain's float shape arithmetic in the pooling's mask (`lengths * L`,
    calibrated on 60-frame crops), and the model would fail beyond 60 frames."""
    from slimaudio.latency import onnx_session

    pre = sb_export["pre"]
    gmap = groups.group_nodes(pre, SB_GROUPS)
    out = onnx_int8.quantize_static_nodes(pre, sb_export["dir"] / f"q_{group}.onnx",
                                          sb_export["cache"], gmap.nodes[group],
                                          settings(op_types=CONFIGURED_OPS))
    q = onnx.load(str(out))
    float_w = onnx_int8.float_weight_nodes(q)
    members = set(gmap.nodes[group])
    ops = {n.name: n.op_type for n in q.graph.node}
    main = [n for n in gmap.weight_nodes[group] if ops.get(n) in onnx_int8.MAIN_WEIGHT_OPS]
    others = [n for n in float_w if n not in members]
    print(f"{group}: {len(main)} main weight nodes quantized, {len(others)} other weight "
          f"nodes float: {sum(float_w[n] for n in others)}")
    assert main and not any(float_w[n] for n in main)
    assert others and all(float_w[n] for n in others)
    orig = {n.name: n.op_type for n in onnx.load(str(pre)).graph.node}
    changed = [n for n in orig if n not in members and ops.get(n) != orig[n]]
    assert not changed, changed[:3]  # every node outside the group is there, as it was
    y = onnx_session(out).run(None, {"x": np.zeros((1, 90, N_MELS), np.float32)})[0]
    assert y.size == EMB and np.isfinite(y).all()


# ----------------------------------------------------------------------------- (c) refusals


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    print(msg)
    assert "\n" not in msg
    return msg


def test_a_node_no_pattern_covers_is_named(renamed) -> None:
    patterns = {k: v for k, v in RENAMED_GROUPS.items() if k != "embed"}
    with pytest.raises(ParamError, match=f"weight node '{RENAMED_GEMM}' is in no group") as e:
        groups.group_nodes(renamed["pre"], patterns)
    assert "proj.weight" in _one_line(e)


def test_a_node_two_patterns_cover_is_named_with_both_groups(renamed) -> None:
    patterns = {**RENAMED_GROUPS, "convs": r"Conv$"}
    with pytest.raises(ParamError, match="'/stem/.*Conv' is in groups stem and convs") as e:
        groups.group_nodes(renamed["pre"], patterns)
    _one_line(e)
    # a non-weight node in two groups is refused too (it decides what is quantized with them)
    patterns = {**RENAMED_GROUPS, "pooling": r"^/pool(_bn)?/|Concat"}
    with pytest.raises(ParamError, match=r"node '.*Concat.*' \(Concat\) is in "
                                         "groups stage") as e:
        groups.group_nodes(renamed["pre"], patterns)
    _one_line(e)


def test_a_pattern_matching_nothing_names_its_group(renamed) -> None:
    with pytest.raises(ParamError, match=r"ptq_layerwise\.groups\.ghost: the pattern matches "
                                         "no weight node") as e:
        groups.group_nodes(renamed["pre"], {**RENAMED_GROUPS, "ghost": r"^/nowhere/"})
    _one_line(e)


@pytest.mark.parametrize("patterns, match", [
    ({"all": "^/encoder/"}, r"groups\.all: a group name"),
    ({"search_x": "^/encoder/"}, r"groups\.search_x: a group name"),
    ({"a b": "^/encoder/"}, r"groups\.a b: a group name"),
    ({"stem": "(unclosed"}, r"groups\.stem: bad regex"),
    ({"stem": ""}, r"groups\.stem = '': expected a regex"),
    ({}, "give at least one group"),
])
def test_bad_group_params_are_refused_before_any_model_is_read(patterns, match) -> None:
    from test_ptq import _ptq_params

    section = _ptq_params("default")
    section["groups"] = patterns
    with pytest.raises(ParamError, match=match) as e:
        _typed(section)
    _one_line(e)


def test_params_give_regex_groups_and_the_input(tmp_path) -> None:
    from slimaudio import config

    composed = composer.compose(["ptq_layerwise.groups={stem:'^/encoder/stem/',rest:'.'}",
                               "ecapa.init.kind=onnx", "ecapa.init.input.layout=BFT",
                               "ecapa.init.input.name=mel"])
    config.validate(composed)
    init = build(Init, composed["ecapa"]["init"])
    cfg = study_config.study_config(build(PtqLayerwise, composed["ptq_layerwise"]),
                                    init.model_input)
    assert cfg.groups == {"stem": "^/encoder/stem/", "rest": "."}
    assert list(cfg.groups) == ["stem", "rest"]  # ordered: the order of the rows
    assert cfg.input == ModelInput(name="mel", layout="BFT")
    # the input settings describe an ONNX file; our own exports ignore them
    trained = build(Init, {**composed["ecapa"]["init"], "kind": "train"})
    assert trained.model_input == ModelInput(name=None, layout="BTF")
    default = _typed(composer.compose([])["ptq_layerwise"])
    assert default.groups is None and default.input.layout == "BTF"


def test_the_input_is_checked_against_the_model(renamed, data) -> None:
    corpus = speakers.load(data)
    pre = renamed["pre"]
    with pytest.raises(ParamError, match="input.name = 'feats': .* has no such input .*mel") as e:
        onnx_eval.model_io(pre, pre, corpus, ModelInput("feats", "BFT"))
    _one_line(e)
    # the BFT export read as BTF: its frames axis would be the fixed feature axis
    with pytest.raises(DataError, match=f"fixed frames dimension \\({N_MELS}, layout BTF\\)") as e:
        onnx_eval.model_io(pre, pre, corpus, ModelInput(None, "BTF"))
    _one_line(e)
    fixed = onnx.load(str(pre))
    fixed.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 300
    onnx.save(fixed, str(renamed["dir"] / "fixed.onnx"))
    with pytest.raises(DataError, match="fixed frames dimension \\(300, layout BFT\\)"):
        onnx_eval.model_io("fixed.onnx", renamed["dir"] / "fixed.onnx", corpus,
                            ModelInput(None, "BFT"))
