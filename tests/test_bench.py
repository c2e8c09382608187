from __future__ import annotations

from pathlib import Path

import pytest

from slimaudio import bench


def test_bench_times_every_model_in_a_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    group = tmp_path / "models" / "g"
    group.mkdir(parents=True)
    for name, width in (("small.onnx", 8), ("big.onnx", 256)):
        model = torch.nn.Sequential(torch.nn.Conv1d(80, width, 3), torch.nn.ReLU())
        torch.onnx.export(model, (torch.randn(1, 80, 300),), str(group / name), input_names=["x"],
                          dynamic_axes={"x": {2: "t"}}, dynamo=False)
    bench.main(["--models", str(tmp_path / "models"), "--repeats", "30", "--warmup", "2"])
    out = capsys.readouterr().out
    assert "small.onnx" in out and "big.onnx" in out
    lines = [ln for ln in out.splitlines() if ".onnx" in ln]
    assert lines[0].split()[0] == "small.onnx"  # sorted fastest first


def test_bench_without_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--models", str(tmp_path)])
    assert "run `make repro` first" in capsys.readouterr().out
