"""Helpers every test package shares (`from tests.support.waiting import eventually`)."""
