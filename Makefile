# Two commands do everything: `make lab` and `make test`.
# Both create the local virtual environment .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The exact versions of every package (pip constraints); pyproject.toml has the ranges.
LOCK   := course_lib/lock.txt
# The Python versions the locked packages install on: pyproject.toml's requires-python
# (tests/test_environment.py checks that the two agree).
PYTHON_MIN := 3.11
PYTHON_MAX := 3.14
# On Linux, TORCH_INDEX=https://download.pytorch.org/whl/cpu installs PyTorch's CPU build
# instead of PyPI's default CUDA build (several GB).
TORCH_INDEX ?=
# Parallel workers for the test suite (notebooks stay whole: --dist loadfile), and
# threads per worker: one each, so that two workers do not fight over two cores.
WORKERS ?= 2
THREADS ?= 1
PYTEST_ARGS ?=

.PHONY: lab test test-full test-seeds hub-test mutants claims-spread install-test binder-check browser-test screenshot site site-assets bench rehearsal lint format clean-venv

comma := ,
version_tuple = ($(subst .,$(comma),$(1)))
PYTHON_OK = -c 'import sys; sys.exit(not $(call version_tuple,$(PYTHON_MIN)) <= sys.version_info[:2] <= $(call version_tuple,$(PYTHON_MAX)))'
PYTHON_HINT = the course needs Python $(PYTHON_MIN) to $(PYTHON_MAX): pass one, e.g. make $(or $(firstword $(MAKECMDGOALS)),lab) PYTHON=python3.12 (Ubuntu 22.04: sudo apt install python3.11 python3.11-venv, then PYTHON=python3.11; or use conda and environment.yml)

# The environment: checked interpreter first, then a fresh .venv whenever the lock changed
# (never a reinstall over other versions), then the package (editable) with the lock's
# versions. A changed pyproject.toml alone reinstalls into the existing .venv.
$(STAMP): pyproject.toml $(LOCK)
	@if [ -f $(VENV)/lock.txt ] && ! cmp -s $(LOCK) $(VENV)/lock.txt; then \
		echo "$(LOCK) changed: building $(VENV) afresh"; rm -rf $(VENV); fi
	@if ! { [ -x $(BIN)/python ] && $(BIN)/python $(PYTHON_OK) && $(BIN)/python -m pip --version; } >/dev/null 2>&1; then \
		found=$$(command -v $(PYTHON) >/dev/null && $(PYTHON) --version 2>&1 || echo "not found"); \
		$(PYTHON) $(PYTHON_OK) 2>/dev/null || { echo "make: PYTHON=$(PYTHON) is $$found; $(PYTHON_HINT)" >&2; exit 1; }; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet -c $(LOCK) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[dev]"
	@cp $(LOCK) $(VENV)/lock.txt
	@touch $(STAMP)

## lab: start JupyterLab on the notebooks (full mode unless COURSE_FAST=1)
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## test: the whole test suite in fast mode (unit tests, every notebook through nbval and
## the site check), then every notebook in a real browser (browser-test)
test: $(STAMP)
	COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile \
		-m "not browser and not install and not hub" --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
		--durations=0 --durations-min=1.0 $(PYTEST_ARGS)
	$(LINT)
	$(BROWSER_TEST)

LINT = $(BIN)/ruff check . && $(BIN)/ruff format --check course_lib tests benchmarks tools

# Every notebook through nbval, whole notebooks per worker (never split across workers).
NOTEBOOK_RUN = $(BIN)/python -m pytest notebooks -n $(WORKERS) --dist loadfile -p no:cacheprovider \
	--nbval-lax --nbval-current-env --durations=0 --durations-min=1.0

## test-full: every notebook in full mode, the learners' default, on the datasets in the data
## folder (CI: the samples), one thread per process: every claim must hold there too
test-full: $(STAMP)
	COURSE_FAST=0 OMP_NUM_THREADS=1 $(NOTEBOOK_RUN) --nbval-cell-timeout=3600 $(PYTEST_ARGS)

SEEDS ?= 1 2
## test-seeds: every notebook in fast mode under COURSE_SEED=1 and 2 (make test runs seed 0):
## every claim must hold for other seeds too
test-seeds: $(STAMP)
	@status=0; for seed in $(SEEDS); do echo "== COURSE_SEED=$$seed"; \
		COURSE_SEED=$$seed COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(NOTEBOOK_RUN) \
		--nbval-cell-timeout=300 $(PYTEST_ARGS) || status=1; done; exit $$status

## install-test: install the course as a learner outside a clone would: the wheel (not
## editable) into a fresh environment with the lock, notebooks copied by the course
## command into a temporary folder, 01 and 14 run there (fast mode), doctor, and nothing
## written into site-packages
install-test: $(STAMP)
	COURSE_FAST=1 OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest tests/test_install.py \
		-m install -p no:cacheprovider --durations=0 --durations-min=1.0

# repo2docker, in a throwaway environment of its own (never in .venv)
R2D_VENV ?= build/repo2docker
## binder-check: the Dockerfile repo2docker writes for .binder/ (no Docker needed) builds
## the environment before it copies the repository
binder-check: $(STAMP)
	@[ -x $(R2D_VENV)/bin/repo2docker ] || { $(BIN)/python -m venv $(R2D_VENV) && \
		$(R2D_VENV)/bin/python -m pip install --quiet jupyter-repo2docker; }
	REPO2DOCKER=$(R2D_VENV)/bin/repo2docker $(BIN)/python -m pytest tests/test_binder.py \
		-p no:cacheprovider

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

## site: execute every notebook and build the course site in site/, a book that works
## offline (index.html is the course map; frame sliders, claims, search); the mode follows
## COURSE_FAST, the Binder links COURSE_SITE_REPO=owner/name
site: $(STAMP) site-assets
	$(BIN)/python tools/build_site.py

## site-assets: the scripts the site bundles (MathJax, require.js, the widgets manager,
## MiniSearch), installed by npm ci from tools/site-assets/package-lock.json
site-assets: tools/site-assets/node_modules/.package-lock.json

tools/site-assets/node_modules/.package-lock.json: tools/site-assets/package-lock.json
	cd tools/site-assets && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

## mutants: plant the curated bugs of benchmarks/mutants/*.toml one at a time, run the
## notebook (fast mode) and its unit tests, and report which caught each; writes
## benchmarks/mutants.md and the README's table (NOTEBOOKS="06 13" for some only)
NOTEBOOKS ?=
mutants: $(STAMP)
	$(BIN)/python benchmarks/mutants.py --jobs $(WORKERS) $(NOTEBOOKS)

## claims-spread: run the notebooks under COURSE_SEED 0-4 and report, per claim, how often
## it held and the spread of its value; writes benchmarks/claims_spread.md and the README's
## table (SPREAD_ARGS="--mode full --threads 1 2 14" for more)
SPREAD_ARGS ?=
claims-spread: $(STAMP)
	$(BIN)/python benchmarks/claims_spread.py --jobs $(WORKERS) $(SPREAD_ARGS) $(NOTEBOOKS)

## bench: measure notebook times (fast and full mode), CNN, quantisation, pruning and MR
## accuracy on this machine; writes benchmarks/results.md and the README's table
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# configurable-http-proxy (JupyterHub's proxy) for the rehearsal, from npm, pinned by the lock
PROXY_STAMP := benchmarks/hub/node_modules/.installed
$(PROXY_STAMP): benchmarks/hub/package.json benchmarks/hub/package-lock.json
	npm ci --prefix benchmarks/hub --no-audit --no-fund
	@touch $(PROXY_STAMP)

## hub-test: the workshop rehearsal with 2 learners on a real local JupyterHub (CI runs it)
hub-test: $(STAMP) $(PROXY_STAMP)
	COURSE_FAST=1 $(BIN)/python -m pytest tests/test_rehearsal.py -m hub -p no:cacheprovider \
		--durations=0 --durations-min=1.0

LEARNERS ?= 10
REHEARSAL_ARGS ?=
## rehearsal: a workshop on a real JupyterHub on 127.0.0.1: LEARNERS learners (default 10)
## log in and run 01 then 13 in fast mode at the same time; writes benchmarks/rehearsal.md
## and .json, and the instructor guide's sizing section (REHEARSAL_ARGS: more options)
rehearsal: $(STAMP) $(PROXY_STAMP)
	$(BIN)/python benchmarks/rehearsal.py --learners $(LEARNERS) $(REHEARSAL_ARGS)

## lint / format: ruff over the package, tests and notebooks
lint: $(STAMP)
	$(LINT)

format: $(STAMP)
	$(BIN)/ruff format course_lib tests benchmarks tools
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
