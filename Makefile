# fruits-features: `make demo` runs the pipeline locally, `make test` runs every test.
# Both set themselves up (virtualenv with pinned dependencies) on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt | sha1sum | cut -c1-12)

.PHONY: help setup demo test test-fast lint format bench clean

help:
	@echo "make demo       set up, start a local S3, run the DAG (local Spark) on the sample images"
	@echo "make test       set up and run the whole test suite (what CI runs)"
	@echo "make test-fast  the tests not marked slow"
	@echo "make lint       ruff check + format check, shellcheck"
	@echo "make bench      benchmark the job against the reference pattern (BENCH_ARGS=...)"
	@echo "make clean      remove the local state (var/, results/), keep the virtualenv"

setup: $(STAMP)

$(STAMP):
	@command -v java >/dev/null || { echo "Java 17 is required (Spark): apt-get install openjdk-17-jre-headless" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -r requirements-dev.txt -c constraints.txt
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	VENV=$(abspath $(VENV)) scripts/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if command -v shellcheck >/dev/null; then shellcheck bootstrap/*.sh scripts/*.sh .ci/run; \
	else echo "shellcheck not installed: skipped (CI installs it)"; fi

test: lint
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

bench: setup
	$(BIN)/python bench/benchmark.py $(BENCH_ARGS)

clean:
	-scripts/local_s3.sh stop
	rm -rf var results
