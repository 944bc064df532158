# make demo: ingest the bundled sample archive offline into ./demo-lake and print coverage.
# make test: create .venv if missing, install the project with its dev extra, run the tests
# (hypothesis with derandomized examples: HYPOTHESIS_PROFILE=ci, see tests/conftest.py).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-faults bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/cryptolake demo --lake ./demo-lake

test: $(STAMP)
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# the whole fault-injection suite, the long kill-point sweep included (`make test` runs a seeded subset)
test-faults: $(STAMP)
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} CRYPTOLAKE_FAULTS_FULL=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider tests/faults $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py
	$(BIN)/python benchmarks/bench_peers.py --quick
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_gold.py

clean:
	rm -rf $(VENV) demo-lake .pytest_cache
