"""Recurrent speaker encoders in the PTQ studies: LSTM and GRU nodes are weight-bearing and
groupable; a group is quantized by the method ONNX Runtime has for its ops (static QDQ for
convolutions and matmuls, dynamic for LSTM, none for GRU), and each row says which. The models
are small torch encoders with random weights, exported as a user's ONNX file would be."""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_ptq import BOOT, N_MELS, _bits_config, _small_config, make_speakers

from slimaudio.compress import onnx_int8
from slimaudio.compress.layer_groups import group_by_patterns
from slimaudio.errors import ParamError
from slimaudio.schemas.ecapa import ModelInput
from slimaudio.speaker import groups
from slimaudio.studies.ptq_layerwise import run

EMB = 16
RNN_GROUPS = {"rnn": r"^/rnn/", "linear": r"^/linear/"}


def _encoder(kind: str, n_mels: int = N_MELS):
    """[batch, frames, n_mels] -> [batch, EMB]: a 2-layer recurrent net, mean over time, a
    projection (the shape of the LSTM d-vector encoders users bring)."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cell = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
            self.rnn = cell(n_mels, 24, num_layers=2, batch_first=True)
            self.linear = torch.nn.Linear(24, EMB)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.linear(y.mean(dim=1))

    torch.manual_seed(0)
    return Encoder().eval()


def export_encoder(path: Path, kind: str = "lstm", n_mels: int = N_MELS) -> Path:
    import torch

    torch.onnx.export(_encoder(kind, n_mels), (torch.randn(1, 50, n_mels),), str(path),
                      input_names=["feats"], output_names=["emb"],
                      dynamic_axes={"feats": {0: "batch", 1: "frames"}, "emb": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path


@pytest.fixture(scope="module")
def enc(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rnn")
    out = {"data": make_speakers(d / "speakers")}
    for kind in ("lstm", "gru"):
        raw = export_encoder(d / f"{kind}.onnx", kind)
        out[kind] = raw
        out[f"{kind}_pre"] = groups.prepare(raw, d / f"{kind}_pre.onnx", RNN_GROUPS)
    return out


def test_recurrent_nodes_are_weight_nodes_and_groupable(enc) -> None:
    model = onnx.load(str(enc["lstm_pre"]))
    gmap = group_by_patterns(model, RNN_GROUPS, "ptq_layerwise.groups")
    ops = {n.name: n.op_type for n in model.graph.node}
    assert [ops[n] for n in gmap.weight_nodes["rnn"]] == ["LSTM", "LSTM"]
    assert {ops[n] for n in gmap.weight_nodes["linear"]} <= {"Gemm", "MatMul"}


def test_a_pattern_matching_only_weightless_nodes_names_them(enc) -> None:
    model = onnx.load(str(enc["lstm_pre"]))
    with pytest.raises(ParamError, match=r"groups\.pool: the pattern matches '.*ReduceMean.*' "
                                         r"\(ReduceMean\), none of which holds a weight"):
        group_by_patterns(model, {**RNN_GROUPS, "pool": "ReduceMean"}, "ptq_layerwise.groups")


def test_each_group_is_quantized_by_the_method_ort_has(enc, tmp_path) -> None:
    """LSTM: dynamic (DynamicQuantizeLSTM); GRU: no integer kernel in ORT, left float and
    said so; the projection: static QDQ from the calibration."""
    from test_ptq import settings

    from slimaudio.datasets import speakers
    from slimaudio.speaker.calibration import calibrate

    st = settings(op_types=None)
    for kind, want in (("lstm", "dynamic"), ("gru", "float")):
        pre = enc[f"{kind}_pre"]
        gmap = groups.group_nodes(pre, RNN_GROUPS)
        _, cache = calibrate(pre, speakers.load(enc["data"]), _small_config().calibration, 0,
                             tmp_path / f"{kind}_cal.json", "feats", "BTF")
        for group, label in (("rnn", want), ("linear", "static"),
                             (None, "static+dynamic" if kind == "lstm" else "static")):
            nodes = None if group is None else gmap.union([group])
            path, methods = onnx_int8.quantize_nodes(pre, tmp_path / f"{kind}_{group}.onnx",
                                                     cache, nodes, st)
            assert methods.label == label, (kind, group, methods)
            ops = {n.op_type for n in onnx.load(str(path)).graph.node}
            assert ("DynamicQuantizeLSTM" in ops) == (kind == "lstm" and group != "linear")
        if kind == "gru":  # the GRU group alone: the float model, byte for byte
            rnn, methods = onnx_int8.quantize_nodes(pre, tmp_path / "g.onnx", cache,
                                                    gmap.union(["rnn"]), st)
            assert methods.float_only == gmap.weight_nodes["rnn"]
            assert rnn.read_bytes() == pre.read_bytes()


def test_the_ptq_studies_run_on_a_recurrent_encoder(enc, tmp_path) -> None:
    from slimaudio.studies.ptq_bits import report as bits_report
    from slimaudio.studies.ptq_bits import run as bits_run

    cfg = dataclasses.replace(_small_config(), groups=dict(RNN_GROUPS),
                              input=ModelInput(name=None, layout="BTF"))
    res = run.run_study(cfg, 0, 1, BOOT, enc["lstm"], enc["data"], tmp_path / "models",
                        progress=False)
    tab = res.table().set_index("quantized")
    assert tab.loc["rnn", "method"] == "dynamic" and tab.loc["linear", "method"] == "static"
    assert tab.loc["all", "method"] == "static+dynamic"
    assert np.isfinite(tab.loc[["rnn", "linear", "all"], "eer"]).all()
    assert tab.loc["rnn", "size_ratio"] < 0.6  # the LSTMs hold most of the weights
    print(tab[["method", "eer", "delta_eer", "size_ratio", "speedup"]].to_string())
    from slimaudio.studies.ptq_layerwise import report as ptq_report

    md = ptq_report.table_markdown(res, cfg)
    assert "rnn: ORT's dynamic quantization" in md and "| rnn | dynamic |" in md
    bits = bits_run.run_study(_bits_config(cfg, widths=(4,), max_verify=3), 0, 1, BOOT,
                              tmp_path / "models", enc["data"], tmp_path / "bits",
                              progress=False)
    assert bits.bit_groups == ("linear",) and "linear_w4" in bits.rows
    assert "No b-bit form for rnn" in bits_report.table_markdown(bits)


@pytest.mark.parametrize("seconds", [30, 60])
def test_a_recurrent_encoder_embeds_long_utterances(enc, seconds) -> None:
    """Frames at 10 ms: a whole 30 s or 60 s utterance in one call, time and memory printed."""
    from slimaudio.compress.onnx_int8 import ort_session

    sess = ort_session(enc["lstm_pre"], 1)
    x = np.random.default_rng(0).standard_normal((1, seconds * 100, N_MELS)).astype(np.float32)
    t0 = time.perf_counter()
    y = sess.run(None, {"feats": x})[0]
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds} s utterance: {dt * 1000:.0f} ms, peak RSS of the test process "
          f"{peak:.0f} MiB")
    assert y.shape == (1, EMB) and np.isfinite(y).all()


@pytest.mark.slow
@pytest.mark.e2e_full
def test_a_recurrent_encoder_through_the_pipeline(tmp_path) -> None:
    """A user's LSTM encoder as `ecapa.init.kind: onnx`, with its own frontend (librosa's default
    mel power spectrogram: 40 Slaney bands with area norm, centred frames, no log) described by
    `kind: custom`: prepared, imported, evaluated and studied by `dvc repro eval_ecapa
    ptq_layerwise`, with its LSTM groups in the PTQ table."""
    import json

    import pandas as pd
    from pipeline_copy import make_copy

    proj = make_copy(tmp_path / "proj", profile="tiny")
    model = export_encoder(tmp_path / "lstm.onnx", "lstm", n_mels=40)
    feats = "prepare_speakers.features"
    proj.set_params(**{"ecapa.init.kind": "onnx", "ecapa.init.path": str(model),
                       "ptq_layerwise.groups": RNN_GROUPS, f"{feats}.kind": "custom",
                       f"{feats}.n_mels": 40, f"{feats}.n_fft": 400, f"{feats}.win_length": 400,
                       f"{feats}.f_min": 0.0, f"{feats}.f_max": 8000.0,
                       f"{feats}.custom.center": True, f"{feats}.custom.filters": "slaney",
                       f"{feats}.custom.filter_norm": "slaney",
                       f"{feats}.custom.compression": "none"})
    proc = proj.dvc("repro", "eval_ecapa", "ptq_layerwise", timeout=900)
    assert "ONNX model" in proc.stdout and "trained on" not in proc.stdout
    data = proj.root / "data" / "speakers"
    info = json.loads((data / "info.json").read_text())
    assert info["features"]["dtype"] == "float32" and info["frontend"]["filters"] == "slaney"
    assert np.load(data / "feats.npy", mmap_mode="r").dtype == np.float32
    reports = proj.root / "reports"
    assert json.loads((reports / "ecapa" / "metrics.json").read_text())["eer"] >= 0
    table = pd.read_csv(reports / "ptq_layerwise" / "table.csv").set_index("quantized")
    assert table.loc["rnn", "method"] == "dynamic" and table.loc["linear", "method"] == "static"
    assert "| rnn | dynamic |" in (reports / "ptq_layerwise" / "table.md").read_text()
