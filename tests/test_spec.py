"""Params declared once (slimaudio.spec): the section classes are the schema, the typed object
and the reference; nothing else in the library defines a param."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from slimaudio import config, params_doc, spec
from slimaudio.compose import compose
from slimaudio.errors import ParamError
from slimaudio.spec import Each, param

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class _Inner:
    n: int = param("a count", lo=1, hi=9)


@dataclass(frozen=True)
class _Toy:
    kind: Literal["a", "b"] = param("a choice")
    auto: bool | Literal["auto"] = param("a flag or auto")
    rate: float = param("a number", lo=0.0)
    path: str | None = param("a path or null")
    widths: tuple[int, ...] = param("a list", each=Each(lo=2), min_len=1)
    inner: _Inner = param()
    free: dict[str, str] | None = param("a mapping")


GOOD = {"kind": "a", "auto": "auto", "rate": 1, "path": None, "widths": [4, 2],
        "inner": {"n": 3}, "free": {"x": "y"}}


def test_the_class_is_the_schema() -> None:
    schema = spec.schema_of(_Toy)
    config.validate_mapping("toy", GOOD, schema)
    assert schema["auto"].choices == [True, False, "auto"]
    for key, bad, match in [("kind", "c", "is not one of"), ("rate", -1.0, "below the minimum"),
                            ("widths", [1], "below the minimum"), ("widths", [], "at least 1"),
                            ("inner", {"n": 10}, "above the maximum"),
                            ("path", 3, "wrong type"), ("auto", "yes", "wrong type")]:
        with pytest.raises(ParamError, match=match):
            config.validate_mapping("toy", {**GOOD, key: bad}, schema)


def test_build_makes_the_typed_object() -> None:
    toy = spec.build(_Toy, GOOD)
    assert toy == _Toy(kind="a", auto="auto", rate=1.0, path=None, widths=(4, 2),
                       inner=_Inner(3), free={"x": "y"})
    assert isinstance(toy.rate, float) and isinstance(toy.widths, tuple)


def test_every_section_is_declared_by_one_class_with_a_doc_per_param() -> None:
    params = compose([])
    config.validate(params)
    assert set(spec.SECTIONS) == set(config.SCHEMAS), "register sections with spec.section"
    for name, cls in spec.SECTIONS.items():
        spec.build(cls, params[name])  # the composed defaults build
        undocumented = [k for k, _, doc in spec.reference(name, cls) if not doc]
        assert not undocumented, f"params without a doc: {undocumented}"


def test_the_params_reference_is_current() -> None:
    page = (REPO / "docs" / "params.md").read_text(encoding="utf-8")
    assert page == params_doc.markdown(list(compose([]))), "run `make params-doc`"


def test_no_hand_written_params_constructors() -> None:
    """A second description of a section (a from_params reading its keys by hand) drifts."""
    hits = [f"{p.relative_to(REPO)}" for p in (REPO / "slimaudio").rglob("*.py")
            if re.search(r"def from_params\(", p.read_text(encoding="utf-8"))]
    assert not hits, f"build typed params with slimaudio.spec.build instead: {hits}"
