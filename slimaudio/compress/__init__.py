"""Compression methods: approximations, ONNX and TFLite quantization."""
