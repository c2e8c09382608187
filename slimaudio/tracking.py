"""MLflow tracking for stages: one run per stage execution, nested runs per variant.

Everything is buffered in memory and written in one go after the stage has written its DVC
outputs, so that (a) a tracking failure can never lose outputs, and (b) SQLite write
transactions stay short, which matters when `dvc queue` runs two workers at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimaudio import runtime

log = logging.getLogger(__name__)
DB_NAME = "mlflow.db"
# Seconds a flush waits for another process's hold on <store>.lock before skipping tracking.
LOCK_TIMEOUT_ENV = "SLIMAUDIO_MLFLOW_LOCK_TIMEOUT"
LOCK_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 3.0  # TCP connect to an http(s) tracking server before any MLflow call
# MLflow's defaults (7 retries with backoff, 120 s a request) hold a stage ~4 min per call
# when the server is down; a stage's tracking gives up sooner. A value the user set wins.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# The MLflow UI's "Machine learning" kind (as opposed to genai_development: the Traces page).
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
# A shared runs-table view (columns, sort) the UI applies for ?viewStateShareKey=<VIEW_KEY>.
VIEW_KEY = "slimaudio"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
NOT_COLUMNS = ("distill_grid.students.",)
VIEW_CHARS = 15_000   # for the view tag's columns: MLflow 3.17 caps an experiment tag's value at 20,000
HIGHER_IS_BETTER = {"f1", "accuracy", "precision", "recall", "mean_accuracy", "speedup",
                    "accuracy_retention", "train_accuracy"}


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
    # The experiment's key metrics, first in its runs table, the first sorting it (which lists
    # nested runs flat, so variants of every stage run rank side by side). A study's last stage
    # sets its Study.key_metrics; a stage that sets none keeps the experiment's view as it is.
    key_metrics: tuple[str, ...] = ()
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


class TrackingSkipped(Exception):
    """Tracking is given up without retrying; the message is the whole warning."""


def flush(study: str, rec: RunRecord, attempts: int = 6) -> bool:
    """Write a RunRecord tree to MLflow; retries on a locked SQLite store; never raises."""
    uri = tracking_uri()
    for attempt in range(attempts):
        try:
            _probe(uri)
            with _store_lock(uri, rec.tags.get("stage", rec.name)), _bounded_http():
                _write(study, rec)
            return True
        except TrackingSkipped as exc:
            _warn(f"warning: MLflow tracking skipped ({uri}): {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a stage
            # Concurrent queue workers can hit a locked SQLite file or race on creating the
            # schema or an experiment; both succeed on a retry.
            transient = any(w in str(exc).lower() for w in ("locked", "already exists", "unique constraint"))
            first_sqlite = attempt == 0 and uri.startswith("sqlite:")
            if (transient and attempt < attempts - 1) or first_sqlite:
                time.sleep(0.5 * (2**attempt) + random.random())
                continue
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _warn(f"warning: MLflow tracking failed ({uri}): {msg}")
            return False
    return False


def _warn(line: str) -> None:
    print(f"{line}; the stage's outputs are complete", file=sys.stderr)


def _probe(uri: str) -> None:
    """Fail fast when an http(s) tracking server does not accept connections at all."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    host = parts.hostname or ""
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return  # MLflow goes through the proxy: a direct connection says nothing
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TrackingSkipped(f"server not reachable ({why})") from None


@contextlib.contextmanager
def _bounded_http() -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeouts for this flush (read per request by MLflow);
    urllib3's per-retry warnings are muted: a failed flush says so in one line."""
    added = [k for k in HTTP_LIMITS if k not in os.environ]
    os.environ.update({k: HTTP_LIMITS[k] for k in added})
    try:
        with runtime.quiet_logger("urllib3.connectionpool"):
            yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextlib.contextmanager
def _store_lock(uri: str, stage: str) -> Iterator[None]:
    """Serialise writers of one SQLite store across processes (two `dvc queue` workers).

    MLflow creates and migrates the schema on first use; two processes doing that at once
    corrupt the migration, so the whole (short) flush holds an exclusive lock beside the file.
    The holder writes its pid, stage and command into the lock file, so that a writer that
    gives up waiting can say who holds it.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as fh:
        _acquire(fh, lock)
        try:
            fh.truncate(0)
            fh.write(json.dumps({"pid": os.getpid(), "stage": stage, "cmd": _command()}) + "\n")
            fh.flush()
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _acquire(fh: Any, lock: Path) -> None:
    """flock with a deadline (LOCK_TIMEOUT_ENV seconds): a stuck holder must not hang a stage."""
    import fcntl

    timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or LOCK_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TrackingSkipped(f"{lock} held for over {timeout:g} s by {_holder(lock)} "
                                      f"(wait longer with {LOCK_TIMEOUT_ENV}=<seconds>)") from None
            time.sleep(0.2)


def _command() -> str:
    cmd = " ".join([Path(sys.executable).name, *sys.argv])
    return cmd if len(cmd) <= 200 else cmd[:197] + "..."


def _holder(lock: Path) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        info = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process (it did not say which)"
    return f"pid {info['pid']} (stage {info.get('stage', '?')}: {info.get('cmd', '?')})"


def _write(study: str, rec: RunRecord) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.tracking.MlflowClient()
    exp_id = _experiment(client, study, rec)
    parent_id = _create(client, exp_id, rec, {})
    for child in rec.children:
        for key in ("stage", "git_commit", "dvc_experiment"):
            child.tags.setdefault(key, rec.tags.get(key, ""))
        child.tags.setdefault("variant", child.name)
        # A variant ran with its stage's params: its row in the runs table shows them too.
        for key, value in rec.params.items():
            child.params.setdefault(key, value)
        child.start_ms, child.end_ms = rec.start_ms, rec.end_ms
        _create(client, exp_id, child, {"mlflow.parentRunId": parent_id})


def _experiment(client: Any, study: str, rec: RunRecord) -> str:
    """The study's experiment id (created if needed), tagged so the UI opens on runs."""
    exp = client.get_experiment_by_name(study)
    if exp is None:
        # Keep artifacts beside the default SQLite store rather than in the stage's cwd.
        loc = None if os.environ.get("MLFLOW_TRACKING_URI") else (repo_root() / "mlartifacts").as_uri()
        client.create_experiment(study, artifact_location=loc, tags={KIND_TAG: KIND})
        exp = client.get_experiment_by_name(study)
    tags = exp.tags or {}
    if tags.get(KIND_TAG) != KIND:
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    view = _view_state(rec, tags.get(VIEW_TAG))
    if view != tags.get(VIEW_TAG):
        client.set_experiment_tag(exp.experiment_id, VIEW_TAG, view)
    return str(exp.experiment_id)


def _view_state(rec: RunRecord, old: str | None) -> str:
    """The runs-table view (JSON): the key metrics (the run's, else the view's), then params as
    columns, sorted by the first key metric; columns there from other stages are kept."""
    try:
        before = dict(json.loads(old or "{}"))
    except (ValueError, TypeError):
        before = {}
    cols = [c for c in before.get("selectedColumns", []) if isinstance(c, str)]
    shown = [c[9:-1] for c in cols if c.startswith("metrics.`")]
    runs = [rec, *rec.children]
    seen = set(shown) | {k for r in runs for k in r.metrics}
    metrics = [m for m in rec.key_metrics if m in seen] if rec.key_metrics else shown
    params = {c[8:-1] for c in cols if c.startswith("params.`")} | {k for r in runs for k in r.params}
    # The grid's student list is hundreds of params at paper scale: not a column to compare on.
    params = sorted(p for p in params if not p.startswith(NOT_COLUMNS))
    state: dict[str, Any] = {"selectedColumns": _fit([f"metrics.`{m}`" for m in metrics]
                                                     + [f"params.`{p}`" for p in params])}
    if metrics:
        state |= {"orderByKey": f"metrics.`{metrics[0]}`", "orderByAsc": metrics[0] not in HIGHER_IS_BETTER}
    return json.dumps(state, separators=(",", ":"))


def _fit(columns: list[str], budget: int = VIEW_CHARS) -> list[str]:
    """The leading columns whose JSON fits in `budget` characters (MLflow caps a tag's value)."""
    out, used = [], 0
    for col in columns:
        used += len(col) + 4
        if used > budget:
            break
        out.append(col)
    return out


def ui_links(base_url: str, names: Iterable[str] | None = None) -> list[str]:
    """`study: URL` of each experiment's runs table in the view set by `_view_state`.

    MLflow 3.17's UI picks the page from its GenAI / Machine-learning switch (kept in the
    browser; GenAI, i.e. Traces, by default), not from the experiment's kind tag; the URL sets
    the switch and the shared view (columns, sort).
    """
    import mlflow

    uri = tracking_uri()
    _probe(uri)
    with _bounded_http():
        exps = mlflow.tracking.MlflowClient(uri).search_experiments()
    wanted = set(names) if names is not None else None
    return [f"{e.name}: {base_url.rstrip('/')}/#/experiments/{e.experiment_id}/runs?"
            f"workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
            for e in sorted(exps, key=lambda e: e.name)
            if VIEW_TAG in e.tags and (wanted is None or e.name in wanted)]


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


def main(argv: list[str] | None = None) -> None:
    """Print each study's runs-table link (`make mlflow-ui` shows them before the server)."""
    base = (argv if argv is not None else sys.argv[1:]) or ["http://127.0.0.1:5000"]
    try:
        links = ui_links(base[0])
    except Exception as exc:  # noqa: BLE001 - whatever it is, the UI still starts
        print(f"(no study links: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return
    if not links:
        print("(no study runs in the MLflow store yet)")
        return
    print("Each study's runs (variants side by side, key metrics and params as columns):")
    print("\n".join(f"  {line}" for line in links))


if __name__ == "__main__":
    main()
