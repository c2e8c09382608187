"""Intervals of verification metrics: a speaker bootstrap over one trial list.

Speakers are the resampled unit: every trial of a speaker shares its voice, so trials are not
independent and an utterance- or trial-level bootstrap would understate the noise. A target
trial weighs as often as its speaker is drawn, a non-target trial as the product of its two
speakers' draws (slimaudio.stats.trial_weights). One `TrialStats` holds one set of resamples,
so every model scored on it is compared pairwise: ΔEER has its own, narrower interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from slimaudio import runtime, stats
from slimaudio.speaker.scoring import Trials


@dataclass(frozen=True)
class TrialStats:
    labels: np.ndarray
    resampler: stats.Resampler

    @classmethod
    def build(cls, trials: Trials, speaker_of: Mapping[str, str], resamples: int,
              level: float, seed: int) -> TrialStats:
        enroll = np.array([speaker_of[u] for u in trials.enroll])
        test = np.array([speaker_of[u] for u in trials.test])
        res = stats.Resampler.of_trials(enroll, test, resamples,
                                        runtime.rng(seed, "bootstrap"), level)
        return cls(np.asarray(trials.labels).astype(bool), res)

    def score(self, scores: np.ndarray) -> Scored:
        """A model's trial scores with eer (percent) and min_dcf (p_target 0.01) on every
        resample, computed once so that any number of comparisons costs nothing more."""
        scores = np.asarray(scores, dtype=np.float64)
        stat = stats.verification_stat(scores, self.labels, 0.01)
        value = stat(np.ones((1, self.resampler.n)))[0]
        samples = self.resampler.samples(stat)
        return Scored(scores, {"eer": float(value[0]), "min_dcf": float(value[1])},
                      {"eer": samples[:, 0], "min_dcf": samples[:, 1]})

    def metrics(self, m: Scored) -> dict[str, float]:
        """eer and min_dcf, each with `_lo`/`_hi`."""
        out: dict[str, float] = {}
        for k, v in m.values.items():
            out.update(_flat(k, stats.percentile(m.samples[k], v, self.resampler.level)))
        return out

    def deltas(self, ref: Scored, m: Scored) -> dict[str, float]:
        """delta_eer, delta_min_dcf (m minus ref) with paired intervals, and score_shift: the
        mean |score change| per trial, a threshold-free sensitivity that resolves changes too
        small to move a single trial across the EER threshold."""
        level = self.resampler.level
        out: dict[str, float] = {}
        for k, v in m.values.items():
            iv = stats.percentile(m.samples[k] - ref.samples[k], v - ref.values[k], level)
            out.update(_flat(f"delta_{k}", iv))
        shift = np.abs(m.scores - ref.scores)
        out.update(_flat("score_shift", self.resampler.interval(stats.weighted_mean(shift))))
        return out


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray
    values: dict[str, float]
    samples: dict[str, np.ndarray]


def _flat(name: str, iv: stats.Interval) -> dict[str, float]:
    return stats.columns(name, iv)


def speakers_of(manifest: object) -> dict[str, str]:
    """{utt_id: speaker} from a prepared manifest (data/speakers/manifest.csv)."""
    m = manifest  # a DataFrame with utt_id and speaker columns
    return dict(zip(m["utt_id"].astype(str), m["speaker"].astype(str), strict=True))  # type: ignore[index]
