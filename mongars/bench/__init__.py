"""Benchmarks behind `mongars bench ...`: each prints a figure beside its baseline."""
