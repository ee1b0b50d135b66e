# casebook: the common commands. `make help` lists them. Every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
STAMP := $(VENV)/.installed
CASE ?= flights
BENCH_CASE ?= all
JOBS ?= 2
PORT ?= 5000

.PHONY: help install repro case test test-fast bench ui lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

# requirements.lock pins every package a fresh install gets (Python 3.11, linux x86_64), so two
# clones train with the same numpy, scikit-learn and LightGBM; pyproject.toml keeps the ranges.
# Refresh it after changing a range: uv pip compile pyproject.toml --extra dev --python-version 3.11
#   --python-platform x86_64-unknown-linux-gnu -o requirements.lock
LOCK := requirements.lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install casebook with its dependencies

repro: $(STAMP)  ## run every case on its default data, JOBS cases at a time, then the portfolio
	python -m cases.repro --jobs $(JOBS)

case: $(STAMP)  ## run one case whole: make case CASE=flights
	dvc repro pipelines/$(CASE)/dvc.yaml

# two pytest-xdist workers, a test module to one worker (its module-scoped runs are made once)
test: $(STAMP)  ## run the test suite CI runs (unit, integration, real data, browser)
	bash scripts/install-browser.sh
	pytest -n 2 --dist loadscope --no-loadscope-reorder

test-fast: $(STAMP)  ## unit tests only
	pytest tests/unit

bench: $(STAMP)  ## full-size benchmark of every case and the test suite (BENCH_CASE=name: one case)
	python benchmarks/bench.py --case $(BENCH_CASE) $(if $(filter all,$(BENCH_CASE)),--tests)
	python benchmarks/bench_reasons.py
	python benchmarks/bench_dispatch.py
	python benchmarks/bench_dask.py case.train.lgbm.n_estimators=50 case.train.lgbm.learning_rate=0.2  # the README table's settings

ui: $(STAMP)  ## MLflow UI on the repository's tracking store at http://127.0.0.1:$(PORT)
	@echo "MLflow UI: http://127.0.0.1:$(PORT)  (store: $(CURDIR)/mlflow.db; Ctrl-C stops it)"
	@echo "Portfolio: file://$(CURDIR)/reports/index.html"
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(PORT)

lint: $(STAMP)  ## ruff
	ruff check src tests pipelines benchmarks

clean:  ## remove pipeline outputs (data/<case>/, reports/); keeps data/raw/ and the MLflow store
	find data -mindepth 1 -maxdepth 1 -type d ! -name raw -exec rm -rf {} +
	rm -rf reports
