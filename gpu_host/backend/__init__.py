"""The WebSocket inference backend: frames in over `/ws/inference`, Triton results out."""
