"""Running Triton locally: the real tritonserver on the CPU (`LocalTriton`)."""
