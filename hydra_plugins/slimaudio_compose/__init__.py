"""slimaudio's Hydra plugin: DVC imports it before composing conf/ in `dvc exp run` (Hydra scans
the `hydra_plugins` package on `hydra.plugins_path`, the repository root by default). It
registers the resolver of conf/config.yaml's `conf_digest` key: see slimaudio/compose.py."""

from pathlib import Path

from slimaudio.compose import register

register(Path(__file__).resolve().parents[2] / "conf")
