# Two commands do everything: `make lab` and `make test`.
# Both create the local virtual environment .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Parallel workers for the test suite (notebooks stay whole: --dist loadfile), and
# threads per worker: one each, so that two workers do not fight over two cores.
WORKERS ?= 2
THREADS ?= 1
PYTEST_ARGS ?=

.PHONY: lab test lint format clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## lab: start JupyterLab on the notebooks (full mode unless COURSE_FAST=1)
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## test: the whole test suite in fast mode (unit tests and every notebook through nbval)
test: $(STAMP)
	COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
		--durations=0 --durations-min=1.0 $(PYTEST_ARGS)
	$(BIN)/ruff check .

## lint / format: ruff over the package, tests and notebooks
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check course_lib tests

format: $(STAMP)
	$(BIN)/ruff format course_lib tests
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
