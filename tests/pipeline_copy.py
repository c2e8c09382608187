"""A throwaway copy of the project in which end-to-end tests run real `dvc` commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from slimaudio import compose as composer

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env.update(extra or {})
    return env


@dataclass
class ProjectCopy:
    root: Path

    def run(self, *args: str, check: bool = True, timeout: int = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(list(args), cwd=self.root, env=_env(env), capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def detached_dvc(self, log: Path, *args: str) -> None:
        """Run a dvc command that starts daemons (`queue start`) with its output in `log`:
        a daemon keeps the caller's stdout open, so a captured call would wait for it."""
        with open(log, "w") as out:
            proc = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=self.root, env=_env(),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=120, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{log.read_text()[-4000:]}")

    def dvc(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        return self.run(str(VENV_BIN / "dvc"), *args, **kw)

    def timed_dvc(self, *args: str, **kw) -> tuple[float, subprocess.CompletedProcess[str]]:
        t0 = time.perf_counter()
        proc = self.dvc(*args, **kw)
        return time.perf_counter() - t0, proc

    def use_profile(self, profile: str) -> None:
        """Make `profile` the default of conf/config.yaml, so that every later
        `dvc exp run -S ...` composes on it (a user's persistent choice, the Hydra way)."""
        path = self.root / "conf" / "config.yaml"
        text, n = re.subn(r"(?m)^  - profile: \w+", f"  - profile: {profile}", path.read_text())
        assert n == 1, "conf/config.yaml has no '- profile: <name>' default"
        path.write_text(text)
        self.compose()

    def compose(self, *overrides: str) -> None:
        """Compose params.yaml from conf/ with Hydra overrides, as `dvc exp run -S` does."""
        composer.compose_params(self.root / "params.yaml", overrides, self.root / "conf")

    def workspace_overrides(self) -> list[str]:
        """`-S` arguments that recreate the workspace's params.yaml from conf/.

        Each `dvc exp run -S` composes conf/ anew (the baseline plus its own overrides), so an
        experiment that should build on the previous one repeats that one's overrides.
        """
        now = _leaves(yaml.safe_load((self.root / "params.yaml").read_text()))
        base = _leaves(composer.compose([], self.root / "conf"))
        return [arg for key, value in now.items() if base.get(key) != value
                for arg in ("-S", f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")]

    def set_params(self, **updates: object) -> None:
        """Edit dotted keys of params.yaml by hand, as a user before a plain `dvc repro`."""
        path = self.root / "params.yaml"
        data = yaml.safe_load(path.read_text())
        for dotted, value in updates.items():
            node = data
            *parents, last = dotted.replace("__", ".").split(".")
            for key in parents:
                node = node[key]
            node[last] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def commit(self, message: str = "snapshot") -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message, "--allow-empty")


def _leaves(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in _leaves(val, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def make_copy(dest: Path, profile: str = "tiny") -> ProjectCopy:
    """Copy tracked and untracked-but-not-ignored files, as a fresh clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    proj = ProjectCopy(dest)
    proj.run("git", "init", "-q")
    proj.use_profile(profile)
    proj.commit("copy")
    return proj
