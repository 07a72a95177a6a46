"""Reusable constructs; each takes keyword-only, typed parameters and owns one concept."""
