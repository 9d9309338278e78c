"""Benchmarks for wafer_py (issue #6). Run them from the repository root as modules:
``python -m bench.overhead``, ``python -m bench.http_load``, ``python -m bench.logins``,
``python -m bench.stores``, or all of them with ``python -m bench.run_all``.

See BENCHMARKS.md for what each measures and the figures of the last full run.
"""
