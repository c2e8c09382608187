"""The library's shape (docs/architecture.md): short functions, no private calls across modules,
every study package with the same parts, one reader per data contract."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from slimaudio.studies import registry

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "slimaudio"
MAX_LINES = 60
# A function may run longer with a reason on the line above its `def` (or its decorators):
# `# long: <why>`.
REASON = re.compile(r"#\s*long:\s*\S")
STUDY_PARTS = ("__init__.py", "rules.py", "report.py")
STUDIES = tuple(s.name for s in registry.STUDIES)


def _functions(path: Path) -> list[tuple[str, int, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.name, (n.decorator_list[0].lineno if n.decorator_list else n.lineno),
             n.end_lineno - n.lineno + 1)
            for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _library_files() -> list[Path]:
    return sorted(LIB.rglob("*.py"))


def test_no_function_runs_long_without_a_reason() -> None:
    long = []
    for path in _library_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for name, first, n in _functions(path):
            if n > MAX_LINES and not REASON.search(lines[first - 2] if first >= 2 else ""):
                long.append(f"{path.relative_to(REPO)}:{first} {name} ({n} lines)")
    assert not long, "functions over 60 lines without a '# long: <why>' line above:\n" + "\n".join(long)


def _private_uses(path: Path) -> list[str]:
    """`from slimaudio.x import _y` and `mod._y` where `mod` is an imported slimaudio module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slimaudio"):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"from {node.module} import {a.name}")
                aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name.startswith("slimaudio")}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_calls_across_modules() -> None:
    files = [*_library_files(), *sorted((REPO / "stages").glob("*.py"))]
    bad = [f"{p.relative_to(REPO)}: {u}" for p in files for u in _private_uses(p)]
    assert not bad, "private names used from another module:\n" + "\n".join(bad)


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_package_has_the_same_parts(study: str) -> None:
    folder = LIB / "studies" / study
    parts = STUDY_PARTS  # its params' one definition is slimaudio/schemas/ (tests/test_spec.py)
    missing = [p for p in parts if not (folder / p).is_file()]
    assert not missing, f"slimaudio/studies/{study}/ lacks {missing}"
    assert not (LIB / "studies" / f"{study}.py").exists(), "the old single-module study is back"
    init = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
    assert ast.get_docstring(init) and len(init.body) == 1, \
        f"slimaudio/studies/{study}/__init__.py must hold only its docstring (a stage importing " \
        "one step would depend on the whole study)"


def test_one_reader_per_data_contract() -> None:
    """Only slimaudio/datasets/ opens a prepared corpus's manifest and arrays."""
    readers = {"data/speakers": [], "data/sounds": []}
    pattern = re.compile(r"""["'](manifest\.csv|feats\.npy|frames\.npy|audio\.npy)["']""")
    for path in _library_files():
        rel = path.relative_to(LIB).as_posix()
        if rel.startswith(("datasets/", "prepare/", "corpora/")):
            continue  # the readers themselves, and the stages that write these folders
        text = path.read_text(encoding="utf-8")
        if pattern.search(text) and re.search(r"read_csv|np\.load", text):
            readers["data/speakers" if "feats" in text else "data/sounds"].append(rel)
    assert readers == {"data/speakers": [], "data/sounds": []}, readers


def _import_graph() -> dict[str, set[str]]:
    """slimaudio module -> the slimaudio modules it imports (at module level or lazily)."""
    from import_closure import _imported_names, _module_name, module_file

    graph: dict[str, set[str]] = {}
    for path in _library_files():
        targets = {module_file(n) for n in _imported_names(path)}
        graph[_module_name(path)] = {_module_name(t) for t in targets if t and t != path}
    return graph


def test_no_import_cycle_in_the_library() -> None:
    """A cycle (outputs.py and report.py importing each other) hides which module owns what."""
    graph = _import_graph()
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_a_study_imports_no_other_study_but_its_rules() -> None:
    """What two studies share lives outside both (speaker/, compress/); a study may read
    another's verdict rules (pwl_int8 and runtimes judge "keeps its EER" by pwl_softmax's
    tolerance), never its steps."""
    crossing = []
    for mod, targets in _import_graph().items():
        parts = mod.split(".")
        if len(parts) < 4 or parts[1] != "studies" or parts[2] not in STUDIES:
            continue
        for t in targets:
            tp = t.split(".")
            if (len(tp) >= 3 and tp[1] == "studies" and tp[2] in STUDIES and tp[2] != parts[2]
                    and tp[3:] != ["rules"]):
                crossing.append(f"{mod} -> {t}")
    assert not crossing, "; ".join(crossing)


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_ends_through_its_report_build(study: str) -> None:
    """One way to end a study: report.build(...) -> StudyReport, then publish(args, run)."""
    entry = registry.BY_NAME[study]
    tree = ast.parse((LIB / "studies" / study / "report.py").read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "build" for n in tree.body), \
        f"slimaudio/studies/{study}/report.py has no build()"
    runner = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              and n.module == f"slimaudio.studies.{study}.run"]
    assert not runner, f"{study}/report.py imports the runner (its result type goes in result.py)"
    script = (REPO / "stages" / f"{entry.report_stage}.py").read_text(encoding="utf-8")
    assert re.search(r"report\.build\(.*\)\.publish\(args, \w+\)", script), \
        f"stages/{entry.report_stage}.py does not end with report.build(...).publish(args, run)"
    built = [p.relative_to(REPO).as_posix() for p in [*LIB.rglob("*.py"), *(REPO / "stages").glob("*.py")]
             if "StudyReport(" in p.read_text(encoding="utf-8")
             and p.name != "base.py" and p.parent.name != "tests"]
    assert all(p.endswith("/report.py") for p in built), f"a StudyReport built outside report.py: {built}"
