"""Every stage declares what it reads: params, library modules, input paths and outputs.

Uses DVC's own resolution of dvc.yaml, so foreach/matrix stages are checked one by one. The
library deps are checked against each script's import closure inside slimaudio/
(tests/import_closure.py), so a module a stage runs can never change without DVC noticing.
"""

from __future__ import annotations

import importlib.util
import shlex
from functools import cache
from pathlib import Path

import pytest
from import_closure import closure, covered

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
            keys |= set(dep.params or [])
    return keys


def _missing_library_deps(script: Path, deps: set[str]) -> list[str]:
    return sorted(p for p in closure(script) if not covered(p, deps))


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
    missing_modules = _missing_library_deps(script, deps)
    assert not missing_modules, \
        f"{stage.addressing}: imports {missing_modules} but dvc.yaml does not list them as deps"
    # and no more: a library dep the stage does not import reruns it for nothing
    imported = closure(script)
    extra = sorted(d for d in deps if d.startswith("slimaudio")
                   and not any(covered(m, {d}) for m in imported))
    assert not extra, f"{stage.addressing}: lists {extra} as deps but never imports them"

    # params: `profile` plus every section or dotted key the script may read (the script can
    # read nothing else: slimaudio.config.Declared refuses undeclared keys)
    sections = set(_script_module(script).SECTIONS)
    declared = _declared_params(stage)
    assert "profile" in declared, f"{stage.addressing}: does not declare param 'profile'"
    missing = {s for s in sections
               if not any(s == d or s.startswith(d + ".") for d in declared)}
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


# Folders a stage may declare whole although it imports only some of their modules: the
# params schemas (config loads every one), a study's own package, the summary (the report stage).
WHOLE_FOLDERS = ("slimaudio/schemas", "slimaudio/studies/", "slimaudio/summary")


@pytest.mark.parametrize("stage", _stages(), ids=lambda s: s.addressing)
def test_a_library_folder_is_a_dep_only_where_its_modules_are_read(stage) -> None:
    """A shared folder as a dep reruns the stage when any module in it changes: editing the
    PTQ rows' module (speaker/ptq_bench.py) must not retrain ECAPA-TDNN. Such a folder is
    listed module by module, unless the stage reads every module of it."""
    argv = shlex.split(stage.cmd if isinstance(stage.cmd, str) else stage.cmd[0])
    imported = {str(p) for p in closure(REPO / argv[1])}
    for dep in sorted(_paths(stage, "deps")):
        folder = REPO / dep
        if not dep.startswith("slimaudio/") or not folder.is_dir() or \
                dep.startswith(WHOLE_FOLDERS):
            continue
        unread = sorted(str(p.relative_to(REPO)) for p in folder.rglob("*.py")
                        if p.name != "__init__.py" and str(p.relative_to(REPO)) not in imported)
        assert not unread, (f"{stage.addressing}: declares {dep} whole but never reads "
                            f"{unread}: list the modules it reads instead")


def test_no_hard_coded_output_paths_in_stage_scripts() -> None:
    for script in sorted((REPO / "stages").glob("*.py")):
        text = script.read_text()
        for root in ("data/", "models/", "reports/"):
            assert f'"{root}' not in text and f"'{root}" not in text, \
                f"{script.name} hard-codes a path under {root}; pass it from dvc.yaml"


def test_import_closure_check_catches_a_removed_dependency() -> None:
    """The check above is not vacuous: drop any one library dep of a stage and it fails."""
    stage = next(s for s in _stages() if s.addressing == "prepare_sounds")
    script = REPO / shlex.split(stage.cmd)[1]
    deps = _paths(stage, "deps")
    assert _missing_library_deps(script, deps) == []
    for dep in sorted(d for d in deps if d.startswith("slimaudio/")):
        assert _missing_library_deps(script, deps - {dep}), f"removing {dep} went unnoticed"


def test_import_closure_follows_lazy_relative_and_dynamic_imports(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("from slimaudio import config\n\n"
                      "def main():\n    from slimaudio.prepare import sounds\n")
    found = closure(script)
    assert "slimaudio/prepare/sounds.py" in found          # a lazy `from pkg import module`
    assert "slimaudio/prepare/common.py" in found          # its imports, transitively
    assert "slimaudio/synth/speech.py" in found            # a lazy import inside a function
    assert "slimaudio/schemas/distill.py" in found         # config's dynamic schema imports
    assert "slimaudio/__init__.py" not in found            # a docstring-only package file


def test_every_dynamic_import_is_known_to_the_closure() -> None:
    """A module that imports by name at run time must be listed in import_closure.DYNAMIC."""
    from import_closure import DYNAMIC

    for path in sorted((REPO / "slimaudio").rglob("*.py")):
        if "import_module(" in path.read_text(encoding="utf-8"):
            assert str(path.relative_to(REPO)) in DYNAMIC, f"{path}: dynamic import not in DYNAMIC"
