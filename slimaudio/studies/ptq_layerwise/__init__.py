"""Study 2: per-layer INT8 post-training quantization of ECAPA-TDNN, with a choice under a budget.

Reproduces Hong, Chung, Kang, "Optimizing DNN-Based Speaker Verification: A Framework for
Efficient Model Quantization": quantize each layer group of a trained ECAPA-TDNN alone (the
rest stays float), measure EER and size, then quantize a chosen set. The paper used
pytorch-quantization + TensorRT on a GPU; here the engine is ONNX Runtime on the CPU (the
technique itself: slimaudio.compress.onnx_int8). Stage `ptq_layerwise`, params section
`ptq_layerwise`.

Modules, in the order the study runs them (run.run_study):
  config          the params section (slimaudio/schemas/ptq_layerwise.py) resolved: the model's
                  input, reduce_range from the CPU flags (speaker.ptq_recipe)
  (shared with the studies that build on this one, in slimaudio/speaker/: groups, the layer
  groups of a speaker model as ONNX node sets; ptq_recipe, the recipe resolved; calibration
  and onnx_eval, the calibration set and scoring; ptq_bench, rows made and scored)
  rows            the rows (ROWS); `proposed` via search; every row's trial scores are saved
                  beside the models (scores.npz) for ptq_bits' paired intervals
  search          the choice of groups under the EER budget (compress.budget_walk over
                  float/INT8 per group), and its final check
  error_analysis  each group's own activation error, and its rank correlation with ΔEER
  ablation        `all` with one setting changed (schemas.ptq_layerwise.ABLATIONS)
  timing          interleaved latency of every model, ORT's per-operator profile
  run             run_study: the steps above in order -> StudyResult
  result          StudyResult and the table's columns, read by the report modules
  rules           the paper's claims judged from the table (findings)
  outputs         metrics.json, the errors table, what MLflow gets per row
  report          table.md, the figures, the console headline, the StudyReport (build)
  size_scaling    a printed benchmark: the INT8 size ratio against ECAPA's width (make bench)
"""
