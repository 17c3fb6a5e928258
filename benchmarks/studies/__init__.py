"""One module per study, on benchmarks/harness.py; run one with python -m benchmarks.studies.<module>."""
