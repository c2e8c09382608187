"""The distillation study package: its sections build from the defaults, rules (budgets from
papers.FRILL), and the report (rows, write roles) on a hand-made outcome. No TensorFlow, no ONNX."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from slimaudio import compose as composer
from slimaudio import papers, runtime, spec
from slimaudio.schemas.distill import DistillFinal, DistillGrid, DistillStudent, Student
from slimaudio.studies.base import ROW_COLUMNS
from slimaudio.studies.distill import rules
from slimaudio.studies.distill.rules import STUDY

DISTILL_SECTIONS = ("distill", "distill_student", "distill_grid", "distill_select",
                    "distill_final", "distill_report", "train_teacher")


@pytest.mark.parametrize("section", DISTILL_SECTIONS)
def test_every_section_builds_from_the_default(section: str) -> None:
    cls = spec.SECTIONS[section]
    assert isinstance(spec.build(cls, composer.compose([])[section]), cls)


def test_every_student_builds() -> None:
    for profile in ([], ["profile=paper"]):
        grid_p = spec.build(DistillGrid, composer.compose(profile)["distill_grid"])
        for sid in grid_p.students:
            assert isinstance(grid_p.student(sid), Student)


def test_final_training_takes_steps_batch_and_lr_from_distill_final() -> None:
    p = composer.compose([])
    train = spec.build(DistillStudent, p["distill_student"])
    final = train.with_final(spec.build(DistillFinal, p["distill_final"]))
    assert (final.steps, final.batch_size, final.lr) == (p["distill_final"]["steps"],
                                                        p["distill_final"]["batch_size"],
                                                        p["distill_final"]["lr"])
    assert dataclasses.replace(final, steps=train.steps, batch_size=train.batch_size,
                               lr=train.lr) == train


def test_the_default_selection_budgets_are_frills() -> None:
    """The budgets have one home (papers.FRILL); the default params must agree with it."""
    choose = composer.compose([])["distill_select"]["choose"]
    assert choose["max_latency_fraction"] == pytest.approx(1.0 / papers.FRILL["min_speedup"])
    assert choose["max_size_fraction"] == pytest.approx(papers.FRILL["size_fraction"])


def test_random_streams_keep_their_ids() -> None:
    for name, k in (("distill.patches", 0), ("distill.probe_split", 1),
                    ("distill.probe_subset", 2), ("distill.student_batches", 3),
                    ("distill.qat_calibration", 4), ("distill.latency_input", 5)):
        assert runtime.rng(7, name).random() == np.random.default_rng([7, 6, k]).random()


def test_done_when_applies_frills_budgets() -> None:
    good = {"speedup": 12.0, "size_fraction": 0.3, "accuracy_retention": 0.95}
    assert rules.done_when(good) == {"speedup_at_least_10x": True, "size_at_most_40pct": True,
                                     "accuracy_at_least_95pct": True}
    assert rules.done_when({**good, "speedup": 9.9, "size_fraction": 0.41,
                            "accuracy_retention": 0.94}) == {
        "speedup_at_least_10x": False, "size_at_most_40pct": False,
        "accuracy_at_least_95pct": False}


def _weights(**over: tuple[float, float, float]) -> dict:
    """metrics.json `regression`: every claimed weight clearly on the paper's side, unless
    `over` gives (weight, lo, hi) for '<target>__<hyperparameter>'."""
    out: dict = {}
    for target, hp, want, _ in rules.REGRESSION_CLAIMS:
        v = (-0.1, -0.2, -0.05) if want == "below" else (0.1, 0.05, 0.2)
        v = over.get(f"{target}__{hp}", v)
        out.setdefault(target, {})[hp] = {"weight": v[0], "se": 0.01, "lo": v[1], "hi": v[2]}
    return out


GOOD = {"chosen_speedup": 16.0, "chosen_speedup_lo": 12.0, "chosen_speedup_hi": 20.0,
        "chosen_size_fraction": 0.3, "chosen_accuracy_retention": 0.98,
        "chosen_accuracy_retention_lo": 0.96, "chosen_accuracy_retention_hi": 1.0,
        "chosen_delta_mean_accuracy": -0.014, "chosen_delta_mean_accuracy_lo": -0.028,
        "chosen_delta_mean_accuracy_hi": 0.0, "regression_dof": 4, "regression": _weights()}


def _verdicts(**over) -> list[str]:
    return [f.verdict for f in rules.findings(pd.DataFrame({"latency_ms": [1.0]}),
                                              {**GOOD, **over})]


def test_every_finding_holds_on_good_intervals_and_gives_them() -> None:
    fs = rules.findings(pd.DataFrame({"latency_ms": [1.0]}), GOOD)
    assert [f.verdict for f in fs] == ["holds"] * (2 + len(rules.REGRESSION_CLAIMS))
    assert fs[0].claim.startswith("A distilled student is much faster and smaller")
    assert "(paper: 32x faster, 40% of the size" in fs[0].claim
    assert fs[0].evidence.startswith("final student 16.0 [12.0, 20.0]x faster")
    assert "keeps 98.0 [96.0, 100.0]% of the teacher's mean accuracy" in fs[1].evidence
    assert "-0.014 [-0.028, +0.000]" in fs[1].evidence
    assert fs[2].evidence == ("latency weight -0.1000 [-0.2000, -0.0500] per standard "
                              "deviation of qat, 4 residual degrees of freedom")


def test_the_speed_and_size_finding_flips_on_the_speedup_interval_and_the_size() -> None:
    assert _verdicts(chosen_speedup_lo=8.0)[0] == "inconclusive"      # straddles 10x
    assert _verdicts(chosen_speedup=8.0, chosen_speedup_lo=7.0,
                     chosen_speedup_hi=9.0)[0] == "does not hold"     # wholly below 10x
    assert _verdicts(chosen_size_fraction=0.5)[0] == "does not hold"  # over 40% of the size
    assert _verdicts(chosen_speedup_lo=float("nan"))[0] == "inconclusive"


def test_the_accuracy_finding_flips_on_the_paired_interval() -> None:
    budget = 1.0 - papers.FRILL["max_accuracy_drop"]
    assert _verdicts(chosen_accuracy_retention_lo=budget - 0.01)[1] == "inconclusive"
    assert _verdicts(chosen_accuracy_retention=0.9, chosen_accuracy_retention_lo=0.88,
                     chosen_accuracy_retention_hi=budget - 0.001)[1] == "does not hold"
    assert _verdicts(chosen_accuracy_retention_lo=budget + 0.001)[1] == "holds"


@pytest.mark.parametrize("claim", rules.REGRESSION_CLAIMS, ids=lambda c: f"{c[0]}-{c[1]}")
def test_each_regression_direction_flips_on_its_weights_interval(claim) -> None:
    target, hp, want, _ = claim
    i = 2 + rules.REGRESSION_CLAIMS.index(claim)
    wrong = (0.1, 0.05, 0.2) if want == "below" else (-0.1, -0.2, -0.05)
    key = f"{target}__{hp}"
    assert _verdicts(regression=_weights(**{key: wrong}))[i] == "does not hold"
    assert _verdicts(regression=_weights(**{key: (0.01, -0.05, 0.07)}))[i] == "inconclusive"
    nan = float("nan")
    assert _verdicts(regression=_weights(**{key: (0.01, nan, nan)}))[i] == "inconclusive"
    assert _verdicts()[i] == "holds"
    gone = _weights()
    del gone[target][hp]                              # a factor the design holds fixed
    assert _verdicts(regression=gone)[i] == "not measured"


def test_findings_without_a_table_or_numbers_are_not_measured() -> None:
    assert rules.findings(None, GOOD)[0].evidence == "no table.csv"
    assert [f.verdict for f in rules.findings(pd.DataFrame({"latency_ms": [1.0]}), {})] == \
        ["not measured"]


def _outcome():
    from slimaudio.studies.distill.assemble import StudyResult, regressions, summary_metrics

    hp = [("small", 0.5, 16, "gap", False, "outside"), ("large", 1.0, 64, "flatten", True, "inside"),
          ("small", 1.0, 192, "flatten", False, "inside"), ("large", 0.5, 16, "gap", True, "outside")]
    rows = []
    for i, (a, w, b, p, q, fe) in enumerate(hp):
        acc = 0.5 + 0.05 * i
        rows.append({"student": f"s00{i}", "label": f"l{i}", "arch": a, "width": w, "bottleneck": b,
                     "pool": p, "qat": q, "frontend": fe, "format": "int8" if q else "float32",
                     "size_bytes": 1000 * (i + 1), "size_mib": (i + 1) / 1024,
                     "latency_ms": 0.5 + i, "latency_p90_ms": 0.6 + i,
                     "acc_speaker": acc, "mean_accuracy": acc,
                     **_iv("acc_speaker", acc, 0.7), **_iv("mean_accuracy", acc, 0.7),
                     "on_frontier": True, "chosen": i == 0, "train_steps": 256, "role": "grid"})
    df = pd.DataFrame(rows)
    teacher = {"student": "teacher", "label": "ECAPA", "format": "onnx-float32",
               "size_bytes": 10000, "size_mib": 10000 / 2**20, "latency_ms": 10.0,
               "latency_p90_ms": 11.0, "acc_speaker": 0.7, "mean_accuracy": 0.7,
               **_iv("acc_speaker", 0.7, 0.7), **_iv("mean_accuracy", 0.7, 0.7),
               "on_frontier": False, "chosen": False, "role": "teacher"}
    final = {**rows[0], "student": "final", "role": "final", "chosen": False,
             "on_frontier": False, "mean_accuracy": 0.67, "acc_speaker": 0.67, "train_steps": 2048,
             **_iv("acc_speaker", 0.67, 0.7), **_iv("mean_accuracy", 0.67, 0.7),
             "speedup_lo": 18.0, "speedup_hi": 22.0}
    df = pd.concat([df, pd.DataFrame([teacher, final])], ignore_index=True)
    df["speedup"] = 10.0 / df["latency_ms"]
    df["size_fraction"] = df["size_bytes"] / 10000
    df["accuracy_retention"] = df["mean_accuracy"] / 0.7
    df["accuracy_retention_lo"] = df["accuracy_retention"] - 0.04
    df["accuracy_retention_hi"] = df["accuracy_retention"] + 0.04
    reg, extra, weights = regressions(df[df["role"] != "final"], 0.95)
    extra = {**extra, "report_teacher_latency_ms": 10.0, "grid_chosen_latency_ms": 0.5,
             "bootstrap_resamples": 1000, "bootstrap_level": 0.95, "probe_speakers": 64}
    metrics = {**summary_metrics(df, "s000", extra), "regression": weights}
    return StudyResult(df, reg, "s000", metrics, ["speaker"], ["chosen: by hand"])


def _iv(q: str, value: float, teacher: float) -> dict[str, float]:
    """Hand-made interval columns of an accuracy q: +-0.03, its difference +-0.02."""
    d = value - teacher
    return {f"{q}_lo": value - 0.03, f"{q}_hi": value + 0.03, f"delta_{q}": d,
            f"delta_{q}_lo": d - 0.02, f"delta_{q}_hi": d + 0.02}


def test_the_report_writes_every_role_and_rows_in_the_common_schema(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from slimaudio.studies.distill import report

    res = _outcome()
    assert res.metrics["done_when"] == {"speedup_at_least_10x": True, "size_at_most_40pct": True,
                                        "accuracy_at_least_95pct": True}
    rep = report.build(res)
    assert rep.study is STUDY and STUDY.key == "student" and STUDY.reference == "teacher"
    rows = rep.rows
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert list(rows["variant"]) == ["s000", "s001", "s002", "s003", "teacher", "final"]
    byv = rows.set_index("variant")
    assert byv.loc["teacher", "relative_quality"] == 1.0
    assert byv.loc["final", "relative_quality"] == pytest.approx(0.67 / 0.7)
    assert byv.loc["final", "quality_lo"] == pytest.approx(0.64)     # mean_accuracy_lo
    assert set(rep.variant_metrics) == {"s000 l0", "s001 l1", "s002 l2", "s003 l3", "final l0"}
    assert rep.variant_metrics["final l0"]["delta_mean_accuracy_lo"] == pytest.approx(-0.05)
    assert rep.variant_tags["s000 l0"] == {"on_frontier": "True", "chosen": "True", "role": "grid"}
    m = res.metrics
    assert m["chosen_mean_accuracy_lo"] == pytest.approx(0.64)
    assert m["chosen_delta_mean_accuracy"] == pytest.approx(-0.03)
    assert m["chosen_speedup_lo"] == 18.0 and m["teacher_mean_accuracy_hi"] == pytest.approx(0.73)
    assert m["regression_dof"] == 0      # 4 students, 6 factors: aliased, no residual dof
    paths = {"table": tmp_path / "table.csv", "rows": tmp_path / "rows.csv",
             "table_md": tmp_path / "table.md", "metrics": tmp_path / "metrics.json",
             "regression": tmp_path / "regression.csv", "pareto": tmp_path / "pareto.png"}
    with pytest.raises(ValueError, match="outputs without a path"):
        rep.write({k: v for k, v in paths.items() if k != "pareto"})
    with pytest.raises(ValueError, match="paths without an output"):
        rep.write({**paths, "latency": tmp_path / "x.csv"})
    rep.write(paths)
    md = paths["table_md"].read_text()
    assert md.startswith("# FRILL-style distillation") and "## Frontier" in md
    assert "| s000 | `l0` | 0.500 | 0.001 | 0.500 [0.470, 0.530] | -0.200 [-0.220, -0.180] |" in md
    assert "32x faster" in md and "**20.0 [18.0, 22.0]x faster**" in md
    assert "| mean accuracy | 0.700 [0.670, 0.730] | 0.670 [0.640, 0.700] |" in md
    assert "**-4.3% [-8.3, -0.3]**, -0.030 [-0.050, -0.010]" in md
    assert "an exact fit" in md
    assert list(pd.read_csv(paths["regression"]).columns) == \
        ["target", "hyperparameter", "weight", "se", "lo", "hi"]
    table = pd.read_csv(paths["table"])
    assert {"mean_accuracy_lo", "mean_accuracy_hi", "delta_mean_accuracy",
            "delta_mean_accuracy_lo", "delta_mean_accuracy_hi"} <= set(table.columns)


def test_replicates_default_to_one_and_the_paper_profile_trains_several() -> None:
    """One replicate keeps the default's numbers and budget; the paper profile puts the
    training seed into every interval."""
    assert composer.compose([])["distill_student"]["replicates"] == 1
    assert composer.compose(["profile=tiny"])["distill_student"]["replicates"] == 1
    composed = composer.compose(["profile=paper"])
    paper = spec.build(DistillStudent, composed["distill_student"])
    assert paper.replicates >= 2
    final = paper.with_final(spec.build(DistillFinal, composed["distill_final"]))
    assert final.replicates == paper.replicates   # the final student is replicated alike


def test_the_report_says_whether_the_intervals_include_the_training_seed() -> None:
    pytest.importorskip("matplotlib")
    from slimaudio.studies.distill import report

    res = _outcome()
    md = report.render_markdown(res)
    assert "Training seed: not included" in md and "seed sd" not in md
    assert "from one training (1 replicate)" in md
    sd = [0.01, 0.02, 0.015, 0.02, np.nan, 0.01]
    res.table["replicates"] = [3, 3, 3, 3, np.nan, 3]
    res.table["mean_accuracy_sd"] = sd
    res.metrics |= {"replicates": 3.0, "replicate_sd": 0.017,
                    "median_mean_accuracy_half_width": 0.03}
    md = report.render_markdown(res)
    assert "Training seed: included" in md and "trained 3 times" in md and "0.017" in md
    assert "mean accuracy over its 3 training replicates" in md
    assert "| seed sd |" in md and "| 0.015 |" in md
    flat = report.build(res).variant_metrics["s002 l2"]
    assert flat["replicates"] == 3 and flat["mean_accuracy_sd"] == pytest.approx(0.015)
