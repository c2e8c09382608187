"""Stage data_report: corpus metrics and figures (class balance before/after undersampling, durations)."""

from __future__ import annotations

import json
from pathlib import Path

from slimaudio import atomic, tracking
from slimaudio.errors import DataError
from slimaudio.prepare.report import data_metrics, plot_durations, plot_undersampling
from slimaudio.stage import cli, parse_args, setup

SECTIONS: tuple[str, ...] = ()


def _read(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the prepared data's info ({exc})") from None


def main() -> None:
    args = parse_args(__doc__, ["speakers_info", "sounds_info", "metrics", "undersampling_png",
                                "durations_png"])
    params = setup(args.params, SECTIONS)
    spk, snd = _read(args.speakers_info), _read(args.sounds_info)
    with tracking.stage_run("data", "data_report", params.flat()) as run:
        metrics = data_metrics(spk, snd)
        atomic.write_json(args.metrics, metrics)
        atomic.save_figure(args.undersampling_png, plot_undersampling(snd))
        atomic.save_figure(args.durations_png, plot_durations(spk, snd))
        flat = {f"speakers.{k}": v for k, v in metrics["speakers"].items() if isinstance(v, int | float)}
        flat |= {f"sounds.{k}": v for k, v in metrics["sounds"].items() if isinstance(v, int | float)}
        run.log_metrics(flat)
        for path in (args.metrics, args.undersampling_png, args.durations_png):
            run.log_artifact(path)
    print(f"data_report: {args.metrics}, {args.undersampling_png}, {args.durations_png}")


if __name__ == "__main__":
    cli(main)
