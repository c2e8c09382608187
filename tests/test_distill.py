"""Distillation study: frontier, regression, student grid, probes, params (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from slimaudio import config
from slimaudio.errors import ParamError
from slimaudio.studies.distill import grid, pareto, probes, regression

LEVELS = {"arch": ["small", "large"], "width": [0.5, 0.75, 1.0], "bottleneck": [16, 64, 192],
          "pool": ["gap", "flatten"], "qat": [False, True], "frontend": ["outside", "inside"]}


# ------------------------------------------------------------------------------ frontier


def test_frontier_on_hand_made_points() -> None:
    #                 A    B    C    D    E    F
    lat = np.array([1.0, 2.0, 3.0, 2.5, 4.0, 1.0])
    acc = np.array([0.5, 0.7, 0.9, 0.6, 0.9, 0.4])
    # D is beaten by B (faster and better); E by C (same accuracy, faster); F by A (same
    # latency, worse). A, B, C form the staircase.
    assert pareto.frontier(lat, acc).tolist() == [True, True, True, False, False, False]
    assert pareto.frontier_order(lat, acc).tolist() == [0, 1, 2]


def test_frontier_keeps_exact_duplicates_and_single_points() -> None:
    assert pareto.frontier([1.0, 1.0], [0.5, 0.5]).tolist() == [True, True]
    assert pareto.frontier([3.0], [0.1]).tolist() == [True]
    with pytest.raises(ValueError):
        pareto.frontier([1.0, np.nan], [0.5, 0.5])


# ------------------------------------------------------------------------------ regression


def test_regression_recovers_known_weights_on_standardised_inputs() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 2, 60), rng.choice([0.5, 0.75, 1.0], 60),
                         rng.normal(5, 3, 60)]).astype(float)
    z = (x - x.mean(0)) / x.std(0)
    true_w = np.array([2.0, -0.5, 0.25])
    y = 7.0 + z @ true_w + rng.normal(0, 1e-3, 60)
    f = regression.fit(x, y, ["a", "b", "c"])
    np.testing.assert_allclose(f.weights, true_w, atol=5e-3)
    assert f.intercept == pytest.approx(7.0, abs=5e-3)
    assert f.r2 > 0.999 and f.dof == 60 - 4


def test_regression_gives_a_constant_column_zero_weight() -> None:
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    y = 3.0 * (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
    f = regression.fit(x, y, ["varies", "constant"])
    assert f.weights[1] == 0.0
    assert f.weights[0] == pytest.approx(3.0)


# ------------------------------------------------------------------------------ grid


def test_full_grid_is_frills_144_with_stable_ids() -> None:
    g = grid.full_grid(LEVELS)
    assert len(g) == 144
    assert list(g)[:2] == ["s000", "s001"]
    assert g["s000"] == {"arch": "small", "width": 0.5, "bottleneck": 16, "pool": "gap",
                         "qat": False, "frontend": "outside"}
    assert g["s143"]["arch"] == "large" and g["s143"]["frontend"] == "inside"
    assert grid.is_full(g, LEVELS)


def test_fractional_design_covers_every_level_and_uses_grid_ids() -> None:
    d = grid.fractional(LEVELS, 8, seed=0, restarts=4)
    assert len(d) == 8
    assert grid.covers_all_levels(d, LEVELS) == []
    full = grid.full_grid(LEVELS)
    assert all(full[sid] == hp for sid, hp in d.items())
    assert not grid.is_full(d, LEVELS)
    x, _ = grid.encode(d)
    assert np.linalg.matrix_rank(np.column_stack([np.ones(8), x])) == 7  # estimable main effects
    with pytest.raises(ParamError):
        grid.fractional(LEVELS, 2)


def test_step_cost_orders_students_by_training_compute() -> None:
    g = grid.full_grid(LEVELS)
    costs = {sid: grid.step_cost(s) for sid, s in g.items()}
    small, large = g["s000"], g["s143"]  # small w0.5 f32 outside; large w1.0 qat inside
    assert costs["s143"] > 3 * costs["s000"]
    assert grid.step_cost({**small, "qat": True}) > grid.step_cost(small)
    assert grid.step_cost({**small, "frontend": "inside"}) > grid.step_cost(small)
    assert grid.step_cost({**large, "width": 0.75}) < grid.step_cost(large)
    with pytest.raises(ParamError):
        grid.step_cost({**small, "arch": "huge"})


def test_compute_aware_design_is_cheaper_and_still_covers_every_level() -> None:
    plain = grid.fractional(LEVELS, 8, seed=0, restarts=4, cost_weight=0.0)
    cheap = grid.fractional(LEVELS, 8, seed=0, restarts=4, cost_weight=1.0)

    def cost(d: dict) -> float:
        return sum(grid.step_cost(s) for s in d.values())

    def logdet(d: dict) -> float:
        return grid._logdet(grid.standardised(d, LEVELS))

    assert grid.covers_all_levels(cheap, LEVELS) == []
    assert cost(cheap) < 0.8 * cost(plain)
    assert logdet(cheap) <= logdet(plain) + 1e-9   # the plain design is the more informative
    assert np.isfinite(logdet(cheap))


@pytest.mark.parametrize("design", ["fractional", "full"])
def test_student_group_files_are_what_the_generator_writes(repo, design: str) -> None:
    """conf/students/<design>.yaml is generated, never edited: regenerate it and compare."""
    levels = config.read_yaml(repo / "conf" / "config.yaml")["distill_grid"]["levels"]
    text = grid.group_file(levels, design)
    assert (repo / "conf" / "students" / f"{design}.yaml").read_text() == text
    assert text.startswith("# @package distill_grid.students\n")
    assert yaml.safe_load(text) == grid.design(levels, design)


def test_default_params_train_at_least_8_students_covering_every_level(repo) -> None:
    merged = config.resolve(repo / "params.yaml")
    students = merged["distill_grid"]["students"]
    assert len(students) >= 8
    assert grid.covers_all_levels(students, merged["distill_grid"]["levels"]) == []


def test_paper_profile_requires_and_selects_the_full_grid() -> None:
    paper = config.compose(["profile=paper"])
    assert paper["distill_select"]["require_full_grid"] is True
    assert grid.is_full(paper["distill_grid"]["students"], paper["distill_grid"]["levels"])


def test_a_bad_student_entry_is_named(repo, tmp_path) -> None:
    raw = config.read_yaml(repo / "params.yaml")
    sid = next(iter(raw["distill_grid"]["students"]))
    raw["distill_grid"]["students"][sid]["pool"] = "max"
    with pytest.raises(ParamError, match=f"distill_grid.students.{sid}.pool"):
        config.validate(raw)
    raw["distill_grid"]["students"] = {"student1": raw["distill_grid"]["students"][sid]}
    with pytest.raises(ParamError, match="s007"):
        config.validate(raw)


# ------------------------------------------------------------------------------ probes


def _utts(n_spk: int = 6, per_spk: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_spk):
        for u in range(per_spk):
            rows.append({"utt_id": f"spk{s}-u{u}", "speaker": f"spk{s}",
                         "masked": int(rng.random() < 0.5), "arousal": int(rng.random() < 0.5),
                         "group": "AB"[s % 2]})
    return probes.assign_roles(pd.DataFrame(rows), seed)


def test_probe_roles_split_speakers_for_labels_and_utterances_for_speaker_id() -> None:
    u = _utts()
    tr_spk = set(u.loc[u.role_label == "train", "speaker"])
    te_spk = set(u.loc[u.role_label == "test", "speaker"])
    assert tr_spk and te_spk and not tr_spk & te_spk
    for _, g in u.groupby("speaker"):
        assert set(g.role_speaker) == {"train", "test"}


def test_probes_read_linearly_encoded_labels_and_fail_on_noise() -> None:
    u = _utts(n_spk=8, per_spk=10)
    rng = np.random.default_rng(1)
    spk = u["speaker"].str[3:].astype(int).to_numpy()
    emb = np.column_stack([np.eye(8)[spk] * 1.5, u["masked"] * 4.0, u["arousal"] * 4.0,
                           (u["group"] == "A") * 4.0]) + rng.normal(0, 0.3, (len(u), 11))
    res = probes.evaluate(emb, u, probes.TASKS)
    assert all(r.accuracy > 0.9 for r in res.values()), res
    noise = probes.evaluate(rng.normal(size=(len(u), 11)), u, ["masked"])
    assert noise["masked"].accuracy < 0.85
    cols = probes.accuracy_columns(res)
    assert cols["mean_accuracy"] == pytest.approx(np.mean([r.accuracy for r in res.values()]))
    with pytest.raises(ParamError):
        probes.evaluate(emb, u, ["emotion"])


def test_probe_with_one_training_class_is_the_majority_rule() -> None:
    r = probes.probe(np.zeros((3, 2)), np.array(["a"] * 3), np.zeros((4, 2)),
                     np.array(["a", "a", "b", "b"]))
    assert r.accuracy == 0.5 and r.n_classes == 1


def test_utterance_embeddings_average_patches() -> None:
    emb = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    out = probes.utterance_embeddings(emb, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(out, [[2.0, 1.0], [5.0, 5.0]])


# ------------------------------------------------------------------------------ targets


def _data_with_targets(targets: np.ndarray):
    from types import SimpleNamespace

    from slimaudio.studies.distill.data import target_stats

    mu, sd = target_stats(targets)
    return SimpleNamespace(train_targets=targets,
                           info={"target_mean": mu.tolist(), "target_std": sd.tolist()})


def test_l2_targets_ignore_embedding_length_and_are_standardised() -> None:
    from slimaudio.studies.distill.students import standardised_targets

    rng = np.random.default_rng(0)
    t = rng.normal(size=(200, 8))
    scaled = t * rng.uniform(0.2, 5.0, size=(200, 1))      # same directions, other lengths
    y, y_scaled = (standardised_targets(_data_with_targets(a), l2=True) for a in (t, scaled))
    np.testing.assert_allclose(y, y_scaled, atol=1e-5)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1.0, atol=1e-4)
    # without l2 the length is part of the target
    raw, raw_scaled = (standardised_targets(_data_with_targets(a)) for a in (t, scaled))
    assert not np.allclose(raw, raw_scaled, atol=1e-2)


def test_choose_applies_the_latency_and_size_budgets() -> None:
    from slimaudio.studies.distill.rules import choose

    df = pd.DataFrame([
        {"student": "teacher", "latency_ms": 10.0, "size_bytes": 1000, "mean_accuracy": 0.8,
         "on_frontier": False},
        {"student": "fast_big", "latency_ms": 0.5, "size_bytes": 600, "mean_accuracy": 0.7,
         "on_frontier": True},
        {"student": "fast_small", "latency_ms": 0.4, "size_bytes": 300, "mean_accuracy": 0.6,
         "on_frontier": True},
        {"student": "slow", "latency_ms": 2.0, "size_bytes": 100, "mean_accuracy": 0.75,
         "on_frontier": True},
    ])
    assert choose(df, 0.1)[0] == "fast_big"                 # latency budget only
    sid, how = choose(df, 0.1, 0.4)
    assert sid == "fast_small" and "size <= 0.4" in how     # the size budget rules out fast_big
    sid, how = choose(df, 0.01, 0.4)                        # nobody is 100x faster
    assert sid == "fast_small" and how.startswith("no frontier student")


def test_choice_holds_only_what_decides_the_final_training() -> None:
    from slimaudio.studies.distill.selection import Selection

    students = {"s001": {"arch": "small", "width": 0.5, "bottleneck": 16, "pool": "gap",
                         "qat": False, "frontend": "outside"}}

    def sel(latency: float) -> Selection:
        df = pd.DataFrame([{"student": "s001", "latency_ms": latency, "mean_accuracy": 0.5}])
        return Selection(df, "s001", f"within {latency} ms")

    # a re-timing that keeps the choice must leave choice.json (distill_final's dep) unchanged
    assert sel(0.31).choice(students) == sel(0.29).choice(students) == {
        "student": "s001", "hyperparameters": students["s001"]}


def test_the_report_refuses_a_final_student_trained_for_another_choice(tmp_path) -> None:
    import json

    from slimaudio.errors import DataError
    from slimaudio.studies.distill.final import read_final

    hp = {"arch": "small", "width": 0.5, "bottleneck": 16, "pool": "gap", "qat": False,
          "frontend": "outside"}
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"student": "s001", "hyperparameters": hp, "metrics": {}}))
    assert read_final(tmp_path, {"student": "s001", "hyperparameters": hp})["student"] == "s001"
    with pytest.raises(DataError, match="re-run distill_final"):
        read_final(tmp_path, {"student": "s002", "hyperparameters": hp})
    with pytest.raises(DataError, match="re-run distill_final"):
        read_final(tmp_path, {"student": "s001", "hyperparameters": {**hp, "width": 0.75}})
    with pytest.raises(DataError, match="run the distill_final stage"):
        read_final(tmp_path / "nowhere", {"student": "s001", "hyperparameters": hp})
