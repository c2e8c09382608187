"""Intervals of the probe accuracies: a bootstrap of the probe speakers, paired across the
teacher and every student.

The observations are the probe-test utterances (every probing stage saves its answers,
predictions.csv), and the resampled unit is their speaker. Utterances of one speaker are not
independent observations: the paralinguistic probes are split by speaker, `group` is a
property of the speaker, and a probe that misjudges a voice misjudges most of its utterances:
utterance resampling would claim a precision the data do not have (docs/measurements.md).

One Resampler per report (stream runtime.rng(seed, "bootstrap")) serves every model, so each
student's difference from the teacher (`delta_<q>`) and its share of the teacher's accuracy
(`accuracy_retention`) are paired: both models are scored on the same resampled speakers.

Training replicates (distill_student.replicates): a student's accuracy also depends on its
training seed, about as much as on the speakers (docs/measurements.md). With R >= 2
replicates a student's value is their mean and each resample b also draws R of its
replicates with replacement (row b of `stats.replicate_draw`, the same for every student, as
replicate r of every student shares seed base.seed + r; PWL's fine-tuning replicates are
pooled the same way), so the interval holds the seed's noise as well as the speakers'. With
one replicate nothing is drawn and the intervals are those of the single run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slimaudio import runtime, stats
from slimaudio.errors import DataError
from slimaudio.schemas.base import Bootstrap
from slimaudio.stats import Interval, Resampler, Statistic, percentile
from slimaudio.studies.distill.data import QUALITY
from slimaudio.studies.distill.data import QUALITY_SD as SD

RETENTION = "accuracy_retention"
MATCH_TOL = 1e-9               # answers vs the accuracy the probing stage reported


@dataclass(frozen=True)
class Answers:
    """One model's probe answers over the probe utterances, one row per task."""

    correct: np.ndarray  # [n_tasks, n_utts] 1.0 where right (0 off the task's test set)
    test: np.ndarray     # [n_tasks, n_utts] bool: a probe-test utterance of the task


def qualities(tasks: Sequence[str]) -> list[str]:
    """The table's accuracy columns, in order."""
    return [*(f"acc_{t}" for t in tasks), QUALITY]


def answers(pred: pd.DataFrame, tasks: Sequence[str], n_utts: int, where: str) -> Answers:
    """predictions.csv (probes.predictions_frame) as Answers; `where` names it in errors."""
    correct = np.zeros((len(tasks), n_utts))
    test = np.zeros((len(tasks), n_utts), dtype=bool)
    for i, t in enumerate(tasks):
        sub = pred[pred["task"] == t]
        rows = sub["row"].to_numpy(dtype=np.int64)
        if sub.empty or rows.min() < 0 or rows.max() >= n_utts:
            raise DataError(f"{where}: no answers of task {t!r} for the {n_utts} probe "
                            "utterances of data/distill (re-run the stage that probed it)")
        test[i, rows] = True
        correct[i, rows] = (sub["label"].to_numpy() == sub["predicted"].to_numpy())
    return Answers(correct, test)


def task_stat(a: Answers, i: int) -> Statistic:
    """Accuracy on task i under utterance weights [b, n_utts]."""
    m = a.test[i]
    c = a.correct[i, m]

    def stat(w: np.ndarray) -> np.ndarray:
        # a resample without any test speaker of the task has no accuracy: NaN, dropped
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w[:, m] @ c) / w[:, m].sum(axis=1)

    return stat


def stats_of(a: Answers, tasks: Sequence[str]) -> dict[str, Statistic]:
    """Every accuracy column's statistic; the mean is over tasks, as the table's."""
    per_task = [task_stat(a, i) for i in range(len(tasks))]
    out = {f"acc_{t}": s for t, s in zip(tasks, per_task, strict=True)}
    out[QUALITY] = lambda w: np.mean([s(w) for s in per_task], axis=0)
    return out


def speaker_resampler(utts: pd.DataFrame, boot: Bootstrap, seed: int) -> Resampler:
    """The study's one resampler: probe speakers drawn with replacement."""
    return Resampler.of_clusters(utts["speaker"].astype(str).to_numpy(), len(utts),
                                 boot.resamples, runtime.rng(seed, "bootstrap"), boot.level)


@dataclass(frozen=True)
class Pooled:
    """A model's accuracies over its replicates: the mean, and per resample the mean over the
    replicates that resample draws."""

    values: dict[str, float]         # per accuracy column
    samples: dict[str, np.ndarray]   # per accuracy column, [n_boot]
    sd: float                        # the replicates' sd of the mean accuracy (NaN with one)


def pool(res: Resampler, reps: Sequence[Answers], tasks: Sequence[str],
         draw: np.ndarray) -> Pooled:
    """One model's replicates (a single one for the teacher) pooled on `res` and `draw`."""
    if len(reps) > 1 and draw.shape[1] != len(reps):
        raise DataError(f"{len(reps)} replicates but the draw is of {draw.shape[1]}")
    per = [stats_of(a, tasks) for a in reps]
    ones = np.ones((1, res.n))
    own = {q: [float(s[q](ones)[0]) for s in per] for q in qualities(tasks)}
    pooled = {q: stats.pool_replicates(own[q], [res.samples(s[q]) for s in per], draw)
              for q in own}
    values, samples = {q: v for q, (v, _) in pooled.items()}, {q: x for q, (_, x) in pooled.items()}
    sd = float(np.std(own[QUALITY], ddof=1)) if len(reps) > 1 else float("nan")
    return Pooled(values, samples, sd)


def model_columns(model: Pooled, ref: Pooled, tasks: Sequence[str],
                  level: float) -> dict[str, float]:
    """`q`, `q_lo`, `q_hi`, `delta_q` (model - reference, paired) with its interval, for
    every accuracy column q; `accuracy_retention` (model / reference) with its interval; the
    replicates' sd of the mean accuracy."""
    out: dict[str, float] = {}
    for q in qualities(tasks):
        iv = percentile(model.samples[q], model.values[q], level)
        d = percentile(model.samples[q] - ref.samples[q], model.values[q] - ref.values[q], level)
        out |= _flat(q, iv) | _flat(f"delta_{q}", d)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = percentile(model.samples[QUALITY] / ref.samples[QUALITY],
                       model.values[QUALITY] / ref.values[QUALITY], level)
    return out | _flat(RETENTION, r) | {SD: model.sd}


def _flat(name: str, iv: Interval) -> dict[str, float]:
    return stats.columns(name, iv)


def interval_table(res: Resampler, models: Mapping[str, Answers | Sequence[Answers]],
                   reference: str, tasks: Sequence[str], draw: np.ndarray | None = None
                   ) -> pd.DataFrame:
    """One row per model (index: its name), the columns of model_columns; a model's
    replicates (a single Answers: one) pooled with `draw` (stats.replicate_draw; None: every model
    has one replicate)."""
    if draw is None:
        draw = np.zeros((len(res.counts), 1), dtype=np.int64)
    pooled = {name: pool(res, [reps] if isinstance(reps, Answers) else reps, tasks, draw)
              for name, reps in models.items()}
    ref = pooled[reference]
    return pd.DataFrame({name: model_columns(p, ref, tasks, res.level)
                         for name, p in pooled.items()}).T


def check_matches(table: pd.DataFrame, ivs: pd.DataFrame, key: str, tasks: Sequence[str]) -> None:
    """The answers must give the accuracies the probing stages reported (else a
    predictions.csv is stale beside its metrics.json)."""
    for name, row in ivs.iterrows():
        have = table.loc[table[key] == name]
        if have.empty:
            raise DataError(f"{name}: probe answers but no row in the table")
        for q in [*qualities(tasks), *([SD] if SD in table.columns else [])]:
            mine, theirs = float(row[q]), float(have[q].iloc[0])
            if math.isnan(mine) and math.isnan(theirs):
                continue  # no sd with one replicate
            if not abs(theirs - mine) <= MATCH_TOL:
                raise DataError(f"{name}: its saved probe answers give {q} {row[q]:.6f}, its "
                                f"metrics {float(have[q].iloc[0]):.6f}; re-run the stage that "
                                "probed it")
