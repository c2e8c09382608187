"""Every study, once, in the order the summary shows them, and the stages and params sections
that belong to no one study. The report stage (which hands the studies to the summary), the
tests and the docs read this; tests/test_registry.py checks it against dvc.yaml and conf/.

What a study is lives in its own `rules.STUDY` (a `studies.base.Study`: name, stages, params
sections, key metrics, report outputs, verdict rules). Only what spans every study (the report
stage, the tests) imports this module, so adding a study re-runs no other study's stages.
"""

from __future__ import annotations

from slimaudio.studies.base import Study
from slimaudio.studies.distill import rules as distill
from slimaudio.studies.ptq_bits import rules as ptq_bits
from slimaudio.studies.ptq_layerwise import rules as ptq_layerwise
from slimaudio.studies.pwl_int8 import rules as pwl_int8
from slimaudio.studies.pwl_softmax import rules as pwl_softmax
from slimaudio.studies.runtimes import rules as runtimes
from slimaudio.studies.tflite_quant import rules as tflite_quant

STUDIES: tuple[Study, ...] = (pwl_softmax.STUDY, ptq_layerwise.STUDY, tflite_quant.STUDY,
                              distill.STUDY, pwl_int8.STUDY, runtimes.STUDY, ptq_bits.STUDY)
BY_NAME: dict[str, Study] = {s.name: s for s in STUDIES}

# The stages that belong to no one study, by the MLflow experiment they log to ("checks" logs
# nothing), and the params sections no one study owns.
SHARED_STAGES: dict[str, tuple[str, ...]] = {
    "checks": ("check_params",),
    "data": ("prepare_speakers", "prepare_sounds", "data_report"),
    "ecapa": ("ecapa_model", "eval_ecapa"),
    "summary": ("report",),
}
SHARED_SECTIONS = ("profile", "base", "prepare_speakers", "prepare_sounds", "ecapa", "report",
                   "conf_digest")


def experiments() -> tuple[str, ...]:
    """Every MLflow experiment the pipeline logs to, in pipeline order."""
    return ("data", "ecapa", *BY_NAME, "summary")


def markdown_table() -> str:
    """The studies as docs/architecture.md shows them (a test keeps the page in step)."""
    lines = ["| study | stages (the last writes `reports/<study>/`) | params sections it owns | "
             "outputs beyond table, rows, table_md, metrics |", "|---|---|---|---|"]
    for s in STUDIES:
        lines.append(f"| `{s.name}` | {', '.join(s.stages)} | "
                     f"{', '.join(s.sections) or '(none: reads others)'} | "
                     f"{', '.join(s.extra_roles) or '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
