"""Intervals of the probe accuracies: a bootstrap of the probe speakers, paired across the
teacher and every student.

The observations are the probe-test utterances (every probing stage saves its answers,
predictions.csv), and the resampled unit is their speaker. Utterances of one speaker are not
independent observations: the paralinguistic probes are split by speaker, `group` is a
property of the speaker, and a probe that misjudges a voice misjudges most of its utterances.
Measured on the default corpus (teacher, 64 probe speakers of 10 utterances): the
within-speaker correlation of a correct answer is 0.21 for `group` (0.06 arousal, about 0 for
speaker and masked), and resampling speakers widens the `group` interval from +-0.051
(utterances) to +-0.086; utterance resampling would claim a precision the data do not have.

One Resampler per report (stream runtime.rng(seed, "bootstrap")) serves every model, so each
student's difference from the teacher (`delta_<q>`) and its share of the teacher's accuracy
(`accuracy_retention`) are paired: both models are scored on the same resampled speakers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slimaudio import runtime
from slimaudio.errors import DataError
from slimaudio.stats import BootstrapConfig, Resampler, Statistic

QUALITY = "mean_accuracy"      # the study's quality: the mean accuracy over the probe tasks
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


def speaker_resampler(utts: pd.DataFrame, boot: BootstrapConfig, seed: int) -> Resampler:
    """The study's one resampler: probe speakers drawn with replacement."""
    return Resampler.of_clusters(utts["speaker"].astype(str).to_numpy(), len(utts),
                                 boot.resamples, runtime.rng(seed, "bootstrap"), boot.level)


def model_columns(res: Resampler, model: Answers, ref: Answers,
                  tasks: Sequence[str]) -> dict[str, float]:
    """`q`, `q_lo`, `q_hi`, `delta_q` (model - reference, paired) with its interval, for
    every accuracy column q; `accuracy_retention` (model / reference) with its interval."""
    mine, theirs = stats_of(model, tasks), stats_of(ref, tasks)
    out: dict[str, float] = {}
    for q in qualities(tasks):
        iv, d = res.interval(mine[q]), res.difference(theirs[q], mine[q])
        out |= {q: iv.value, f"{q}_lo": iv.lo, f"{q}_hi": iv.hi, f"delta_{q}": d.value,
                f"delta_{q}_lo": d.lo, f"delta_{q}_hi": d.hi}
    r = res.interval(lambda w: mine[QUALITY](w) / theirs[QUALITY](w))
    out |= {RETENTION: r.value, f"{RETENTION}_lo": r.lo, f"{RETENTION}_hi": r.hi}
    return out


def interval_table(res: Resampler, models: Mapping[str, Answers], reference: str,
                   tasks: Sequence[str]) -> pd.DataFrame:
    """One row per model (index: its name), the columns of model_columns."""
    ref = models[reference]
    return pd.DataFrame({name: model_columns(res, a, ref, tasks)
                         for name, a in models.items()}).T


def check_matches(table: pd.DataFrame, ivs: pd.DataFrame, key: str, tasks: Sequence[str]) -> None:
    """The answers must give the accuracies the probing stages reported (else a
    predictions.csv is stale beside its metrics.json)."""
    for name, row in ivs.iterrows():
        have = table.loc[table[key] == name]
        if have.empty:
            raise DataError(f"{name}: probe answers but no row in the table")
        for q in qualities(tasks):
            if abs(float(have[q].iloc[0]) - float(row[q])) > MATCH_TOL:
                raise DataError(f"{name}: its saved probe answers give {q} {row[q]:.6f}, its "
                                f"metrics {float(have[q].iloc[0]):.6f}; re-run the stage that "
                                "probed it")
