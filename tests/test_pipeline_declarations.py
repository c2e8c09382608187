"""Every stage declares what it reads: params sections, input paths and outputs.

Uses DVC's own resolution of dvc.yaml, so foreach/matrix stages are checked one by one.
"""

from __future__ import annotations

import importlib.util
import shlex
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@cache
def _stages() -> list:
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return list(repo.index.stages)


def _script_module(script: Path):
    spec = importlib.util.spec_from_file_location(f"stage_{script.stem}", script)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _declared_params(stage) -> set[str]:
    from dvc.dependency.param import ParamsDependency

    keys: set[str] = set()
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            keys |= {k.split(".")[0] for k in (dep.params or [])}
    return keys


def _paths(stage, kind: str) -> set[str]:
    from dvc.dependency.param import ParamsDependency

    items = stage.deps if kind == "deps" else stage.outs
    return {str(o.def_path).rstrip("/") for o in items if not isinstance(o, ParamsDependency)}


def test_pipeline_has_stages() -> None:
    assert len(_stages()) >= 1


@pytest.mark.parametrize("stage", _stages(), ids=lambda s: s.addressing)
def test_stage_declares_what_it_reads(stage) -> None:
    argv = shlex.split(stage.cmd if isinstance(stage.cmd, str) else stage.cmd[0])
    assert argv[0] == "python" and argv[1].startswith("stages/"), f"{stage.addressing}: {stage.cmd}"
    script = REPO / argv[1]
    deps, outs = _paths(stage, "deps"), _paths(stage, "outs")
    assert argv[1] in deps, f"{stage.addressing}: its script {argv[1]} is not a dep"
    assert "profiles/${profile}.yaml" in deps or any(d.startswith("profiles/") for d in deps), \
        f"{stage.addressing}: the profile overlay is not a dep"

    # params: `profile` plus every section the script may read
    sections = set(_script_module(script).SECTIONS)
    declared = _declared_params(stage)
    assert "profile" in declared, f"{stage.addressing}: does not declare param 'profile'"
    missing = sections - declared
    assert not missing, f"{stage.addressing}: reads {sorted(missing)} but dvc.yaml does not declare them"

    # every path on the command line is a dep or an out (or lies inside one)
    known = deps | outs
    for tok in argv[2:]:
        if tok.startswith("-") or "/" not in tok:
            continue
        tok = tok.rstrip("/")
        assert any(tok == k or tok.startswith(k + "/") for k in known), \
            f"{stage.addressing}: path {tok} is on the command line but neither a dep nor an out"
    # and every out is written by a path given on the command line
    for out in outs:
        assert any(out == t.rstrip("/") or out.startswith(t.rstrip("/") + "/") for t in argv[2:]), \
            f"{stage.addressing}: out {out} is not passed to the script"


def test_no_hard_coded_output_paths_in_stage_scripts() -> None:
    for script in sorted((REPO / "stages").glob("*.py")):
        text = script.read_text()
        for root in ("data/", "models/", "reports/"):
            assert f'"{root}' not in text and f"'{root}" not in text, \
                f"{script.name} hard-codes a path under {root}; pass it from dvc.yaml"
