"""Benchmarks of async_reduce against its peers (not part of the test suite)."""
