# flowedu: `make book` builds the HTML book, `make test` runs every check. Both create .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.flowedu-ready
# Two pytest workers on the 2-core CI machine; one math thread each, so they do not fight over cores.
WORKERS ?= 2
PARALLEL := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Notebooks run on the venv's own kernel, whatever kernels the machine has installed elsewhere.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

.PHONY: help venv book test lint unit notebooks exercises-check book-strict exercises stamp bench clean

help:
	@echo "make book   build the HTML book (executes the notebooks) -> _build/html/index.html"
	@echo "make test   lint, unit tests, notebooks (nbval), exercise checks, strict book build"
	@echo "make exercises | make stamp | make bench | make clean"

$(READY): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (flowedu)" >/dev/null
	@touch $(READY)

venv: $(READY)

# The book's notebooks (from _toc.yml) are first executed in parallel into the build's jupyter-cache,
# which jupyter-book then reads (execute_notebooks: cache); it re-runs, and reports, any that failed.
TOC_NOTEBOOKS = $(shell grep -oE 'notebooks/[A-Za-z0-9_]+' _toc.yml | sed 's/$$/.ipynb/')
define prefill_cache
	(yes || true) | $(BIN)/jcache notebook -p $(1)/_build/.jupyter_cache add $(TOC_NOTEBOOKS) >/dev/null
	$(PARALLEL) $(BIN)/jcache project -p $(1)/_build/.jupyter_cache execute -e local-parallel -t 900 -v WARNING
endef

book: $(READY)
	$(call prefill_cache,.)
	$(BIN)/jupyter-book build .
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: lint unit exercises-check notebooks book-strict
	@echo "make test: all checks passed"

lint: $(READY)
	$(BIN)/ruff check .

unit: $(READY)
	FLOWEDU_MODE=quick $(PARALLEL) $(BIN)/python -m pytest -n $(WORKERS) tests

# Every solution notebook runs top to bottom in quick mode; its asserts are the chapter's claims.
notebooks: $(READY)
	FLOWEDU_MODE=quick $(PARALLEL) $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope \
		--nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider notebooks/*.ipynb

# Generated exercise notebooks are up to date, leak no solution, and run with only the blanks failing
# (that last part is tests/test_exercise_notebooks.py, part of `unit`).
exercises-check: $(READY)
	$(BIN)/python -m flowedu.stamp --check
	$(BIN)/python -m flowedu.exercises --check

# Warnings are errors; the output goes to its own folder so the published build is never quick-mode.
book-strict: export FLOWEDU_MODE = quick
book-strict: $(READY)
	$(call prefill_cache,_build/test)
	$(BIN)/jupyter-book build . -n -W --keep-going --path-output _build/test

# Badges and install cells first, then the exercise notebooks (copied from the stamped solutions),
# then the README table (which lists the exercise notebooks): the same three steps for both names.
exercises stamp: $(READY)
	$(BIN)/python -m flowedu.stamp
	$(BIN)/python -m flowedu.exercises
	$(BIN)/python -m flowedu.stamp

bench: $(READY)
	@if [ -s tests/benchmarks/requirements.txt ]; then $(BIN)/python -m pip install --quiet -r tests/benchmarks/requirements.txt; fi
	$(BIN)/python tests/benchmarks/run.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
