"""Shared fixtures. Tests never touch the repo's MLflow store or params.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MLflow at a throwaway store unless a test sets its own."""
    if "MLFLOW_TRACKING_URI" not in os.environ:
        db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def speechbrain(tmp_path_factory: pytest.TempPathFactory):
    """The `speechbrain` package (the `reference` extra), for tests that compare against it.

    speechbrain 1.1.2 imports torchaudio at package import for its audio back-ends, and PyPI's
    torchaudio cannot load with the CPU torch here. The classes the tests use (ECAPA_TDNN, Fbank)
    never call it, so an empty stand-in `torchaudio` is put first on the path while speechbrain
    imports. Test set-up only: the library never imports speechbrain.
    """
    import importlib
    import sys

    stub = tmp_path_factory.mktemp("torchaudio_stand_in")
    (stub / "torchaudio").mkdir()
    (stub / "torchaudio" / "__init__.py").write_text("")
    sys.path.insert(0, str(stub))
    try:
        sb = pytest.importorskip("speechbrain")
        importlib.import_module("speechbrain.lobes.models.ECAPA_TDNN")
        importlib.import_module("speechbrain.lobes.features")
    finally:
        sys.path.remove(str(stub))
    return sb
