"""Benchmarks behind ``puente bench NAME``.

Each benchmark is a module ``bench/<name>.py`` with ``main(argv: list[str]) -> int`` that prints
one JSON object per line on stdout (figures in named fields with units in the name) through
:func:`bench._common.emit`. Benchmarks are not tests: they measure, they do not assert.
"""
