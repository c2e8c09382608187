"""Beyond the papers: the PWL study's fine-tuned models quantized with the PTQ study's machinery.

Does a piecewise-linear attention pooling make a full-integer ECAPA-TDNN hold its EER where
softmax pooling loses it? Stage pwl_int8; modules: config (params section `pwl_int8`), run (the
rows, their intervals), result (what run returns), report (table.md, the figure, metrics.json,
the StudyReport), rules (the verdicts).
"""
