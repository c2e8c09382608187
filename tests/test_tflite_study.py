"""The TFLite quantization study on a small synthetic data/sounds folder (contract layout):
the library end to end, and the two stage scripts as dvc runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from slimaudio import compose as composer
from slimaudio import spec
from slimaudio.spec import build

REPO = Path(__file__).resolve().parents[1]
N_MELS, T = 16, 20


def write_fake_sounds(root: Path, n_classes: int = 3, per_split: dict | None = None,
                      seed: int = 0) -> Path:
    """A data/sounds folder with learnable classes: each class is a band pattern in log-mel."""
    per_split = per_split or {"train": 8, "val": 2, "test": 4}  # clips per class, 2 frames each
    rng = np.random.default_rng(seed)
    protos = rng.normal(0, 2.0, (n_classes, N_MELS, 1)) - 6.0
    frames, rows = [], []
    for split, n_clips in per_split.items():
        for c in range(n_classes):
            for k in range(n_clips):
                clip = f"c{c}-{split}-{k}"
                for j in range(2):
                    frames.append(protos[c] + rng.normal(0, 1.0, (N_MELS, T)))
                    rows.append({"frame_id": f"{clip}#{j}", "clip_id": clip, "label": c,
                                 "class_name": f"class{c}", "split": split, "start_s": 1.6 * j,
                                 "source": f"synthetic:{clip}"})
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "frames.npy", np.stack(frames).astype(np.float16))
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    classes = [f"class{c}" for c in range(n_classes)]
    (root / "classes.json").write_text(json.dumps(classes))
    (root / "class_weights.json").write_text(json.dumps({c: 1.0 for c in classes}))
    (root / "info.json").write_text(json.dumps({"n_mels": N_MELS, "time_steps": T}))
    return root


TINY_RESNET = {"depths": [1, 1], "width": 8, "expansion": 2, "dropout": 0.0, "epochs": 3,
               "batch_size": 16, "learning_rate": 0.01, "weight_decay": 0.0,
               "class_weights": True, "threads": 2, "save_format": "keras",
               "eval_batch_size": 32,
               "augment": {"time_shift": True, "gain_db": 3.0, "time_masks": 1,
                           "time_mask_max": 3, "freq_masks": 1, "freq_mask_max": 2}}
TINY_STUDY = {"representative_samples": 16,
              "calibration_probes": [{"source": "uniform_noise", "samples": 2},
                                     {"source": "one_class", "samples": 2}],
              "latency": {"warmup": 1, "repeats": 30, "builtin_kernels": True,
                          "kernel_probe": True},
              "eval_threads": 1, "eval_batch_size": 16}
TINY_BASE = {"bootstrap": {"resamples": 200, "level": 0.95}}  # what the study reads of `base`


def test_calibration_probes_name_their_variants() -> None:
    from slimaudio.schemas.tflite import CalibrationProbe, TfliteQuant

    params = composer.compose([], REPO / "conf")
    section = params["tflite_quant"]
    cfg = spec.build(TfliteQuant, section)
    assert [p.variant for p in cfg.calibration_probes] == [
        f"int_calib_{p['source']}_{p['samples']}" for p in section["calibration_probes"]]
    assert spec.build(TfliteQuant, TINY_STUDY).calibration_probes[1] == \
        CalibrationProbe("one_class", 2)


def test_calibration_seeds_keep_their_values() -> None:
    from slimaudio.studies.tflite_quant.calibration import probe_seed, representative_seed

    assert representative_seed(7) == 7
    assert [probe_seed(7, k) for k in range(3)] == [8, 9, 10]


def test_calibration_sources(tmp_path: Path) -> None:
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.studies.tflite_quant.calibration import calibration_frames

    data = load_sounds(write_fake_sounds(tmp_path / "sounds"))
    train = calibration_frames(data, "train", 5, seed=0)
    assert train.shape == (5, N_MELS, T, 1) and train.dtype == np.float32
    assert train.min() < -3  # real log-mel values, not noise in [0, 1)
    one = calibration_frames(data, "one_class", 100, seed=0)  # capped at what exists
    assert len(one) == 16
    train_idx = data.indices("train")
    first = np.asarray(data.frames[train_idx[data.manifest["label"].to_numpy()[train_idx] == 0]])
    assert {tuple(f.ravel()[:3]) for f in one[..., 0].astype(np.float16)} <= \
        {tuple(f.ravel()[:3]) for f in first}
    noise = calibration_frames(data, "uniform_noise", 3, seed=0)
    assert noise.shape == (3, N_MELS, T, 1) and noise.min() >= 0 and noise.max() < 1
    gauss = calibration_frames(data, "normal_noise", 50, seed=0)
    assert abs(float(gauss.mean())) < 0.05 and abs(float(gauss.std()) - 1) < 0.05
    with pytest.raises(ValueError):
        calibration_frames(data, "test", 3, seed=0)


def _clustered_predictions(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict, int]:
    """60 clips of 1-6 frames, 4 classes; a clip is misread as a whole (errors cluster), and
    `close` differs from `basic` on a few clips only."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, 60)
    clips = np.repeat(np.arange(60), sizes)
    y = np.repeat(rng.integers(0, 4, 60), sizes)
    wrong = np.repeat(rng.random(60) < 0.2, sizes)
    basic = np.where(wrong, (y + 1) % 4, y)
    flip = np.repeat(rng.random(60) < 0.1, sizes)
    close = np.where(flip, (basic + 2) % 4, basic)
    return y, clips, {"basic": basic, "close": close, "broken": np.zeros_like(y)}, 4


def test_intervals_are_paired_and_contain_the_point_value() -> None:
    from slimaudio import stats
    from slimaudio.metrics import classification_metrics
    from slimaudio.schemas.base import Bootstrap
    from slimaudio.studies.tflite_quant import intervals

    y, clips, preds, k = _clustered_predictions()
    res = intervals.resampler(clips, Bootstrap(400, 0.9), seed=3)
    assert res.counts.shape == (400, 60) and res.level == 0.9  # clips are the resampled unit
    ci = intervals.quality_intervals(preds, y, k, res)
    assert list(ci.columns) == ["f1", "accuracy", *intervals.interval_columns()]
    for v, p in preds.items():
        m = classification_metrics(y, p, k)
        assert ci.loc[v, "f1"] == pytest.approx(m["f1"]) and ci.loc[v, "accuracy"] == pytest.approx(m["accuracy"])
        for q in ("f1", "accuracy", "delta_f1", "delta_accuracy", "f1_ratio"):
            assert ci.loc[v, f"{q}_lo"] <= ci.loc[v, q] <= ci.loc[v, f"{q}_hi"], (v, q)
    assert ci.loc["close", "delta_f1"] == pytest.approx(ci.loc["close", "f1"] - ci.loc["basic", "f1"])
    assert (ci.loc["basic", ["delta_f1_lo", "delta_f1_hi", "delta_accuracy_hi"]] == 0).all()
    assert ci.loc["broken", "f1_ratio_hi"] < 0.5 < ci.loc["close", "f1_ratio_lo"]
    # paired: the difference is far narrower than either variant's own interval
    own = ci.loc["close", "f1_hi"] - ci.loc["close", "f1_lo"]
    assert ci.loc["close", "delta_f1_hi"] - ci.loc["close", "delta_f1_lo"] < own / 2
    # clustered frames: resampling clips gives a wider interval than resampling frames
    frames = stats.Resampler.of_clusters(None, len(y), 400, np.random.default_rng(3), 0.9)
    by_frame = intervals.quality_intervals(preds, y, k, frames)
    assert own > by_frame.loc["close", "f1_hi"] - by_frame.loc["close", "f1_lo"]
    # the same seed draws the same resamples
    again = intervals.quality_intervals(preds, y, k, intervals.resampler(clips, Bootstrap(400, 0.9), 3))
    pd.testing.assert_frame_equal(ci, again)
    with pytest.raises(ValueError, match="reference"):
        intervals.quality_intervals({"close": preds["close"]}, y, k, res)


def test_clusters_are_the_test_clips_or_their_recordings(tmp_path: Path) -> None:
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.studies.tflite_quant import intervals

    data = load_sounds(write_fake_sounds(tmp_path / "sounds"))
    ids, unit = intervals.cluster_ids(data, "test")
    assert unit == "clip_id" and list(ids) == list(data.split("test").clip_ids)
    assert len(set(ids)) == 12 and len(ids) == 24  # 2 frames per clip move together
    data.manifest["group"] = data.manifest["clip_id"].str.rsplit("-", n=1).str[0]
    ids, unit = intervals.cluster_ids(data, "test")
    assert unit == "group" and len(set(ids)) == 3


def _verdict_table(delta: dict[str, tuple[float, float]],
                   ratio: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """A table with basic F1 0.84, each variant's paired ΔF1 interval and F1-ratio interval."""
    rows = [{"variant": "basic", "f1": 0.84, "f1_lo": 0.78, "f1_hi": 0.88, "size_bytes": 100,
             "delta_f1": 0.0, "delta_f1_lo": 0.0, "delta_f1_hi": 0.0,
             "f1_ratio": 1.0, "f1_ratio_lo": 1.0, "f1_ratio_hi": 1.0}]
    for v in ("float16", "dynamic_range", "int", "full_int", "full_int_naive"):
        lo, hi = delta.get(v, (-0.002, 0.002))
        rlo, rhi = ratio.get(v, (0.98, 1.01))
        rows.append({"variant": v, "f1": 0.84 + (lo + hi) / 2, "f1_lo": 0.78, "f1_hi": 0.88,
                     "size_bytes": 50 if v == "float16" else 26, "delta_f1": (lo + hi) / 2,
                     "delta_f1_lo": lo, "delta_f1_hi": hi, "f1_ratio": (rlo + rhi) / 2,
                     "f1_ratio_lo": rlo, "f1_ratio_hi": rhi})
    return pd.DataFrame(rows)


def _verdicts(table: pd.DataFrame) -> dict[str, str]:
    from slimaudio.studies.tflite_quant import rules

    return {f.claim.split()[0]: f.verdict for f in rules.findings(table, {})}


@pytest.mark.parametrize(("variant", "tol"), [("float16", 0.01), ("dynamic_range", 0.05)])
def test_keeps_f1_verdict_follows_the_delta_interval(variant: str, tol: float) -> None:
    from slimaudio.studies.tflite_quant import rules

    assert dict((v, t) for v, _, t in rules.KEEPS_F1)[variant] == tol
    key = {"float16": "float16", "dynamic_range": "Dynamic-range"}[variant]
    cases = {"holds": (-tol + 0.002, 0.004), "does not hold": (-tol - 0.03, -tol - 0.001),
             "inconclusive": (-tol - 0.004, 0.001)}
    for want, interval in cases.items():
        assert _verdicts(_verdict_table({variant: interval}, {}))[key] == want, (want, interval)
    found = {f.claim.split()[0]: f for f in rules.findings(
        _verdict_table({variant: (-tol - 0.004, 0.001)}, {}), {})}[key]
    assert f"[{-tol - 0.004:+.3f}, +0.001]" in found.evidence and f"{tol:.3f}" in found.evidence


def test_collapse_verdict_follows_the_ratio_intervals() -> None:
    from slimaudio.studies.tflite_quant import rules

    low, high, straddle = (0.01, 0.3), (0.97, 1.01), (0.3, 0.7)
    assert rules.COLLAPSED_BELOW == 0.5
    cases = [({"int": low, "full_int": low}, "holds"),
             ({"int": high, "full_int": high}, "does not hold"),
             ({"int": low, "full_int": high}, "partly holds"),  # the claim is about both
             ({"int": low, "full_int": straddle}, "inconclusive"),
             ({"int": straddle, "full_int": straddle}, "inconclusive")]
    for ratio, want in cases:
        assert _verdicts(_verdict_table({}, ratio))["Integer"] == want, ratio
    f = rules.collapse_finding(_verdict_table({}, {"int": straddle, "full_int_naive": low}))
    assert "0.500 [0.300, 0.700] of basic's" in f.evidence and "raw floats" in f.evidence
    assert "0.155 [0.010, 0.300]" in f.evidence


def test_verdicts_without_intervals_are_inconclusive() -> None:
    from slimaudio.studies.tflite_quant import rules

    old = pd.DataFrame({"variant": ["basic", "float16", "dynamic_range", "int", "full_int"],
                        "f1": [0.9, 0.9, 0.89, 0.1, 0.1], "size_bytes": [100, 50, 26, 26, 26]})
    assert set(_verdicts(old).values()) == {"inconclusive"}
    assert rules.findings(None, {})[0].verdict == "not measured"
    assert rules.findings(old[old.variant != "basic"], {})[0].verdict == "not measured"


@pytest.mark.slow
def test_study_end_to_end_in_the_library(tmp_path: Path) -> None:
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.frame_classifier import train
    from slimaudio.schemas.base import Bootstrap
    from slimaudio.schemas.tflite import Resnet, TfliteQuant
    from slimaudio.studies.base import ROW_COLUMNS
    from slimaudio.studies.tflite_quant import report, run, table

    data = load_sounds(write_fake_sounds(tmp_path / "sounds"))
    result = train.train_resnet(data, spec.build(Resnet, TINY_RESNET), seed=1)
    model_path = train.save_model(result.model, tmp_path, "keras")
    out = tmp_path / "tflite"
    out.mkdir()
    res = run.run_study(data, model_path, out, spec.build(TfliteQuant, TINY_STUDY), "Keras",
                        seed=1, threads=1, bootstrap=build(Bootstrap, TINY_BASE["bootstrap"]))
    t = res.table.set_index("variant")
    expected = ["original", "basic", "int", "full_int", "full_int_naive", "float16",
                "dynamic_range", "int_calib_uniform_noise_2", "int_calib_one_class_2"]
    assert list(t.index) == expected
    assert list(res.table.columns) == table.TABLE_COLUMNS + table.EXTRA_COLUMNS
    # every variant's F1 and accuracy inside its clip-bootstrap interval; deltas paired with basic
    for q in ("f1", "accuracy", "delta_f1", "delta_accuracy", "f1_ratio"):
        assert (t[f"{q}_lo"] <= t[q] + 1e-12).all() and (t[q] <= t[f"{q}_hi"] + 1e-12).all(), q
    assert (t.loc["basic", ["delta_f1", "delta_f1_lo", "delta_f1_hi"]] == 0).all()
    np.testing.assert_allclose(t["delta_f1"], t["f1"] - t.loc["basic", "f1"], atol=1e-12)
    assert res.diagnostics["bootstrap"] == {"unit": "clip_id", "clusters": 12, "resamples": 200,
                                            "level": 0.95}
    assert sorted(p.stem for p in out.glob("*.tflite")) == sorted(
        v for v in expected if v not in ("original", "full_int_naive"))
    assert (t["latency_ms"] > 0).all() and (t["size_bytes"] > 0).all()
    assert t.loc["basic", "size_ratio"] == 1.0
    assert t.loc["full_int_naive", "size_bytes"] == t.loc["full_int", "size_bytes"]
    # float variants reproduce the Keras scores; the naive input path does not
    np.testing.assert_allclose(res.scores["basic"], res.scores["original"], atol=1e-4)
    assert np.abs(res.scores["full_int_naive"] - res.scores["full_int"]).max() > 0.05
    baseline = {"precision": 1, "recall": 1, "f1": 1, "accuracy": 1, "clip_precision": 1,
                "clip_recall": 1, "clip_f1": 1, "clip_accuracy": 1}
    md = report.render_markdown(res.table, res.diagnostics, baseline)
    assert "Full int quantized" in md and "0.0001" in md and "Why the paper" in md
    assert "(paper int: 0.2831)" in md and " cores); SIMD: " in md
    assert "ΔF1 vs basic [paired interval]" in md and "12 test clusters" in md
    assert "| `basic` | " in md and "+0.000 [+0.000, +0.000]" in md
    metrics = report.study_metrics(res.table, res.diagnostics)
    json.dumps(metrics)  # serialisable as is
    assert set(metrics["variants"]) == set(expected)
    assert set(metrics["diagnostics"]["cpu"]) == {"model", "cores", "simd"}

    rep = report.build(res, baseline)
    assert rep.markdown == md and rep.metrics == metrics
    rows = rep.rows
    assert list(rows.columns) == list(ROW_COLUMNS) and list(rows.variant) == expected
    assert (rows.study == "tflite_quant").all() and (rows.quality_metric == "f1").all()
    assert rows.set_index("variant").loc["basic", "relative_quality"] == 1.0
    assert set(rep.variant_tags["int"]) == {"file_format", "quantized", "calibration"}
    assert rep.variant_tags["int"]["calibration"] == "16 train frames"
    assert rep.run_metrics["basic.f1"] == t.loc["basic", "f1"]
    assert "quantized" not in rep.variant_metrics["int"] and "f1" in rep.variant_metrics["int"]
    assert {"f1_lo", "f1_hi", "delta_f1_lo", "delta_f1_hi", "accuracy_lo",
            "delta_accuracy_hi"} <= set(rep.variant_metrics["int"])
    assert rows.set_index("variant").loc["int", "quality_lo"] == t.loc["int", "f1_lo"]
    paths = {r: tmp_path / "out" / f"{r}.{ext}" for r, ext in
             (("table", "csv"), ("rows", "csv"), ("table_md", "md"), ("metrics", "json"),
              ("size_plot", "png"), ("latency_plot", "png"))}
    assert {p.name for p in rep.write(paths)} == {p.name for p in paths.values()}


def _params_file(tmp: Path) -> Path:
    """params composed with the tiny profile, with this test's tiny sections."""
    params = composer.compose(["profile=tiny"], REPO / "conf")
    params["resnet"] = TINY_RESNET
    params["tflite_quant"] = TINY_STUDY
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.slow
def test_stage_scripts_write_every_output(tmp_path: Path) -> None:
    sounds = write_fake_sounds(tmp_path / "sounds")
    params = _params_file(tmp_path)
    rep, mdl = tmp_path / "reports", tmp_path / "models"
    # the autouse fixture in conftest points MLFLOW_TRACKING_URI at a throwaway store
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin",
           "MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    train = [sys.executable, str(REPO / "stages/train_resnet.py"), "--params", str(params),
             "--sounds", str(sounds), "--model-dir", str(mdl / "resnet"),
             "--history", str(rep / "training_history.csv"), "--curves", str(rep / "training_curves.png"),
             "--confusion", str(rep / "confusion.png"), "--metrics", str(rep / "train_metrics.json")]
    proc = subprocess.run(train, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "baseline: frame F1" in proc.stdout
    quant = [sys.executable, str(REPO / "stages/tflite_quant.py"), "--params", str(params),
             "--sounds", str(sounds), "--model-dir", str(mdl / "resnet"),
             "--baseline", str(rep / "train_metrics.json"), "--tflite-dir", str(mdl / "tflite"),
             "--table", str(rep / "table.csv"), "--rows", str(rep / "rows.csv"),
             "--table-md", str(rep / "table.md"),
             "--metrics", str(rep / "metrics.json"), "--size-plot", str(rep / "f1_vs_size.png"),
             "--latency-plot", str(rep / "f1_vs_latency.png")]
    proc = subprocess.run(quant, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for f in ("table.csv", "rows.csv", "table.md", "metrics.json", "f1_vs_size.png",
              "f1_vs_latency.png",
              "training_curves.png", "confusion.png", "training_history.csv", "train_metrics.json"):
        assert (rep / f).is_file() and (rep / f).stat().st_size > 0, f
    assert (mdl / "resnet" / "model.keras").is_file() and (mdl / "resnet" / "history.csv").is_file()
    assert len(list((mdl / "tflite").glob("*.tflite"))) == 7
    table = pd.read_csv(rep / "table.csv")
    assert {"basic", "int", "full_int", "float16", "dynamic_range", "full_int_naive",
            "original"} <= set(table["variant"])

    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["tflite_quant"])
    names = set(runs["tags.mlflow.runName"])
    assert {"train_resnet", "tflite_quant"} <= names
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert set(children["tags.mlflow.runName"]) == set(table["variant"])
    assert children["metrics.f1"].notna().all() and children["metrics.size_bytes"].notna().all()
    assert set(children["tags.file_format"]) == {"Keras", "TFLite"}
    stage = runs[runs["tags.mlflow.runName"] == "tflite_quant"].iloc[0]
    assert stage["metrics.basic.f1"] == table.set_index("variant").loc["basic", "f1"]
    assert set(pd.read_csv(rep / "rows.csv")["variant"]) == set(table["variant"])

    # a missing input folder is one clear line, not a traceback
    bad = [*quant]
    bad[bad.index("--sounds") + 1] = str(tmp_path / "nowhere")
    proc = subprocess.run(bad, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    # TensorFlow's C++ logging may print before it (absl, oneDNN): the error is one line of its own
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "nowhere" in errors[0], proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in proc.stderr
