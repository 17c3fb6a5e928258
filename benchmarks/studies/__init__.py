"""One module per study, all on :mod:`benchmarks.harness`. Run a study with ``python -m benchmarks.studies.<module>``."""
