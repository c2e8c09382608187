"""The MLflow UI on a store written by slimaudio.tracking opens where variants are compared: the
runs table (not the GenAI Traces overview), variants listed flat and ranked by the study's key
metric, key metrics and params as columns. Driven in headless Chromium like the e2e tests."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_servers import chromium, mlflow_server

from slimaudio import tracking
from slimaudio.studies.ptq_layerwise.rules import STUDY

pytestmark = pytest.mark.slow

VARIANTS = ("fp32", "all", "conv_in", "block1", "paper_choice")


def _write_study(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ptq_layerwise-like stage run with one nested run per variant, via the library."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = {"profile": "tiny", "base.seed": 0, "ptq_layerwise.calibration_utts": 64}
    with tracking.stage_run("ptq_layerwise", "ptq_layerwise", params) as run:
        run.key_metrics = STUDY.key_metrics  # as the study's StudyReport.log sets them
        run.log_metrics({"eer": 5.0, "size_mib": 2.4})
        for i, name in enumerate(VARIANTS):  # the last variant has the lowest EER
            child = run.child(name)
            child.log_params({"kind": "static"})
            child.log_metrics({"eer": 7.0 - i / 4, "delta_eer": 2.0 - i / 4, "size_mib": 2.4 - i / 5,
                               "latency_ms": 1.8 - i / 10})


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _write_study(uri, monkeypatch)
    with mlflow_server(uri, tmp_path) as base:
        yield base


def test_experiment_opens_on_the_runs_table_with_key_metrics(server: str, tmp_path: Path) -> None:
    browser = chromium()
    (link,) = tracking.ui_links(server)
    url = link.split(": ", 1)[1]
    shot = tmp_path / "mlflow_runs.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1800,1000",
             "--virtual-time-budget=10000", f"--screenshot={shot}", "--dump-dom"]
    dom = subprocess.run([browser, *flags, url], capture_output=True, text=True, timeout=120).stdout
    headers = set(re.findall(r'role="columnheader"[^>]*col-id="([^"]+)"', dom))
    for metric in ("eer", "delta_eer", "size_mib", "latency_ms"):
        assert f"metrics.`{metric}`" in headers, sorted(headers)
    assert any(h.startswith("params.`") for h in headers), sorted(headers)
    # nested runs are not hidden under a collapsed parent: every variant has its own row, and
    # the rows are ranked by the study's key metric (EER, lowest first), the stage run among them
    rows = re.findall(r'href="#/experiments/\d+/runs/\w+"><span[^>]*>([^<]+)</span>', dom)
    assert rows == ["ptq_layerwise", *reversed(VARIANTS)], rows
    assert re.search(r'is-ordered-by"[^>]*col-id="metrics.`eer`"', dom), "not sorted by eer"
    assert "Detect Issues" not in dom and "Traces" not in re.findall(r"<h2[^>]*>([^<]*)</h2>", dom)
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_make_mlflow_ui_prints_its_links_once_the_server_answers(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """Issue 24, case 9: the links come after the server answers, never before."""
    import sys
    import urllib.request

    from local_servers import free_port

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _write_study(uri, monkeypatch)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "slimaudio.mlflow_ui", "--uri", uri,
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("MLflow UI answering"):
                # the moment the line is printed, the UI answers
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                break
        assert lines and lines[0].startswith("starting the MLflow UI"), lines
        rest = [proc.stdout.readline() for _ in range(2)]
        assert "runs" in rest[0] and f"127.0.0.1:{port}/#/experiments/" in rest[1], rest
    finally:
        proc.terminate()
        proc.wait(timeout=60)
