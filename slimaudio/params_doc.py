"""docs/params.md from the section classes (`make params-doc`; tests/test_spec.py keeps it
current). Apart from slimaudio.spec so that no stage imports the composer."""

from __future__ import annotations

from collections.abc import Sequence

from slimaudio.spec import SECTIONS, reference


def markdown(order: Sequence[str]) -> str:
    """docs/params.md: every param of every section (in `order`), its type, bounds and doc."""
    from slimaudio.config import load_schemas

    load_schemas()  # every section registers itself
    lines = ["# Params reference", "",
             "Generated from the section classes in `slimaudio/schemas/` by `make params-doc` "
             "(a test keeps it current); the values are in `conf/`.", ""]
    for name in [s for s in order if s in SECTIONS]:
        lines += [f"## `{name}`", "", "| key | type | meaning |", "|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} |" for k, t, d in reference(name, SECTIONS[name])]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from slimaudio.compose import compose

    print(markdown(list(compose([]))), end="")
