# One command each: `make test` (what CI runs) and `make course` (rebuild every figure).
# Both create the virtual environment first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV ?= .venv
PROFILE ?= standard
JOBS ?= 1
# Only the standard profile writes the committed figures/; other profiles write beside the
# executed notebooks so that a quick smoke run never overwrites them.
FIGURES_DIR ?= $(if $(filter standard,$(PROFILE)),figures,build/figures/$(PROFILE))
OUT_DIR ?= build/notebooks
ONLY ?=
# torch/torchvision are installed first and explicitly so that pip takes the builds this
# machine already has instead of resolving a newer multi-GB wheel. Override on other hosts.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

BIN := $(VENV)/bin
STAMP := $(VENV)/.srlib-installed

.PHONY: setup test test-fast course clean help

help:
	@echo "make setup    create $(VENV) and install srlib with the course and test extras"
	@echo "make test     setup, then all tests (every notebook runs in the smoke profile)"
	@echo "make course   setup, then run every notebook (PROFILE=standard|smoke|paper, ONLY='00 02', JOBS=N)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[course,test]"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not notebook"

course: setup
	$(BIN)/python -m srlib.course --profile $(PROFILE) --jobs $(JOBS) \
		--figures-dir $(FIGURES_DIR) --out-dir $(OUT_DIR)/$(PROFILE) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf build .pytest_cache
