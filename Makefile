# The two commands README.md promises: `make up` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UPSTREAM ?=

.PHONY: venv up test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,local]'
	$(BIN)/python -m pip check
	touch $@

venv: $(BIN)/.installed

## Run the mirror locally on 127.0.0.1: SeaweedFS S3, Airflow, serve. Offline demo upstream unless UPSTREAM is set.
up: venv
	$(BIN)/hubmirror up $(if $(UPSTREAM),--upstream $(UPSTREAM),--demo)

## Set up and run the lint and the whole test suite (installs the Debian tools it needs: see .ci/system-deps).
test: venv
	.ci/system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/sync_throughput.py
	$(BIN)/python bench/serve_throughput.py
	$(BIN)/python bench/verify_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
