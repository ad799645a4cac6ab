# replay-tui — every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OPS    ?= 1000000

.PHONY: install test check lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# ruff, mypy and the import contracts: a failure in any fails the build.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Everything CI runs: the linters, then every test (which include a wheel built and
# installed into a fresh venv, and `make bench OPS=3000` as a smoke run).
check: lint
	$(PY) -m pytest -q

test: check

demo: $(STAMP)
	$(VENV)/bin/replay-tui demo

# One synthetic session (kept in bench-$(OPS).db, reused by later runs) read by every benchmark;
# each prints one JSON object.
BENCH_DB ?= bench-$(OPS).db

bench: $(STAMP)
	$(PY) -m benchmarks --ops $(OPS) --db $(BENCH_DB) --json
	$(PY) -m benchmarks.timetravel --ops $(OPS) --db $(BENCH_DB) --json
	$(PY) -m benchmarks.tui --ops $(OPS) --db $(BENCH_DB) --load --json
	$(PY) -m benchmarks.proxy --json
	$(PY) -m benchmarks.proxy --observe --json
	$(PY) -m benchmarks.serve --ops $(OPS) --db $(BENCH_DB) --json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build *.egg-info bench-*.db*
