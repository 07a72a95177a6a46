"""The control plane's domain: the host record, and the pure decisions over it.

Nothing here does I/O. `decide` takes a snapshot, the settings and the clock and returns
actions; the control API (`lambdas.control`) and the reconcile job (`lambdas.reconcile`) read
the snapshot and carry the actions out through the adapters in `lambdas.aws`.
"""
