from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from slimaudio import atomic, tracking


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_replaces_whole_dir(tmp_path: Path) -> None:
    d = tmp_path / "data"
    with atomic.atomic_dir(d) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic.atomic_dir(d) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError
    assert sorted(p.name for p in d.iterdir()) == ["a.txt"]
    with atomic.atomic_dir(d) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in d.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_writers(tmp_path: Path) -> None:
    import numpy as np

    atomic.write_json(tmp_path / "m.json", {"a": np.float32(1.5), "b": np.arange(2)})
    assert (tmp_path / "m.json").read_text().startswith("{")
    atomic.write_csv(tmp_path / "t.csv", pd.DataFrame({"x": [1, 2]}))
    assert (tmp_path / "t.csv").read_text().splitlines() == ["x", "1", "2"]


def test_stage_run_logs_nested_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    art = tmp_path / "table.csv"
    art.write_text("a\n1\n")
    with tracking.stage_run("study_x", "stage_y", {"base.seed": 1}) as run:
        run.log_metrics({"eer": 2.5})
        run.log_metric_step("loss", 1.0, 0)
        run.log_metric_step("loss", 0.5, 1)
        run.log_artifact(art)
        run.child("variant_a").log_metrics({"eer": 3.0, "size_mib": 1.0})
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["study_x"])
    assert len(runs) == 2
    parent = runs[runs["tags.mlflow.runName"] == "stage_y"].iloc[0]
    child = runs[runs["tags.mlflow.runName"] == "variant_a"].iloc[0]
    assert parent["metrics.eer"] == 2.5 and child["metrics.eer"] == 3.0
    assert parent["tags.stage"] == "stage_y" and parent["tags.dvc_experiment"] == "exp-test"
    assert parent["tags.git_commit"]
    assert child["tags.mlflow.parentRunId"] == parent["run_id"]
    hist = mlflow.tracking.MlflowClient().get_metric_history(parent["run_id"], "loss")
    assert [m.value for m in sorted(hist, key=lambda m: m.step)] == [1.0, 0.5]


def test_tracking_failure_warns_and_keeps_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # A tracking URI that cannot work: a sqlite file inside a path that is a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/sub/db.sqlite")
    out = tmp_path / "out.txt"
    with tracking.stage_run("s", "t") as run:
        atomic.write_text(out, "result")
        run.log_metrics({"f1": 0.5})
    assert out.read_text() == "result"
    err = capsys.readouterr().err
    assert "warning: MLflow tracking failed" in err
    assert err.count("\n") == 1


def test_default_uri_is_repo_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert os.environ.get("MLFLOW_TRACKING_URI") is None


def test_queue_workspace_resolves_to_main_repo(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    exp = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    exp.mkdir(parents=True)
    (exp / "dvc.yaml").write_text("stages: {}\n")
    assert tracking.repo_root(exp) == tmp_path.resolve()
    assert tracking.repo_root(tmp_path / ".dvc") == tmp_path.resolve()


def test_concurrent_flushes_all_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes flushing into one fresh SQLite store (as two dvc queue workers do)."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    code = (
        "import sys; from slimaudio import tracking\n"
        "for i in range(3):\n"
        "    with tracking.stage_run('q', f'w{sys.argv[1]}-{i}') as r:\n"
        "        r.log_metrics({'eer': i}); r.child('v').log_metrics({'f1': 0.5})\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], env=env, stderr=subprocess.PIPE,
                              text=True) for w in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert not any("tracking failed" in e for e in errs), errs
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["q"])
    assert len(runs) == 12


def test_atomic_outputs_get_normal_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "f.txt", "x")
        with atomic.atomic_dir(tmp_path / "d") as d:
            (d / "a").write_text("1")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
