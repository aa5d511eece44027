"""Integrations with third-party libraries, each behind an optional extra."""
