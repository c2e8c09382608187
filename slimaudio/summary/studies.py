"""The studies the summary shows, in the order it shows them."""

from __future__ import annotations

from slimaudio.studies.base import Study
from slimaudio.studies.distill import rules as distill
from slimaudio.studies.ptq_layerwise import rules as ptq_layerwise
from slimaudio.studies.pwl_int8 import rules as pwl_int8
from slimaudio.studies.pwl_softmax import rules as pwl_softmax
from slimaudio.studies.runtimes import rules as runtimes
from slimaudio.studies.tflite_quant import rules as tflite_quant

STUDIES: tuple[Study, ...] = (pwl_softmax.STUDY, ptq_layerwise.STUDY, tflite_quant.STUDY,
                              distill.STUDY, pwl_int8.STUDY, runtimes.STUDY)
BY_NAME: dict[str, Study] = {s.name: s for s in STUDIES}
