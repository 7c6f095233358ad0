# fruits-features: `make demo` runs the pipeline locally, `make test-all` runs every test.
# Both set themselves up (virtualenv with pinned dependencies) on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt requirements-jvm.txt requirements-jvm-lineage.txt | sha1sum | cut -c1-12)

.PHONY: help setup demo airflow airflow-stop airflow-status compose-env test test-all test-fast lint format bench bench-pca bench-incremental job-zip clean check-setup check-demo check-lint check-test

help:
	@echo "make demo       set up, start a local S3, run the DAG (local Spark) on the sample images"
	@echo "make airflow    a local Airflow: UI on 127.0.0.1:8080 (AIRFLOW_PORT=...), scheduler,"
	@echo "                triggerer, local S3 with the sample images; no Docker needed"
	@echo "make airflow-stop    stop what make airflow started (airflow-status: what runs)"
	@echo "make compose-env     .env for docker-compose: .env.example and generated secrets"
	@echo "make test       set up, lint and run the tests not marked long (~10 min)"
	@echo "make test-all   the whole suite, long tests included (~43 min): what CI runs"
	@echo "make test-fast  the tests not marked slow (~2 min)"
	@echo "make lint       ruff check + format check, shellcheck"
	@echo "make bench      benchmark the job against the reference pattern (BENCH_ARGS=...)"
	@echo "make bench-pca  benchmark the PCA stage with and without native BLAS (BENCH_ARGS=...)"
	@echo "make bench-incremental  cold run vs warm run (+1% new images) on the feature store"
	@echo "make job-zip    build/fruits_job.zip, for spark-submit --py-files by hand"
	@echo "make clean      stop the local servers, remove the local state (var/, results/), keep the virtualenv"

# System prerequisites, each missing one listed with its install command.
check-setup check-demo check-lint check-test:
	@PYTHON=$(PYTHON) scripts/check_prereqs.sh $(@:check-%=%)

setup: check-setup $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -r requirements-dev.txt -c constraints.txt
	$(BIN)/python scripts/fetch_jars.py $(VENV)/jars
	$(BIN)/python scripts/fetch_jars.py --requirements requirements-jvm-lineage.txt $(VENV)/jars/lineage
	rm -f $(VENV)/.installed-*
	touch $@

demo: check-demo setup
	VENV=$(abspath $(VENV)) scripts/demo.sh

compose-env:
	python3 scripts/compose_env.py

airflow: check-demo setup
	VENV=$(abspath $(VENV)) scripts/airflow.sh start

airflow-stop:
	VENV=$(abspath $(VENV)) scripts/airflow.sh stop

airflow-status:
	VENV=$(abspath $(VENV)) scripts/airflow.sh status

lint: check-lint setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	shellcheck bootstrap/*.sh scripts/*.sh .ci/run

test: check-test lint
	$(BIN)/pytest -m "not long"

# --durations: CI's log names the slowest tests, what to make cheaper when the suite grows.
test-all: check-test lint
	$(BIN)/pytest --durations=25

test-fast: setup
	$(BIN)/pytest -m "not slow"

bench: setup
	$(BIN)/python bench/benchmark.py $(BENCH_ARGS)

bench-pca: setup
	$(BIN)/python bench/pca_benchmark.py $(BENCH_ARGS)

bench-incremental: setup
	$(BIN)/python bench/incremental_benchmark.py $(BENCH_ARGS)

job-zip: setup
	PYTHONPATH=plugins $(BIN)/python -m fruits_features.job_package build

clean:
	-scripts/airflow.sh stop
	-scripts/local_s3.sh stop
	rm -rf var results
