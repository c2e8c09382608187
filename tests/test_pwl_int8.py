"""PWL pooling x INT8 (stage pwl_int8): the rows, their paired intervals, the verdicts, the
winner's export, and the choice of the bench form; on tiny random-weight exports."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_ptq import BOOT, EMB, _tiny_ecapa, export_tiny, make_speakers

from slimaudio import compose as composer
from slimaudio.compress.exp_free import ConSmax
from slimaudio.compress.pwl import PwlCoeffs, PwlSoftmax
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.ecapa import EXPORT_INPUT
from slimaudio.schemas.ptq_layerwise import PtqRecipe
from slimaudio.schemas.pwl_int8 import PwlInt8
from slimaudio.speaker import ptq_recipe
from slimaudio.spec import build
from slimaudio.studies.pwl_int8 import report, rules
from slimaudio.studies.pwl_int8.config import Config
from slimaudio.studies.pwl_int8.run import COLUMNS, export_winner, resolve_methods, run_study

ROOT = Path(__file__).resolve().parents[1]
PWL_TABLE = pd.DataFrame({"method": ["baseline", "baseline_ft_control", "pwl1", "ibert",
                                     "consmax"],
                          "eer_after_ft": [np.nan, 5.0, 5.5, 7.0, 6.0]})


def _cfg(methods=("pwl1", "best_bench"), bench=("ibert", "consmax")) -> Config:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    ptq = copy.deepcopy(params["ptq_layerwise"])
    ptq["calibration"] |= {"utterances": 4, "crop_frames": 60}
    ptq["eval"]["threads"] = 1
    section = {"methods": list(methods), "reference": "baseline_ft_control",
               "latency": {"frames": 60, "warmup": 1, "repeats": 30}}
    return _config(section, ptq, bench)


def _config(section, ptq, bench) -> Config:
    """The config as the stage builds it."""
    recipe = ptq_recipe.recipe(build(PtqRecipe, ptq), EXPORT_INPUT)
    return Config(**vars(build(PwlInt8, section)), bench=tuple(bench), ptq=recipe)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("pwl_int8")
    onnx_dir = d / "onnx"
    onnx_dir.mkdir()
    for name, norm in (("baseline_ft_control", None),
                       ("pwl1", PwlSoftmax(PwlCoeffs(c0=0.7, s0=0.2, floor=0.03))),
                       ("consmax", ConSmax(1.0, 0.5))):
        m = _tiny_ecapa()
        export_tiny(onnx_dir / f"{name}.onnx", m if norm is None else m.set_softmax(norm))
    data = make_speakers(d / "speakers")
    res = run_study(_cfg(), onnx_dir, data, d / "models", PWL_TABLE, 0, 1, BOOT, progress=False)
    return d, res


def test_every_method_has_float_all_and_all_ops_rows_with_paired_intervals(study) -> None:
    _, res = study
    t = res.table
    assert list(t.columns) == COLUMNS
    assert res.methods == ["baseline_ft_control", "pwl1", "consmax"]  # best_bench -> consmax
    assert list(t["variant"]) == [f"{m}/{q}" for m in res.methods
                                  for q in ("float", "all", "all_ops")]
    ti = t.set_index("variant")
    for m in res.methods:
        assert ti.loc[f"{m}/float", "delta_eer"] == 0.0 and ti.loc[f"{m}/float", "emb_cos"] == 1.0
        assert ti.loc[f"{m}/all_ops", "size_bytes"] < ti.loc[f"{m}/float", "size_bytes"]
        assert 0.5 < ti.loc[f"{m}/all_ops", "emb_cos"] < 1.0
    assert ti.loc["baseline_ft_control/float", "speedup"] == 1.0
    assert ti["int8_gap"].isna().sum() == 3 + 2  # every float row and the reference's rows
    for v in ("pwl1/all_ops", "consmax/all"):  # the gap is the difference of the two deltas
        ref = f"baseline_ft_control/{v.split('/')[1]}"
        assert ti.loc[v, "int8_gap"] == pytest.approx(ti.loc[v, "delta_eer"] - ti.loc[ref, "delta_eer"])
        assert ti.loc[v, "int8_gap_lo"] <= ti.loc[v, "int8_gap"] <= ti.loc[v, "int8_gap_hi"]


def test_the_winner_loads_alone_and_the_report_answers(study) -> None:
    import onnxruntime as ort

    d, res = study
    assert res.winner in ("pwl1", "consmax")
    out = export_winner(res, d / "winner.onnx")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    emb = sess.run(None, {"feats": np.random.default_rng(0).normal(size=(1, 90, 20))
                          .astype(np.float32)})[0]
    assert emb.shape == (1, EMB) and np.isfinite(emb).all()
    md = report.table_markdown(res, {"channels": 32, "profile": "test", "threads": 1,
                                     "frames": 60, "settings": "QDQ"})
    assert "## The answer" in md and f"`{res.winner}`" in md and "| pwl1 | all_ops |" in md
    report.eer_figure(res)


def test_methods_are_resolved_and_checked(tmp_path: Path) -> None:
    assert resolve_methods(_cfg(("pwl1", "best_bench", "pwl1")), PWL_TABLE) == [
        "baseline_ft_control", "pwl1", "consmax"]
    with pytest.raises(ParamError, match="'pwl9' is not a method"):
        resolve_methods(_cfg(("pwl9",)), PWL_TABLE)
    with pytest.raises(ParamError, match="best_bench needs a bench form"):
        resolve_methods(_cfg(bench=()), PWL_TABLE)
    with pytest.raises(DataError, match="baseline_ft_control.onnx: no such fine-tuned model"):
        run_study(_cfg(("pwl1",)), tmp_path, tmp_path, tmp_path / "m", PWL_TABLE, 0, 1, BOOT,
                  progress=False)


def _verdict_table(ref_delta: tuple[float, float, float], pwl_delta: tuple[float, float, float],
                   gap: tuple[float, float, float]) -> pd.DataFrame:
    def row(m: str, q: str, d: tuple[float, float, float], g=(np.nan,) * 3) -> dict:
        return {"variant": f"{m}/{q}", "method": m, "quantized": q, "eer": 5.0,
                "delta_eer": d[0], "delta_eer_lo": d[1], "delta_eer_hi": d[2],
                "int8_gap": g[0], "int8_gap_lo": g[1], "int8_gap_hi": g[2]}
    return pd.DataFrame([row("baseline_ft_control", "float", (0, 0, 0)),
                         row("baseline_ft_control", "all_ops", ref_delta),
                         row("pwl1", "all_ops", pwl_delta, gap)])


def test_verdicts_follow_the_intervals() -> None:
    ref = {"reference": "baseline_ft_control"}  # what metrics.json records
    decided = rules.findings(_verdict_table((2.0, 1.5, 2.5), (0.0, -0.05, 0.05),
                                            (-2.0, -2.4, -1.6)), ref)
    assert [f.verdict for f in decided] == ["holds", "holds", "holds"]
    noisy = rules.findings(_verdict_table((0.3, -0.2, 0.9), (0.0, -0.4, 0.4),
                                          (-0.3, -0.9, 0.4)), ref)
    assert [f.verdict for f in noisy] == ["inconclusive", "inconclusive", "inconclusive"]
    worse = rules.findings(_verdict_table((0.0, -0.1, 0.1), (1.0, 0.6, 1.4),
                                          (1.0, 0.6, 1.4)), ref)
    assert [f.verdict for f in worse][1:] == ["does not hold", "does not hold"]
    assert rules.findings(None, {})[0].verdict == "not measured"
    assert rules.findings(_verdict_table((2.0, 1.5, 2.5), (0.0, -0.05, 0.05), (-2.0, -2.4, -1.6)),
                          {})[0].verdict == "not measured"  # no reference recorded


def test_config_builds_from_the_composed_defaults() -> None:
    from slimaudio import config

    params = composer.compose([])
    config.validate(params)
    cfg = _config(params["pwl_int8"], params["ptq_layerwise"], params["pwl_softmax"]["bench"])
    assert "best_bench" in cfg.methods and cfg.reference == "baseline_ft_control"
    assert cfg.bench == tuple(params["pwl_softmax"]["bench"])
