"""Params declared once: a frozen dataclass per params section, the constructor as the schema.

Each field carries its type (the annotation), and its bounds, choices and one-line doc
(`param(...)`); its value lives in conf/ only. From the class come the schema that validates
params.yaml (`schema_of`, through `section`), the typed object a stage hands every step
(`build`) and the params reference (`reference`, in docs/params.md).

    @dataclass(frozen=True)
    class Latency:
        frames: int = param("input length (300 frames = 3 s)", lo=20)
        method: Literal["MinMax", "Entropy"] = param("calibration method")
        widths: tuple[int, ...] = param("widths timed", each=Each(lo=8), min_len=1)

Types: bool, int, float (ints accepted), str, Literal[...] (the choices), `X | None` (null
allowed), tuple[X, ...] (a YAML list; items may be dataclasses; tuple[X, X]: exactly two),
dict[...] (a free mapping),
and nested dataclasses (a nested mapping).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, get_args, get_origin

from slimaudio.config import Field, register

_META = "slimaudio.param"


@dataclass(frozen=True)
class Each:
    """Bounds and choices every item of a list param must satisfy."""

    lo: float | None = None
    hi: float | None = None
    choices: Sequence[Any] | None = None


@dataclass(frozen=True)
class _Meta:
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: Sequence[Any] | None = None
    min_len: int | None = None
    each: Each | None = None


def param(doc: str = "", *, lo: float | None = None, hi: float | None = None,
          choices: Sequence[Any] | None = None, min_len: int | None = None,
          each: Each | None = None) -> Any:
    """A params field: no default (the value is conf/'s), its bounds and its doc."""
    return field(metadata={_META: _Meta(doc, lo, hi, choices, min_len, each)})


def section(name: str, cls: type, orders: Sequence[tuple[str, str] | tuple[str, str, bool]] = ()
            ) -> None:
    """Declare `cls` the schema of params section `name` (see config.register for orders)."""
    register(name, schema_of(cls), orders)
    SECTIONS[name] = cls


SECTIONS: dict[str, type] = {}


@functools.cache  # a class's fields and hints do not change; build() reads them per section
def _params(cls: type) -> list[tuple[str, Any, _Meta]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], f.metadata.get(_META, _Meta())) for f in fields(cls)
            if f.init and _META in f.metadata]


def schema_of(cls: type) -> dict[str, Any]:
    """The schema (a tree of config.Field) of a params dataclass."""
    return {name: _field(tp, meta) for name, tp, meta in _params(cls)}


def _split_none(tp: Any) -> tuple[list[Any], bool]:
    """The arms of a union type without None, and whether None was one."""
    arms = list(get_args(tp)) if get_origin(tp) in (typing.Union, types.UnionType) else [tp]
    return [a for a in arms if a is not type(None)], type(None) in arms


def _field(tp: Any, meta: _Meta) -> Field | dict[str, Any]:
    arms, nullable = _split_none(tp)
    literals = [v for a in arms if get_origin(a) is Literal for v in get_args(a)]
    plain = [a for a in arms if get_origin(a) is not Literal]
    if len(plain) == 1 and is_dataclass(plain[0]) and not literals:
        return schema_of(plain[0])
    base = plain[0] if plain else type(literals[0])
    choices = meta.choices
    if literals:
        choices = ([True, False] if base is bool and plain else []) + literals
    origin = get_origin(base) or base
    if origin in (tuple, list):
        args = get_args(base)
        item_tp, fixed = args[0], (len(args) if Ellipsis not in args else None)  # tuple[X, X]
        item = (schema_of(item_tp) if is_dataclass(item_tp)
                else _field(item_tp, _Meta(**vars(meta.each)) if meta.each else _Meta()))
        return Field(list, item=item, nullable=nullable, min_len=fixed or meta.min_len,
                     max_len=fixed, doc=meta.doc)
    if origin in (dict, Mapping):
        return Field(dict, nullable=nullable, doc=meta.doc)
    return Field(origin, lo=meta.lo, hi=meta.hi, choices=choices, nullable=nullable, doc=meta.doc)


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """The validated mapping `data` as a `cls` (lists become tuples, ints floats where the field
    is a float, nested mappings their dataclasses)."""
    return cls(**{name: _convert(tp, data[name]) for name, tp, _ in _params(cls)})


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    arms, _ = _split_none(tp)
    plain = [a for a in arms if get_origin(a) is not Literal]
    if len(plain) != 1 or len(arms) != 1:
        return value                        # a Literal, or bool | Literal["auto"]: as written
    base = plain[0]
    if is_dataclass(base):
        return build(base, value)
    origin = get_origin(base) or base
    if origin in (tuple, list):
        return tuple(_convert(get_args(base)[0], v) for v in value)
    if origin in (dict, Mapping):
        return _plain(value)
    if base is float:
        return float(value)
    return value


def values(obj: Any, cls: type) -> dict[str, Any]:
    """The fields of dataclass `cls` as `obj` holds them (shallow): to build a class that
    extends a section's class with what the stage resolves beside it."""
    return {f.name: getattr(obj, f.name) for f in fields(cls)}


def _plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists (params arrive as the stage's guarded mappings)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def reference(name: str, cls: type) -> list[tuple[str, str, str]]:
    """(dotted key, type and bounds, doc) of every param of section `name`, for docs/params.md."""
    rows: list[tuple[str, str, str]] = []

    def walk(prefix: str, schema: Mapping[str, Any]) -> None:
        for key, spec in schema.items():
            if isinstance(spec, Mapping):
                walk(f"{prefix}.{key}", spec)
                continue
            rows.append((f"{prefix}.{key}", _describe(spec), spec.doc))
            if isinstance(spec.item, Mapping):  # a list of mappings: each item's keys
                walk(f"{prefix}.{key}[]", spec.item)

    walk(name, schema_of(cls))
    return rows


def _describe(f: Field) -> str:
    words = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}
    text = words[f.type_]
    if f.type_ is list:
        text = f"list of {_describe(f.item)}" if isinstance(f.item, Field) else "list of mappings"
    if f.choices is not None:
        text = " \\| ".join(str(c) for c in f.choices)
    if f.lo is not None or f.hi is not None:
        text += f" in [{'' if f.lo is None else f'{f.lo:g}'}, {'' if f.hi is None else f'{f.hi:g}'}]"
    if f.max_len is not None and f.max_len == f.min_len:
        text += f", {f.max_len} items"
    elif f.min_len:
        text += f", >= {f.min_len} items"
    return text + (", or null" if f.nullable else "")

