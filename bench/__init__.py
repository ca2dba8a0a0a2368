"""Benchmarks: each module prints a table of rates with ratios against a baseline measured in
the same run. Run them from the repository root as modules, e.g. ``python -m bench.vault``
(as a module, ``bench/http.py`` never stands in for the standard library's ``http``).
Tests never assert timings; these are measurements, not checks.
"""
