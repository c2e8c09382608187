"""Stage pwl_fit: fit clip and the pwl<k> approximations of exp to the baseline's attention logits."""

from __future__ import annotations

from slimaudio import atomic, tracking
from slimaudio.datasets import speakers
from slimaudio.speaker.data import CropSampler
from slimaudio.speaker.train import load_checkpoint
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.pwl_softmax import collect_logits, fit_all, plot_fit

SECTIONS = ("base.seed", "pwl_fit")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "fit", "fit_plot"])
    params = setup(args.params, SECTIONS)
    cfg, seed = params["pwl_fit"], int(params["base"]["seed"])
    with tracking.stage_run("pwl_softmax", "pwl_fit", params.flat()) as run:
        data = speakers.load(args.data)
        model, _, _ = load_checkpoint(args.model)
        sampler = CropSampler(data, data.frames(float(cfg["crop_s"])), seed + 7)
        cols = collect_logits(model, sampler, int(cfg["crops"]), int(cfg["max_columns"]), seed)
        res = fit_all(cols, [int(k) for k in cfg["segments"]], int(cfg["bins"]),
                      float(cfg["min_floor"]))
        atomic.write_json(args.fit, res.to_json())
        plot_fit(res, args.fit_plot)
        run.log_params({"clip.floor": res.clip_floor,
                        **{f"pwl{k}.{n}": v for k, c in res.pwl.items() for n, v in c.as_dict().items()}})
        run.log_metrics({f"{m}_{k}": v for m, d in res.diagnostics.items() for k, v in d.items()})
        run.log_metrics(res.logit_stats)
        run.log_artifact(args.fit)
        run.log_artifact(args.fit_plot)
    tv = ", ".join(f"{m} {d['tv']:.3f}" for m, d in res.diagnostics.items())
    print(f"pwl_fit: {cols.shape[0]} logit rows x {cols.shape[1]} frames; weight TV vs softmax: "
          f"{tv} -> {args.fit}")


if __name__ == "__main__":
    cli(main)
