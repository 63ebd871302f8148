"""Shared test setup: pytest puts this folder on sys.path, so tests import tests_support."""
