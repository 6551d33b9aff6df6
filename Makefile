# Two entry points for a fresh machine with only Python and make:
#   make demo   - the live showcase (python -m futurekit)
#   make test   - the whole suite (pytest incl. ruff, mypy --strict, pyright, typing
#                 tests, stubtest, doctests) on the primary Python, then the runtime
#                 tests on every other CPython 3.11-3.13 found on the machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $@

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,dask,bench]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m futurekit

test: $(BIN)/.installed
	PYTHON=$(PYTHON) bash scripts/test-all

bench: $(BIN)/.bench-installed
	$(BIN)/python bench/combinators.py
	$(BIN)/python bench/executors.py
	$(BIN)/python bench/stopping.py
	$(BIN)/python bench/byvalue.py
	$(BIN)/python bench/cluster.py

clean:
	rm -rf .venv .venv-* .mypy_cache .pytest_cache .hypothesis
