# One command each: `make test` (what CI runs) and `make course` (rebuild every figure).
# Both create the virtual environment first, so a fresh clone needs nothing else.
#
# `make help` is generated from the `## ` comments in this file: a target documents itself on
# its rule line (`name: deps ## what it does`), a variable on a `## ` line right above it.
# A new target needs a `.PHONY: name` line and a `## ` comment; tests/test_setup.py checks that
# `make help` lists every target.

## the interpreter that creates the virtual environment (Python 3.11 or newer)
PYTHON ?= python3
## where the virtual environment goes
VENV ?= .venv
## make course: smoke | standard | paper
PROFILE ?= standard
## make course: how many notebooks run at once
JOBS ?= 1
## make course: some notebooks only, e.g. ONLY="00 02"
ONLY ?=
## make course: 1 runs PROFILE=paper on a tiny fake data tree, a few steps, on CPU
DRY_RUN ?=
## make dry-run: the notebooks it runs, heaviest first so the jobs finish together (04-06 build the papers' full-size networks)
DRY_RUN_NOTEBOOKS ?= 06 05 02 04 03 01 00 07
## make dry-run: notebooks run at the same time (each gets its share of the cores)
DRY_RUN_JOBS ?= 2
# Only the standard profile writes the committed figures/; other profiles write beside the
# executed notebooks so that a quick smoke run never overwrites them.
FIGURES_DIR ?= $(if $(filter standard,$(PROFILE)),figures,build/figures/$(PROFILE))
OUT_DIR ?= build/notebooks
DRY := $(filter 1 yes true,$(DRY_RUN))
# torch/torchvision are installed first and explicitly so that pip takes the builds this
# machine already has instead of resolving a newer multi-GB wheel. These are the tested versions;
# environment.yml pins the same ones (tests/test_setup.py checks it). Override on other hosts.
## make setup: the PyTorch wheels to install (the tested versions)
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
## make setup: extra pip options, e.g. PIP_FLAGS=--quiet for a short log, or an --index-url
PIP_FLAGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.srlib-installed
PIP := $(BIN)/python -m pip $(PIP_FLAGS)
MIN_PYTHON := 3.11
step = @printf '==> %s\n'

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets and the variables they read
	@echo "usage: make TARGET [VARIABLE=value ...]"
	@echo
	@echo "targets:"
	@awk -F ':[^#]*## ' '/^[a-zA-Z0-9_-]+:[^=#]*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "variables (default in brackets):"
	@awk '/^## / {doc = substr($$0, 4); next} \
		/^[A-Z_]+ *\?=/ && doc != "" {split($$0, a, / *\?= */); \
			printf "  %-13s %s [%s]\n", a[1], doc, a[2] == "" ? "none" : a[2]} \
		{doc = ""}' $(MAKEFILE_LIST)

.PHONY: setup
setup: $(STAMP) ## create the virtual environment (VENV), install srlib, the course and test extras

$(STAMP): pyproject.toml
	$(step) "[1/5] checking that $(PYTHON) is Python $(MIN_PYTHON) or newer"
	@$(PYTHON) -c 'import sys; ok = sys.version_info[:2] >= tuple(map(int, "$(MIN_PYTHON)".split("."))); \
		sys.exit(0 if ok else "$(PYTHON) is Python %d.%d; srlib needs $(MIN_PYTHON) or newer: " \
		"make setup PYTHON=python3.11 (or a newer one)" % sys.version_info[:2])'
	$(step) "[2/5] creating the virtual environment $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(step) "[3/5] upgrading pip"
	@$(PIP) install --quiet --upgrade pip
	$(step) "[4/5] installing $(TORCH_SPEC): the largest download, several minutes on a fresh machine"
	@$(PIP) install $(TORCH_SPEC)
	$(step) "[5/5] installing srlib (editable) with its course and test extras"
	@$(PIP) install -e ".[course,test]"
	@touch $(STAMP)
	$(step) "done: $(VENV) is ready; next: make test-fast, or $(BIN)/jupyter lab notebooks/"

.PHONY: test
test: setup ## setup, then all tests, every notebook in the smoke profile (what CI runs)
	$(BIN)/python -m pytest

.PHONY: test-fast
test-fast: setup ## setup, then the tests that do not execute notebooks
	$(BIN)/python -m pytest -m "not notebook"

.PHONY: course
course: setup ## setup, then run every notebook (PROFILE, ONLY, JOBS, DRY_RUN); see README
	$(BIN)/python -m srlib.course --profile $(PROFILE) --jobs $(JOBS) \
		--figures-dir $(FIGURES_DIR)$(if $(DRY),-dry-run) --out-dir $(OUT_DIR)/$(PROFILE)$(if $(DRY),-dry-run) \
		$(if $(ONLY),--only $(ONLY)) $(if $(DRY),--dry-run)

.PHONY: dry-run
dry-run: setup ## setup, then the paper profile's dry run of DRY_RUN_NOTEBOOKS (fake data tree, a step per phase, CPU; CI runs it)
	$(MAKE) course PROFILE=paper DRY_RUN=1 JOBS=$(DRY_RUN_JOBS) ONLY="$(DRY_RUN_NOTEBOOKS)"

.PHONY: checkpoints
checkpoints: setup ## setup, then train the shipped course checkpoints into data/checkpoints (ONLY="srgan esrgan")
	$(BIN)/python -m srlib.checkpoints build $(if $(ONLY),--only $(ONLY))

.PHONY: site
site: setup ## setup, then render the executed notebooks of make course (PROFILE) as a web site in build/site
	$(BIN)/python -m srlib.site --notebooks $(OUT_DIR)/$(PROFILE) --out build/site

.PHONY: clean
clean: ## remove build/ (executed notebooks, figures of non-standard runs) and .pytest_cache
	rm -rf build .pytest_cache

# The cache root comes from srlib/paths.py itself (importing it needs neither the venv nor torch),
# so this removes exactly the folders srlib writes: <root>/models and <root>/weights.
.PHONY: clean-cache
clean-cache: ## remove cached trained models and fetched weights (under $SRLIB_CACHE or ~/.cache/srlib)
	@root="$$(SRLIB_CACHE="$(SRLIB_CACHE)" $(PYTHON) -c 'import srlib.paths as p; print(p.cache_root())')" && \
		echo "removing $$root/models and $$root/weights" && \
		rm -rf "$$root/models" "$$root/weights" && { rmdir "$$root" 2>/dev/null || true; }
