"""Nothing runs other values than the user asked for: params.yaml older than conf/, a composition
that fails half-way, a composition while another DVC run uses the checkout, dead writers'
temporaries, and progress bars in logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slimaudio import atomic, config
from slimaudio import compose as composer
from slimaudio.errors import ParamError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """conf/ and a params.yaml composed from it with the tiny profile."""
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    composer.compose_params(tmp_path / "params.yaml", ["profile=tiny"], tmp_path / "conf")
    return tmp_path


def test_params_older_than_conf_stop_the_stage(checkout: Path) -> None:
    params = checkout / "params.yaml"
    config.resolve(params)  # fresh: resolves
    tiny = checkout / "conf" / "profile" / "tiny.yaml"
    tiny.write_text(tiny.read_text().replace("steps: 4,", "steps: 5,", 1))
    with pytest.raises(ParamError) as info:
        config.resolve(params)
    msg = str(info.value)
    assert "older than conf/" in msg and 'make params SET="profile=tiny"' in msg and "\n" not in msg
    composer.compose_params(params, ["profile=tiny"], checkout / "conf")
    assert config.resolve(params)["ecapa"]["train"]["steps"] == 5


def test_the_stage_check_runs_on_the_command_line(checkout: Path) -> None:
    """What `dvc repro -f -s <stage>` runs: the stage script stops with one line."""
    (checkout / "conf" / "config.yaml").open("a").write("\n# an edit\n")
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "check_params.py"), "--out",
                           str(checkout / "ok.txt")], cwd=checkout, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2 and not (checkout / "ok.txt").exists()
    assert proc.stderr.strip().startswith("error: params.yaml: older than conf/"), proc.stderr


@pytest.mark.parametrize("overrides, message", [
    (["profile=tiny", "prepare_sounds.undersample.cap=abc"], "cap = 'abc' has the wrong type"),
    (["~ecapa.train.steps"], "missing key 'ecapa.train.steps'"),
])
def test_a_failed_composition_leaves_params_as_they_were(checkout: Path, overrides, message) -> None:
    params = checkout / "params.yaml"
    before = params.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "slimaudio.compose", *overrides], cwd=checkout,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert params.read_bytes() == before
    assert not list(checkout.glob(".*.tmp"))


def _fake_dvc(root: Path, *args: str) -> subprocess.Popen:
    """A process whose command line is `dvc <args>`, working in `root`."""
    exe = root / "bin" / "dvc"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text("#!/bin/sh\nsleep 30\n")
    exe.chmod(0o755)
    proc = subprocess.Popen([str(exe), *args], cwd=root)
    time.sleep(0.2)
    return proc


@pytest.mark.parametrize("args, refused", [
    (("repro",), True), (("exp", "run", "-S", "a=1"), True),
    (("exp", "run", "--queue", "-S", "a=1"), False), (("exp", "show"), False),
])
def test_no_composition_while_another_run_uses_the_checkout(checkout: Path, args, refused) -> None:
    """The later of two gives way: a composition started after a `dvc repro` or a workspace
    `dvc exp run` in the same checkout is refused, and params.yaml stays as it was."""
    params = checkout / "params.yaml"
    before = params.read_bytes()
    other = _fake_dvc(checkout, *args)
    try:
        proc = subprocess.run([sys.executable, "-m", "slimaudio.compose", "profile=tiny",
                               "ecapa.train.steps=7"], cwd=checkout, capture_output=True,
                              text=True, check=False)
    finally:
        other.kill()
        other.wait()
    if refused:
        assert proc.returncode == 2 and params.read_bytes() == before
        assert f"another DVC run works in this checkout (PID {other.pid}: " in proc.stderr
        assert "dvc exp run --queue" in proc.stderr and proc.stderr.count("\n") == 1
    else:
        assert proc.returncode == 0, proc.stderr


def test_dead_writers_temporaries_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = atomic._host()
    (tmp_path / "data").mkdir()
    (tmp_path / "models" / "distill").mkdir(parents=True)
    stale = [tmp_path / "data" / f".speakers.{host}-{dead.pid}.abc123.tmp",
             tmp_path / "models" / "distill" / f".s000.{host}-{dead.pid}.x_y.tmp"]
    stale[0].mkdir()
    (stale[0] / "big.npy").write_bytes(b"0" * 1000)
    stale[1].write_text("half")
    alive = tmp_path / "data" / f".sounds.{host}-{os.getpid()}.abc.tmp"
    other_host = tmp_path / "data" / f".sounds.otherhost-{dead.pid}.abc.tmp"
    alive.write_text("mine")
    other_host.write_text("theirs")
    removed = atomic.sweep_dead_temps([tmp_path / d for d in ("data", "models", "reports")])
    assert sorted(removed) == sorted(stale)
    assert alive.exists() and other_host.exists() and not any(p.exists() for p in stale)


def test_progress_bars_are_sparse_when_not_on_a_terminal() -> None:
    """torch imports tqdm first, as in every stage, so an environment variable set later would
    be ignored: the interval goes to each bar."""
    code = ("import torch, time\nfrom slimaudio.progress import progress_bar\n"
            "for _ in progress_bar(range(300), desc='work'):\n    time.sleep(0.005)\n")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_MININTERVAL"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env, cwd=REPO)
    redraws = proc.stderr.count("\r") + proc.stderr.count("\n")
    assert redraws <= 4, proc.stderr  # 1.5 s of work: the first and last states, not 300


def test_every_bar_comes_from_progress_bar() -> None:
    """A bare tqdm(...) in the library would redraw ten times a second into a log."""
    import re

    bare = [str(p) for p in sorted((REPO / "slimaudio").rglob("*.py"))
            if p.name != "progress.py" and re.search(r"\btqdm(\.auto)? import tqdm", p.read_text())]
    assert not bare, bare


@pytest.mark.parametrize("override, meant", [
    ("ecapa.train.stpes=3", "unknown key 'ecapa.train.stpes' (did you mean 'ecapa.train.steps'?)"),
    ("ecapa.tran.steps=3", "unknown key 'ecapa.tran' in the override of 'ecapa.tran.steps' "
                           "(did you mean 'ecapa.train'?)"),
])
def test_a_misspelt_override_names_the_key_meant(override: str, meant: str) -> None:
    """Not Hydra's "To append to your config use +ecapa.train.stpes=3"."""
    with pytest.raises(ParamError) as info:
        composer.compose(["profile=tiny", override])
    assert meant in str(info.value) and "+ecapa" not in str(info.value)


def test_no_bar_redraws_past_the_interval() -> None:
    """set_postfix() redraws at once unless refresh=False, whatever the bar's mininterval says: in a
    log that was 76% of a default run's output (ecapa training, the distillation students)."""
    import re

    calls = [(p, m.group(0)) for p in sorted((REPO / "slimaudio").rglob("*.py"))
             for m in re.finditer(r"set_postfix\((?:[^()]|\([^()]*\))*\)", p.read_text())]
    assert calls, "no progress bar sets a postfix any more: drop this test"
    assert all("refresh=False" in call for _, call in calls), calls
