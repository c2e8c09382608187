from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from slimaudio import metrics


def test_eer_hand_worked() -> None:
    # Perfectly separated: EER 0.
    assert metrics.eer(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 0.0
    # Perfectly inverted: EER 1.
    assert metrics.eer(np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])) == 1.0
    # One target below one non-target out of 4 each: FAR=FRR=0.25 at the crossing.
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.4, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    assert metrics.eer(s, y) == pytest.approx(0.25)


def test_eer_matches_roc_crossing_on_random_scores() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    s = rng.normal(size=4000) + 1.2 * y
    fpr, tpr, _ = skm.roc_curve(y, s)
    fnr = 1 - tpr
    i = np.nanargmin(np.abs(fnr - fpr))
    assert metrics.eer(s, y) == pytest.approx((fpr[i] + fnr[i]) / 2, abs=2e-3)
    # Ties and monotone transforms don't change it.
    assert metrics.eer(np.round(s, 6), y) == pytest.approx(metrics.eer(3 * s + 1, y))


def test_min_dcf_hand_worked_and_bounds() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.4, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # Best threshold at p=0.5: accept >=0.7 -> miss 1/4, fa 0 -> cost 0.125; normalised by 0.5.
    assert metrics.min_dcf(s, y, p_target=0.5) == pytest.approx(0.25)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(size=2000) + y
    v = metrics.min_dcf(s, y, 0.01)
    assert 0 < v <= 1.0  # never worse than the trivial system
    assert metrics.min_dcf(s, y, 0.05) <= 1.0


def test_det_curve_extremes() -> None:
    d = metrics.det_curve(np.array([0.2, 0.5, 0.5, 0.9]), np.array([0, 1, 0, 1]))
    assert d.far[0] == 1.0 and d.frr[0] == 0.0
    assert d.far[-1] == 0.0 and d.frr[-1] == 1.0
    assert np.all(np.diff(d.far) <= 0) and np.all(np.diff(d.frr) >= 0)


def test_det_curve_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        metrics.eer(np.array([0.1, 0.2]), np.array([1, 1]))


def test_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 6, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 6, 500))
    p[p == 5] = 4  # class 5 never predicted: precision 0 by convention
    got = metrics.classification_metrics(y, p, 6)
    assert got["f1"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    assert got["precision"] == pytest.approx(skm.precision_score(y, p, average="macro", zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, p, average="macro", zero_division=0))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    np.testing.assert_array_equal(metrics.confusion_matrix(y, p, 6), skm.confusion_matrix(y, p, labels=range(6)))


def test_collapsed_classifier_scores_low() -> None:
    y = np.arange(10).repeat(10)
    p = np.zeros(100, dtype=int)  # everything predicted as class 0
    got = metrics.classification_metrics(y, p, 10)
    assert got["accuracy"] == pytest.approx(0.1)
    assert got["f1"] < 0.05


def test_file_size(tmp_path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"x" * (3 * metrics.MIB))
    assert metrics.file_size(f) == {"size_bytes": 3 * metrics.MIB, "size_mib": 3.0}
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"12")
    assert metrics.file_size(tmp_path / "d")["size_bytes"] == 2
