"""Stage prepare_sounds: a sound-event corpus -> framed log-mel frames, undersampled, with weights."""

from __future__ import annotations

from slimaudio import atomic, spec, tracking
from slimaudio.prepare.sounds import prepare_sounds
from slimaudio.schemas.data import PrepareSounds
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "base.sample_rate", "base.on_bad_audio", "prepare_sounds")


def main() -> None:
    args = parse_args(__doc__, ["out_dir", "metrics"])
    params = setup(args.params, SECTIONS)
    section = spec.build(PrepareSounds, params["prepare_sounds"])
    with tracking.stage_run("data", "prepare_sounds", params.flat()) as run:
        base = params["base"]
        result = prepare_sounds(section, args.out_dir, sample_rate=int(base["sample_rate"]),
                                seed=int(base["seed"]), on_bad_audio=str(base["on_bad_audio"]))
        atomic.write_json(args.metrics, result.metrics)
        run.log_metrics(result.metrics)
        run.log_artifact(f"{args.out_dir}/info.json")
    c = result.info["counts"]
    print(f"prepare_sounds: {len(result.info['classes'])} classes, frames before/after "
          f"undersampling {c['frames_before']} / {c['frames_after']}, "
          f"{result.info['skipped']['total']} file(s) skipped -> {args.out_dir}")


if __name__ == "__main__":
    cli(main)
