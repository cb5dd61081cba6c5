"""Benchmarks: `profuser bench [NAME ...] --json`.

Each module in this package registers one benchmark area with
:func:`profuser.bench.registry.register`; keys of the figures it returns are
dotted by area (``align.ms_per_2048_pair``).
"""
