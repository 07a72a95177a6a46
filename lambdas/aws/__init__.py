"""Thin boto3 adapters: EC2 (one instance) and DynamoDB (the one table). No decisions here."""
