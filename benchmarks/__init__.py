"""Benchmarks (`make bench`): each `bench_*.py` module measures one part against its obvious alternative.

A module defines `run() -> str`, returning a Markdown section (a heading, the method, a table of
medians/p99s and ratios). `python -m benchmarks [name ...]` runs all or some of them and writes
`docs/BENCHMARKS.md` with the machine and the command at the top.
"""
