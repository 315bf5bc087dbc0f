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

.PHONY: help venv book book-students check-html test lint unit notebooks smoke exercises-check book-strict exercises stamp \
	bench results timings clean

help:
	@echo "make book     build the HTML book (executes the notebooks) -> _build/html/index.html"
	@echo "make test     lint, unit tests, exercise checks, full-mode smoke run (nbval), strict quick-mode book build"
	@echo "make results  full mode, uncapped, on this machine's CPU -> results/full-cpu.jsonl and book/results.md"
	@echo "make exercises | make stamp | make bench | make timings | make notebooks | make smoke | make clean"

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
# Each notebook executes once; tools/book_cache.py then prints the times and stops at the first failure.
# Progress bars are for people at a keyboard: the book build silences them (TQDM_DISABLE).
define prefill_cache
	(yes || true) | $(BIN)/jcache notebook -p $(1)/_build/.jupyter_cache add $(TOC_NOTEBOOKS) >/dev/null
	TQDM_DISABLE=1 $(PARALLEL) $(BIN)/jcache project -p $(1)/_build/.jupyter_cache execute -e local-parallel \
		-t 900 -v WARNING
	$(BIN)/python tools/book_cache.py $(1)/_build/.jupyter_cache
endef

book: $(READY)
	$(call prefill_cache,.)
	TQDM_DISABLE=1 $(BIN)/jupyter-book build .
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: lint unit exercises-check smoke book-strict
	@echo "make test: all checks passed"

lint: $(READY)
	$(BIN)/ruff check .

unit: $(READY)
	FLOWEDU_MODE=quick $(PARALLEL) $(BIN)/python -m pytest -n $(WORKERS) tests

# Every solution notebook top to bottom in quick mode under nbval (make test gets the same from the
# strict book build, which executes each notebook once and fails on any failing cell).
notebooks: $(READY)
	FLOWEDU_MODE=quick TQDM_DISABLE=1 $(PARALLEL) $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope \
		--nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider notebooks/*.ipynb

# The full-mode code path of every solution notebook (full-size models, 28x28 and 32x32 data through the
# real loaders, the full evaluation code), every loop capped by FLOWEDU_SMOKE=1 and claims about trained
# results skipped. MNIST and CIFAR-10 cannot be downloaded here: stand-ins in their on-disk formats.
SMOKE_DATA := _build/smoke-data
smoke: $(READY)
	rm -rf $(SMOKE_DATA) && $(BIN)/python tests/fixture_data.py $(SMOKE_DATA)
	FLOWEDU_MODE=full FLOWEDU_SMOKE=1 FLOWEDU_DATA=$(CURDIR)/$(SMOKE_DATA) TQDM_DISABLE=1 $(PARALLEL) \
		$(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --nbval-lax --nbval-cell-timeout=900 \
		-p no:cacheprovider --durations=0 notebooks/*.ipynb | $(BIN)/python tools/durations.py

# Generated exercise notebooks are up to date, leak no solution, and run with only the blanks failing
# (that last part is tests/test_nbgrader.py, part of `unit`).
exercises-check: $(READY)
	$(BIN)/python tools/stamp.py --check
	$(BIN)/python tools/exercises.py --check
	$(BIN)/python tools/results.py page --check

# Every built page in headless Chromium (Debian's chromium): nothing cut off, no console error, no CDN
# request, one search box, no blank output areas, captioned and readable figures, no raw LaTeX, no machine
# paths, no duplicate numbers. Screenshots and report.json in _build/check-html. `make check-html
# HTML=_build/test` checks the strict build of `make test` instead (CI does, after make test).
HTML ?= _build/html
check-html: $(READY)
	$(BIN)/python tools/check_html.py $(HTML) --out _build/check-html

# The book without solutions: exercise notebooks instead of solution notebooks, chapter-page solutions
# left out (tools/student_book.py) -> _build/students/_build/html/index.html
book-students: $(READY)
	TQDM_DISABLE=1 $(PARALLEL) $(BIN)/python tools/student_book.py

# Warnings are errors; the output goes to its own folder so the published build is never quick-mode.
book-strict: export FLOWEDU_MODE = quick
book-strict: $(READY)
	$(call prefill_cache,_build/test)
	TQDM_DISABLE=1 $(BIN)/jupyter-book build . -n -W --keep-going --path-output _build/test

# Badges and install cells first, then the exercise notebooks (copied from the stamped solutions),
# then the README table (which lists the exercise notebooks): the same three steps for both names.
exercises stamp: $(READY)
	$(BIN)/python tools/stamp.py
	$(BIN)/python tools/exercises.py
	$(BIN)/python tools/stamp.py

# Full mode, uncapped, on this machine's CPU, for every notebook whose full size fits a CPU (hours):
# their recorded numbers go to results/full-cpu.json and book/results.md is generated from it.
results: $(READY)
	$(BIN)/python tools/results.py run
	$(BIN)/python tools/results.py page

# Quick-mode wall time of every notebook (one thread, one at a time) into flowedu/timings.json, which each
# notebook's setup cell prints. Run it on an idle machine.
timings: $(READY)
	$(BIN)/python tests/benchmarks/bench_notebooks.py --write

bench: $(READY)
	@if [ -s tests/benchmarks/requirements.txt ]; then $(BIN)/python -m pip install --quiet -r tests/benchmarks/requirements.txt; fi
	$(BIN)/python tests/benchmarks/run.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
