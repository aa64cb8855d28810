"""Benchmarks of the whole pipeline: ``make bench`` (``python -m bench``)."""
