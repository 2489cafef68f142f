# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	DS_BUILD_OPS=0 $(BIN)/python -m pip install -q -e '.[dev,ml,tf,deepspeed]'
	touch $(STAMP)

demo: install
	bash demo/demo.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

# The inner loop: every test that needs no Ray head (the fake backend, on PostgreSQL too when
# FABRIC_TEST_POSTGRES_URL names one), on all cores, in under two minutes. (The whole suite
# runs in one process: its tests share the one Ray head, which takes both cores as it is.)
test-fast: install
	$(BIN)/pytest -m "not ray" -n auto
