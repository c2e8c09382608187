"""Stage pwl_fit: fit clip and the pwl<k> approximations of exp to the baseline's attention logits."""

from __future__ import annotations

from slimaudio import atomic, spec, tracking
from slimaudio.datasets import speakers
from slimaudio.schemas.pwl_softmax import PwlFit
from slimaudio.speaker.train import load_checkpoint
from slimaudio.stage import cli, parse_args, setup
from slimaudio.studies.pwl_softmax.fit import fit_figure, fit_logits

SECTIONS = ("base.seed", "pwl_fit")


def main() -> None:
    args = parse_args(__doc__, ["data", "model", "fit", "fit_plot"])
    params = setup(args.params, SECTIONS)
    cfg, seed = spec.build(PwlFit, params["pwl_fit"]), int(params["base"]["seed"])
    with tracking.stage_run("pwl_softmax", "pwl_fit", params.flat()) as run:
        data = speakers.load(args.data)
        model, _, _ = load_checkpoint(args.model)
        res, cols = fit_logits(model, data, cfg, seed)
        atomic.write_json(args.fit, res.to_json())
        atomic.save_figure(args.fit_plot, fit_figure(res))
        run.log_params(res.run_params())
        run.log_metrics(res.run_metrics())
        run.log_artifact(args.fit)
        run.log_artifact(args.fit_plot)
    tv = ", ".join(f"{m} {d['tv']:.3f}" for m, d in res.diagnostics.items())
    print(f"pwl_fit: {cols.shape[0]} logit rows x {cols.shape[1]} frames; weight TV vs softmax: "
          f"{tv} -> {args.fit}")


if __name__ == "__main__":
    cli(main)
