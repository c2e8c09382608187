"""Study 1: the piecewise-linear softmax in ECAPA-TDNN (Park, Ahn, Kim; reproduction plus the
`pwl<k>` extension and a `learnable` PWL).

The softmax of the attentive statistics pooling is replaced by exp-free normalisers (clip, a
k-segment linear approximation of exp, a learnable one; slimaudio.compress.pwl); each is
compared with the baseline for EER before and after fine-tuning and for speed.

Modules (stages pwl_fit, then pwl_softmax):
  config     the seeds derived from base.seed (the params: slimaudio/schemas/pwl_softmax.py)
  fit        step 1: the baseline's attention logits on training crops, every fit -> fit.json, fit.png
  variants   the compared normalisers, with the params' coefficient overrides
  finetune   fine-tuning one variant (scope head: cached frozen-trunk features; all: whole model)
  timing     speed of the normaliser alone and of whole models, torch and ONNX Runtime
  run        step 2: the whole study, every method before/after fine-tuning, exports, speed
  result     what run returns (StudyResult), which the report reads
  rules      the acceptance checks and the paper's findings, with their thresholds
  report     metrics.json, table.md, ft_curves.png and the StudyReport (build)
"""
