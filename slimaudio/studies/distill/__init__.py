"""Study 4: FRILL-style distillation of the ECAPA-TDNN teacher into MobileNetV3 students.

A teacher (stage train_teacher) embeds 0.96 s patches of the speaker corpus; a grid of
MobileNetV3 students (FRILL's hyperparameters) learns to reproduce those embeddings; each
student is converted to TFLite, timed and scored by a downstream probe suite; the frontier of
quality vs latency is found, the FRILL analogue chosen under latency and size budgets, trained
again for longer, and reported beside the teacher with a regression of quality, latency and
size on the hyperparameters.

Modules, in pipeline order:
  teacher     the teacher's ONNX session, embeddings, size and latency
  targets     stage distill_targets: patches, the teacher's embeddings (the distillation
              targets) and the probe set, written to data/distill/
  data        data/distill/ read back (DistillData)
  probes      the downstream suite: logistic-regression probes on frozen embeddings
  grid        the student grid and its designs (`python -m slimaudio.studies.distill.grid`)
  students    stages distill_student and distill_final: train, convert, time, probe a student
  timing      students and the teacher timed interleaved in one process
  pareto      the quality-latency frontier
  selection   stage distill_select: the grid table, the frontier, the choice
  intervals   speaker-bootstrap intervals of the probe accuracies, paired with the teacher
  regression  the standardised main-effects regression, OLS standard errors and t intervals
  assemble    stage distill_report: the study's result (the final student beside the grid and
              the teacher, the regression, metrics.json)
  rules       the choice rule, the acceptance checks and the verdict (papers.FRILL's numbers)
  report      table.md, pareto.png and the StudyReport
"""
