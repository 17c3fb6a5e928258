"""Benchmarks and studies of synthaug (not part of the installed package)."""
