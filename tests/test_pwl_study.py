"""The PWL softmax study end to end on a tiny stand-in corpus: fitting, fine-tuning, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_ecapa_standin import make_standin

from slimaudio.datasets import speakers
from slimaudio.errors import ParamError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.speaker.aamsoftmax import AAMSoftmax
from slimaudio.speaker.data import CropSampler, NoiseConfig
from slimaudio.speaker.train import TrainConfig, train
from slimaudio.studies import pwl_softmax as study

STUDY = {"learnable_segments": 2, "learnable_lr_mult": 10.0, "overrides": {},
         "ft": {"scope": "head", "steps": 6, "batch_size": 8, "lr": 1e-3, "lr_min": 1e-5,
                "cache_crops": 16},
         "latency": {"frames": 60, "warmup": 1, "repeats": 30, "softmax_repeats": 30}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    data = speakers.load(make_standin(tmp_path_factory.mktemp("spk") / "speakers"))
    torch.manual_seed(0)
    model = EcapaTdnn(channels=16, mfa_channels=24, attention_channels=8, se_bottleneck=8)
    cfg = TrainConfig(steps=20, batch_size=16, crop_frames=50, lr=3e-3, log_every=5, threads=1,
                      noise=NoiseConfig(0.5, (5.0, 20.0)))
    sampler = CropSampler(data, 50, 0, cfg.noise)
    aam = AAMSoftmax(192, sampler.n_classes)
    train(model, aam, sampler, cfg, progress=False)
    cols = study.collect_logits(model, CropSampler(data, 50, 1), 16, 2000, 0, progress=False)
    fit_res = study.fit_all(cols, [1, 2, 4], 60, 1e-4)
    return data, model, aam, cfg, fit_res


def test_fit_round_trips_and_plots(trained, tmp_path: Path) -> None:
    _, _, _, _, fit_res = trained
    again = study.FitResult.from_json(study.FitResult.to_json(fit_res))
    assert again.pwl[2] == fit_res.pwl[2] and again.clip_floor == fit_res.clip_floor
    assert fit_res.diagnostics["pwl4"]["exp_mse"] <= fit_res.diagnostics["pwl1"]["exp_mse"]
    study.plot_fit(fit_res, tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_overrides_replace_fitted_values_and_are_checked(trained) -> None:
    fit_res = trained[4]
    vs = {v.name: v for v in study.build_variants(fit_res, 2, {"pwl1": {"floor": 0.5}})}
    assert vs["pwl1"].params["floor"] == 0.5
    assert vs["pwl1"].params["s0"] == fit_res.pwl[1].s0
    assert list(vs) == ["baseline", "clip", "pwl1", "pwl2", "pwl4", "learnable"]
    with pytest.raises(ParamError, match="overrides.pwl9"):
        study.build_variants(fit_res, 2, {"pwl9": {"floor": 0.5}})
    with pytest.raises(ParamError, match="overrides.pwl1.slope"):
        study.build_variants(fit_res, 2, {"pwl1": {"slope": 0.5}})
    with pytest.raises(ParamError, match="must include 8"):
        study.build_variants(fit_res, 8, {})


def test_study_produces_the_table(trained, tmp_path: Path) -> None:
    data, model, aam, cfg, fit_res = trained
    res = study.run_study(model, aam, data, fit_res, STUDY, cfg, 1, 0, progress=False)
    t = res.table
    assert list(t.columns[:7]) == study.TABLE_COLUMNS
    assert list(t["method"]) == ["baseline", "baseline_ft_control", "clip", "pwl1", "pwl2",
                                 "pwl4", "learnable"]
    ti = t.set_index("method")
    assert ti.loc["baseline", "rel_time_model_onnx"] == 1.0
    assert pd.isna(ti.loc["baseline", "eer_after_ft"])
    assert ti.loc["baseline_ft_control", "eer_before_ft"] == ti.loc["baseline", "eer_before_ft"]
    assert ti.loc["learnable", "eer_before_ft"] == pytest.approx(ti.loc["pwl2", "eer_before_ft"])
    assert (ti["onnx_max_abs_diff"] < 1e-3).all()
    assert np.isfinite(ti.drop(index="baseline")[study.TABLE_COLUMNS[1:]].astype(float)).all().all()
    # every method saw the same fine-tuning steps
    assert {len(c) for c in res.ft_curves.values()} == {6}
    md = study.table_markdown(t, res.latency, fit_res, {
        "channels": 16, "mfa_channels": 24, "profile": "test", "ft_scope": "head",
        "ft_steps": 6, "threads": 1, "frames": 60})
    assert "Table 1" in md and "Table 2" in md and "2.55" in md  # the paper's clip EER
    checks = study.checks(t)
    assert set(checks) >= {"check_pwl1_after_ft_within_tol", "check_learnable_before_ft_le_pwl2",
                           "check_pwl1_rel_time_model_onnx_le_1"}
