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

test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q

slow: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,tracking]'
	$(BIN)/python -m pytest -q -m slow

perf: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,perf]'
	$(BIN)/python -m pytest -q -m perf tests/perf --benchmark-enable --benchmark-columns=min,mean,max,rounds -s

# Full-size suite outputs committed under results/ (tables, figures, store, REPORT.md). Jobs run
# in the working store outputs/store (resumable) and are published into a fresh results/store.
results: $(STAMP_RUN)
	rm -rf results/store results/figures
	$(BIN)/python -m experiments.run experiment=main 'seeds=[0,1,2,3,4]' progress=false
	$(BIN)/python -m experiments.run experiment=horizons 'seeds=[0,1,2]' progress=false
	$(BIN)/python -m experiments.run experiment=interference 'seeds=[0,1,2]' progress=false
	$(BIN)/python -m experiments.run experiment=drift 'seeds=[0,1,2]' progress=false
	$(BIN)/python -m experiments.run experiment=hillstrom 'seeds=[0,1,2]' progress=false
	$(BIN)/python -m experiments.run experiment=learners progress=false
	$(BIN)/python -m experiments.run experiment=allocation progress=false
	$(BIN)/python -m experiments.run experiment=pacing progress=false
	if [ -f experiments/suites/ope.py ]; then $(BIN)/python -m experiments.run experiment=ope progress=false; fi
	$(BIN)/python -m experiments.run

lint: $(STAMP_DEV)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
