#!/usr/bin/env bash
# `make device-test`: the device runtime on an emulated Raspberry Pi 4 (Debian bookworm arm64 under
# qemu, Cortex-A72; ../shared/tools/arm64-sandbox.sh, see ARM64.md beside it). Needs root.
#
#  1. the edge-sdk-runtime wheel, built here;
#  2. an arm64 bundle built on x86 by `edge-sdk build --target arm64` (a tiny random BERT, plus an
#     fp32 twin for the 1e-4 bound), or DEVICE_BUNDLE=path/to/bundle (e.g. the CLINC150 one);
#  3. in the Pi, venv "onnx": the wheel alone, from wheels only: `edge-runtime verify` must pass the
#     ONNX model, say the TFLite one is not checked without the extra, and why, and exit 1 for it;
#  4. in the Pi, venv "tflite": the wheel with [tflite], from wheels only: parity replay of every
#     model (tests/device/check.py), `edge-runtime verify`, and `edge-runtime predict` with both
#     backends, whose labels must equal the host's.
# Prints "TIMING step seconds" lines and the total, cold (no rootfs yet) or warm.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
SANDBOX=${SANDBOX:-../shared/tools/arm64-sandbox.sh}
OUT=${DEVICE_OUT:-build/device-test}
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
ROOT=${ARM64_ROOT:-/tmp/arm64-root}
export ARM64_WORK=$REPO
VENV_ONNX=/opt/edge-runtime-onnx
VENV_TFLITE=/opt/edge-runtime-tflite
TEXTS=("what's the balance on my checking account" "wake me up at 7" "will it rain tomorrow in Lisbon"
       "who won the football game last night")

case "$OUT" in /*|../*) echo "DEVICE_OUT must be a path inside the repository (mounted at /work in the Pi)"; exit 2 ;; esac
[ -x "$SANDBOX" ] || { echo "no sandbox script at $SANDBOX (../shared/tools/ beside the repository)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "device-test needs root (binfmt_misc, chroot, mount namespaces)"; exit 2; }

T0=$SECONDS
step() { local name=$1; shift; local t=$SECONDS; "$@"; echo "TIMING $name $((SECONDS - t))s"; }
[ -e "$ROOT/.arm64-sandbox.apt" ] && KIND=warm || KIND=cold

build_wheel() {
  rm -rf "$OUT/dist"
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OUT/dist" ./runtime
}
step wheel build_wheel
WHEEL=$(ls "$OUT"/dist/edge_sdk_runtime-*.whl)

BUNDLES=()
if [ -n "${DEVICE_BUNDLE:-}" ]; then
  rm -rf "$OUT/given" && mkdir -p "$OUT/given"
  cp -r "$DEVICE_BUNDLE" "$OUT/given/$(basename "$DEVICE_BUNDLE")"   # inside the repository, so the Pi sees it
  BUNDLES=("$OUT/given/$(basename "$DEVICE_BUNDLE")")
else
  host_bundles() { "$PY" tests/device/make_bundle.py "$OUT" >/dev/null; }
  step host-bundles host_bundles
  BUNDLES=("$OUT/bundles/arm64" "$OUT/bundles/arm64-fp32")
fi
MAIN=${BUNDLES[0]}
grep -q '"backend": "tflite"' "$MAIN/manifest.json" || { echo "$MAIN has no TFLite model"; exit 1; }

# What the host predicts, to compare labels with the Pi's.
for backend in onnx tflite; do
  "$BIN/edge-runtime" predict --backend $backend "$MAIN" "${TEXTS[@]}" > "$OUT/host-$backend.jsonl" 2>/dev/null
done

step sandbox-setup env ARM64_VENV=$VENV_ONNX "$SANDBOX" setup
step sandbox-venv-tflite env ARM64_VENV=$VENV_TFLITE "$SANDBOX" setup

# The runtime alone: ONNX checked, TFLite reported as not checked, with the install line, and the
# exit code 1 that an unchecked model means (--allow-unchecked would accept it).
install() {  # VENV SPEC: the freshly built wheel (same version, new code) and then its dependencies
  ARM64_VENV=$1 "$SANDBOX" pip-install -q --force-reinstall --no-deps "$WHEEL"
  ARM64_VENV=$1 "$SANDBOX" pip-install -q "$2"
}
step pip-install-onnx install $VENV_ONNX "$WHEEL"
rc=0
ARM64_VENV=$VENV_ONNX "$SANDBOX" run edge-runtime verify "$MAIN" > "$OUT/verify-onnx-only.txt" 2>&1 || rc=$?
cat "$OUT/verify-onnx-only.txt"
grep -q "\.onnx: .*: OK" "$OUT/verify-onnx-only.txt" || { echo "FAIL: the ONNX model did not pass on the Pi"; exit 1; }
grep -q "tflite: not checked here: .*pip install 'edge-sdk-runtime\[tflite\]'" "$OUT/verify-onnx-only.txt" \
  || { echo "FAIL: the ONNX-only runtime did not explain the unchecked TFLite model"; exit 1; }
[ "$rc" = 1 ] || { echo "FAIL: verify exited $rc with a model unchecked (expected 1)"; exit 1; }

step pip-install-tflite install $VENV_TFLITE "$WHEEL[tflite]"
export ARM64_VENV=$VENV_TFLITE
"$SANDBOX" run python -c "import edge_runtime, onnxruntime, ai_edge_litert, platform; print('Pi venv:', platform.machine(), 'onnxruntime', onnxruntime.__version__)"
step parity "$SANDBOX" run python tests/device/check.py "${BUNDLES[@]}"
for bundle in "${BUNDLES[@]}"; do
  step "verify-$(basename "$bundle")" "$SANDBOX" run edge-runtime verify "$bundle"
done
for backend in onnx tflite; do
  device_predict() { "$SANDBOX" run edge-runtime predict --backend "$1" "$MAIN" "${TEXTS[@]}" > "$OUT/device-$1.jsonl"; }
  step "predict-$backend" device_predict $backend
  "$PY" - "$OUT/host-$backend.jsonl" "$OUT/device-$backend.jsonl" $backend <<'PY'
import json, sys
host, device = ([json.loads(line) for line in open(p)] for p in sys.argv[1:3])
assert [h["label"] for h in host] == [d["label"] for d in device], (host, device)
diff = max(abs(h["score"] - d["score"]) for h, d in zip(host, device))
print(f"predict {sys.argv[3]}: {len(device)} texts, labels equal to the host's, max score diff {diff:.2g}")
for d in device:
    print(f"  {d['label']:>10} {d['score']:.3f}  {d['text']}")
PY
done
echo "device-test: OK, $KIND, $((SECONDS - T0)) s in all"
