"""The whole pipeline on the tiny profile, as a user drives it: repro, no-op repro, MLflow UI,
the HTML report in a browser, a one-param sweep, two queued experiments, the paper profile plan.

One tiny `dvc repro` runs once for the module; the tests then inspect and extend it in order.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from local_servers import chromium, mlflow_server
from pipeline_copy import ProjectCopy, make_copy

from slimaudio.studies import registry

# `make test-e2e` (run by .ci/run after `make test`): a whole tiny pipeline takes minutes.
pytestmark = [pytest.mark.slow, pytest.mark.e2e_full]

EXPERIMENTS = registry.experiments()
SOUND_STAGES = {"prepare_sounds", "train_resnet", "tflite_quant"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ProjectCopy:
    proj = make_copy(tmp_path_factory.mktemp("tiny"), profile="tiny")
    secs, proc = proj.timed_dvc("repro")
    print(f"\ntiny dvc repro: {secs:.1f} s")
    proj.commit("tiny run")  # queued experiments start from a commit with the results
    return proj


def _ran(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The stages that ran, but check_params (always_changed: it runs first on every repro)."""
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr)) - {"check_params"}


def test_every_report_is_produced(tiny: ProjectCopy) -> None:
    reports = tiny.root / "reports"
    dvc_yaml = yaml.safe_load((tiny.root / "dvc.yaml").read_text())["stages"]
    for study in registry.STUDIES:  # every study folder keeps the contract of docs/architecture.md
        argv = dvc_yaml[study.report_stage]["cmd"].split()
        for role in study.roles:
            path = argv[argv.index(f"--{role.replace('_', '-')}") + 1]
            assert (tiny.root / path).is_file(), f"missing {path} ({study.name}'s {role})"
    for f in ("summary.md", "index.html", "cross_study.png", "data/metrics.json"):
        assert (reports / f).is_file(), f"missing reports/{f}"
    summary = (reports / "summary.md").read_text()
    for study in registry.STUDIES:
        assert "does not hold" in summary or "holds" in summary
        assert f"({study.name}/" in summary or study.name in summary


def test_second_repro_does_nothing(tiny: ProjectCopy) -> None:
    secs, proc = tiny.timed_dvc("repro")
    print(f"\nno-op dvc repro: {secs:.1f} s")
    assert not _ran(proc), f"stages re-ran: {_ran(proc)}"


def test_metrics_and_plots_are_declared(tiny: ProjectCopy) -> None:
    shown = tiny.dvc("metrics", "show", "--json").stdout
    data = json.loads(shown)
    files = set(next(iter(data.values()))["data"].keys())
    for study in ("ecapa", *registry.BY_NAME):
        assert any(f.startswith(f"reports/{study}/") for f in files), f"no dvc metrics for {study}"
    plots = tiny.dvc("plots", "show", "--json").stdout
    assert "reports/" in plots


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_mlflow_ui_serves_every_study(tiny: ProjectCopy) -> None:
    with mlflow_server(f"sqlite:///{tiny.root / 'mlflow.db'}", tiny.root) as base:
        exps = _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 100})
        by_name = {e["name"]: e["experiment_id"] for e in exps.get("experiments", [])}
        for name in EXPERIMENTS:
            assert name in by_name, f"no MLflow experiment {name!r} (have {sorted(by_name)})"
            runs = _post(f"{base}/api/2.0/mlflow/runs/search",
                         {"experiment_ids": [by_name[name]], "max_results": 500}).get("runs", [])
            assert runs, f"experiment {name} has no runs"
            assert any(r["data"].get("metrics") for r in runs), f"experiment {name} has no metrics"
            tags = {t["key"]: t["value"] for t in runs[0]["data"].get("tags", [])}
            assert {"git_commit", "stage", "dvc_experiment"} <= tags.keys()
        kinds = {e["name"]: {t["key"]: t["value"] for t in e.get("tags", [])}.get("mlflow.experimentKind")
                 for e in exps["experiments"] if e["name"] in EXPERIMENTS}
        assert set(kinds.values()) == {"custom_model_development"}, kinds


def test_index_html_renders_in_chromium(tiny: ProjectCopy, tmp_path: Path) -> None:
    browser = chromium()
    page = tmp_path / "index.html"
    probe = ("<script>window.addEventListener('load',()=>{document.body.setAttribute('data-probe',"
             "JSON.stringify({tables:document.querySelectorAll('table').length,"
             "images:[...document.images].map(i=>i.complete&&i.naturalWidth>0)}))});</script>")
    page.write_text((tiny.root / "reports" / "index.html").read_text().replace("</body>", probe + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    m = re.search(r'data-probe="([^"]+)"', dom)
    assert m, "the page's load handler never ran"
    probe_data = json.loads(m.group(1).replace("&quot;", '"'))
    assert probe_data["tables"] >= 4
    assert len(probe_data["images"]) >= 5 and all(probe_data["images"]), probe_data
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_one_ecapa_param_reruns_only_speaker_stages(tiny: ProjectCopy) -> None:
    proc = tiny.dvc("exp", "run", "-S", "ecapa.train.lr=0.002")
    ran = _ran(proc)
    assert "ecapa_model" in ran and "report" in ran
    assert not ran & SOUND_STAGES, f"sound stages re-ran: {ran & SOUND_STAGES}"
    assert "prepare_speakers" not in ran
    # the tiny model's EER sits at chance, but its training loss moves with the learning rate
    diff = json.loads(tiny.dvc("metrics", "diff", "--json").stdout or "{}")
    assert any(f.startswith("reports/ecapa/") for f in diff), diff


def test_one_student_param_reruns_only_that_student(tiny: ProjectCopy) -> None:
    # each student stage declares only its own distill_grid.students.<id> entry
    students = yaml.safe_load((tiny.root / "params.yaml").read_text())["distill_grid"]["students"]
    assert len(students) >= 8
    sid, hp = next(iter(students.items()))
    width = 0.75 if hp["width"] != 0.75 else 0.5
    choice = tiny.root / "models" / "distill_select" / "choice.json"
    before = choice.read_text()
    # on top of the workspace's experiment (the previous test's ecapa.train.lr), as a user would
    ran = _ran(tiny.dvc("exp", "run", *tiny.workspace_overrides(),
                        "-S", f"distill_grid.students.{sid}.width={width}"))
    assert {r for r in ran if r.startswith("distill_student@")} == {f"distill_student@{sid}"}, ran
    # the final student is trained again only if the selection changed its choice
    downstream = {"distill_select", "distill_report", "report"}
    changed = choice.read_text() != before
    assert ran == {f"distill_student@{sid}", *downstream, *(["distill_final"] if changed else [])}, ran


def _last_step(curve: Path) -> int:
    return int(curve.read_text().strip().splitlines()[-1].split(",")[0])


def test_user_values_win_over_the_profile_and_are_recorded(tiny: ProjectCopy) -> None:
    """`-S profile=... -S key=value`: the user's value is what runs and what DVC records."""
    tiny.dvc("exp", "run", "-S", "profile=tiny", "-S", "ecapa.train.steps=5", "ecapa_model")
    curve = tiny.root / "reports" / "ecapa" / "train_curve.csv"
    assert curve.read_text().splitlines()[0].startswith("step,")
    assert _last_step(curve) == 5                       # 5 steps ran (tiny logs every step)
    lock = yaml.safe_load((tiny.root / "dvc.lock").read_text())
    recorded = lock["stages"]["ecapa_model"]["params"]["params.yaml"]
    assert recorded["ecapa.train"]["steps"] == 5 and recorded["profile"] == "tiny"
    shown = json.loads(tiny.dvc("exp", "show", "--json").stdout)
    work = next(e for e in shown if e["rev"] == "workspace")
    effective = work["data"]["params"]["params.yaml"]["data"]      # what `dvc exp show` lists
    assert (effective["ecapa"]["model"]["channels"], effective["ecapa"]["train"]["steps"],
            effective["distill_student"]["steps"]) == (16, 5, 2)
    # a value of the wrong type stops the stage with one line, and nothing is recorded for it
    proc = tiny.dvc("exp", "run", "-S", "profile=tiny", "-S", "prepare_sounds.undersample.cap=abc",
                    "prepare_sounds", check=False)
    assert proc.returncode != 0
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("error: params:")]
    assert errors == ["error: params: prepare_sounds.undersample.cap = 'abc' has the wrong type: "
                      "expected an integer"], proc.stderr[-2000:]
    lock = yaml.safe_load((tiny.root / "dvc.lock").read_text())
    assert lock["stages"]["prepare_sounds"]["params"]["params.yaml"]["prepare_sounds"]["undersample"]["cap"] != "abc"


def test_two_queued_experiments_run_in_parallel_and_land_in_mlflow(tiny: ProjectCopy) -> None:
    import mlflow

    tiny.dvc("exp", "apply", "HEAD", check=False)
    tiny.run("git", "checkout", "--", ".", check=False)
    for title in ("queued A", "queued B"):
        tiny.dvc("exp", "run", "--queue", "-S", f"report.title={title}")
    # The workers inherit `dvc queue start`'s stdout: captured, the call would block until
    # they exit. Their output goes to a file instead, and the test polls the queue.
    t0 = time.time()
    tiny.detached_dvc(tiny.root / "queue_start.log", "queue", "start", "-j", "2")
    try:
        status = _wait_for_queue(tiny, seconds=1200)
    finally:
        tiny.dvc("queue", "stop", "--kill", check=False)  # never leave workers behind
    print(f"\ntwo queued tiny experiments: {time.time() - t0:.0f} s")
    assert status.count("Success") >= 2, status + _queue_logs(tiny)
    mlflow.set_tracking_uri(f"sqlite:///{tiny.root / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["summary"])
    titles = set(runs.get("params.report.title", []))
    assert {"queued A", "queued B"} <= titles, titles


def _wait_for_queue(tiny: ProjectCopy, seconds: float) -> str:
    deadline = time.time() + seconds
    while True:
        status = tiny.dvc("queue", "status").stdout
        if ("Queued" not in status and "Running" not in status) or time.time() > deadline:
            return status
        time.sleep(5)


def _queue_logs(tiny: ProjectCopy) -> str:
    """The tails of every queued experiment's log, for a failure message."""
    out = []
    for line in tiny.dvc("queue", "status", check=False).stdout.splitlines()[1:]:
        task = line.split()[0] if line.split() else ""
        if task:
            log = tiny.dvc("queue", "logs", task, check=False)
            out.append(f"--- {task}\n{(log.stdout + log.stderr)[-3000:]}")
    return "\n".join(out)


def test_paper_profile_validates_and_plans_every_stage(tiny: ProjectCopy) -> None:
    # On the tiny run's workspace: `dvc repro --dry` cannot plan past a stage whose upstream
    # outputs do not exist yet (treeverse/dvc#9021), so a fresh copy would stop at data_report.
    from slimaudio import config

    tiny.compose("profile=paper")
    try:
        merged = config.resolve(tiny.root / "params.yaml")
        assert merged["profile"] == "paper" and merged["ecapa"]["model"]["channels"] == 1024
        plan = tiny.dvc("repro", "--dry").stdout
    finally:
        tiny.run("git", "checkout", "--", "params.yaml")
    planned = set(re.findall(r"Running stage '([^']+)'", plan))
    for stage in ("prepare_speakers", "prepare_sounds", "ecapa_model", "pwl_softmax",
                  "ptq_layerwise", "train_resnet", "tflite_quant", "distill_select", "distill_final",
                  "distill_report", "report"):
        assert stage in planned, f"paper profile does not plan {stage}"


def test_a_second_workspace_experiment_is_refused_not_mixed(tiny: ProjectCopy) -> None:
    """Issue 24, case 2: two `dvc exp run` in one checkout, half a second apart. The second is
    refused with one line before it writes params.yaml; the first keeps its own values."""
    from pipeline_copy import VENV_BIN, _env

    tiny.dvc("exp", "apply", "HEAD", check=False)
    tiny.run("git", "checkout", "--", ".", check=False)
    dvc = str(VENV_BIN / "dvc")
    first = subprocess.Popen([dvc, "exp", "run", *tiny.workspace_overrides(), "-S",
                              "prepare_speakers.trials.nontargets=10", "prepare_speakers"],
                             cwd=tiny.root, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    second = subprocess.run([dvc, "exp", "run", *tiny.workspace_overrides(), "-S",
                             "prepare_sounds.undersample.cap=5", "prepare_sounds"],
                            cwd=tiny.root, env=_env(), capture_output=True, text=True,
                            timeout=600, check=False)
    out, _ = first.communicate(timeout=600)
    try:
        assert first.returncode == 0, out[-3000:]
        assert second.returncode != 0, second.stdout + second.stderr
        assert "another DVC run works in this checkout" in second.stderr, second.stderr
        assert "dvc exp run --queue" in second.stderr
        ran = yaml.safe_load((tiny.root / "params.yaml").read_text())
        assert ran["prepare_speakers"]["trials"]["nontargets"] == 10
        assert ran["prepare_sounds"]["undersample"]["cap"] != 5
    finally:
        tiny.run("git", "checkout", "--", ".", check=False)
