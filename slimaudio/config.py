"""params.yaml composition, loading and validation.

params.yaml holds one section per stage plus `base` (seed, sample rate) and `profile`. It is
composed by Hydra from `conf/` (DVC's own composition: `hydra.enabled` in .dvc/config), so it
always holds the effective value of every key, which is what DVC records in dvc.lock and shows
in `dvc exp show` / `dvc params diff`. `conf/config.yaml` has the defaults; the config group
`profile` (`conf/profile/{default,tiny,paper}.yaml`) overlays a scale, and `students` picks the
distillation grid's student list. `dvc exp run -S profile=tiny -S ecapa.train.steps=100`
composes both, the user's value last; `python -m slimaudio.compose` (`make params`) does the
same for a plain `dvc repro`. params.yaml records the digest of the conf/ files it came from
(`conf_digest`), and `resolve` stops a stage whose params.yaml is older than conf/.

Every section has a schema, derived from its class in `slimaudio/schemas/` (slimaudio.spec). Validation runs on the whole file before
a stage does any work, and the first problem stops it with one line naming the key: unknown
keys, wrong types, out-of-range values, keys out of order with each other and missing keys.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import pkgutil
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slimaudio.errors import ParamError

CONF_DIR = "conf"
# The key of params.yaml holding the digest of the conf/ files it was composed from
# (conf/config.yaml resolves it through slimaudio.compose).
CONF_DIGEST_KEY = "conf_digest"
_TOP_LEVEL = ("profile", CONF_DIGEST_KEY)  # keys of params.yaml that are not sections
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}


@dataclass(frozen=True)
class Field:
    """One leaf of a schema.

    type_: bool, int, float (ints accepted), str, list or dict.
    choices: allowed values; lo/hi: inclusive bounds (for numbers, and for list items via item);
    item: a Field that every list element must satisfy; nullable: None (YAML null) is allowed.
    min_len, max_len: smallest and largest list length.
    """

    type_: type
    lo: float | None = None
    hi: float | None = None
    choices: Sequence[Any] | None = None
    item: Field | None = None
    nullable: bool = False
    min_len: int | None = None
    max_len: int | None = None
    doc: str = ""

    def check(self, key: str, value: Any) -> None:
        if value is None:
            if self.nullable:
                return
            raise ParamError(f"params: {key} must not be null (expected {_TYPE_NAMES[self.type_]})")
        if self.choices is not None and any(type(value) is type(c) and value == c
                                            for c in self.choices):
            return  # a listed choice may be of another type than the rest (e.g. "auto")
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
            if self.max_len is not None and len(value) > self.max_len:
                raise ParamError(f"params: {key} takes at most {self.max_len} item(s)")
            if self.item is not None:
                for i, v in enumerate(value):
                    if isinstance(self.item, dict):
                        validate_mapping(f"{key}[{i}]", v, self.item)
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


# Cross-field rules: (section, lower key, upper key, strict), keys dotted within the section.
ORDERS: dict[str, list[tuple[str, str, bool]]] = {}


def register(section: str, schema: Schema,
             orders: Sequence[tuple[str, str] | tuple[str, str, bool]] = ()) -> None:
    """Declare the schema of one params.yaml section (called by slimaudio.schemas modules).

    orders: pairs of dotted keys within the section whose values must be ordered
    (lower <= upper; a third item True makes it strict), checked after each key alone.
    """
    SCHEMAS[section] = schema
    ORDERS[section] = [(o[0], o[1], bool(o[2]) if len(o) > 2 else False) for o in orders]


# Rules across sections, each a function of the whole params mapping that raises ParamError.
CHECKS: list[Any] = []


def register_check(check: Any) -> Any:
    """Declare a rule across sections (usable as a decorator); it runs after every section."""
    CHECKS.append(check)
    return check


def _get(node: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _check_orders(section: str, value: Mapping[str, Any]) -> None:
    for lo_key, hi_key, strict in ORDERS.get(section, []):
        lo, hi = _get(value, lo_key), _get(value, hi_key)
        if lo is None or hi is None or (lo < hi if strict else lo <= hi):
            continue
        relation = "be below" if strict else "not exceed"
        raise ParamError(f"params: {_label(section, lo_key)} = {lo!r} must {relation} "
                         f"{_label(section, hi_key)} = {hi!r}")


def _label(section: str, dotted: str) -> str:
    """`ecapa`, `train.snr_db.0` -> `ecapa.train.snr_db[0]`."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", f"{section}.{dotted}")


def load_schemas() -> None:
    """Import every schema module (each registers its sections). Not skipped when SCHEMAS is
    merely non-empty: importing one schema module elsewhere registers only its own sections."""
    import slimaudio.schemas as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def validate_mapping(prefix: str, value: Any, schema: Schema) -> None:
    if not isinstance(value, Mapping):
        raise ParamError(f"params: {prefix} must be a mapping, got {value!r}")
    for key in value:
        if key not in schema:
            close = closest(str(key), schema.keys())
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ParamError(f"params: unknown key '{prefix}.{key}'{hint}")
    for key, spec in schema.items():
        full = f"{prefix}.{key}"
        if key not in value:
            raise ParamError(f"params: missing key '{full}'")
        if isinstance(spec, Mapping):
            validate_mapping(full, value[key], spec)
        else:
            spec.check(full, value[key])


def closest(key: str, options: Iterable[str]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(key, list(options), n=1, cutoff=0.75)
    return hits[0] if hits else None


class Declared(dict):
    """The part of a params mapping a stage declared: reading any other key is a ParamError,
    so a stage cannot depend on a param that dvc.yaml does not list for it."""

    def __init__(self, where: str, declared: Sequence[str]) -> None:
        super().__init__()
        self.where, self.declared = where, tuple(declared)

    def __missing__(self, key: str) -> Any:
        full = f"{self.where}.{key}" if self.where else str(key)
        raise ParamError(f"params: stage reads '{full}' that it did not declare "
                         f"(declared: {', '.join(self.declared)})")

    def get(self, key: str, default: Any = None) -> Any:
        """Like [], so that a default cannot hide a read of an undeclared key."""
        return self[key]


def select(data: Mapping[str, Any], paths: Sequence[str]) -> Declared:
    """The declared parts of `data`: each path a section (`ecapa`) or a dotted key (`base.seed`)."""
    root = Declared("", paths)
    for path in paths:
        keys = path.split(".")
        src, dst = data, root
        for i, key in enumerate(keys):
            if not isinstance(src, Mapping) or key not in src:
                raise ParamError(f"params: missing key '{'.'.join(keys[: i + 1])}'")
            if i == len(keys) - 1:
                dst[key] = copy.deepcopy(src[key])
            else:
                if key not in dst:
                    dict.__setitem__(dst, key, Declared(".".join(keys[: i + 1]), paths))
                src, dst = src[key], dst[key]
    return root


@dataclass
class Params:
    """Validated params; only what the stage declared (sections or dotted keys) is reachable."""

    sections: Declared
    profile: str
    source: Path
    declared: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, section: str) -> Any:
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
        raise ParamError(f"{path}{yaml_where(exc)}: not valid YAML ({yaml_problem(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping at the top level")
    return data


def yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    return " ".join(x for x in (context, problem) if x) or str(exc).splitlines()[0]


def resolve(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read a composed params file and validate every key; return it."""
    path = Path(path)
    data = read_yaml(path)
    profile = data.get("profile", "default")
    if not isinstance(profile, str):
        raise ParamError(f"params: profile = {profile!r} must be a string")
    validate(data, source=path.name)
    check_fresh(data, path)
    return data


def conf_digest(conf_dir: str | Path) -> str:
    """A digest of every YAML file under conf_dir (names and bytes): milliseconds."""
    conf = Path(conf_dir)
    h = hashlib.sha256()
    for f in sorted(conf.rglob("*.yaml")):
        h.update(f.relative_to(conf).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_fresh(data: Mapping[str, Any], path: Path) -> None:
    """Stop when params.yaml was composed from other conf/ files than those beside it: a
    `dvc repro` after an edit of conf/ would otherwise run the old values, silently."""
    conf = path.parent / CONF_DIR
    if not (conf / "config.yaml").is_file():
        return  # a params file outside a checkout: nothing to compare with
    if data.get(CONF_DIGEST_KEY) == conf_digest(conf):
        return
    profile = data.get("profile", "default")
    make = "make params" if profile == "default" else f'make params SET="profile={profile}"'
    raise ParamError(f"{path}: older than {CONF_DIR}/ (it was composed from other {CONF_DIR}/ "
                     f"files): compose it again with `{make}` (add your overrides) or run "
                     "`dvc exp run`")


def validate(data: Mapping[str, Any], source: str = "params.yaml") -> None:
    load_schemas()                       # cheap after the first call: imports are cached
    for key in data:
        if key not in _TOP_LEVEL and key not in SCHEMAS:
            close = closest(str(key), SCHEMAS.keys())
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ParamError(f"params: unknown section '{key}'{hint}")
    for name, schema in SCHEMAS.items():
        if name not in data:
            raise ParamError(f"params: missing section '{name}' in {source} "
                             f"(compose it from {CONF_DIR}/ with `make params`)")
        validate_mapping(name, data[name], schema)
        _check_orders(name, data[name])
    for check in CHECKS:
        check(data)


def load_params(path: str | Path, sections: Sequence[str]) -> Params:
    """Validate the whole params file, then expose only `sections` (sections or dotted keys,
    as the stage declares them in dvc.yaml) to the caller."""
    merged = resolve(path)
    return Params(
        sections=select(merged, sections),
        profile=merged.get("profile", "default"),
        source=Path(path),
        declared=tuple(sections),
    )


if __name__ == "__main__":
    # The command moved to slimaudio.compose; run it by name so that no stage imports it.
    import runpy

    runpy.run_module("slimaudio.compose", run_name="__main__")
