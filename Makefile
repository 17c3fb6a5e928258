# `make demo` and `make test` each set up .venv from nothing on a fresh clone, then run.
PYTHON ?= python3
# Threads sleep instead of spinning when the CPU is shared (much faster on small, busy machines).
export OMP_WAIT_POLICY ?= PASSIVE
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint readme bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m synthaug.demo

# The tests run their nets on one thread each, so one pytest worker per core (pytest-xdist) uses the machine;
# "worksteal": a worker that runs out takes pending tests from the other (the default hands out fixed batches and
# left one core idle for a third of the run).
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist worksteal

test-fast: $(STAMP)
	$(PY) -m pytest -q -n auto --dist worksteal -m "not slow"

# The README's benchmark tables are generated from benchmarks/results/headline.json (which the studies write);
# `make test` fails while they differ (tests/test_studies.py runs readme_tables.py --check).
readme: $(STAMP)
	$(PY) benchmarks/readme_tables.py

lint: $(STAMP)
	$(VENV)/bin/ruff check synthaug tests benchmarks examples

clean:
	rm -rf $(VENV) demo_out
