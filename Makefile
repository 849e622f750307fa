PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test perf slow lint results clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 not found as '$(PYTHON)'; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/python -m experiments.run

# the default tests, spread over the machine's cores by pytest-xdist (modules kept together).
# On a fresh clone most of their time is XLA compiling each test shape once (the persistent
# cache .jax_cache/ is empty); LLVM optimisation level 0 compiles about a third faster and the
# tiny test shapes do not notice the slower code. `make perf` keeps the default level.
test: $(STAMP_DEV)
	XLA_FLAGS="--xla_backend_optimization_level=0 $$XLA_FLAGS" $(BIN)/python -m pytest -q -n auto --dist loadscope

slow: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,tracking]'
	$(BIN)/python -m pytest -q -m slow

perf: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,perf]'
	$(BIN)/python -m pytest -q -m perf tests/perf --benchmark-enable --benchmark-columns=min,mean,max,rounds -s

# Full-size suite outputs committed under results/ (tables, figures, store, REPORT.md), rebuilt
# all or nothing by experiments/publish.py: every documented job (each suite's result_seeds and
# result_variants, and the default benchmark) is computed first in the working store
# outputs/store (resumable) without touching results/, then published into a staging folder
# that replaces results/ only when every step succeeded. `python -m experiments.publish --list`.
results: $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[gbm]'
	$(BIN)/python -m experiments.publish

lint: $(STAMP_DEV)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
