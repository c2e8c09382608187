"""Per-class undersampling and balanced class weights."""

from __future__ import annotations

import numpy as np
import pytest

from slimaudio.sampling import balanced_class_weights, class_counts, undersample


def _labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.permutation(np.repeat([0, 1, 2, 3], [500, 120, 40, 7]))


def test_undersample_caps_each_class_and_keeps_small_ones():
    y = _labels()
    idx = undersample(y, cap=100, seed=1)
    assert class_counts(y[idx], 4) == [100, 100, 40, 7]
    assert np.all(np.diff(idx) > 0)  # sorted, unique
    # small classes are kept whole
    assert set(np.flatnonzero(y == 3)) <= set(idx)


def test_undersample_is_seeded_and_none_keeps_all():
    y = _labels()
    a, b, c = (undersample(y, 100, s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(undersample(y, None, 1), np.arange(y.size))
    with pytest.raises(ValueError):
        undersample(y, 0, 1)


def test_undersample_choice_of_one_class_does_not_depend_on_others():
    y = _labels()
    keep = undersample(y, 100, 7)
    y2 = y.copy()
    y2[y2 == 1] = 2  # another class changes; class 0's choice must not
    keep2 = undersample(y2, 100, 7)
    np.testing.assert_array_equal(keep[y[keep] == 0], keep2[y2[keep2] == 0])


def test_undersample_draws_uniformly():
    y = np.zeros(1000, dtype=int)
    hits = np.zeros(1000)
    for s in range(200):
        hits[undersample(y, 100, s)] += 1
    # every item has probability 0.1 per draw: 20 expected hits
    assert hits.min() > 8 and hits.max() < 36 and abs(hits.mean() - 20) < 1e-9


def test_balanced_weights_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    y = _labels()
    ours = balanced_class_weights(y, 4)
    ref = compute_class_weight("balanced", classes=np.arange(4), y=y)
    np.testing.assert_allclose(ours, ref)
    # weighted counts are equal across classes
    counts = np.bincount(y)
    np.testing.assert_allclose(ours * counts, np.full(4, y.size / 4))


def test_balanced_weights_with_an_absent_class_and_bad_labels():
    w = balanced_class_weights([0, 0, 2], 3)
    np.testing.assert_allclose(w, [0.75, 0.0, 1.5])
    with pytest.raises(ValueError):
        balanced_class_weights([0, 3], 3)
