"""Benchmarks: accuracy and speed figures, each against a baseline run in the same process."""
