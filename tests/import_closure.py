"""The import closure of a stage script inside slimaudio/, read statically from the source.

Every `import slimaudio...` / `from slimaudio... import` counts, at module level or inside a
function (lazy imports run too), and relative imports inside the library. Importing a module
runs its packages' __init__ files: those count when they hold code, not only a docstring.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = "slimaudio"
# Imports made by name at run time, which no import statement shows: config.py imports every
# module of slimaudio/schemas to register the params schemas.
DYNAMIC: dict[str, tuple[str, ...]] = {"slimaudio/config.py": ("slimaudio/schemas",)}


def module_file(name: str) -> Path | None:
    """slimaudio.a.b -> slimaudio/a/b.py or slimaudio/a/b/__init__.py (None if neither)."""
    base = REPO.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imported_names(path: Path) -> set[str]:
    """Fully qualified slimaudio modules (or module.attribute) that `path` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path) if path.is_relative_to(REPO / PKG) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                mod = node.module or ""
            names.add(mod)
            names |= {f"{mod}.{a.name}" for a in node.names}   # `from pkg import submodule`
    return {n for n in names if n == PKG or n.startswith(PKG + ".")}


def _with_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def has_code(path: Path) -> bool:
    """False for a file holding only a docstring (and `__version__`-style constants)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not isinstance(n, ast.Expr | ast.Assign) for n in body)


@cache
def closure(script: Path) -> frozenset[str]:
    """Repo-relative paths of the library files a script imports, directly or not."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in _imported_names(todo.pop()):
            for mod in _with_packages(name):
                path = module_file(mod)
                if path is None or path in seen:
                    continue
                seen.add(path)
                todo.append(path)
        for rel in [d for p in list(seen) for d in DYNAMIC.get(str(p.relative_to(REPO)), ())]:
            for path in sorted((REPO / rel).glob("*.py")):
                if path not in seen:
                    seen.add(path)
                    todo.append(path)
    return frozenset(str(p.relative_to(REPO)) for p in seen
                     if p.name != "__init__.py" or has_code(p))


def covered(path: str, deps: set[str]) -> bool:
    """A file dep covers itself, a folder dep everything below it."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)
