"""`make preflight`: does an account and region have what the deploy needs? Pure checks
(`checks`) over facts gathered with boto3 (`gather`); `python -m infra.preflight --region R`."""
