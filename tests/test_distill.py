"""Distillation study: frontier, regression, student grid, probes, accuracy intervals,
params (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from slimaudio import compose as composer
from slimaudio import config, stats
from slimaudio.errors import DataError, ParamError
from slimaudio.schemas.base import Bootstrap
from slimaudio.spec import build
from slimaudio.stats import Resampler
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


def test_regression_leaves_a_constant_column_out() -> None:
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    y = 3.0 * (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
    f = regression.fit(x, y, ["varies", "constant"])
    assert f.varies.tolist() == [True, False]
    assert np.isnan(f.weights[1]) and np.isnan(f.se[1]) and np.isnan(f.lo[1])
    assert f.weights[0] == pytest.approx(3.0)
    assert f.dof == 10 - 2          # intercept and the varying column


def _factorial(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """A replicated 2x2 factorial (x in 0/1, so each standardised column is exactly +-1) with
    y = 1 + 2 z1 - 0.5 z2 + noise * z1 z2: the 'noise' is the interaction column, orthogonal
    to the intercept and both main effects, so the residuals are exactly noise * z1 z2."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 2, dtype=float)
    z = 2 * x - 1
    return x, 1.0 + 2.0 * z[:, 0] - 0.5 * z[:, 1] + noise * z[:, 0] * z[:, 1]


def test_regression_standard_errors_match_the_closed_form() -> None:
    from scipy.stats import t

    x, y = _factorial(0.1)
    f = regression.fit(x, y, ["a", "b"], level=0.95)
    np.testing.assert_allclose(f.weights, [2.0, -0.5], atol=1e-12)
    assert f.dof == 8 - 3
    # D'D = 8 I, RSS = 8 * 0.1^2 -> s^2 = 0.08 / 5, SE = sqrt(s^2 / 8) for both weights
    se = np.sqrt(0.08 / 5 / 8)
    np.testing.assert_allclose(f.se, [se, se], rtol=1e-10)
    half = t.ppf(0.975, 5) * se
    np.testing.assert_allclose(f.lo, [2.0 - half, -0.5 - half], rtol=1e-10)
    np.testing.assert_allclose(f.hi, [2.0 + half, -0.5 + half], rtol=1e-10)
    # and the general formula on a non-orthogonal design: sqrt(diag(s^2 (D'D)^-1))
    rng = np.random.default_rng(3)
    x2 = rng.normal(size=(12, 3)) @ np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    y2 = x2 @ [1.0, -2.0, 0.5] + rng.normal(0, 0.2, 12)
    g = regression.fit(x2, y2, ["a", "b", "c"])
    d = np.column_stack([np.ones(12), (x2 - x2.mean(0)) / x2.std(0)])
    coef, *_ = np.linalg.lstsq(d, y2, rcond=None)
    r = y2 - d @ coef
    ref = np.sqrt(np.diag(r @ r / (12 - 4) * np.linalg.inv(d.T @ d)))[1:]
    np.testing.assert_allclose(g.se, ref, rtol=1e-10)
    assert g.dof == 8


def test_regression_has_no_interval_without_residual_dof_or_when_aliased() -> None:
    x, y = _factorial(0.1)
    exact = regression.fit(x[:3], y[:3], ["a", "b"])          # 3 students, 3 coefficients
    assert exact.dof == 0 and np.isnan(exact.se).all() and np.isnan(exact.lo).all()
    aliased = regression.fit(np.column_stack([x, x[:, 0]]), y, ["a", "b", "a_again"])
    assert np.isnan(aliased.se).all()                         # not separately estimable
    assert aliased.dof == 8 - 3                               # rank, not column count


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


def test_default_design_leaves_at_least_3_residual_dof_and_covers_the_varied_levels() -> None:
    merged = composer.compose([])
    students, levels = merged["distill_grid"]["students"], merged["distill_grid"]["levels"]
    fixed = grid.fixed_factors(students)
    assert fixed == grid.DEFAULT_FIXED
    held = {**levels, **{f: [v] for f, v in fixed.items()}}
    assert grid.covers_all_levels(students, held) == []
    x, names = grid.encode(students)
    f = regression.fit(x, np.arange(len(students), dtype=float), names)
    assert f.dof == len(students) - (len(grid.FACTORS) - len(fixed) + 1) >= 3
    assert int(f.varies.sum()) == len(grid.FACTORS) - len(fixed)


def test_a_fixed_factor_keeps_its_level_and_the_others_stay_covered() -> None:
    d = grid.fractional(LEVELS, 7, seed=0, restarts=2, fixed={"arch": "small", "qat": False})
    assert {s["arch"] for s in d.values()} == {"small"} and {s["qat"] for s in d.values()} == {False}
    assert grid.fixed_factors(d) == {"arch": "small", "qat": False}
    assert grid.covers_all_levels(d, {**LEVELS, "arch": ["small"], "qat": [False]}) == []
    full = grid.full_grid(LEVELS)
    assert all(full[sid] == hp for sid, hp in d.items())      # ids of the full grid
    with pytest.raises(ParamError, match="cannot fix"):
        grid.fractional(LEVELS, 7, fixed={"arch": "huge"})
    assert grid.parse_fix(["arch=small", "width=0.5"]) == {"arch": "small", "width": 0.5}
    assert grid.parse_fix(["none"]) == {} and grid.parse_fix(None) == grid.DEFAULT_FIXED


def test_check_grid_notes_the_factors_the_design_holds() -> None:
    from slimaudio.schemas.distill import DistillGrid
    from slimaudio.studies.distill.selection import check_grid

    students = grid.fractional(LEVELS, 7, seed=0, restarts=2, fixed={"arch": "small"})
    notes = check_grid(build(DistillGrid, {"levels": LEVELS, "students": students}),
                       require_full=False)
    assert notes == ["held at one level by the design, so without a regression weight: "
                     "arch=small"]


def test_paper_profile_requires_and_selects_the_full_grid() -> None:
    paper = composer.compose(["profile=paper"])
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
    from slimaudio.studies.distill.assemble import read_final

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


# ------------------------------------------------------------------------------ intervals


def _answers_frame(utts: pd.DataFrame, right: dict[str, np.ndarray]) -> pd.DataFrame:
    """A predictions.csv frame: each task's probe-test rows, right where `right` says."""
    parts = []
    for task, ok in right.items():
        rows = np.flatnonzero(utts[probes.ROLE_COLUMN[task]].to_numpy() == "test")
        label = utts[probes.LABEL_COLUMN[task]].astype(str).to_numpy()[rows]
        parts.append(pd.DataFrame({"task": task, "row": rows, "label": label,
                                   "predicted": np.where(ok[rows], label, "wrong")}))
    return pd.concat(parts, ignore_index=True)


def test_probe_answers_are_saved_read_back_and_give_the_accuracy(tmp_path) -> None:
    from slimaudio.studies.distill import intervals

    u = _utts(n_spk=8, per_spk=10)
    rng = np.random.default_rng(1)
    spk = u["speaker"].str[3:].astype(int).to_numpy()
    emb = np.column_stack([np.eye(8)[spk], u["masked"] * 1.0]) + rng.normal(0, 0.8, (len(u), 9))
    res = probes.evaluate(emb, u, ["speaker", "masked"])
    for r in res.values():
        assert len(r.rows) == r.n_test and np.mean(r.truth == r.predicted) == r.accuracy
    probes.predictions_frame(res).to_csv(tmp_path / "p.csv", index=False)
    back = probes.read_predictions(tmp_path / "p.csv", "distill_student@s000")
    a = intervals.answers(back, ["speaker", "masked"], len(u), "p.csv")
    for i, t in enumerate(["speaker", "masked"]):
        assert intervals.task_stat(a, i)(np.ones((1, len(u))))[0] == pytest.approx(res[t].accuracy)
    with pytest.raises(DataError, match="run the distill_targets stage"):
        probes.read_predictions(tmp_path / "none.csv", "distill_targets")
    with pytest.raises(DataError, match="no answers of task 'group'"):
        intervals.answers(back, ["group"], len(u), "p.csv")


def _boot(resamples: int = 400) -> Bootstrap:
    return Bootstrap(resamples=resamples, level=0.95)


def test_accuracy_intervals_pair_students_with_the_teacher_over_speakers() -> None:
    from slimaudio.studies.distill import intervals

    u = _utts(n_spk=24, per_spk=10)
    tasks = ["speaker", "group"]
    rng = np.random.default_rng(0)
    hard = rng.random(24) < 0.3                       # speakers both models get wrong
    spk = u["speaker"].str[3:].astype(int).to_numpy()
    base = ~hard[spk] & (rng.random(len(u)) < 0.9)
    student = base & (rng.random(len(u)) < 0.95)      # the teacher's answers, a few lost
    models = {name: intervals.answers(_answers_frame(u, {t: ok for t in tasks}), tasks,
                                      len(u), name)
              for name, ok in (("teacher", base), ("student", student))}
    res = intervals.speaker_resampler(u, _boot(), seed=0)
    assert res.counts.shape == (400, 24)              # speakers are the resampled unit
    ivs = intervals.interval_table(res, models, "teacher", tasks)
    t, s = ivs.loc["teacher"], ivs.loc["student"]
    assert t["delta_mean_accuracy"] == t["delta_mean_accuracy_lo"] == 0.0
    assert t["accuracy_retention"] == pytest.approx(1.0)
    assert s["delta_mean_accuracy"] == pytest.approx(s["mean_accuracy"] - t["mean_accuracy"])
    assert s["mean_accuracy_lo"] < s["mean_accuracy"] < s["mean_accuracy_hi"]
    paired = s["delta_mean_accuracy_hi"] - s["delta_mean_accuracy_lo"]
    unpaired = (s["mean_accuracy_hi"] - s["mean_accuracy_lo"]
                + t["mean_accuracy_hi"] - t["mean_accuracy_lo"]) / 2
    assert paired < 0.5 * unpaired                    # shared hard speakers cancel in the pair
    assert s["delta_mean_accuracy_hi"] < 0            # the student loses some answers
    # whole speakers right or wrong: resampling utterances would understate the uncertainty
    per_utt = Resampler.of_clusters(None, len(u), 400, np.random.default_rng(0))
    stat = intervals.stats_of(models["teacher"], tasks)["acc_group"]
    assert per_utt.interval(stat).half_width < 0.8 * res.interval(stat).half_width


def _report_dirs(tmp_path) -> tuple[pd.DataFrame, list[str], tuple]:
    """8 probe speakers x 10 utterances, two tasks, and the data/, models/s000 and final/
    folders a report reads (probe_utts.csv written)."""
    u = _utts(n_spk=8, per_spk=10)
    data, grid_dir, final_dir = tmp_path / "data", tmp_path / "models", tmp_path / "final"
    for d in (data, grid_dir / "s000", final_dir):
        d.mkdir(parents=True)
    u.to_csv(data / "probe_utts.csv", index=False)
    return u, ["speaker", "masked"], (data, grid_dir, final_dir)


def test_the_report_merges_intervals_and_refuses_stale_answers(tmp_path) -> None:
    from slimaudio.studies.distill.assemble import with_intervals
    from slimaudio.studies.distill.data import PREDICTIONS, TEACHER_PREDICTIONS

    u, tasks, (data, grid_dir, final_dir) = _report_dirs(tmp_path)
    rng = np.random.default_rng(2)
    oks = {"teacher": rng.random(len(u)) < 0.8, "s000": rng.random(len(u)) < 0.6,
           "final": rng.random(len(u)) < 0.7}
    paths = {"teacher": data / TEACHER_PREDICTIONS, "s000": grid_dir / "s000" / PREDICTIONS,
             "final": final_dir / PREDICTIONS}
    table = []
    for name, ok in oks.items():
        frame = _answers_frame(u, {t: ok for t in tasks})
        frame.to_csv(paths[name], index=False)
        accs = {f"acc_{t}": float(np.mean(ok[frame.loc[frame.task == t, "row"]])) for t in tasks}
        table.append({"student": name, "role": "grid" if name == "s000" else name, **accs,
                      "mean_accuracy": float(np.mean(list(accs.values())))})
    df = pd.DataFrame(table)
    out = with_intervals(df, data, grid_dir, final_dir, tasks, _boot(200), seed=0)
    assert list(out["student"]) == ["teacher", "s000", "final"]
    for c in ("mean_accuracy_lo", "acc_speaker_hi", "delta_mean_accuracy_lo",
              "delta_acc_masked_hi", "accuracy_retention_lo"):
        assert out[c].notna().all(), c
    stale = df.assign(mean_accuracy=df["mean_accuracy"] + 0.01)
    with pytest.raises(DataError, match="re-run the stage that probed it"):
        with_intervals(stale, data, grid_dir, final_dir, tasks, _boot(200), seed=0)
    paths["final"].unlink()
    with pytest.raises(DataError, match="run the distill_final stage"):
        with_intervals(df, data, grid_dir, final_dir, tasks, _boot(200), seed=0)


# ------------------------------------------------------------------------------ replicates


def _replicate_models(u: pd.DataFrame, tasks: list[str], loss: list[float], seed: int = 0
                      ) -> tuple[object, list[object]]:
    """The teacher's answers and a student's replicates, replicate r losing a fraction loss[r]
    of the teacher's right answers (its own training seed: a different subset each)."""
    from slimaudio.studies.distill import intervals

    rng = np.random.default_rng(seed)
    base = rng.random(len(u)) < 0.85

    def ans(ok: np.ndarray) -> object:
        return intervals.answers(_answers_frame(u, {t: ok for t in tasks}), tasks, len(u), "x")

    return ans(base), [ans(base & (rng.random(len(u)) >= f)) for f in loss]


def test_one_replicate_gives_the_single_runs_intervals_exactly() -> None:
    """replicates 1 must not move a number: pooling one replicate is the plain paired
    bootstrap (Resampler.interval / difference) to the last bit."""
    from slimaudio.studies.distill import intervals

    u = _utts(n_spk=16, per_spk=10)
    tasks = ["speaker", "group"]
    teacher, (student,) = _replicate_models(u, tasks, [0.1])
    res = intervals.speaker_resampler(u, _boot(300), seed=3)
    ivs = intervals.interval_table(res, {"teacher": teacher, "s": [student]}, "teacher", tasks,
                                   stats.replicate_draw(300, 1, seed=3))
    mine, theirs = intervals.stats_of(student, tasks), intervals.stats_of(teacher, tasks)
    for q in intervals.qualities(tasks):
        iv, d = res.interval(mine[q]), res.difference(theirs[q], mine[q])
        assert (ivs.loc["s", q], ivs.loc["s", f"{q}_lo"], ivs.loc["s", f"{q}_hi"]) == \
            (iv.value, iv.lo, iv.hi)
        assert (ivs.loc["s", f"delta_{q}"], ivs.loc["s", f"delta_{q}_lo"],
                ivs.loc["s", f"delta_{q}_hi"]) == (d.value, d.lo, d.hi)
    r = res.interval(lambda w: mine["mean_accuracy"](w) / theirs["mean_accuracy"](w))
    assert (ivs.loc["s", "accuracy_retention_lo"], ivs.loc["s", "accuracy_retention_hi"]) == \
        (r.lo, r.hi)
    assert np.isnan(ivs.loc["s", "mean_accuracy_sd"])
    assert not stats.replicate_draw(300, 1, seed=3).any()   # nothing drawn


def test_pooled_intervals_widen_with_the_replicates_spread() -> None:
    from slimaudio.studies.distill import intervals

    u = _utts(n_spk=24, per_spk=10)
    tasks = ["speaker", "group"]
    teacher, reps = _replicate_models(u, tasks, [0.0, 0.15, 0.3])
    res = intervals.speaker_resampler(u, _boot(400), seed=0)
    draw = stats.replicate_draw(400, 3, seed=0)
    assert draw.shape == (400, 3) and set(np.unique(draw)) == {0, 1, 2}
    models = {"teacher": teacher, "spread": reps, **{f"same{r}": [a] * 3 for r, a in enumerate(reps)}}
    ivs = intervals.interval_table(res, models, "teacher", tasks, draw)
    single = intervals.interval_table(res, {"teacher": teacher, **{f"one{r}": a for r, a in
                                                                   enumerate(reps)}},
                                      "teacher", tasks)
    s = ivs.loc["spread"]
    own = [single.loc[f"one{r}", "mean_accuracy"] for r in range(3)]
    assert s["mean_accuracy"] == pytest.approx(np.mean(own))
    assert s["mean_accuracy_sd"] == pytest.approx(np.std(own, ddof=1))
    for r in range(3):  # identical replicates: the single run's interval, no seed noise added
        for c in ("mean_accuracy_lo", "mean_accuracy_hi", "delta_mean_accuracy_hi"):
            assert ivs.loc[f"same{r}", c] == pytest.approx(single.loc[f"one{r}", c])

    def width(row: pd.Series, q: str) -> float:
        return float(row[f"{q}_hi"] - row[f"{q}_lo"])

    for q in ("mean_accuracy", "delta_mean_accuracy"):
        assert width(s, q) > 1.2 * max(width(single.loc[f"one{r}"], q) for r in range(3)), q


def test_a_students_metrics_are_its_replicates_mean_and_one_replicate_is_unchanged() -> None:
    from slimaudio.studies.distill.students import replicate_metrics, replicate_seed

    reps = [{"seed": 7, "acc_speaker": 0.4, "acc_group": 0.8, "mean_accuracy": 0.6,
             "final_mse": 0.5, "train_seconds": 3.0},
            {"seed": 8, "acc_speaker": 0.5, "acc_group": 0.9, "mean_accuracy": 0.7,
             "final_mse": 0.4, "train_seconds": 3.5}]
    one = replicate_metrics(reps[:1])
    assert one == {"acc_speaker": 0.4, "acc_group": 0.8, "mean_accuracy": 0.6, "replicates": 1}
    two = replicate_metrics(reps)
    assert two["mean_accuracy"] == pytest.approx(0.65) and two["acc_group"] == pytest.approx(0.85)
    assert two["replicates"] == 2 and two["mean_accuracy_sd"] == pytest.approx(0.1 / np.sqrt(2))
    assert [replicate_seed(7, r) for r in range(3)] == [7, 8, 9]   # replicate 0: the base seed


def _replicated_report_dirs(tmp_path, n_rep: int):
    """data/, models/s000 and final/ holding n_rep replicates' answers, and the table."""
    from slimaudio.studies.distill.data import TEACHER_PREDICTIONS, predictions_name

    u, tasks, (data, grid_dir, final_dir) = _report_dirs(tmp_path)
    rng = np.random.default_rng(5)
    _answers_frame(u, {t: rng.random(len(u)) < 0.8 for t in tasks}).to_csv(
        data / TEACHER_PREDICTIONS, index=False)
    table = [{"student": "teacher", "role": "teacher", "replicates": np.nan,
              "mean_accuracy_sd": np.nan}]
    for name, folder in (("s000", grid_dir / "s000"), ("final", final_dir)):
        means = []
        for r in range(n_rep):
            ok = rng.random(len(u)) < 0.6
            frame = _answers_frame(u, {t: ok for t in tasks})
            frame.to_csv(folder / predictions_name(r), index=False)
            means.append({f"acc_{t}": float(np.mean(ok[frame.loc[frame.task == t, "row"]]))
                          for t in tasks})
        accs = {k: float(np.mean([m[k] for m in means])) for k in means[0]}
        per_rep = [float(np.mean(list(m.values()))) for m in means]
        table.append({"student": name, "role": "grid" if name == "s000" else name, **accs,
                      "mean_accuracy": float(np.mean(per_rep)), "replicates": n_rep,
                      "mean_accuracy_sd": float(np.std(per_rep, ddof=1)) if n_rep > 1 else np.nan})
    t = pd.read_csv(data / TEACHER_PREDICTIONS)
    table[0] |= {f"acc_{k}": float((g.label.astype(str) == g.predicted.astype(str)).mean())
                 for k, g in t.groupby("task")}
    table[0]["mean_accuracy"] = float(np.mean([table[0][f"acc_{k}"] for k in tasks]))
    return pd.DataFrame(table), (data, grid_dir, final_dir), tasks


def test_the_report_pools_replicates_and_refuses_stale_or_mismatched_ones(tmp_path) -> None:
    from slimaudio.studies.distill.assemble import replicate_summary, with_intervals

    df, dirs, tasks = _replicated_report_dirs(tmp_path, 2)
    out = with_intervals(df, *dirs, tasks, _boot(200), seed=0)
    s = out.set_index("student").loc["s000"]
    assert s["mean_accuracy_lo"] < s["mean_accuracy"] < s["mean_accuracy_hi"]
    summary = replicate_summary(out)
    assert summary["replicates"] == 2 and summary["replicate_sd"] == pytest.approx(
        s["mean_accuracy_sd"])
    with pytest.raises(DataError, match="re-run the stage that probed it"):   # sd not the files'
        with_intervals(df.assign(mean_accuracy_sd=df["mean_accuracy_sd"] + 0.01), *dirs, tasks,
                       _boot(200), seed=0)
    (dirs[1] / "s000" / "predictions_r2.csv").write_text("task,row,label,predicted\n")
    with pytest.raises(DataError, match=r"predictions_r2\.csv beyond the 2 replicate"):
        with_intervals(df, *dirs, tasks, _boot(200), seed=0)
    (dirs[1] / "s000" / "predictions_r2.csv").unlink()
    (dirs[2] / "predictions_r1.csv").unlink()
    with pytest.raises(DataError, match="run the distill_final stage"):
        with_intervals(df, *dirs, tasks, _boot(200), seed=0)
    with pytest.raises(DataError, match="different distill_student.replicates"):
        with_intervals(df.assign(replicates=np.where(df.student == "final", 1, df.replicates)),
                       *dirs, tasks, _boot(200), seed=0)
