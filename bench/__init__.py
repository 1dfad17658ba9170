"""Benchmarks (not tests): `python -m bench.NAME`."""
