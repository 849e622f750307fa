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

# the default tests, spread over the machine's cores by pytest-xdist (modules kept together)
test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q -n auto --dist loadscope

slow: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,tracking]'
	$(BIN)/python -m pytest -q -m slow

perf: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,perf]'
	$(BIN)/python -m pytest -q -m perf tests/perf --benchmark-enable --benchmark-columns=min,mean,max,rounds -s

# Full-size suite outputs committed under results/ (tables, figures, store, REPORT.md). Every job
# is computed first in the working store outputs/store (resumable), without touching results/;
# only when all of them succeeded is results/store rebuilt from them (the jobs are then complete,
# so the second pass only publishes and redraws).
RESULT_JOBS := \
	"experiment=main 'seeds=[0,1,2,3,4]'" \
	"experiment=horizons 'seeds=[0,1,2]'" \
	"experiment=interference 'seeds=[0,1,2]'" \
	"experiment=drift 'seeds=[0,1,2]'" \
	"experiment=hillstrom 'seeds=[0,1,2]'" \
	"experiment=learners 'seeds=[0,1,2]'" \
	"experiment=ihdp 'seeds=[0,1,2,3,4,5,6,7,8,9]'" \
	"experiment=allocation 'seeds=[0,1,2,3,4]'" \
	"experiment=pacing 'seeds=[0,1,2,3]'" \
	"experiment=ope" \
	"experiment=peeking 'seeds=[0,1,2]'" \
	"experiment=online 'seeds=[0,1,2]'" \
	""

results: $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[gbm]'
	@for job in $(RESULT_JOBS); do \
		echo "== compute: $$job"; \
		eval $(BIN)/python -m experiments.run $$job progress=false write_outputs=false report=false || exit 1; \
	done
	rm -rf results/store results/figures
	@for job in $(RESULT_JOBS); do \
		echo "== publish: $$job"; \
		eval $(BIN)/python -m experiments.run $$job progress=false report=false || exit 1; \
	done
	$(BIN)/python -m experiments.report --store results/store --out results/REPORT.md

lint: $(STAMP_DEV)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
