"""The table's intervals: a speaker bootstrap of every EER and minDCF, paired with the
method's reference (before FT: the baseline; after FT: the fine-tuned control), and, with
several fine-tuning replicates, the replicates resampled too.

Before FT every method uses the same weights, so only the trial list is random. After FT the
training seed is random as well: with `ft.replicates` >= 2 the reported value is the mean over
replicates and each bootstrap resample also draws replicates (with replacement, the same
draw for every method, as replicate r of every method shares seed base.seed + r).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from slimaudio import stats
from slimaudio.speaker.uncertainty import Scored, TrialStats

METRICS = ("eer", "min_dcf")


def before_ft(ts: TrialStats, scores: Mapping[str, np.ndarray], reference: str
              ) -> dict[str, dict[str, float]]:
    """{method: eer/min_dcf_before_ft with _lo/_hi, delta_* vs `reference`}."""
    scored = {n: ts.score(s) for n, s in scores.items()}
    return {n: _suffixed(ts.metrics(m) | _deltas(ts, scored[reference], m), "_before_ft")
            for n, m in scored.items()}


def after_ft(ts: TrialStats, scores: Mapping[str, Sequence[np.ndarray]], reference: str,
             seed: int) -> dict[str, dict[str, float]]:
    """{method: eer/min_dcf_after_ft (replicate mean) with _lo/_hi, delta_* vs `reference`,
    and eer_after_ft_sd (the replicates' spread; NaN with one)}."""
    scored = {n: [ts.score(s) for s in reps] for n, reps in scores.items()}
    n_rep = len(next(iter(scored.values())))
    draw = stats.replicate_draw(len(ts.resampler.counts), n_rep, seed)
    pooled = {n: _pool(reps, draw) for n, reps in scored.items()}
    out = {}
    for n, (values, samples) in pooled.items():
        ref_v, ref_s = pooled[reference]
        rec: dict[str, Any] = {}
        for k in METRICS:
            rec |= stats.columns(k, stats.percentile(samples[k], values[k], ts.resampler.level))
            rec |= stats.columns(f"delta_{k}", stats.percentile(
                samples[k] - ref_s[k], values[k] - ref_v[k], ts.resampler.level))
        eers = [m.values["eer"] for m in scored[n]]
        rec["eer_sd"] = float(np.std(eers, ddof=1)) if n_rep > 1 else float("nan")
        out[n] = _suffixed(rec, "_after_ft")
    return out


def _pool(reps: Sequence[Scored], draw: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Replicate-mean values, and per resample b the mean over the replicates drawn in row b."""
    pooled = {k: stats.pool_replicates([m.values[k] for m in reps], [m.samples[k] for m in reps],
                                       draw) for k in METRICS}
    return {k: v for k, (v, _) in pooled.items()}, {k: s for k, (_, s) in pooled.items()}


def _deltas(ts: TrialStats, ref: Scored, m: Scored) -> dict[str, float]:
    return {k: v for k, v in ts.deltas(ref, m).items() if not k.startswith("score_shift")}


def _suffixed(rec: Mapping[str, float], suffix: str) -> dict[str, float]:
    """eer_lo -> eer_before_ft_lo: the stage's column names."""
    out = {}
    for k, v in rec.items():
        base, _, end = k.rpartition("_")
        out[f"{base}{suffix}_{end}" if end in ("lo", "hi", "sd") else f"{k}{suffix}"] = v
    return out
