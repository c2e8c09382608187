"""slimaudio.stats: the bootstrap agrees with closed forms and with the metrics it wraps."""

from __future__ import annotations

import numpy as np
import pytest

from slimaudio import metrics, stats


def test_unit_weights_reproduce_metrics_eer() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(3000) < 0.3
    scores = rng.normal(labels * 1.5, 1.0).round(2)  # ties included
    got = stats.weighted_eer(scores, labels, np.ones((2, labels.size)))
    assert got == pytest.approx([metrics.eer(scores, labels)] * 2, abs=1e-12)


def test_integer_weights_equal_repeated_trials() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(400) < 0.5
    scores = rng.normal(labels, 1.0)
    w = rng.integers(0, 3, size=(1, 400)).astype(float)
    rep = np.repeat(np.arange(400), w[0].astype(int))
    assert stats.weighted_eer(scores, labels, w)[0] == pytest.approx(
        metrics.eer(scores[rep], labels[rep]), abs=1e-12)


def test_mean_interval_matches_the_normal_closed_form() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, 4000)
    iv = stats.bootstrap(stats.weighted_mean(x), x.size, None, 2000, np.random.default_rng(3))
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert iv.value == pytest.approx(x.mean())
    assert iv.half_width == pytest.approx(1.96 * se, rel=0.1)
    assert not iv.excludes(x.mean())


def test_paired_intervals_are_narrower_on_correlated_data() -> None:
    rng = np.random.default_rng(4)
    shared = rng.normal(0.0, 1.0, 3000)           # what both systems get wrong alike
    a, b = shared + rng.normal(0, 0.1, 3000), shared + 0.05 + rng.normal(0, 0.1, 3000)
    paired = stats.paired(stats.weighted_mean(a), stats.weighted_mean(b), 3000, None, 1000,
                          np.random.default_rng(5))
    ia = stats.bootstrap(stats.weighted_mean(a), 3000, None, 1000, np.random.default_rng(6))
    ib = stats.bootstrap(stats.weighted_mean(b), 3000, None, 1000, np.random.default_rng(7))
    unpaired = np.hypot(ia.half_width, ib.half_width)
    assert paired.half_width < 0.25 * unpaired
    assert paired.excludes(0.0) and paired.value == pytest.approx(b.mean() - a.mean())


def test_clusters_widen_the_interval_of_clustered_data() -> None:
    rng = np.random.default_rng(8)
    clusters = np.repeat(np.arange(100), 30)
    x = rng.normal(0, 1, 100)[clusters] + rng.normal(0, 0.1, clusters.size)
    naive = stats.bootstrap(stats.weighted_mean(x), x.size, None, 800, np.random.default_rng(9))
    by_cluster = stats.bootstrap(stats.weighted_mean(x), x.size, clusters, 800,
                                 np.random.default_rng(9))
    assert by_cluster.half_width > 3 * naive.half_width


def test_weighted_macro_f1_matches_metrics() -> None:
    rng = np.random.default_rng(10)
    y = rng.integers(0, 5, 600)
    p = np.where(rng.random(600) < 0.7, y, rng.integers(0, 6, 600))
    got = stats.weighted_macro_f1(y, p, 6)(np.ones((1, 600)))[0]
    assert got == pytest.approx(metrics.classification_metrics(y, p, 6)["f1"])


def test_speaker_trial_weights() -> None:
    counts = np.array([[2.0, 0.0, 1.0]])
    w = stats.trial_weights(np.array([0, 0, 1, 2]), np.array([0, 2, 2, 1]), counts)
    assert w.tolist() == [[2.0, 2.0, 0.0, 0.0]]


@pytest.mark.parametrize(("lo", "hi", "want", "verdict"), [
    (0.2, 0.5, "above", "holds"), (-0.5, -0.2, "above", "does not hold"),
    (-0.1, 0.3, "above", "inconclusive"), (-0.5, -0.2, "below", "holds"),
    (0.2, 0.5, "below", "does not hold"), (float("nan"), 0.3, "below", "inconclusive")])
def test_judge_flips_with_the_interval(lo: float, hi: float, want: str, verdict: str) -> None:
    from slimaudio.studies.base import judge

    assert judge(lo, hi, 0.0, want) == verdict


def test_a_data_free_fit_differs_from_a_data_fit() -> None:
    """pwl fitted evenly on [-8, 0] (the paper's reader's fit) vs fitted to logits that sit
    near 0: each is the better fit on its own density."""
    from slimaudio.compress import pwl

    flat = pwl.uniform_histogram(-8.0, 0.0, 200)
    near0 = pwl.histogram(np.random.default_rng(0).normal(0, 0.5, (400, 50)))
    a, b = pwl.fit_pwl(flat, 2), pwl.fit_pwl(near0, 2)
    assert pwl.exp_mse(flat, a) < pwl.exp_mse(flat, b)
    assert pwl.exp_mse(near0, b) < pwl.exp_mse(near0, a)
    with pytest.raises(ValueError, match="lo < hi"):
        pwl.uniform_histogram(0.0, -1.0)


def test_weighted_min_dcf_matches_metrics_at_unit_weights() -> None:
    rng = np.random.default_rng(10)
    labels = rng.random(2000) < 0.4
    scores = rng.normal(labels * 2.0, 1.0).round(2)
    for p in (0.01, 0.05):
        got = stats.min_dcf_stat(scores, labels, p)(np.ones((1, labels.size)))[0]
        assert got == pytest.approx(metrics.min_dcf(scores, labels, p), abs=1e-12)


def test_trial_resampler_is_chunked_and_fast_on_100k_trials() -> None:
    rng = np.random.default_rng(11)
    spk = rng.integers(0, 200, size=(2, 100_000))
    labels = rng.random(100_000) < 0.5
    spk[1, labels] = spk[0, labels]
    scores = rng.normal(labels * 2.0, 1.0)
    res = stats.Resampler.of_trials(spk[0], spk[1], 1000, np.random.default_rng(12))
    iv = res.interval(stats.eer_stat(scores, labels))
    assert iv.value == pytest.approx(100 * metrics.eer(scores, labels))
    assert iv.lo < iv.value < iv.hi


def test_trial_stats_pair_models_on_one_set_of_speaker_resamples() -> None:
    from slimaudio.speaker.scoring import Trials
    from slimaudio.speaker.uncertainty import TrialStats

    rng = np.random.default_rng(13)
    spk = np.repeat(np.arange(40), 6)                     # 40 speakers x 6 utterances
    utts = [f"u{i}" for i in range(spk.size)]
    a, b = rng.integers(0, spk.size, (2, 4000))
    keep = a != b
    a, b = a[keep], b[keep]
    labels = (spk[a] == spk[b]).astype(np.int8)
    trials = Trials(labels, [utts[i] for i in a], [utts[i] for i in b])
    ts = TrialStats.build(trials, {u: str(s) for u, s in zip(utts, spk, strict=True)}, 500,
                          0.95, seed=0)
    base = rng.normal(labels * 1.5, 1.0)
    ref, new = ts.score(base), ts.score(base + rng.normal(0, 0.05, base.size))
    m, d = ts.metrics(ref), ts.deltas(ref, new)
    assert m["eer"] == pytest.approx(100 * metrics.eer(base, labels))
    assert m["eer_lo"] < m["eer"] < m["eer_hi"]
    assert d["delta_eer_lo"] <= d["delta_eer"] <= d["delta_eer_hi"]
    assert d["delta_eer_hi"] - d["delta_eer_lo"] < 0.5 * (m["eer_hi"] - m["eer_lo"])
    assert d["score_shift"] == pytest.approx(np.abs(new.scores - base).mean())


def test_intervals_print_with_signs_and_missing_values() -> None:
    from slimaudio.formatting import MISSING, interval

    assert interval(0.5, -0.25, 1.0, 2, sign=True) == "+0.50 [-0.25, +1.00]"
    assert interval(8.4, None, 10.0, 1) == f"8.4 [{MISSING}, 10.0]"
    assert interval(float("nan"), 0.0, 1.0) == MISSING
