"""Where the speaker studies' model comes from: params `ecapa.init` (see
slimaudio.speaker.pretrained for the imports). Light on purpose: the PTQ stage reads it
without importing torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimaudio.errors import ParamError

KINDS = ("train", "speechbrain", "onnx")


@dataclass(frozen=True)
class InitConfig:
    kind: str
    path: Path
    input_name: str | None = None  # onnx: the input fed the features (None: the first)
    layout: str = "BTF"            # onnx: BTF [batch, frames, features] | BFT

    @classmethod
    def from_params(cls, init: Mapping[str, Any]) -> InitConfig:
        kind = str(init["kind"])
        if kind not in KINDS:
            raise ParamError(f"params: ecapa.init.kind = {kind!r} (known: {', '.join(KINDS)})")
        inp = init.get("input") or {}
        return cls(kind=kind, path=Path(str(init["path"])), input_name=inp.get("name"),
                   layout=str(inp.get("layout", "BTF")))

    @property
    def imported(self) -> bool:
        return self.kind != "train"

    @property
    def model_input(self) -> dict[str, Any]:
        """How the studies' ONNX model takes its features: the user's settings for an ONNX
        file, our exports' (first input, BTF) otherwise."""
        if self.kind == "onnx":
            return {"name": self.input_name, "layout": self.layout}
        return {"name": None, "layout": "BTF"}
