"""End to end: `dvc repro data_report` on the tiny profile in a copy of the repo, then a no-op.

Copies the repository's files (tracked, plus untracked ones git does not ignore), sets
`profile: tiny`, runs the data stages with the venv's dvc and checks the prepared data, the
reports, the MLflow runs, and that a second `dvc repro` runs nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slimaudio import compose as composer

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DVC = VENV_BIN / "dvc"

pytestmark = pytest.mark.slow


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if shutil.which("git") is None or not DVC.exists():
        pytest.skip("git or the venv's dvc is not available")
    root = tmp_path_factory.mktemp("repo")
    _copy_repo(root)
    composer.compose_params(root / "params.yaml", ["profile=tiny"], root / "conf")
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow-test.db'}",
               DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0")
    _run(["git", "init", "-q"], root, env)
    if not (root / ".dvc" / "config").exists():
        _run([str(DVC), "init", "-q"], root, env)
    return root, env


def test_dvc_repro_data_report_then_nothing_to_do(repo):
    root, env = repo
    out = _run([str(DVC), "repro", "data_report"], root, env)
    for stage in ("prepare_speakers", "prepare_sounds", "data_report"):
        assert f"Running stage '{stage}'" in out, out[-2000:]

    spk, snd = root / "data" / "speakers", root / "data" / "sounds"
    for f in ("manifest.csv", "feats.npy", "audio.npy", "trials.txt", "info.json"):
        assert (spk / f).is_file(), f
    for f in ("manifest.csv", "frames.npy", "classes.json", "class_weights.json", "info.json"):
        assert (snd / f).is_file(), f
    m = pd.read_csv(spk / "manifest.csv")
    assert m.speaker.nunique() == 8 and len(m) == 32
    assert np.load(spk / "feats.npy", mmap_mode="r").shape == (m.feat_frames.sum(), 80)
    frames = np.load(snd / "frames.npy", mmap_mode="r")
    assert frames.shape[1:] == (64, 99) and frames.shape[0] == len(pd.read_csv(snd / "manifest.csv"))
    assert json.loads((snd / "classes.json").read_text()) == [
        "siren_wail", "doorbell", "dog_bark", "baby_crying"]

    reports = root / "reports" / "data"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["speakers"]["speakers"] == 8 and metrics["speakers"]["test"]["speakers"] == 3
    assert metrics["sounds"]["classes"] == 4
    assert max(v["after"] for v in metrics["sounds"]["train_frames_per_class"].values()) <= 6
    for png in ("undersampling.png", "durations.png"):
        assert (reports / png).stat().st_size > 5000
    for stage in ("prepare_speakers", "prepare_sounds"):
        stage_metrics = json.loads((reports / f"{stage}.json").read_text())
        assert "skipped_files" in stage_metrics

    # one MLflow run per stage in experiment "data"
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("data")
    assert exp is not None
    names = sorted(r.info.run_name for r in client.search_runs([exp.experiment_id]))
    assert names == ["data_report", "prepare_sounds", "prepare_speakers"]

    # nothing changed: nothing runs but the params check, which runs first on every repro
    again = _run([str(DVC), "repro", "data_report"], root, env)
    assert re.findall(r"Running stage '([^']+)'", again) == ["check_params"], again[-2000:]


def _dvc(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DVC), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)


def test_a_conf_edit_without_composing_stops_dvc_repro(repo):
    """Issue 24, case 1: `dvc repro` after an edit of conf/ never runs the old params.yaml."""
    root, env = repo
    tiny = root / "conf" / "profile" / "tiny.yaml"
    before = tiny.read_text()
    tiny.write_text(before + "\n# an edit that changes nothing yet\n")
    try:
        for args in (("repro", "prepare_speakers"), ("repro", "-f", "-s", "prepare_speakers")):
            proc = _dvc(root, env, *args)
            err = proc.stdout + proc.stderr
            assert proc.returncode != 0, err[-2000:]
            assert "params.yaml: older than conf/" in err and 'make params SET="profile=tiny"' in err
        # -f -s skips check_params: the stage's own check stops it, after DVC deleted its outputs
        assert "`dvc checkout prepare_speakers` brings them back" in err, err[-2000:]
        assert "check_params" in _dvc(root, env, "status").stdout
    finally:
        tiny.write_text(before)
    assert _dvc(root, env, "checkout", "prepare_speakers").returncode == 0
    assert (root / "reports" / "data" / "prepare_speakers.json").is_file()


def test_a_failed_run_says_how_to_get_the_outputs_back(repo):
    """Issue 24, case 5: DVC deletes a stage's outputs before running it; every output is cached,
    so the error line's `dvc checkout <stage>` restores them."""
    root, env = repo
    metrics = root / "reports" / "data" / "prepare_speakers.json"
    before = metrics.read_bytes()
    composer.compose_params(root / "params.yaml", ["profile=tiny", "prepare_speakers.corpus.kind=fsdd",
                                                   "prepare_speakers.corpus.path=/nonexistent"],
                            root / "conf")
    try:
        proc = _dvc(root, env, "repro", "prepare_speakers")
        err = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "/nonexistent" in err, err[-2000:]
        assert "`dvc checkout prepare_speakers` brings them back" in err, err[-2000:]
        assert not metrics.exists() and not (root / "data" / "speakers").exists()
    finally:
        composer.compose_params(root / "params.yaml", ["profile=tiny"], root / "conf")
    assert _dvc(root, env, "checkout", "prepare_speakers").returncode == 0
    assert metrics.read_bytes() == before and (root / "data" / "speakers" / "feats.npy").is_file()
    assert "Running stage" not in "".join(_dvc(root, env, "repro", "prepare_speakers").stdout
                                          .replace("Running stage 'check_params'", ""))
