"""The study's rows: each one an ONNX file that loads on its own, quantized and scored.

  none                 the float model (after ORT pre-processing, the graph every row derives from)
  conv_in ... fc       one layer group quantized (static QDQ, per-channel symmetric INT8 weights);
                       the groups of the GroupMap, in its order (the paper's seven by default)
  all                  every node of the quantized op types (op_types), including the few
                       outside the groups (the input transpose, the dense sums, the MFA concat)
  paper_choice         every group except block2 and block3 (the paper's proposal); only when
                       the model has every group the paper chose
  proposed             the automatic choice under budget_eer (search.py: the budgeted walk over
                       float/INT8 per group); a final check keeps instead any already-measured
                       row (a group alone, all, paper_choice) within the budget and smaller
  dynamic, float16     comparison rows: ORT dynamic quantization, float16 weights and compute

Every quantized row shares one calibration, so rows differ only in which nodes are quantized.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from slimaudio import papers
from slimaudio.compress import budget_walk, onnx_int8
from slimaudio.progress import progress_bar
from slimaudio.speaker.groups import GROUPS
from slimaudio.speaker.ptq_bench import Bench, Row
from slimaudio.studies.ptq_layerwise.config import Config
from slimaudio.studies.ptq_layerwise.search import (
    FLOAT,
    INT8,
    Candidate,
    Proposal,
    final_check,
    int8_groups,
)

PAPER_CHOICE: tuple[str, ...] = tuple(papers.PTQ_LAYERWISE["choice_groups"])


def row_names(groups: Sequence[str]) -> tuple[str, ...]:
    """The rows, in order, of a model with these layer groups."""
    choice = ("paper_choice",) if not missing_choice(groups) else ()
    return ("none", *groups, "all", *choice, "proposed", "dynamic", "float16")


def missing_choice(groups: Sequence[str]) -> list[str]:
    """The groups of the paper's choice a model lacks (none: the paper_choice row is made)."""
    return [g for g in PAPER_CHOICE if g not in groups]


ROWS: tuple[str, ...] = row_names(GROUPS)  # the rows of the default (the paper's groups)


def comparison_rows(bench: Bench, per_channel: bool) -> list[Row]:
    """ORT dynamic quantization and float16, scored."""
    with bench.timer.lap("quantize"):
        dyn = onnx_int8.quantize_dynamic_model(
            bench.float_path, bench.models_dir / "dynamic.onnx", per_channel=per_channel)
        f16 = onnx_int8.convert_float16(bench.float_path, bench.models_dir / "float16.onnx")
        for p in (dyn, f16):
            onnx_int8.compact_names(p, bench.float_path)
    return [bench.evaluate(Row("dynamic", dyn, "dynamic", [])),
            bench.evaluate(Row("float16", f16, "float16", []))]


def make_rows(bench: Bench, cfg: Config) -> tuple[dict[str, Row], Proposal]:
    """Every row of row_names(the model's groups), in that order, and how `proposed` was
    chosen (under cfg.budget_eer)."""

    groups = bench.gmap.groups
    bar = progress_bar(total=len(row_names(groups)), desc="ptq rows", disable=not bench.progress)
    rows = {"none": bench.evaluate(Row("none", bench.float_path, "float", []))}
    bar.update()
    for g in groups:
        rows[g] = bench.remember(bench.static_row(g, [g]))
        bar.update()
    rows["all"] = bench.static_row("all", None)
    bar.update()
    if not missing_choice(groups):
        rows["paper_choice"] = bench.remember(bench.static_row("paper_choice", PAPER_CHOICE))
        bar.update()
    rows["proposed"], search = propose(bench, rows, cfg.budget_eer)
    bar.update()
    for row in comparison_rows(bench, cfg.per_channel):
        rows[row.name] = row
        bar.update()
    bar.close()
    return rows, search


def propose(bench: Bench, rows: dict[str, Row], budget: float) -> tuple[Row, Proposal]:
    """`proposed`: the budgeted walk's pick over float/INT8 per group (search.py), unless a row
    already measured is within the budget and smaller; its file is that model's, byte for
    byte."""
    eer0, size0 = rows["none"].metrics["eer"], rows["none"].metrics["size_bytes"]
    groups = bench.gmap.groups
    saving = {g: size0 - rows[g].metrics["size_bytes"] for g in groups}
    solo = {(g, INT8): rows[g].metrics["eer"] - eer0 for g in groups}

    def verify(config: dict[str, int]) -> float:
        chosen = int8_groups(config, groups)
        return bench.measure(chosen).metrics["eer"] - eer0 if chosen else 0.0

    walked = budget_walk.walk(
        groups, (FLOAT, INT8), solo,
        lambda config: size0 - sum(saving[g] for g in int8_groups(config, groups)), verify,
        budget, max_verify=len(groups) + 1)  # every move may be measured
    pick = [] if walked.chosen is None else int8_groups(walked.chosen.config, groups)
    walk_row = bench.measured.get(tuple(sorted(pick))) if pick else None
    walk_cand = None if walk_row is None else _candidate("walk", pick, walk_row, eer0)
    others = [_candidate(n, rows[n].groups, rows[n], eer0)
              for n in (*groups, "paper_choice", "all") if n in rows]
    best = final_check(walk_cand, others, budget, size0)
    if best is None:
        proposal = Proposal(walked, "walk", [], None)
    else:
        proposal = Proposal(walked, best.source, list(best.groups), best.delta_eer)
    src_row = (walk_row if proposal.source == "walk" else rows[proposal.source]) or rows["none"]
    prop_path = bench.models_dir / "proposed.onnx"
    shutil.copyfile(src_row.path, prop_path)  # the verified model itself, byte for byte
    bench.drop_search_models()
    proposed = Row("proposed", prop_path, src_row.kind, list(proposal.groups),
                   dict(src_row.metrics), src_row.scores)
    return proposed, proposal


def _candidate(source: str, groups: Sequence[str], row: Row, eer0: float) -> Candidate:
    return Candidate(source, list(groups), row.metrics["eer"] - eer0, row.metrics["size_bytes"])
