# slimaudio: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0
# dvc.yaml's stage commands call `python`: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 2

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first, so nothing pulls the CUDA one
	$(PY) -m pip install -q --no-compile torch==2.13.0
	$(PY) -m pip install -q --no-compile -e ".[dev]"
	# the reference extra, without its dependencies (see pyproject.toml)
	$(PY) -m pip install -q --no-compile --no-deps speechbrain==1.1.2 hyperpyyaml==1.2.3 kaldi-native-fbank==1.23.0
	$(PY) -m pip install -q --no-compile librosa==0.11.0
	# Bytecode for every installed module, on all cores (~30 s on 2). Where the environment
	# sets PYTHONDONTWRITEBYTECODE (common in containers) nothing is ever cached, and every
	# stage and timing worker would recompile TensorFlow, torch and MLflow: 7 s more per
	# TensorFlow import (12 s instead of 5 s here). A few packages ship Python 2 test files,
	# which compileall reports and skips.
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
	touch $@

venv: $(STAMP) ## Create the virtual environment (.venv) with pinned dependencies

params: venv ## Compose params.yaml from conf/ (Hydra, as dvc exp run does); e.g. make params SET="profile=tiny"
	$(PY) -m slimaudio.compose $(SET)

params-doc: venv ## Regenerate docs/params.md (every param's type, bounds and meaning) from slimaudio/schemas/
	$(PY) -m slimaudio.params_doc > docs/params.md.tmp && mv docs/params.md.tmp docs/params.md

repro: venv ## Set up and run the whole pipeline (dvc repro) on the synthetic default
	$(PY) -m slimaudio.compose
	$(VENV)/bin/dvc repro

repro-paper: venv ## Run the studies at the papers' scale (profile=paper: the full student grid too; hours)
	$(VENV)/bin/dvc exp run -S profile=paper

test: venv browser ## Set up and run the test suite (unit, real-data samples, stage-level end-to-end, MLflow UI in Chromium; < 10 min)
	$(VENV)/bin/pytest -q -m "not e2e_full"

test-e2e: venv browser ## Whole tiny pipelines like a user: sweeps, queue, MLflow UI, Chromium, real data
	$(VENV)/bin/pytest -q -m e2e_full

test-fast: venv ## Unit tests only (skips the slow end-to-end runs)
	$(VENV)/bin/pytest -q -m "not slow"

browser: ## Install Debian's chromium for the report-rendering test, when missing
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: chromium could not be installed; the browser test will be skipped"

verify-cache: venv ## Check every object of the DVC cache against its hash (REMOVE=1 deletes damaged ones)
	$(PY) -m slimaudio.cache_check $(if $(REMOVE),--remove)

lint: venv ## ruff
	$(VENV)/bin/ruff check .

mlflow-ui: venv ## Open the MLflow UI on http://127.0.0.1:5000 with the project's store (prints each study's runs-table link)
	@MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" \
	  $(PY) -m slimaudio.mlflow_ui --uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" --port 5000

bench: venv ## Print latency benchmarks of every study's variants, and INT8 size vs ECAPA width (no assertions)
	$(PY) -m slimaudio.bench
	$(PY) -m slimaudio.studies.ptq_layerwise.size_scaling

compare-reports: venv ## Has a change moved a number? Compare two report trees, timings aside; e.g. make compare-reports OLD=/tmp/reports_before
	$(PY) -m slimaudio.summary.compare $(OLD) $(or $(NEW),reports)

clean: ## Remove generated data, models and reports (keeps the venv)
	rm -rf data/speakers data/sounds data/distill models/* reports/*/ mlflow.db

.PHONY: help venv params params-doc repro repro-paper test test-e2e test-fast browser lint verify-cache mlflow-ui bench compare-reports clean
