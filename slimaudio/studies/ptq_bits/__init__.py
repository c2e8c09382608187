"""Study 7 (beyond the papers): sub-8-bit weights per layer group, and mixed precision under
an EER budget, on the per-layer INT8 study's rows (models/ptq).

At INT8 the per-group EER changes of paper 2 are within a trial or two at our scale; fewer
weight bits make them large enough to test the paper's ordering (blocks 2 and 3 the most
sensitive), and a budgeted greedy walk (slimaudio.compress.budget_walk) chooses float, INT8 or
fewer bits per group. Stage `ptq_bits`, params section `ptq_bits`.

Modules, in the order the study runs them (run.run_study):
  config    the section, with the per-layer study's recipe, groups and latency settings
  run       load the per-layer rows and their trial scores, make, time and score the rows
  bitwidth  the sub-8-bit rows, the mixed-precision walk, the paired ordering test
  result    StudyResult and the table's columns
  rules     the paper's ordering claim judged at each width (findings)
  report    table.md, metrics.json, mixed_precision.png, the StudyReport (build)
"""
