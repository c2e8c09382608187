"""Beyond the papers: the runtimes users ship. The PTQ study's float and INT8 ECAPA-TDNN on
ONNX Runtime beside OpenVINO (float, NNCF INT8, bf16 where the CPU has it), with the same
calibration set, trial list and timing method."""
