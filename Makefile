# replay-tui — every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OPS    ?= 1000000

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/replay-tui demo

# One synthetic session (kept in bench-$(OPS).db, reused by later runs) read by every benchmark;
# each prints one JSON object.
BENCH_DB ?= bench-$(OPS).db

bench: $(STAMP)
	$(PY) -m benchmarks --ops $(OPS) --db $(BENCH_DB) --json
	$(PY) -m benchmarks.timetravel --ops $(OPS) --db $(BENCH_DB) --json
	$(PY) -m benchmarks.tui --ops $(OPS) --db $(BENCH_DB) --json
	$(PY) -m benchmarks.proxy --json
	$(PY) -m benchmarks.proxy --observe --json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info bench-*.db*
