"""Spinup's control plane: the control API and reconcile, as they run in Lambda (and locally)."""
