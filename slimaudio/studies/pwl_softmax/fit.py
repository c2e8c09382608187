"""Step 1 (stage pwl_fit): collect the baseline's attention logits on training crops and fit
clip and every pwl<k> to them (the fitting maths is slimaudio.compress.pwl)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimaudio.compress import exp_free, pwl
from slimaudio.datasets.speakers import SpeakerData
from slimaudio.errors import DataError
from slimaudio.models.ecapa import EcapaTdnn
from slimaudio.progress import progress_bar
from slimaudio.schemas.pwl_softmax import PwlFit
from slimaudio.speaker.data import CropSampler
from slimaudio.studies.pwl_softmax.config import LOGIT_CROPS_SEED_OFFSET


def logit_sampler(data: SpeakerData, cfg: PwlFit, seed: int) -> CropSampler:
    """Clean training crops of `cfg.crop_s` seconds, on the study's own crop stream."""
    return CropSampler(data, data.frames(cfg.crop_s), seed + LOGIT_CROPS_SEED_OFFSET)


def collect_logits(model: EcapaTdnn, sampler: CropSampler, crops: int, max_columns: int,
                   seed: int, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Attention logits [rows, frames] of the model on `crops` clean training crops; each row
    is one (crop, channel) pair; rows are subsampled to at most `max_columns`."""

    model.eval()
    rows = []
    with torch.inference_mode():
        for start in progress_bar(range(0, crops, batch_size), desc="logits", disable=not progress,
                                  leave=False):
            x, _ = sampler.batch(min(batch_size, crops - start))
            e = model.asp.logits(model.trunk(torch.from_numpy(x)))
            rows.append(e.reshape(-1, e.shape[-1]).numpy())
    cols = np.concatenate(rows)
    if len(cols) > max_columns:
        keep = np.random.default_rng(seed).choice(len(cols), max_columns, replace=False)
        cols = cols[np.sort(keep)]
    return cols.astype(np.float64)


UNIFORM_SEGMENTS = (1, 2)  # the paper's two forms, also fitted the way a reader would, data-free


@dataclass
class FitResult:
    hist: pwl.LogitHistogram
    clip_floor: float
    pwl: dict[int, pwl.PwlCoeffs]
    diagnostics: dict[str, dict[str, float]]
    logit_stats: dict[str, float]
    uniform: dict[int, pwl.PwlCoeffs]  # UNIFORM_SEGMENTS fitted data-free (pwl.uniform_histogram)
    consmax: dict[str, float]          # ConSmax's starting beta, gamma (exp_free.fit_consmax)

    def to_json(self) -> dict[str, Any]:
        return {
            "clip": {"floor": self.clip_floor},
            "pwl": {str(k): c.as_dict() for k, c in sorted(self.pwl.items())},
            "uniform": {str(k): c.as_dict() for k, c in sorted(self.uniform.items())},
            "consmax": self.consmax,
            "diagnostics": self.diagnostics,
            "logit_stats": self.logit_stats,
            "histogram": {"z_edges": self.hist.z_edges.tolist(), "z_counts": self.hist.z_counts.tolist(),
                          "e_edges": self.hist.e_edges.tolist(), "e_counts": self.hist.e_counts.tolist()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FitResult:
        h = d["histogram"]
        hist = pwl.LogitHistogram(np.asarray(h["z_edges"]), np.asarray(h["z_counts"]),
                                  np.asarray(h["e_edges"]), np.asarray(h["e_counts"]))
        return cls(hist, float(d["clip"]["floor"]),
                   {int(k): pwl.PwlCoeffs.from_dict(v) for k, v in d["pwl"].items()},
                   dict(d.get("diagnostics", {})), dict(d.get("logit_stats", {})),
                   {int(k): pwl.PwlCoeffs.from_dict(v) for k, v in d.get("uniform", {}).items()},
                   {k: float(v) for k, v in d["consmax"].items()})

    def run_params(self) -> dict[str, Any]:
        """The fitted coefficients, as the stage run's MLflow params."""
        fits = {**{f"pwl{k}": c for k, c in self.pwl.items()},
                **{f"pwl{k}_uniform": c for k, c in self.uniform.items()}}
        return {"clip.floor": self.clip_floor,
                **{f"consmax.{n}": v for n, v in self.consmax.items()},
                **{f"{m}.{n}": v for m, c in fits.items() for n, v in c.as_dict().items()}}

    def run_metrics(self) -> dict[str, float]:
        """Fit diagnostics and logit statistics, as the stage run's MLflow metrics."""
        return {**{f"{m}_{k}": v for m, d in self.diagnostics.items() for k, v in d.items()},
                **self.logit_stats}


def fit_all(columns: np.ndarray, cfg: PwlFit) -> FitResult:
    """Fit `clip` and every pwl<k> to the observed logits; diagnostics per method:
    exp_mse (density-weighted squared error to exp(z)) and tv (mean total-variation distance
    of the normalised weights from softmax's, 0..1)."""
    hist = pwl.histogram(columns, cfg.bins)
    floor = pwl.fit_clip(columns, cfg.min_floor)
    fits = {int(k): pwl.fit_pwl(hist, int(k), cfg.min_floor) for k in sorted(set(cfg.segments))}
    lo, hi = cfg.uniform_range               # [lo, hi]: exactly two values
    flat = pwl.uniform_histogram(lo, hi, bins=cfg.bins)
    uniform = {k: pwl.fit_pwl(flat, k, cfg.min_floor) for k in UNIFORM_SEGMENTS}
    diag = {"clip": {"tv": pwl.total_variation(columns, "clip", {"floor": floor})}}
    named = {**{f"pwl{k}": c for k, c in fits.items()},
             **{f"pwl{k}_uniform": c for k, c in uniform.items()}}
    for name, c in named.items():  # diagnostics on the observed logits, data-free fits too
        diag[name] = {"tv": pwl.total_variation(columns, "pwl", c.as_dict()),
                      "exp_mse": pwl.exp_mse(hist, c)}
    diag |= exp_free_diagnostics(columns, consmax := exp_free.fit_consmax(columns))
    z = columns - columns.max(axis=1, keepdims=True)
    stats = {"rows": int(columns.shape[0]), "frames": int(columns.shape[1]),
             "e_mean": float(columns.mean()), "e_std": float(columns.std()),
             "e_min": float(columns.min()), "e_max": float(columns.max()),
             "z_p01": float(np.quantile(z, 0.01)), "z_median": float(np.median(z)),
             "share_z_above_-2": float((z > -2).mean())}
    return FitResult(hist, floor, fits, diag, stats, uniform, consmax)


def exp_free_diagnostics(columns: np.ndarray, consmax: Mapping[str, float]
                         ) -> dict[str, dict[str, float]]:
    """tv of each exp-free form's weights from softmax's on the observed logits; for the forms
    that approximate exp (ibert, base2), the mean squared and the largest relative error of
    their exp against the exact one over every observed z = e - max e."""
    out = {"consmax": {"tv": pwl.total_variation(columns, "consmax", consmax)}}
    z = (columns - columns.max(axis=1, keepdims=True)).ravel()
    z = z[z > -exp_free.MAX_SHIFT * exp_free.LN2]  # below, both forms hold a constant floor
    for method in ("ibert", "base2"):
        got, ref = exp_free.approx_exp_np(method, z, {}), exp_free.exp_target(method, z, {})
        out[method] = {"tv": pwl.total_variation(columns, method, {}),
                       "exp_mse": float(np.mean((got - ref) ** 2)),
                       "exp_max_rel_err": float(np.max(np.abs(got - ref) / ref))}
    return out


def fit_logits(model: EcapaTdnn, data: SpeakerData, cfg: PwlFit, seed: int,
               progress: bool = True) -> tuple[FitResult, np.ndarray]:
    """The whole fitting step: logits of the baseline on training crops, then every fit."""
    cols = collect_logits(model, logit_sampler(data, cfg, seed), cfg.crops, cfg.max_columns,
                          seed, progress=progress)
    return fit_all(cols, cfg), cols


def load_fit(path: str | Path) -> FitResult:
    try:
        return FitResult.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a pwl_fit output ({exc})") from None


def fit_figure(fit_res: FitResult) -> Any:
    """fit.png, the pwl_fit stage's figure: each fitted approximation against exp over the
    observed z range, with the histogram; and clip's floor over the raw-logit histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = fit_res.hist
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"wspace": 0.45})
    zc = h.z_centres
    widths = np.diff(h.z_edges)
    axh = ax.twinx()
    axh.bar(zc, h.z_counts / h.z_counts.sum() / widths, width=widths, color="0.85", zorder=0)
    axh.set_ylabel("density of z (bars)")
    ax.set_zorder(axh.get_zorder() + 1)
    ax.patch.set_visible(False)
    z = np.linspace(h.z_edges[0], 0.0, 600)
    ax.plot(z, np.exp(z), "k", lw=2, label="exp(z)")
    for k, c in sorted(fit_res.pwl.items()):
        ax.plot(z, c.clipped(z), lw=1.2, label=f"pwl{k} (floor {c.floor:.3g})")
    for name, style in (("ibert", ":"), ("base2", "--")):
        if name in fit_res.diagnostics:
            ax.plot(z, exp_free.approx_exp_np(name, z, {}), style, lw=1.2, label=name)
    ax.set_xlabel("z = e - max_t e")
    ax.set_ylabel("value")
    ax.set_ylim(-0.05, 1.1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("fitted approximations of exp on the observed logits")
    ec, ew = 0.5 * (h.e_edges[1:] + h.e_edges[:-1]), np.diff(h.e_edges)
    ax2.bar(ec, h.e_counts / h.e_counts.sum() / ew, width=ew, color="0.85")
    ax2.axvline(fit_res.clip_floor, color="C3", label=f"clip floor {fit_res.clip_floor:.3g}")
    ax2.set_xlabel("raw attention logit e")
    ax2.set_ylabel("density")
    ax2.legend(fontsize=8)
    ax2.set_title("clip: raw logits floored, then normalised")
    return fig
