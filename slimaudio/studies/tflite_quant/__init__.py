"""Study 3: TFLite quantization of a ResNet sound-event classifier (Ha et al., Table 2).

One trained Keras ResNet (stage train_resnet, slimaudio.frame_classifier) is converted into
every TFLite variant (slimaudio.compress.tflite); all are evaluated on the same test frames
and timed in one process. Besides the paper's rows it measures two ways to get the paper's
integer collapse: `full_int_naive` (the correct full-int model fed raw floats instead of
quantized inputs) and `int_calib_<source>_<n>` (the `int` conversion calibrated on an
unrepresentative set).

Its params are section `tflite_quant` (slimaudio.schemas.tflite.TfliteQuant) and the shared
base.bootstrap (slimaudio.schemas.base.Bootstrap), both built by the stage.

Modules:
  calibration  calibration sets and their seeds
  variants     the variants and their conversion into .tflite files
  naive_input  STUDY ONLY: the naive int8 input cast behind the paper's full-int collapse
  measure      test-set scores, interleaved batch-1 latency, one-convolution kernel throughput
  intervals    clip-bootstrap intervals of F1/accuracy, paired differences from `basic`
  table        the table and diagnostics from the measurements
  run          the steps in order (run_study)
  result       what run returns (StudyResult), which the report reads
  rules        the paper's claims judged on the table (findings)
  report       metrics.json, markdown, figures, console lines, the StudyReport (build)
"""
