"""Stage pwl_int8: the PWL study's fine-tuned models quantized with the PTQ study's settings,
weight layers (`all`) and every op (`all_ops`): does PWL pooling keep full-integer EER?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from slimaudio import atomic, tracking
from slimaudio.errors import DataError
from slimaudio.latency import Spread
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.ecapa import EXPORT_INPUT
from slimaudio.schemas.ptq_layerwise import PtqRecipe
from slimaudio.schemas.pwl_int8 import PwlInt8
from slimaudio.speaker.ptq_recipe import RECIPE_KEYS, recipe
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.pwl_int8 import report
from slimaudio.studies.pwl_int8.config import Config
from slimaudio.studies.pwl_int8.rules import STUDY
from slimaudio.studies.pwl_int8.run import export_winner, run_study

SECTIONS = ("base", "ecapa.model.channels", *(f"ptq_layerwise.{k}" for k in RECIPE_KEYS),
            "pwl_softmax.bench", "pwl_int8")


def main() -> None:
    args = parse_args(__doc__, ["onnx_dir", "pwl_table", "data", "models_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    own = build(PwlInt8, params["pwl_int8"])
    ptq = recipe(build(PtqRecipe, params["ptq_layerwise"]), EXPORT_INPUT)
    cfg = Config(**vars(own), bench=tuple(params["pwl_softmax"]["bench"]), ptq=ptq)
    base = params["base"]
    with tracking.stage_run("pwl_int8", "pwl_int8", params.flat()) as run:
        pwl_table = _read_table(Path(args.pwl_table))
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(cfg, Path(args.onnx_dir), Path(args.data), Path(tmp), pwl_table,
                            int(base["seed"]), int(base["threads"]),
                            build(Bootstrap, base["bootstrap"]), spread=build(Spread, base["latency"]))
            export_winner(res, Path(tmp) / "winner.onnx")
        st = cfg.ptq.quant_settings
        meta = {"channels": params["ecapa"]["model"]["channels"], "profile": params.profile,
                "threads": base["threads"], "frames": cfg.latency.frames,
                "settings": f"{st.quant_format}, {st.activation_type} activations, "
                            f"{'per-channel' if st.per_channel else 'per-tensor'} "
                            f"{'7' if st.reduce_range else '8'}-bit weights, "
                            f"{st.method} calibration"}
        report.build(res, meta).publish(args, run)
    print(f"pwl_int8: winner {res.winner}; {res.seconds['total']:.1f} s -> {args.table_md}")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: pwl_softmax's table not found (run stage pwl_softmax)")
    return pd.read_csv(path)


if __name__ == "__main__":
    cli(main)
