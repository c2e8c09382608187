"""Stage prepare_speakers: a speaker corpus -> log-mel features, int16 audio, manifest and trials."""

from __future__ import annotations

from slimaudio import atomic, spec, tracking
from slimaudio.prepare.speakers import prepare_speakers
from slimaudio.schemas.data import PrepareSpeakers
from slimaudio.stage import cli, parse_args, setup

SECTIONS = ("base.seed", "base.sample_rate", "base.on_bad_audio", "prepare_speakers")


def main() -> None:
    args = parse_args(__doc__, ["out_dir", "metrics"])
    params = setup(args.params, SECTIONS)
    section = spec.build(PrepareSpeakers, params["prepare_speakers"])
    with tracking.stage_run("data", "prepare_speakers", params.flat()) as run:
        base = params["base"]
        result = prepare_speakers(section, args.out_dir, sample_rate=int(base["sample_rate"]),
                                seed=int(base["seed"]), on_bad_audio=str(base["on_bad_audio"]))
        atomic.write_json(args.metrics, result.metrics)
        run.log_metrics(result.metrics)
        run.log_artifact(f"{args.out_dir}/info.json")
    c = result.info["counts"]
    print(f"prepare_speakers: {c['utterances']} utterances of {c['speakers']} speakers "
          f"({c['hours']:.2f} h), {c['trials']} trials, "
          f"{result.info['skipped']['total']} file(s) skipped -> {args.out_dir}")


if __name__ == "__main__":
    cli(main)
