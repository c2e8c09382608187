"""The PWL softmax study end to end on a tiny stand-in corpus: fitting, fine-tuning, tables,
the report; and its params sections built from the default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_ecapa_standin import make_standin

from slimaudio import compose as composer
from slimaudio import config, spec
from slimaudio.datasets import speakers
from slimaudio.errors import ParamError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.pwl_softmax import PwlFit, PwlSoftmax
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler, NoiseConfig
from slimaudio.speaker.train import TrainConfig, train
from slimaudio.studies.base import ROW_COLUMNS
from slimaudio.studies.pwl_softmax import report, rules
from slimaudio.studies.pwl_softmax.fit import (
    FitResult,
    collect_logits,
    fit_all,
    fit_figure,
    load_fit,
)
from slimaudio.studies.pwl_softmax.rules import STUDY
from slimaudio.studies.pwl_softmax.run import TABLE_COLUMNS, run_study
from slimaudio.studies.pwl_softmax.variants import build_variants

SECTION = {"learnable_segments": 2, "learnable_lr_mult": 10.0, "overrides": {},
           "bench": ["ibert", "base2", "consmax"],
           "ft": {"scope": "head", "steps": 6, "batch_size": 8, "lr": 1e-3, "lr_min": 1e-5,
                  "cache_crops": 16, "replicates": 1},
           "latency": {"frames": 60, "warmup": 1, "repeats": 30, "softmax_repeats": 30}}
FIT = PwlFit(crops=16, crop_s=0.5, max_columns=2000, bins=60, segments=(1, 2, 4),
             min_floor=1e-4, uniform_range=(-8.0, 0.0))
META = {"channels": 16, "mfa_channels": 24, "profile": "test", "ft_scope": "head",
        "ft_steps": 6, "threads": 1, "frames": 60}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    data = speakers.load(make_standin(tmp_path_factory.mktemp("spk") / "speakers"))
    torch.manual_seed(0)
    model = EcapaTdnn(channels=16, mfa_channels=24, attention_channels=8, se_bottleneck=8)
    cfg = TrainConfig(steps=20, batch_size=16, crop_frames=50, lr=3e-3, lr_min=0.0,
                      warmup_steps=0, weight_decay=0.0, margin=0.2, margin_warmup_steps=0,
                      scale=30.0, noise=NoiseConfig(0.5, (5.0, 20.0)), log_every=5, threads=1,
                      seed=0)
    sampler = CropSampler(data, 50, 0, cfg.noise)
    aam = AAMSoftmax(192, sampler.n_classes)
    train(model, aam, sampler, cfg, progress=False)
    cols = collect_logits(model, CropSampler(data, 50, 1), 16, 2000, 0, progress=False)
    fit_res = fit_all(cols, FIT)
    return data, model, aam, cfg, fit_res


def test_sections_build_from_the_default_and_check_the_uniform_range() -> None:
    params = composer.compose([])
    config.validate(params)  # also registers every schema
    fit = spec.build(PwlFit, params["pwl_fit"])
    study = spec.build(PwlSoftmax, params["pwl_softmax"])
    assert fit.segments == tuple(params["pwl_fit"]["segments"]) and 1 in fit.segments
    assert study.ft.steps == params["pwl_softmax"]["ft"]["steps"]
    assert study.latency.frames == params["pwl_softmax"]["latency"]["frames"]
    assert study.bench == tuple(params["pwl_softmax"]["bench"])
    params["pwl_fit"]["uniform_range"] = [0.0, -8.0]
    with pytest.raises(ParamError, match=r"uniform_range\[0\] = 0.0 must be below"):
        config.validate(params)


def test_fit_round_trips_and_plots(trained, tmp_path: Path) -> None:
    _, _, _, _, fit_res = trained
    again = FitResult.from_json(FitResult.to_json(fit_res))
    assert again.pwl[2] == fit_res.pwl[2] and again.clip_floor == fit_res.clip_floor
    assert fit_res.diagnostics["pwl4"]["exp_mse"] <= fit_res.diagnostics["pwl1"]["exp_mse"]
    (tmp_path / "fit.json").write_text(json.dumps(fit_res.to_json()))
    assert load_fit(tmp_path / "fit.json").pwl[1] == fit_res.pwl[1]
    assert set(fit_res.run_params()) >= {"clip.floor", "pwl1.s0"}
    assert "pwl2_tv" in fit_res.run_metrics() and "e_mean" in fit_res.run_metrics()
    from slimaudio.atomic import save_figure

    save_figure(tmp_path / "fit.png", fit_figure(fit_res))
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_overrides_replace_fitted_values_and_are_checked(trained) -> None:
    fit_res = trained[4]
    vs = {v.name: v for v in build_variants(fit_res, 2, {"pwl1": {"floor": 0.5}})}
    assert vs["pwl1"].params["floor"] == 0.5
    assert vs["pwl1"].params["s0"] == fit_res.pwl[1].s0
    assert list(vs) == ["baseline", "clip", "pwl1", "pwl2", "pwl4", "pwl1_uniform",
                        "pwl2_uniform", "learnable"]
    with pytest.raises(ParamError, match="overrides.pwl9"):
        build_variants(fit_res, 2, {"pwl9": {"floor": 0.5}})
    with pytest.raises(ParamError, match="overrides.pwl1.slope"):
        build_variants(fit_res, 2, {"pwl1": {"slope": 0.5}})
    with pytest.raises(ParamError, match="must include 8"):
        build_variants(fit_res, 8, {})


def test_study_produces_the_table_and_the_report(trained, tmp_path: Path) -> None:
    data, model, aam, cfg, fit_res = trained
    res = run_study(model, aam, data, fit_res, spec.build(PwlSoftmax, SECTION), cfg, 17, 0, 1,
                    Bootstrap(200, 0.95), progress=False)
    t = res.table
    assert list(t.columns) == TABLE_COLUMNS
    assert list(t["method"]) == ["baseline", "baseline_ft_control", "clip", "pwl1", "pwl2",
                                 "pwl4", "pwl1_uniform", "pwl2_uniform", "learnable", "ibert",
                                 "base2", "consmax"]
    ti = t.set_index("method")
    assert ti.loc["baseline", "rel_time_model_onnx"] == 1.0
    assert pd.isna(ti.loc["baseline", "eer_after_ft"])
    assert ti.loc["baseline_ft_control", "eer_before_ft"] == ti.loc["baseline", "eer_before_ft"]
    assert ti.loc["learnable", "eer_before_ft"] == pytest.approx(ti.loc["pwl2", "eer_before_ft"])
    assert (ti["onnx_max_abs_diff"] < 1e-3).all()
    cols = [c for c in TABLE_COLUMNS[1:] if not c.endswith("_sd")]  # one replicate: no spread
    assert np.isfinite(ti.drop(index="baseline")[cols].astype(float)).all().all()
    # every method saw the same fine-tuning steps
    assert {len(c) for c in res.ft_curves.values()} == {6}
    md = report.table_markdown(t, res.latency, fit_res, META)
    assert "Table 1" in md and "Table 2" in md and "2.55" in md  # the paper's clip EER
    assert "| ibert |" in md and "| consmax |" in md and "Best for accuracy" in md
    assert set(json.loads(res.rows["consmax"]["learned_coeffs"])) == {"beta", "gamma"}
    assert "| baseline | Softmax |" in md and "| — |" in md  # the baseline has no after-FT EER
    checks = rules.checks(t)
    assert set(checks) >= {"check_pwl1_after_ft_within_tol", "check_learnable_before_ft_le_pwl2",
                           "check_pwl1_rel_time_model_onnx_le_1"}
    assert checks["ft_tolerance_points"] == rules.ft_tolerance(
        ti.loc["baseline_ft_control", "eer_after_ft"])

    rep = report.build(res, fit_res, META)
    assert rep.metrics["pwl1_eer_after_ft"] == ti.loc["pwl1", "eer_after_ft"]
    assert "baseline_eer_after_ft" not in rep.metrics  # missing cells are left out
    assert {"seconds_total", "check_pwl1_rel_time_softmax_lt_1"} <= set(rep.metrics)
    rows = rep.rows
    assert list(rows.columns) == list(ROW_COLUMNS) and set(rows.study) == {"pwl_softmax"}
    assert list(rows.variant) == list(t["method"])
    assert (rows.size_mib > 0).all() and (rows.latency_ms > 0).all()
    assert rows.quality.iloc[1:].tolist() == ti["eer_after_ft"].iloc[1:].tolist()
    assert set(rep.variant_metrics) == set(t["method"])
    assert rep.variant_params["learnable"]["method"] == "learnable"
    assert len(rep.variant_series["pwl1"]["ft_loss"]) == 6
    roles = set(STUDY.roles)
    with pytest.raises(ValueError, match="curves_plot"):
        rep.write({r: tmp_path / r for r in roles - {"curves_plot"}})
    paths = {r: tmp_path / f"{r}.{'png' if r.endswith('_plot') else 'out'}" for r in roles}
    assert {p.name for p in rep.write(paths)} == {p.name for p in paths.values()}
    assert json.loads(paths["metrics"].read_text())["pwl2_eer_before_ft"] == pytest.approx(
        ti.loc["pwl2", "eer_before_ft"])


def _table(after: dict[str, float], rel: float) -> pd.DataFrame:
    rows = [("baseline", 3.0, float("nan")), ("baseline_ft_control", 3.0, after["ctrl"])]
    rows += [(m, 6.0, after[m]) for m in ("pwl1", "pwl2", "learnable")]
    df = pd.DataFrame(rows, columns=["method", "eer_before_ft", "eer_after_ft"])
    df["rel_time_model_onnx"] = rel
    df["rel_time_softmax"] = rel
    return df


def test_checks_use_the_one_tolerance() -> None:
    assert rules.ft_tolerance(1.0) == 0.1 and rules.ft_tolerance(10.0) == 0.5
    c = rules.checks(_table({"ctrl": 10.0, "pwl1": 10.5, "pwl2": 10.51, "learnable": 9.0}, 0.9))
    assert c["check_pwl1_after_ft_within_tol"] == 1.0
    assert c["check_pwl2_after_ft_within_tol"] == 0.0
    assert c["check_learnable_before_ft_le_pwl2"] == 1.0
    assert c["check_pwl1_rel_time_softmax_lt_1"] == 1.0 and c["ft_tolerance_points"] == 0.5


def _judged(delta_after: float, delta_before: float, rel: float, half: float) -> pd.DataFrame:
    """A table whose paper methods all sit at the given differences, intervals `half` wide."""
    methods = ["baseline", "baseline_ft_control", "clip", "pwl1", "pwl2", "pwl1_uniform",
               "pwl2_uniform"]
    df = pd.DataFrame({"method": methods, "eer_after_ft": 3.0,
                       "delta_eer_after_ft": [np.nan, 0.0] + [delta_after] * 5,
                       "delta_eer_before_ft": [0.0, 0.0] + [delta_before] * 5,
                       "rel_time_model_torch": [1.0, 1.0] + [rel] * 5,
                       "rel_time_model_onnx": [1.0, 1.0] + [rel] * 5})
    for c in ("delta_eer_after_ft", "delta_eer_before_ft", "rel_time_model_torch",
              "rel_time_model_onnx"):
        df[f"{c}_lo"], df[f"{c}_hi"] = df[c] - half, df[c] + half
    return df


def test_findings_flip_with_the_intervals() -> None:
    verdicts = lambda df: [f.verdict for f in rules.findings(df, {})]  # noqa: E731
    # tolerance at an EER of 3%: 0.15 points (5%)
    assert verdicts(_judged(0.0, 1.0, 0.9, 0.05)) == ["holds"] * 5
    assert verdicts(_judged(0.0, 1.0, 0.9, 2.0)) == ["inconclusive"] * 5
    assert verdicts(_judged(1.0, -1.0, 1.2, 0.05)) == ["does not hold"] * 5
    mixed = _judged(0.0, 1.0, 0.9, 0.05)
    mixed.loc[mixed.method == "clip", ["delta_eer_after_ft_lo", "delta_eer_after_ft_hi"]] = [0.5, 0.7]
    f = rules.findings(mixed, {})
    assert f[0].verdict == "partly holds" and "clip +0.00 [+0.50, +0.70]" in f[0].evidence
    assert "(paper: 0.943 / 0.964 / 0.971)" in f[3].evidence
    assert STUDY.findings is rules.findings and STUDY.key == "method"
