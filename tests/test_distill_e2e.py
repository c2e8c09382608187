"""A tiny teacher and two tiny students through the distill stage scripts, end to end,
on a synthetic speaker folder built here (random voices, the data/speakers layout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mel_configs
import numpy as np
import pandas as pd
import pytest
import yaml

from slimaudio import compose as composer
from slimaudio.audio import to_int16
from slimaudio.features import log_mel

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def make_speakers(root: Path, n_train: int = 4, n_test: int = 4, per_spk: int = 4,
                  seed: int = 0) -> Path:
    """A data/speakers folder: each speaker a harmonic voice at its own pitch, with noise."""
    rng = np.random.default_rng(seed)
    mel = mel_configs.speaker(n_mels=80)
    rows, audio, feats = [], [], []
    a_off = f_off = 0
    for s in range(n_train + n_test):
        f0 = 90 + 25 * s
        for u in range(per_spk):
            n = int(SR * rng.uniform(1.1, 1.6))
            t = np.arange(n) / SR
            masked, arousal = int(rng.random() < 0.5), int(rng.random() < 0.5)
            x = sum(np.sin(2 * np.pi * f0 * (1 + 0.2 * arousal) * k * t) / k for k in range(1, 6))
            x = 0.2 * x / (1 + 2 * masked) + 0.01 * rng.standard_normal(n)
            pcm = to_int16(x)
            f = log_mel(pcm.astype(np.float32) / 32767.0, mel)
            rows.append({"utt_id": f"spk{s}-u{u}", "speaker": f"spk{s}",
                         "split": "train" if s < n_train else "test", "session": 1,
                         "group": "AB"[s % 2], "masked": masked, "arousal": arousal,
                         "duration_s": n / SR, "feat_offset": f_off, "feat_frames": len(f),
                         "audio_offset": a_off, "audio_samples": n, "source": "test"})
            audio.append(pcm)
            feats.append(f.astype(np.float16))
            a_off += n
            f_off += len(f)
    root.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    np.save(root / "audio.npy", np.concatenate(audio))
    np.save(root / "feats.npy", np.concatenate(feats))
    (root / "info.json").write_text(json.dumps({
        "sample_rate": SR, "n_mels": 80, "n_fft": 512, "win_length": 400, "hop_length": 160,
        "f_min": 20.0, "f_max": 7600.0}))
    last = f"spk{n_train + n_test - 1}"
    (root / "trials.txt").write_text(f"1 {last}-u0 {last}-u1\n0 {last}-u0 spk{n_train}-u0\n")
    return root


def make_teacher(path: Path, n_mels: int = 80, dim: int = 12) -> Path:
    """A tiny torch embedding model exported like models/teacher/teacher.onnx."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(n_mels, 16, 3, padding=1)
            self.fc = nn.Linear(32, dim)

        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            x = feats.transpose(1, 2)
            x = torch.relu(self.conv(x - x.mean(dim=2, keepdim=True)))
            return self.fc(torch.cat([x.mean(dim=2), x.std(dim=2)], dim=1))

    torch.manual_seed(0)
    torch.onnx.export(Tiny().eval(), (torch.randn(1, 96, n_mels),), str(path),
                      input_names=["feats"], output_names=["embedding"],
                      dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path


def test_batch_log_mel_equals_the_features_definition() -> None:
    from slimaudio.studies.distill.targets import batch_log_mel

    mel = mel_configs.speaker(n_mels=64)
    x = np.random.default_rng(0).standard_normal((3, 15600)) * 0.1
    np.testing.assert_allclose(batch_log_mel(x, mel), np.stack([log_mel(v, mel) for v in x]),
                               atol=1e-5)


def test_targets_name_the_manifest_when_a_probe_label_is_missing(tmp_path: Path) -> None:
    from slimaudio.datasets import speakers as speakers_data
    from slimaudio.errors import DataError
    from slimaudio.studies.distill.targets import require_probe_columns, student_mel

    root = make_speakers(tmp_path / "speakers", n_train=2, n_test=2, per_spk=2)
    corpus = speakers_data.load(root)
    require_probe_columns(corpus)
    assert student_mel(corpus, 64).n_mels == 64
    m = pd.read_csv(root / "manifest.csv").drop(columns=["arousal"])
    m.to_csv(root / "manifest.csv", index=False)
    with pytest.raises(DataError, match=r"manifest\.csv: missing column\(s\) arousal"):
        require_probe_columns(speakers_data.load(root))


@pytest.mark.slow
def test_tiny_teacher_and_two_students_end_to_end(tmp_path: Path) -> None:
    speakers = make_speakers(tmp_path / "speakers")
    teacher = make_teacher(tmp_path / "teacher.onnx")
    params = composer.compose(["profile=tiny"])
    params["distill_grid"]["students"] = {
        "s000": {"arch": "small", "width": 0.5, "bottleneck": 16, "pool": "gap", "qat": False,
                 "frontend": "outside"},
        "s143": {"arch": "large", "width": 0.5, "bottleneck": 8, "pool": "flatten", "qat": True,
                 "frontend": "inside"},
    }
    # one replicate as params say, then two: replicate 0 of the two must be the single run
    (tmp_path / "params1.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    params["distill_student"]["replicates"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p = ["--params", str(tmp_path / "params.yaml")]
    data, models, rep = tmp_path / "distill", tmp_path / "models", tmp_path / "reports"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def stage(*args: str, params_args: list[str] = p) -> str:
        proc = subprocess.run([sys.executable, *args, *params_args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    out = stage("stages/distill_targets.py", "--speakers", str(speakers), "--teacher",
                str(teacher), "--out-dir", str(data))
    assert "distill_targets:" in out
    info = json.loads((data / "teacher.json").read_text())
    assert info["teacher"]["runtime"] == "ONNX Runtime" and info["teacher"]["embedding_dim"] == 12
    assert np.load(data / "train_patches.npy").shape == (48, 96, 64)
    assert np.load(data / "train_waves.npy").shape == (48, 15600)
    for sid in ("s000", "s143"):
        stage("stages/distill_student.py", "--student", sid, "--data", str(data),
              "--out-dir", str(models / sid))
        assert (models / sid / "model.tflite").is_file()
    assert (models / "s143" / "model_fp32.tflite").is_file()  # QAT: int8 plus the float32
    check_replicates(models / "s000", stage, data, tmp_path, int(params["base"]["seed"]))
    sel = {"grid": tmp_path / "select" / "grid.csv", "choice": tmp_path / "select" / "choice.json",
           "selection": tmp_path / "select" / "selection.json"}
    sel_args = [a for k, v in sel.items() for a in (f"--{k}", str(v))]
    out = stage("stages/distill_select.py", "--data", str(data), "--teacher", str(teacher),
                "--models", str(models), *sel_args)
    choice = json.loads(sel["choice"].read_text())
    assert set(choice) == {"student", "hyperparameters"} and choice["student"] in ("s000", "s143")
    assert f"chose {choice['student']}" in out
    final = tmp_path / "final"
    out = stage("stages/distill_final.py", "--data", str(data), "--choice", str(sel["choice"]),
                "--out-dir", str(final))
    assert "3 steps" in out                              # tiny profile: distill_final.steps
    assert json.loads((final / "metrics.json").read_text())["metrics"]["train_steps"] == 3
    paths = {"table": rep / "table.csv", "rows": rep / "rows.csv", "table_md": rep / "table.md",
             "metrics": rep / "metrics.json", "regression": rep / "regression.csv",
             "pareto": rep / "pareto.png"}
    stage("stages/distill_report.py", "--data", str(data), "--teacher", str(teacher),
          "--models", str(models), *sel_args, "--final", str(final),
          *[a for k, v in paths.items() for a in (f"--{k.replace('_', '-')}", str(v))])

    df = pd.read_csv(paths["table"])
    assert list(df["student"]) == ["s000", "s143", "teacher", "final"]
    assert list(df["role"]) == ["grid", "grid", "teacher", "final"]
    assert df.loc[df.student == "final", "label"].item() == \
        df.loc[df.student == choice["student"], "label"].item()
    for col in ("arch", "width", "bottleneck", "pool", "qat", "frontend", "size_bytes",
                "size_mib", "latency_ms", "acc_speaker", "acc_masked", "acc_arousal",
                "acc_group", "mean_accuracy", "on_frontier"):
        assert col in df, col
    assert (df["latency_ms"] > 0).all() and (df["size_bytes"] > 0).all()
    assert df.loc[df.student == "s143", "format"].item() == "int8"
    assert df.loc[df.student != "teacher", "on_frontier"].any()
    reg = pd.read_csv(paths["regression"])
    assert set(reg["target"]) == {"quality", "latency", "size"}
    assert list(reg.columns) == ["target", "hyperparameter", "weight", "se", "lo", "hi"]
    # every probing stage saved its answers; the report drew paired intervals from them
    assert (data / "teacher_predictions.csv").is_file() and (final / "predictions.csv").is_file()
    assert all((models / sid / "predictions.csv").is_file() for sid in ("s000", "s143"))
    for col in ("mean_accuracy_lo", "mean_accuracy_hi", "delta_mean_accuracy",
                "delta_mean_accuracy_lo", "delta_mean_accuracy_hi", "acc_group_lo"):
        assert df[col].notna().all(), col
    metrics = json.loads(paths["metrics"].read_text())
    assert {"chosen_speedup", "chosen_size_fraction", "chosen_accuracy_drop", "chosen_speedup_lo",
            "chosen_accuracy_retention_lo", "regression"} <= set(metrics)
    assert metrics["chosen"] == choice["student"] and metrics["chosen_train_steps"] == 3
    assert "32x" in paths["table_md"].read_text()
    assert "Training seed: included" in paths["table_md"].read_text()
    assert df.loc[df.student != "teacher", "mean_accuracy_sd"].notna().all()
    assert set(df.loc[df.student != "teacher", "replicates"]) == {2}
    assert metrics["replicates"] == 2 and metrics["replicate_sd"] >= 0
    assert paths["pareto"].stat().st_size > 1000
    rows = pd.read_csv(paths["rows"])
    assert list(rows["variant"]) == ["s000", "s143", "teacher", "final"]
    assert set(rows["study"]) == {"distill"} and set(rows["quality_metric"]) == {"mean_accuracy"}
    assert rows.loc[rows.variant == "teacher", "relative_quality"].item() == pytest.approx(1.0)

    import mlflow

    runs = mlflow.search_runs(experiment_names=["distill"])
    names = set(runs["tags.mlflow.runName"])
    assert {"distill_targets", "distill_select", "distill_report"} <= names
    assert any(n.startswith(f"final {choice['student']} ") for n in names)
    assert any(n.startswith("s000 ") for n in names) and any(n.startswith("s143 ") for n in names)


def check_replicates(folder: Path, stage: Callable[..., str], data: Path, tmp_path: Path, seed: int) -> None:
    """A student trained with 2 replicates saved both replicates' answers and reports their
    mean; its replicate 0 is exactly the student a 1-replicate run trains (same answers,
    accuracies, loss and model), so replicates leave the default's numbers as they were."""
    two = json.loads((folder / "metrics.json").read_text())
    assert [r["seed"] for r in two["per_replicate"]] == [seed, seed + 1]
    assert (folder / "predictions_r1.csv").is_file() and not (folder / "r1").exists()
    m = two["metrics"]
    assert m["replicates"] == 2 and m["mean_accuracy_sd"] >= 0
    assert m["mean_accuracy"] == pytest.approx(
        np.mean([r["mean_accuracy"] for r in two["per_replicate"]]))
    one_dir = tmp_path / "one" / folder.name
    stage("stages/distill_student.py", "--student", folder.name, "--data", str(data),
          "--out-dir", str(one_dir), params_args=["--params", str(tmp_path / "params1.yaml")])
    one = json.loads((one_dir / "metrics.json").read_text())
    assert len(one["per_replicate"]) == 1 and one["metrics"]["replicates"] == 1
    assert not list(one_dir.glob("predictions_r*.csv")) and "mean_accuracy_sd" not in one["metrics"]
    rep0 = {k: v for k, v in two["per_replicate"][0].items() if k != "train_seconds"}
    assert rep0 == {k: v for k, v in one["per_replicate"][0].items() if k != "train_seconds"}
    assert (one_dir / "predictions.csv").read_bytes() == (folder / "predictions.csv").read_bytes()
    assert (one_dir / "model.tflite").read_bytes() == (folder / "model.tflite").read_bytes()
    for k in ("mean_accuracy", "acc_speaker", "final_mse", "params", "size_bytes"):
        assert one["metrics"][k] == two["per_replicate"][0].get(k, two["metrics"][k]), k


# `dvc exp run -S` on one student hyperparameter re-running only that student is checked on
# the whole tiny pipeline: tests/test_pipeline_e2e.py::test_one_student_param_reruns_only_that_student.
