"""FRILL-style distillation study: teacher targets, MobileNetV3 students, downstream probes,
the quality-latency frontier and the hyperparameter regression."""
