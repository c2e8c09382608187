"""The registry of studies (slimaudio/studies/registry.py) against what it describes: dvc.yaml's
stages and outputs, params.yaml's sections, the stage scripts' MLflow experiments, the docs."""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from slimaudio.studies import registry
from slimaudio.studies.base import Study

REPO = Path(__file__).resolve().parents[1]
STUDY_NAMES = [s.name for s in registry.STUDIES]


@cache
def _pipeline() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _options(stage: str) -> dict[str, str]:
    """--option value pairs of a stage's command line."""
    argv = shlex.split(_pipeline()[stage]["cmd"])
    return {argv[i][2:].replace("-", "_"): argv[i + 1] for i in range(len(argv) - 1)
            if argv[i].startswith("--")}


def _declared(stage: str, kind: str) -> set[str]:
    items = _pipeline()[stage].get(kind, [])
    return {next(iter(i)) if isinstance(i, dict) else i for i in items}


def test_every_stage_belongs_to_one_study_or_is_shared() -> None:
    owners: dict[str, list[str]] = {}
    for s in registry.STUDIES:
        for st in s.stages:
            owners.setdefault(st, []).append(s.name)
    for group, stages in registry.SHARED_STAGES.items():
        for st in stages:
            owners.setdefault(st, []).append(group)
    assert set(owners) == set(_pipeline()), \
        f"in the registry only: {sorted(set(owners) - set(_pipeline()))}; " \
        f"in dvc.yaml only: {sorted(set(_pipeline()) - set(owners))}"
    assert all(len(o) == 1 for o in owners.values()), {k: o for k, o in owners.items() if len(o) > 1}


@pytest.mark.parametrize("name", STUDY_NAMES)
def test_a_study_is_its_package_and_its_stages_run_in_order(name: str) -> None:
    study = registry.BY_NAME[name]
    assert (REPO / "slimaudio" / "studies" / name / "rules.py").is_file()
    order = list(_pipeline())
    assert [order.index(st) for st in study.stages] == sorted(order.index(st) for st in study.stages)
    for stage in study.stages:
        script = (REPO / "stages" / f"{stage}.py").read_text(encoding="utf-8")
        assert re.search(rf'stage_run\(\s*"{name}"', script), \
            f"stages/{stage}.py does not log to the MLflow experiment {name!r}"


@pytest.mark.parametrize("name", STUDY_NAMES)
def test_the_last_stage_writes_every_role_into_the_report_folder(name: str) -> None:
    study = registry.BY_NAME[name]
    opts = _options(study.report_stage)
    missing = [r for r in study.roles if r not in opts]
    assert not missing, f"{study.report_stage}: no --option for role(s) {missing}"
    folder = f"reports/{name}/"
    paths = {opts[r] for r in study.roles}
    assert all(p.startswith(folder) for p in paths), paths
    declared = set().union(*(_declared(study.report_stage, k) for k in ("outs", "metrics", "plots")))
    assert paths <= declared, f"undeclared: {sorted(paths - declared)}"
    strays = sorted(p for p in declared if p.startswith(folder) and p not in paths)
    assert not strays, f"{study.report_stage} writes {strays} under {folder} with no role"


def test_the_summary_reads_every_study() -> None:
    opts, deps = _options("report"), _declared("report", "deps")
    for name in STUDY_NAMES:
        assert opts.get(name) == f"reports/{name}", f"report: no --{name.replace('_', '-')}"
        assert f"reports/{name}" in deps and f"slimaudio/studies/{name}/rules.py" in deps, name


def test_every_params_section_has_one_owner() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    owned = [sec for s in registry.STUDIES for sec in s.sections] + list(registry.SHARED_SECTIONS)
    assert sorted(owned) == sorted(set(owned)), "a section owned twice"
    assert set(owned) == set(params), \
        f"unowned: {sorted(set(params) - set(owned))}; not in params: {sorted(set(owned) - set(params))}"


def test_docs_list_the_studies_as_the_registry_does() -> None:
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert registry.markdown_table() in page, \
        "docs/architecture.md: paste `python -m slimaudio.studies.registry` into 'The studies'"


def test_every_study_package_is_registered() -> None:
    packages = {p.parent.name for p in (REPO / "slimaudio" / "studies").glob("*/rules.py")}
    assert packages == set(STUDY_NAMES)
    assert all(isinstance(s, Study) for s in registry.STUDIES)
