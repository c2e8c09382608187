"""Stage ptq_bits: the per-layer PTQ study's INT8 rows at fewer weight bits, and a
mixed-precision choice of bits per layer group under an EER budget."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.latency import Spread
from slimaudio.schemas.base import Bootstrap
from slimaudio.schemas.ecapa import Init
from slimaudio.schemas.ptq_bits import PtqBits
from slimaudio.schemas.ptq_layerwise import Latency, PtqRecipe
from slimaudio.speaker.ptq_recipe import RECIPE_KEYS, recipe
from slimaudio.spec import build
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.ptq_bits import report
from slimaudio.studies.ptq_bits.config import LAYERWISE_KEYS, Config
from slimaudio.studies.ptq_bits.rules import STUDY
from slimaudio.studies.ptq_bits.run import run_study

SECTIONS = ("base", "ecapa.init", *(f"ptq_layerwise.{k}" for k in (*RECIPE_KEYS, *LAYERWISE_KEYS)),
            "ptq_bits")


def main() -> None:
    args = parse_args(__doc__, ["ptq_dir", "data", "models_dir", *STUDY.roles])
    params = setup(args.params, SECTIONS)
    layerwise = params["ptq_layerwise"]
    cfg = Config.of(build(PtqBits, params["ptq_bits"]),
                    recipe(build(PtqRecipe, layerwise),
                           build(Init, params["ecapa"]["init"]).model_input),
                    None if layerwise["groups"] is None else dict(layerwise["groups"]),
                    build(Latency, layerwise["latency"]))
    base = params["base"]
    with tracking.stage_run("ptq_bits", "ptq_bits", params.flat()) as run:
        with atomic.atomic_dir(args.models_dir) as tmp:
            res = run_study(cfg, int(base["seed"]), int(base["threads"]),
                            build(Bootstrap, base["bootstrap"]), args.ptq_dir, args.data, tmp,
                            spread=build(Spread, base["latency"]))
        report.build(res).publish(args, run)
    print(f"{report.headline(res)} -> {args.table_md}")


if __name__ == "__main__":
    cli(main)
