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

.PHONY: lab test browser-test screenshot site bench lint format clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## lab: start JupyterLab on the notebooks (full mode unless COURSE_FAST=1)
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## test: the whole test suite in fast mode (unit tests, every notebook through nbval and
## the site check), then every notebook in a real browser (browser-test)
test: $(STAMP)
	COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile \
		-m "not browser" --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
		--durations=0 --durations-min=1.0 $(PYTEST_ARGS)
	$(BIN)/ruff check .
	$(BROWSER_TEST)

# The browser test runs on its own, one notebook after the other, without xdist.
BROWSER_TEST = COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest \
	tests/test_browser.py -m browser --durations=0 --durations-min=1.0

## browser-test: every notebook in JupyterLab in headless Chromium (fast mode): all cells
## run without error, the sliders render, and moving one redraws its figure
browser-test: $(STAMP)
	$(BROWSER_TEST)

## screenshot: refresh docs/images/jupyterlab_sliders.png (notebook 01's sliders in JupyterLab)
screenshot: $(STAMP)
	COURSE_SCREENSHOT_DIR=docs/images $(BROWSER_TEST) -k 01_intro_weights

## site: execute every notebook and render it to static HTML in site/ (site/index.html is
## the course map); the mode follows COURSE_FAST
site: $(STAMP)
	$(BIN)/python tools/build_site.py

## bench: measure notebook times (fast and full mode), CNN, quantisation, pruning and MR
## accuracy on this machine; writes benchmarks/results.md and the README's table
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## lint / format: ruff over the package, tests and notebooks
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check course_lib tests

format: $(STAMP)
	$(BIN)/ruff format course_lib tests
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
