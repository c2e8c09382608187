"""Atomic output writes: a stage interrupted half-way never leaves a file DVC would accept.

Everything is written to a temporary sibling and moved into place with os.replace, which is
atomic on POSIX within one filesystem. A temporary is named `.<name>.<host>-<pid>.<random>.tmp`:
a writer killed outright (SIGKILL, the OOM killer) cannot clean up, so the next write to the
same target removes the temporaries of writers on this host that are no longer alive
(`.gitignore`: `.*.tmp`). A writer on another host sharing the folder (NFS, a container's bind
mount) is never judged by a pid it does not share.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes `path` (replacing it)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        # also the leftover of a writer killed between the two replaces
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# .<name>.<host>-<pid>.<random>.tmp (mkstemp's random part has no dots)
_TEMP = re.compile(r"\.(.+)\.([A-Za-z0-9-]+)-(\d+)\.[^.]+\.tmp")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "-", socket.gethostname()) or "host"


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.{_host()}-{os.getpid()}."


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove temporaries beside `final` left by writers that died; returns what it removed.

    Only names with this host and a writer pid are touched, and only when no process has that
    pid: a live writer's temporary (another stage, a parallel `dvc queue` worker) is never
    removed.
    """
    removed = []
    for cand in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        if _dead_temp(cand, final.name):
            _remove(cand)
            removed.append(cand)
    return removed


def sweep_dead_temps(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove the temporaries of dead writers in each root and its subfolders one level down
    (where outputs live: data/speakers, models/distill/s000, reports/data/x.json). The
    pipeline's first stage calls it on every `dvc repro`: a stage whose rerun DVC serves from
    its run cache never runs, so its own next write would never come to clean up."""
    removed: list[Path] = []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        folders = [root, *(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))]
        for folder in folders:
            for cand in folder.glob(".*.tmp"):
                if _dead_temp(cand):
                    _remove(cand)
                    removed.append(cand)
    return removed


def _dead_temp(path: Path, final_name: str | None = None) -> bool:
    """A temporary of ours (of `final_name`, if given) whose writer on this host has died."""
    m = _TEMP.fullmatch(path.name)
    return (m is not None and final_name in (None, m.group(1)) and m.group(2) == _host()
            and not pid_alive(int(m.group(3))))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        pass
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed writer nobody reaped yet (Linux /proc; elsewhere assume not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike[str], frame: Any, **kwargs: Any) -> Path:
    """Write a pandas DataFrame as CSV atomically (index off unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return Path(path)


def save_figure(path: str | os.PathLike[str], fig: Any, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    final = Path(path)
    with atomic_path(final) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=final.suffix.lstrip(".") or "png")
    plt.close(fig)
    return final


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
