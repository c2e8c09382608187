"""The distillation study package: typed config vs schema, rules (budgets from papers.FRILL),
and the report (rows, write roles) on a hand-made outcome. No TensorFlow, no ONNX."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pandas as pd
import pytest

from slimaudio import config, papers, runtime
from slimaudio.config import Field
from slimaudio.studies.base import ROW_COLUMNS
from slimaudio.studies.distill import config as dconf
from slimaudio.studies.distill import grid, rules
from slimaudio.studies.distill.rules import STUDY


def _check_fields(cls: type, schema: dict, where: str) -> None:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    assert names == set(schema), f"{where}: fields {sorted(names)} vs schema {sorted(schema)}"
    for f in dataclasses.fields(cls):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, \
            f"{where}.{f.name} has a default (defaults live in conf/config.yaml)"
        sub = schema[f.name]
        if f"{where}.{f.name}" == "distill_grid.levels":  # a mapping factor -> levels
            assert set(sub) == set(grid.FACTORS)
        elif isinstance(sub, dict):
            assert dataclasses.is_dataclass(hints[f.name]), f"{where}.{f.name}"
            _check_fields(hints[f.name], sub, f"{where}.{f.name}")
        else:
            assert isinstance(sub, Field)


@pytest.mark.parametrize("section", sorted(dconf.SECTIONS))
def test_config_fields_match_the_schema_and_build_from_the_default(section: str) -> None:
    import slimaudio.schemas.distill  # noqa: F401  (registers the sections)

    cls = dconf.SECTIONS[section]
    _check_fields(cls, config.SCHEMAS[section], section)
    built = cls.from_params(config.compose([])[section])
    assert isinstance(built, cls)


def test_final_training_takes_steps_batch_and_lr_from_distill_final() -> None:
    p = config.compose([])
    train = dconf.TrainConfig.from_params(p["distill_student"])
    final = train.with_final(dconf.FinalConfig.from_params(p["distill_final"]))
    assert (final.steps, final.batch_size, final.lr) == (p["distill_final"]["steps"],
                                                        p["distill_final"]["batch_size"],
                                                        p["distill_final"]["lr"])
    assert dataclasses.replace(final, steps=train.steps, batch_size=train.batch_size,
                               lr=train.lr) == train


def test_the_default_selection_budgets_are_frills() -> None:
    """The budgets have one home (papers.FRILL); the default params must agree with it."""
    choose = config.compose([])["distill_select"]["choose"]
    assert choose["max_latency_fraction"] == pytest.approx(1.0 / papers.FRILL["min_speedup"])
    assert choose["max_size_fraction"] == pytest.approx(papers.FRILL["size_fraction"])


def test_random_streams_keep_their_ids() -> None:
    for name, k in (("distill.patches", 0), ("distill.probe_split", 1),
                    ("distill.probe_subset", 2), ("distill.student_batches", 3),
                    ("distill.qat_calibration", 4), ("distill.latency_input", 5)):
        assert runtime.rng(7, name).random() == np.random.default_rng([7, 6, k]).random()


def test_done_when_and_the_finding_apply_frills_budgets() -> None:
    good = {"speedup": 12.0, "size_fraction": 0.3, "accuracy_retention": 0.95}
    assert rules.done_when(good) == {"speedup_at_least_10x": True, "size_at_most_40pct": True,
                                     "accuracy_at_least_95pct": True}
    assert rules.done_when({**good, "speedup": 9.9, "size_fraction": 0.41,
                            "accuracy_retention": 0.94}) == {
        "speedup_at_least_10x": False, "size_at_most_40pct": False,
        "accuracy_at_least_95pct": False}
    df = pd.DataFrame({"latency_ms": [1.0]})
    m = {"chosen_speedup": 12.0, "chosen_size_fraction": 0.3, "chosen_accuracy_drop": 0.03}
    (f,) = rules.findings(df, m)
    assert f.verdict == "holds"
    assert f.claim.endswith("(paper: 32x faster, 40% of the size, about 2% less accurate)")
    assert f.evidence == "chosen student 12.0x faster, 30% of the size, mean accuracy +3.0% below the teacher"
    assert rules.findings(df, {**m, "chosen_size_fraction": 0.5})[0].verdict == "partly holds"
    assert rules.findings(df, {**m, "chosen_speedup": 5.0, "chosen_accuracy_drop": 0.1})[0].verdict \
        == "does not hold"
    assert rules.findings(df, {})[0].verdict == "not measured"
    assert rules.findings(None, m)[0].evidence == "no table.csv"


def _outcome():
    from slimaudio.studies.distill.final import Outcome, regressions, summary_metrics

    hp = [("small", 0.5, 16, "gap", False, "outside"), ("large", 1.0, 64, "flatten", True, "inside"),
          ("small", 1.0, 192, "flatten", False, "inside"), ("large", 0.5, 16, "gap", True, "outside")]
    rows = []
    for i, (a, w, b, p, q, fe) in enumerate(hp):
        rows.append({"student": f"s00{i}", "label": f"l{i}", "arch": a, "width": w, "bottleneck": b,
                     "pool": p, "qat": q, "frontend": fe, "format": "int8" if q else "float32",
                     "size_bytes": 1000 * (i + 1), "size_mib": (i + 1) / 1024,
                     "latency_ms": 0.5 + i, "latency_p90_ms": 0.6 + i,
                     "acc_speaker": 0.5 + 0.05 * i, "mean_accuracy": 0.5 + 0.05 * i,
                     "on_frontier": True, "chosen": i == 0, "train_steps": 256, "role": "grid"})
    df = pd.DataFrame(rows)
    teacher = {"student": "teacher", "label": "ECAPA", "format": "onnx-float32",
               "size_bytes": 10000, "size_mib": 10000 / 2**20, "latency_ms": 10.0,
               "latency_p90_ms": 11.0, "acc_speaker": 0.7, "mean_accuracy": 0.7,
               "on_frontier": False, "chosen": False, "role": "teacher"}
    final = {**rows[0], "student": "final", "role": "final", "chosen": False,
             "on_frontier": False, "mean_accuracy": 0.67, "acc_speaker": 0.67, "train_steps": 2048}
    df = pd.concat([df, pd.DataFrame([teacher, final])], ignore_index=True)
    df["speedup"] = 10.0 / df["latency_ms"]
    df["size_fraction"] = df["size_bytes"] / 10000
    df["accuracy_retention"] = df["mean_accuracy"] / 0.7
    reg, extra = regressions(df[df["role"] != "final"])
    extra = {**extra, "report_teacher_latency_ms": 10.0, "grid_chosen_latency_ms": 0.5,
             "grid_chosen_mean_accuracy": 0.5, "grid_chosen_accuracy_retention": 0.5 / 0.7}
    return Outcome(df, reg, "s000", summary_metrics(df, "s000", extra), ["speaker"],
                   ["chosen: by hand"])


def test_the_report_writes_every_role_and_rows_in_the_common_schema(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from slimaudio.studies.distill import report

    res = _outcome()
    assert res.metrics["done_when"] == {"speedup_at_least_10x": True, "size_at_most_40pct": True,
                                        "accuracy_at_least_95pct": True}
    rep = report.study_report(res)
    assert rep.study is STUDY and STUDY.key == "student" and STUDY.reference == "teacher"
    rows = rep.rows
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert list(rows["variant"]) == ["s000", "s001", "s002", "s003", "teacher", "final"]
    assert rows.set_index("variant").loc["teacher", "relative_quality"] == 1.0
    assert rows.set_index("variant").loc["final", "relative_quality"] == pytest.approx(0.67 / 0.7)
    assert set(rep.variant_metrics) == {"s000 l0", "s001 l1", "s002 l2", "s003 l3", "final l0"}
    assert rep.variant_tags["s000 l0"] == {"on_frontier": "True", "chosen": "True", "role": "grid"}
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
    assert "| s000 | `l0` | 0.500 |" in md and "32x faster" in md
    assert list(pd.read_csv(paths["regression"]).columns) == ["target", "hyperparameter", "weight"]
