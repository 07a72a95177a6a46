"""Pure pre- and post-processing for each served model (NumPy only, no I/O)."""
