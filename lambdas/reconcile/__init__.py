"""The reconcile job: read the host record and EC2, `decide` (lambdas.domain), act.

It runs on every API call, on every EC2 state-change event and once a minute (EventBridge).
"""
