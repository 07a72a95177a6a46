"""Reconcile: read the host record and EC2, decide (a pure function of both and the clock), act."""
