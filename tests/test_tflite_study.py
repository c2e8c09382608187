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


def test_config_fields_match_the_schema() -> None:
    from dataclasses import fields

    import slimaudio.schemas.tflite  # noqa: F401  (registers the section)
    from slimaudio import config
    from slimaudio.studies.tflite_quant.config import (
        CalibrationProbe,
        Config,
        LatencyConfig,
        from_params,
    )

    schema = config.SCHEMAS["tflite_quant"]
    assert {f.name for f in fields(Config)} == set(schema)
    assert {f.name for f in fields(LatencyConfig)} == set(schema["latency"])
    assert {f.name for f in fields(CalibrationProbe)} == set(schema["calibration_probes"].item)
    section = config.compose([], REPO / "conf")["tflite_quant"]
    cfg = from_params(section)
    assert cfg.representative_samples == section["representative_samples"]
    assert cfg.latency.repeats == section["latency"]["repeats"]
    assert [p.variant for p in cfg.calibration_probes] == [
        f"int_calib_{p['source']}_{p['samples']}" for p in section["calibration_probes"]]
    assert from_params(TINY_STUDY).calibration_probes[1] == CalibrationProbe("one_class", 2)


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


@pytest.mark.slow
def test_study_end_to_end_in_the_library(tmp_path: Path) -> None:
    from slimaudio.datasets.sounds import load_sounds
    from slimaudio.frame_classifier import train
    from slimaudio.studies.base import ROW_COLUMNS
    from slimaudio.studies.tflite_quant import config, report, run, table

    data = load_sounds(write_fake_sounds(tmp_path / "sounds"))
    result = train.train_resnet(data, TINY_RESNET, seed=1)
    model_path = train.save_model(result.model, tmp_path, "keras")
    out = tmp_path / "tflite"
    out.mkdir()
    res = run.run_study(data, model_path, out, config.from_params(TINY_STUDY), threads=1, seed=1,
                        file_format="Keras")
    t = res.table.set_index("variant")
    expected = ["original", "basic", "int", "full_int", "full_int_naive", "float16",
                "dynamic_range", "int_calib_uniform_noise_2", "int_calib_one_class_2"]
    assert list(t.index) == expected
    assert list(res.table.columns[:10]) == table.TABLE_COLUMNS
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
    metrics = report.study_metrics(res.table, res.diagnostics)
    json.dumps(metrics)  # serialisable as is
    assert set(metrics["variants"]) == set(expected)
    assert set(metrics["diagnostics"]["cpu"]) == {"model", "cores", "simd"}

    rep = run.build_report(res, baseline)
    assert rep.markdown == md and rep.metrics == metrics
    rows = rep.rows
    assert list(rows.columns) == list(ROW_COLUMNS) and list(rows.variant) == expected
    assert (rows.study == "tflite_quant").all() and (rows.quality_metric == "f1").all()
    assert rows.set_index("variant").loc["basic", "relative_quality"] == 1.0
    assert set(rep.variant_tags["int"]) == {"file_format", "quantized", "calibration"}
    assert rep.variant_tags["int"]["calibration"] == "16 train frames"
    assert rep.run_metrics["basic.f1"] == t.loc["basic", "f1"]
    assert "quantized" not in rep.variant_metrics["int"] and "f1" in rep.variant_metrics["int"]
    paths = {r: tmp_path / "out" / f"{r}.{ext}" for r, ext in
             (("table", "csv"), ("rows", "csv"), ("table_md", "md"), ("metrics", "json"),
              ("size_plot", "png"), ("latency_plot", "png"))}
    assert {p.name for p in rep.write(paths)} == {p.name for p in paths.values()}


def _params_file(tmp: Path) -> Path:
    """params composed with the tiny profile, with this test's tiny sections."""
    from slimaudio import config

    params = config.compose(["profile=tiny"], REPO / "conf")
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
