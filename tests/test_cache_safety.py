"""A damaged output never damages the cache (cache.type without hardlinks), and
`slimaudio.cache_check` finds objects damaged in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slimaudio import cache_check

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")
pytestmark = pytest.mark.slow


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=root, capture_output=True, text=True, check=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git + DVC repository with the project's .dvc/config and one tracked output."""
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, DVC, "init", "-q")
    shutil.copy(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    (tmp_path / "model.bin").write_bytes(bytes(range(256)) * 40)
    _run(tmp_path, DVC, "add", "-q", "model.bin")
    return tmp_path


def test_an_output_damaged_in_place_comes_back_whole(repo: Path) -> None:
    good = (repo / "model.bin").read_bytes()
    with (repo / "model.bin").open("r+b") as fh:  # an in-place writer, as root ignores 0444
        fh.truncate(1000)
    assert cache_check.damaged(repo / ".dvc" / "cache") == []
    assert "modified" in _run(repo, DVC, "status").stdout
    _run(repo, DVC, "checkout", "-q", "--force")
    assert (repo / "model.bin").read_bytes() == good


def test_cache_check_names_a_damaged_object(repo: Path) -> None:
    cache = repo / ".dvc" / "cache"
    (obj,) = list(cache_check.objects(cache))
    obj.chmod(0o644)
    obj.write_bytes(b"damaged")
    proc = subprocess.run([sys.executable, "-m", "slimaudio.cache_check", "--cache", str(cache),
                           "--lock", str(repo / "dvc.lock"), "--remove"], cwd=repo,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and f"damaged: {obj}" in proc.stdout, proc.stdout
    assert not obj.exists()
    assert "every one matches" in _run(repo, sys.executable, "-m", "slimaudio.cache_check",
                                       "--cache", str(cache)).stdout
