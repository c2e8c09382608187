"""params.yaml loading and validation.

params.yaml holds one section per stage plus `base` (seed, sample rate) and `profile`.
A profile (`profiles/<name>.yaml`) is a partial params file deep-merged over params.yaml:
`default` changes nothing, `tiny` shrinks everything for tests, `paper` is the papers' scale.

Every section has a schema (see `slimaudio/schemas/`). Validation runs on the whole merged
file before a stage does any work, and the first problem stops it with one line naming the
key: unknown keys, wrong types, out-of-range values and missing keys alike.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slimaudio.errors import ParamError

PROFILE_DIR = "profiles"
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Field:
    """One leaf of a schema.

    type_: bool, int, float (ints accepted), str, list or dict.
    choices: allowed values; lo/hi: inclusive bounds (for numbers, and for list items via item);
    item: a Field that every list element must satisfy; nullable: None (YAML null) is allowed.
    min_len: smallest list length.
    """

    type_: type
    lo: float | None = None
    hi: float | None = None
    choices: Sequence[Any] | None = None
    item: Field | None = None
    nullable: bool = False
    min_len: int | None = None
    doc: str = ""

    def check(self, key: str, value: Any) -> None:
        if value is None:
            if self.nullable:
                return
            raise ParamError(f"params: {key} must not be null (expected {_TYPE_NAMES[self.type_]})")
        if not _is_type(value, self.type_):
            raise ParamError(
                f"params: {key} = {value!r} has the wrong type: expected {_TYPE_NAMES[self.type_]}"
            )
        if self.choices is not None and value not in self.choices:
            raise ParamError(
                f"params: {key} = {value!r} is not one of {', '.join(map(repr, self.choices))}"
            )
        if self.lo is not None and value < self.lo:
            raise ParamError(f"params: {key} = {value!r} is below the minimum {self.lo}")
        if self.hi is not None and value > self.hi:
            raise ParamError(f"params: {key} = {value!r} is above the maximum {self.hi}")
        if self.type_ is list:
            if self.min_len is not None and len(value) < self.min_len:
                raise ParamError(f"params: {key} needs at least {self.min_len} item(s)")
            if self.item is not None:
                for i, v in enumerate(value):
                    if isinstance(self.item, dict):
                        _validate_mapping(f"{key}[{i}]", v, self.item)
                    else:
                        self.item.check(f"{key}[{i}]", v)


def _is_type(value: Any, type_: type) -> bool:
    if type_ is bool:
        return isinstance(value, bool)
    if type_ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type_)


# A schema is a mapping from key to Field or to a nested schema (a dict).
Schema = Mapping[str, Any]
SCHEMAS: dict[str, Schema] = {}


def register(section: str, schema: Schema) -> None:
    """Declare the schema of one params.yaml section (called by slimaudio.schemas modules)."""
    SCHEMAS[section] = schema


def _load_schemas() -> None:
    """Import every schema module (each registers its sections). Not skipped when SCHEMAS is
    merely non-empty: importing one schema module elsewhere registers only its own sections."""
    import slimaudio.schemas as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def _validate_mapping(prefix: str, value: Any, schema: Schema) -> None:
    if not isinstance(value, Mapping):
        raise ParamError(f"params: {prefix} must be a mapping, got {value!r}")
    for key in value:
        if key not in schema:
            close = _closest(str(key), schema.keys())
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ParamError(f"params: unknown key '{prefix}.{key}'{hint}")
    for key, spec in schema.items():
        full = f"{prefix}.{key}"
        if key not in value:
            raise ParamError(f"params: missing key '{full}'")
        if isinstance(spec, Mapping):
            _validate_mapping(full, value[key], spec)
        else:
            spec.check(full, value[key])


def _closest(key: str, options: Iterable[str]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(key, list(options), n=1, cutoff=0.75)
    return hits[0] if hits else None


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Merge `over` into a copy of `base`; keys of `over` must exist in `base`."""
    out = copy.deepcopy(dict(base))
    for key, val in over.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in out:
            raise ParamError(f"profile: unknown key '{full}' (not in params.yaml)")
        if isinstance(val, Mapping) and isinstance(out[key], Mapping):
            out[key] = deep_merge(out[key], val, full)
        else:
            out[key] = copy.deepcopy(val)
    return out


@dataclass
class Params:
    """Validated, profile-merged params; only the sections a stage declared are reachable."""

    sections: dict[str, Any]
    profile: str
    source: Path
    declared: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, section: str) -> Any:
        if section not in self.sections:
            raise ParamError(
                f"params: stage reads section '{section}' that it did not declare "
                f"(declared: {', '.join(self.declared)})"
            )
        return self.sections[section]

    def flat(self) -> dict[str, Any]:
        """Flatten to dotted keys, for MLflow params."""
        out: dict[str, Any] = {"profile": self.profile}

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, Mapping):
                for k, v in node.items():
                    walk(f"{prefix}.{k}", v)
            else:
                out[prefix] = node

        for name, sec in self.sections.items():
            walk(name, sec)
        return out


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping at the top level")
    return data


def resolve(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml, apply its profile, validate everything; return the merged mapping."""
    path = Path(path)
    raw = read_yaml(path)
    profile = raw.get("profile", "default")
    if not isinstance(profile, str):
        raise ParamError(f"params: profile = {profile!r} must be a string")
    prof_path = path.parent / PROFILE_DIR / f"{profile}.yaml"
    if not prof_path.exists():
        known = sorted(p.stem for p in (path.parent / PROFILE_DIR).glob("*.yaml"))
        raise ParamError(f"params: profile = {profile!r} has no {prof_path} (known: {', '.join(known)})")
    merged = deep_merge(raw, read_yaml(prof_path))
    validate(merged)
    return merged


def validate(merged: Mapping[str, Any]) -> None:
    _load_schemas()                      # cheap after the first call: imports are cached
    for key in merged:
        if key != "profile" and key not in SCHEMAS:
            close = _closest(str(key), SCHEMAS.keys())
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ParamError(f"params: unknown section '{key}'{hint}")
    for name, schema in SCHEMAS.items():
        if name not in merged:
            raise ParamError(f"params: missing section '{name}'")
        _validate_mapping(name, merged[name], schema)


def load_params(path: str | Path, sections: Sequence[str]) -> Params:
    """Validate the whole params file, then expose only `sections` to the caller."""
    merged = resolve(path)
    missing = [s for s in sections if s not in merged]
    if missing:
        raise ParamError(f"params: missing section(s) {', '.join(missing)}")
    return Params(
        sections={s: merged[s] for s in sections},
        profile=merged.get("profile", "default"),
        source=Path(path),
        declared=tuple(sections),
    )
