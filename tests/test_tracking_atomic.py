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


# --- tracking never holds a stage up ------------------------------------------------------------

_HTTP_ENV = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
             "MLFLOW_HTTP_REQUEST_TIMEOUT")
_TINY_STAGE = (
    "import sys; from slimaudio import atomic, tracking\n"
    "with tracking.stage_run('s', 't', {'base.seed': 1}) as run:\n"
    "    atomic.write_text(sys.argv[1], 'result')\n"
    "    run.log_metrics({'f1': 0.5})\n"
)


def _run_tiny_stage(out: Path, env: dict[str, str], timeout: float = 40) -> tuple[float, list[str]]:
    """Run a tiny tracked stage in a subprocess: (seconds, its stderr lines)."""
    import subprocess
    import sys
    import time

    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", _TINY_STAGE, str(out)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stage was still waiting on MLflow after {timeout} s")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "result"
    return time.monotonic() - t0, [ln for ln in proc.stderr.splitlines() if ln.strip()]


def _env(**over: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HTTP_ENV}
    return {**env, **over}


def test_unreachable_tracking_server_warns_once_and_quickly(tmp_path: Path) -> None:
    seconds, err = _run_tiny_stage(tmp_path / "out.txt", _env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"))
    assert len(err) == 1, err
    assert err[0].startswith("warning: MLflow tracking skipped (http://127.0.0.1:9): server not reachable")
    assert err[0].endswith("the stage's outputs are complete")
    assert seconds < 15


def test_silent_tracking_server_is_given_up_within_the_bounds(tmp_path: Path) -> None:
    """A server that accepts connections but never answers: MLflow's own timeout and retries
    are bounded (here the user's MLFLOW_HTTP_REQUEST_TIMEOUT=2 wins over ours)."""
    import socket

    with socket.socket() as listener:  # connections queue in the backlog, nobody reads them
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        env = _env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_TIMEOUT="2")
        seconds, err = _run_tiny_stage(tmp_path / "out.txt", env, timeout=60)
    assert len(err) == 1 and err[0].startswith("warning: MLflow tracking failed"), err
    assert seconds < 20


def test_store_lock_wait_is_bounded_and_names_the_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    hold = ("import sys, time; from slimaudio import tracking\n"
            "with tracking._store_lock(sys.argv[1], 'holder_stage'):\n"
            "    print('held', flush=True); time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, uri], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = _env(MLFLOW_TRACKING_URI=uri, SLIMAUDIO_MLFLOW_LOCK_TIMEOUT="1")
        seconds, err = _run_tiny_stage(tmp_path / "out.txt", env)
    finally:
        holder.kill()
        holder.wait()
    assert len(err) == 1, err
    assert err[0].startswith("warning: MLflow tracking skipped"), err
    assert f"mlflow.db.lock held for over 1 s by pid {holder.pid} (stage holder_stage:" in err[0]
    assert seconds < 15


def test_child_runs_carry_the_stage_params_and_experiments_open_on_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import mlflow

    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with tracking.stage_run("ptq_layerwise", "ptq_layerwise", {"base.seed": 1, "ptq_layerwise.n": 8}) as run:
        run.key_metrics = ("eer", "delta_eer", "size_mib")  # as StudyReport.log sets them
        run.log_metrics({"eer": 5.0})
        child = run.child("all")
        child.log_params({"kind": "static"})
        child.log_metrics({"eer": 5.5, "size_mib": 0.6, "not_key": 1.0})
    client = mlflow.tracking.MlflowClient(uri)
    exp = client.get_experiment_by_name("ptq_layerwise")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(exp.tags[tracking.VIEW_TAG])
    assert view["orderByKey"] == "metrics.`eer`" and view["orderByAsc"] is True
    assert view["selectedColumns"] == ["metrics.`eer`", "metrics.`size_mib`", "params.`base.seed`",
                                       "params.`kind`", "params.`ptq_layerwise.n`"]
    runs = mlflow.search_runs(experiment_names=["ptq_layerwise"])
    row = runs[runs["tags.mlflow.runName"] == "all"].iloc[0]
    assert (row["params.base.seed"], row["params.ptq_layerwise.n"], row["params.kind"]) == ("1", "8", "static")
    links = tracking.ui_links("http://127.0.0.1:5000")
    assert links == [f"ptq_layerwise: http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs"
                     "?workflowType=machine_learning&viewStateShareKey=slimaudio"]


# --- temporaries of killed writers --------------------------------------------------------------

def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)  # exited and reaped: no process has this pid now


def test_next_write_removes_temps_of_dead_writers_only(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "speakers"
    host = atomic._host()
    dead = tmp_path / f".speakers.{host}-{_dead_pid()}.k3j9x0ab.tmp"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "feats.npy").write_bytes(b"x" * 1000)
    dead_file = tmp_path / f".speakers.{host}-{_dead_pid()}.q1w2e3r4.tmp"
    dead_file.write_text("half")
    other = tmp_path / f".speakers2.{host}-{_dead_pid()}.a1b2c3d4.tmp"  # another target's
    other.mkdir()
    elsewhere = tmp_path / f".speakers.otherhost-{_dead_pid()}.e5f6g7h8.tmp"  # pid not ours to judge
    elsewhere.mkdir()
    old = tmp_path / ".speakers.old"  # a writer killed between the two renames of a swap
    old.mkdir()
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".speakers.{host}-{live_proc.pid}.z9y8x7w6.tmp"
        live.mkdir()
        with atomic.atomic_dir(target) as tmp:
            assert tmp.name.startswith(f".speakers.{host}-{os.getpid()}.") and tmp.name.endswith(".tmp")
            (tmp / "a.txt").write_text("1")
        assert not dead.exists() and not dead_file.exists()
        assert live.is_dir() and other.is_dir() and elsewhere.is_dir() and not old.exists()
        assert (target / "a.txt").read_text() == "1"
    finally:
        live_proc.kill()
        live_proc.wait()


def test_sigkilled_writer_leaves_a_temp_the_next_run_removes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    target = tmp_path / "out.json"
    code = ("import sys, time; from slimaudio import atomic\n"
            "with atomic.atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('half'); print(tmp, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    left = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left.exists() and left.name.startswith(f".out.json.{atomic._host()}-{proc.pid}.")
    atomic.write_json(target, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_every_stage_run_logs_all_declared_params(repo: Path) -> None:
    """Each stage's MLflow run gets params.flat() whole (every key it declared, dotted), so runs
    compare on the params they actually ran with; extras may be added beside them."""
    import re

    for script in sorted((repo / "stages").glob("*.py")):
        src = script.read_text(encoding="utf-8")
        if "tracking.stage_run(" not in src:
            continue
        whole = re.search(r"stage_run\([^()]*params\.flat\(\)\)", src) or "**params.flat()," in src
        assert whole, f"{script.name}: its MLflow run does not log params.flat() whole"


def test_runs_view_keeps_columns_of_every_stage_and_ranks_by_the_key_metric() -> None:
    import json

    from slimaudio.speaker.train import KEY_METRICS
    from slimaudio.studies.tflite_quant.rules import STUDY

    train = tracking.RunRecord("ecapa_model", params={"ecapa.train.lr": "0.01"},
                               metrics={"train_loss": 1.0, "stage_seconds": 3.0},
                               key_metrics=KEY_METRICS)
    view = tracking._view_state(train, None)
    assert json.loads(view)["orderByKey"] == "metrics.`train_loss`"
    evaluate = tracking.RunRecord("eval_ecapa", params={"ecapa.eval.threads": "1"},
                                  metrics={"eer": 4.0, "min_dcf": 0.5}, key_metrics=KEY_METRICS)
    state = json.loads(tracking._view_state(evaluate, view))
    assert state["selectedColumns"] == ["metrics.`eer`", "metrics.`min_dcf`", "metrics.`train_loss`",
                                        "params.`ecapa.eval.threads`", "params.`ecapa.train.lr`"]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`eer`", True)
    report = tracking.RunRecord("q", metrics={"f1": 0.5}, key_metrics=STUDY.key_metrics)
    f1 = json.loads(tracking._view_state(report, None))
    assert (f1["orderByKey"], f1["orderByAsc"]) == ("metrics.`f1`", False)
    # A stage that names no key metrics (training, one student) leaves the ranking as it was.
    student = tracking.RunRecord("s001", params={"x": "1"}, metrics={"mse": 0.2})
    kept = json.loads(tracking._view_state(student, json.dumps(f1)))
    assert kept["orderByKey"] == "metrics.`f1`" and "metrics.`mse`" not in kept["selectedColumns"]
