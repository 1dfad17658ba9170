"""Benchmarks (not tests): `python -m bench` runs them all, `python -m bench NAME` or `python -m bench.NAME` one.

Each module has a `main()` that prints its figures.
"""
