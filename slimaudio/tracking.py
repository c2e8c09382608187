"""MLflow tracking for stages: one run per stage execution, nested runs per variant.

Everything is buffered in memory and written in one go after the stage has written its DVC
outputs, so that (a) a tracking failure can never lose outputs, and (b) SQLite write
transactions stay short, which matters when `dvc queue` runs two workers at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
DB_NAME = "mlflow.db"


def repo_root(start: Path | None = None) -> Path:
    """The project root: nearest parent holding dvc.yaml (falls back to the cwd).

    `dvc exp run --queue` runs each experiment in a copy under <repo>/.dvc/tmp/exps/; its runs
    belong in the main repo's store, so a path inside a `.dvc` folder resolves to that repo.
    """
    here = (start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if cand.name == ".dvc" and (cand.parent / "dvc.yaml").exists():
            return cand.parent
    for cand in (here, *here.parents):
        if (cand / "dvc.yaml").exists():
            return cand
    return here


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file in the repo root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{repo_root() / DB_NAME}"


def git_commit(root: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or repo_root(),
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


@dataclass
class RunRecord:
    """What one MLflow run will hold: params, metrics (with optional steps), tags, artifacts."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)
    children: list[RunRecord] = field(default_factory=list)
    # When the work ran (ms since the epoch): runs are written after it, with these times.
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    end_ms: int | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update({k: _short(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        for k, v in metrics.items():
            if v is None:
                continue
            self.metrics[k] = float(v)

    def log_metric_step(self, key: str, value: float, step: int) -> None:
        self.series.setdefault(key, []).append((int(step), float(value)))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | os.PathLike[str], subdir: str | None = None) -> None:
        self.artifacts.append((Path(path), subdir))

    def child(self, name: str) -> RunRecord:
        """A nested run (one per variant/row) under this stage run."""
        rec = RunRecord(name=name)
        self.children.append(rec)
        return rec


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 500 else s[:497] + "..."


@contextlib.contextmanager
def stage_run(study: str, stage: str, params: Mapping[str, Any] | None = None) -> Iterator[RunRecord]:
    """Collect a stage's run; flush it to MLflow when the block exits without error."""
    rec = RunRecord(name=stage)
    if params:
        rec.log_params(params)
    rec.set_tags({
        "git_commit": git_commit(),
        "stage": stage,
        "study": study,
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
        "dvc_exp_baseline": os.environ.get("DVC_EXP_BASELINE_REV", ""),
    })
    yield rec
    rec.end_ms = int(time.time() * 1000)
    rec.metrics.setdefault("stage_seconds", (rec.end_ms - rec.start_ms) / 1000)
    if os.environ.get("SLIMAUDIO_NO_MLFLOW") == "1":
        return
    flush(study, rec)


def flush(study: str, rec: RunRecord, attempts: int = 6) -> bool:
    """Write a RunRecord tree to MLflow; retries on a locked SQLite store; never raises."""
    for attempt in range(attempts):
        try:
            with _store_lock():
                _write(study, rec)
            return True
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a stage
            # Concurrent queue workers can hit a locked SQLite file or race on creating the
            # schema or an experiment; both succeed on a retry.
            transient = any(w in str(exc).lower() for w in ("locked", "already exists", "unique constraint"))
            if (transient and attempt < attempts - 1) or attempt == 0:
                time.sleep(0.5 * (2**attempt) + random.random())
                continue
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"warning: MLflow tracking failed ({tracking_uri()}): {msg}; "
                  "the stage's outputs are complete", file=sys.stderr)
            return False
    return False


@contextlib.contextmanager
def _store_lock() -> Iterator[None]:
    """Serialise writers of one SQLite store across processes (two `dvc queue` workers).

    MLflow creates and migrates the schema on first use; two processes doing that at once
    corrupt the migration, so the whole (short) flush holds an exclusive lock beside the file.
    """
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(study: str, rec: RunRecord) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    exp = mlflow.get_experiment_by_name(study)
    if exp is not None:
        exp_id = exp.experiment_id
    else:
        # Keep artifacts beside the default SQLite store rather than in the stage's cwd.
        loc = None if os.environ.get("MLFLOW_TRACKING_URI") else (repo_root() / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(study, artifact_location=loc)
    client = mlflow.tracking.MlflowClient()
    parent_id = _create(client, exp_id, rec, {})
    for child in rec.children:
        for key in ("stage", "git_commit", "dvc_experiment"):
            child.tags.setdefault(key, rec.tags.get(key, ""))
        child.tags.setdefault("variant", child.name)
        child.start_ms, child.end_ms = rec.start_ms, rec.end_ms
        _create(client, exp_id, child, {"mlflow.parentRunId": parent_id})


def _create(client: Any, exp_id: str, rec: RunRecord, tags: dict[str, str]) -> str:
    """One finished run carrying the record's own start and end times."""
    run = client.create_run(exp_id, start_time=rec.start_ms, tags=tags, run_name=rec.name)
    run_id = run.info.run_id
    try:
        _log_one(client, run_id, rec)
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED", end_time=rec.end_ms or int(time.time() * 1000))
    return run_id


def _log_one(client: Any, run_id: str, rec: RunRecord) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = rec.end_ms or int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in rec.metrics.items()]
    for k, pts in rec.series.items():
        metrics += [Metric(k, v, now, s) for s, v in pts]
    params = [Param(k, v) for k, v in rec.params.items()]
    tags = [RunTag(k, v) for k, v in rec.tags.items()]
    # log_batch caps each call (1000 metrics, 100 params); chunk to stay inside.
    for i in range(0, max(len(metrics), 1), 900):
        client.log_batch(run_id, metrics=metrics[i:i + 900])
    for i in range(0, len(params), 90):
        client.log_batch(run_id, params=params[i:i + 90])
    client.log_batch(run_id, tags=tags)
    for path, sub in rec.artifacts:
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=sub)
        elif path.exists():
            client.log_artifact(run_id, str(path), artifact_path=sub)
