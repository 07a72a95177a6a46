"""Model specs, the Triton model-repository generator and build-time ONNX helpers."""
