"""Compose params.yaml from conf/ with Hydra, exactly as `dvc exp run` does, and guard it.

Two programs compose conf/: `python -m slimaudio.compose` (`make params`, `make repro`) and
DVC itself at the start of every `dvc exp run`. Both resolve the last key of conf/config.yaml,
`conf_digest: ${slimaudio_compose:}`, through `_resolve` below: in DVC's process it is
registered by the Hydra plugin in hydra_plugins/slimaudio_compose/ (DVC loads Hydra plugins
from the repository root, `hydra.plugins_path`). Resolving it, before anything is written:

1. refuses to compose while another DVC run in this checkout reads params.yaml (it would run
   on this composition's values: `dvc exp run --queue` exists for that);
2. validates every composed value, so a bad override never reaches params.yaml;
3. returns the digest of the conf/ files, which params.yaml keeps and every stage compares with
   conf/ (`config.check_fresh`): an edit of conf/ without a new composition stops the run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from slimaudio import config
from slimaudio.errors import ParamError

RESOLVER = "slimaudio_compose"
# Where DVC queues and temporary experiments run: their params.yaml is their own copy.
_PRIVATE_WORKSPACES = (".dvc/tmp",)
_plugin_conf: Path | None = None  # the checkout's conf/, set by register() (the plugin)
_composing_conf: Path | None = None  # the conf/ compose_params is composing; refusals then
                                     # raise ParamError instead of exiting


class _Refused(BaseException):
    """A refusal that OmegaConf must not wrap into an interpolation error (it wraps Exception)."""


def register(conf_dir: str | Path) -> None:
    """Register the resolver (the plugin calls this with the checkout's conf/)."""
    from omegaconf import OmegaConf

    global _plugin_conf
    _plugin_conf = Path(conf_dir).resolve()
    OmegaConf.register_new_resolver(RESOLVER, _resolve, replace=True)
    _hint_misspelt_keys()


def _refuse(message: str) -> None:
    if _composing_conf is not None:
        raise _Refused(message)
    # Inside `dvc exp run`: one line and exit 2, before DVC writes params.yaml.
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _hint_misspelt_keys() -> None:
    """Hydra answers a misspelt `-S ecapa.train.stpes=3` with "To append to your config use
    +ecapa.train.stpes=3", which would add a key no stage reads. Before Hydra applies the
    overrides, name the key that was meant instead (hydra-core 1.3's override step)."""
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
    except ImportError:
        return
    original = ConfigLoaderImpl.__dict__.get("_apply_overrides_to_config")
    if not isinstance(original, staticmethod) or hasattr(original.__func__, "__wrapped__"):
        return  # another Hydra, or already wrapped

    @functools.wraps(original.__func__)
    def apply(overrides: list[Any], cfg: Any) -> None:
        for ov in overrides:
            if ov.package is None and not (ov.is_add() or ov.is_force_add() or ov.is_delete()):
                _check_key(str(ov.key_or_group), cfg)
        original.__func__(overrides, cfg)

    ConfigLoaderImpl._apply_overrides_to_config = staticmethod(apply)


def _check_key(key: str, cfg: Any) -> None:
    """Refuse an override of a key conf/ does not have, naming the closest existing key at the
    first segment that is missing."""
    from omegaconf import DictConfig

    node, path = cfg, []
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return  # a list index or a leaf: Hydra's own message
        if part not in node:
            close = config.closest(part, [str(k) for k in node])
            hint = f" (did you mean '{'.'.join([*path, close])}'?)" if close else ""
            missing = ".".join([*path, part])
            where = "" if missing == key else f" in the override of '{key}'"
            _refuse(f"params: unknown key '{missing}'{where}{hint}; no stage reads a key that "
                    "conf/ does not have")
        node, path = node[part], [*path, part]


@contextlib.contextmanager
def _composing(conf_dir: Path) -> Iterator[None]:
    """Compose `conf_dir`, whichever conf/ the plugin registered (it may load meanwhile)."""
    global _composing_conf
    register(conf_dir)  # the resolver, even where Hydra does not find the plugin
    _composing_conf = conf_dir.resolve()
    try:
        yield
    finally:
        _composing_conf = None


def _resolve(*, _root_: Any) -> str:
    from omegaconf import OmegaConf

    conf = _composing_conf or _plugin_conf
    assert conf is not None  # register() ran before the resolver could be called
    try:
        refuse_concurrent_runs(conf.parent)
        data = OmegaConf.to_container(_root_, resolve=False)
        data.pop(config.CONF_DIGEST_KEY, None)
        config.validate(data, source="the composition of conf/")
    except ParamError as exc:
        _refuse(str(exc))
    return config.conf_digest(conf)


def refuse_concurrent_runs(root: Path) -> None:
    """ParamError when a `dvc repro` or `dvc exp run` that started before this process works in
    the checkout at `root` (queued and --temp experiments run in copies and do not count)."""
    import psutil

    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents())}
    started = (me.create_time(), me.pid)
    root = root.resolve()
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        if proc.pid in ours or not _reads_workspace_params(proc.info["cmdline"] or []):
            continue
        if (proc.info["create_time"], proc.pid) > started:
            continue  # the later of two gives way
        try:
            cwd = Path(proc.cwd()).resolve()
        except (psutil.Error, OSError):
            continue
        if (cwd == root or root in cwd.parents) and not any(
                (root / p) in (cwd, *cwd.parents) for p in _PRIVATE_WORKSPACES):
            raise ParamError(
                f"another DVC run works in this checkout (PID {proc.pid}: "
                f"{' '.join(proc.info['cmdline'])[:80]}): composing params.yaml now would change "
                "its values; wait for it, or queue experiments with `dvc exp run --queue -S ...` "
                "and run them with `dvc queue start`")


def _reads_workspace_params(cmd: Sequence[str]) -> bool:
    """`dvc repro ...` or a workspace `dvc exp run ...` (not --queue, --temp, --run-all)."""
    for i, arg in enumerate(cmd[:3]):
        if Path(arg).name == "dvc" or (arg == "-m" and cmd[i + 1:i + 2] == ["dvc"]):
            rest = [a for a in cmd[i + 1:] if a != "dvc"]
            break
    else:
        return False
    if rest[:1] == ["repro"]:
        return True
    return rest[:2] == ["exp", "run"] and not {"--queue", "--temp", "--run-all"} & set(rest)


def compose_params(out: str | Path, overrides: Sequence[str] = (),
                   conf_dir: str | Path = config.CONF_DIR) -> None:
    """Compose conf/ with Hydra overrides into `out`: validated first, then written atomically,
    so a failed composition leaves `out` as it was."""
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    conf = Path(conf_dir).resolve()
    if not (conf / "config.yaml").is_file():
        raise ParamError(f"params: no {conf / 'config.yaml'} to compose params from")
    out = Path(out)
    # DVC's dumper goes by the file's suffix: compose into <tmp dir>/params.yaml
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    tmp = tmp_dir / out.name
    try:
        with _composing(conf):
            compose_and_dump(tmp, str(conf), None, "config", str(conf.parent), list(overrides))
        config.validate(config.read_yaml(tmp), source=str(out))
        os.replace(tmp, out)
    except _Refused as exc:
        raise ParamError(str(exc)) from None
    except yaml.YAMLError as exc:  # a conf/ file that is not YAML: Hydra lets PyYAML's error out
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = Path(mark.name) if mark is not None and mark.name else conf
        raise ParamError(f"{where}{config.yaml_where(exc)}: not valid YAML "
                         f"({config.yaml_problem(exc)})") from None
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ParamError(f"params: cannot compose {conf_dir}/ with {list(overrides)}: "
                         f"{first}") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def compose(overrides: Sequence[str] = (), conf_dir: str | Path = config.CONF_DIR) -> dict[str, Any]:
    """The composition of conf/ with `overrides`, validated, as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose_params(out, overrides, conf_dir)
        return config.read_yaml(out)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m slimaudio.compose [--out params.yaml] [override ...]`: compose params.yaml."""
    import argparse

    p = argparse.ArgumentParser(description="Compose params.yaml from conf/ (Hydra, as DVC does).")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. profile=tiny a.b=1")
    p.add_argument("--out", default="params.yaml")
    p.add_argument("--conf", default=config.CONF_DIR)
    args = p.parse_args(argv)
    try:
        compose_params(args.out, args.overrides, args.conf)
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {args.out} from {args.conf}/ {' '.join(args.overrides)}".rstrip(), file=sys.stderr)


if __name__ == "__main__":
    # Run as __main__, this file is a second module object; the plugin registers the resolver
    # of slimaudio.compose, so compose through that one.
    from slimaudio.compose import main as _main

    _main()
