"""Device side of `make device-test`, run by the emulated Pi's Python: replay every bundle's parity
fixtures through each model (token ids equal, argmax identical on every fixture, max abs diff of
logits <= 1e-4 for fp32 models and <= the manifest's tolerance otherwise), then time loads and calls.

Usage: python tests/device/check.py BUNDLE [BUNDLE...]   (exit 1 on any failure)
Imports only edge_runtime: it runs where neither torch nor edge_sdk is installed.
"""

from __future__ import annotations

import platform
import sys
import time

from edge_runtime import Manifest, Pipeline
from edge_runtime.parity import replay

FP32_BOUND = 1e-4


def main(bundles: list[str]) -> int:
    print(f"device: {platform.machine()}, Python {platform.python_version()}")
    failed = 0
    for bundle in bundles:
        manifest = Manifest.read(bundle)
        for model in manifest.models:
            start = time.perf_counter()
            pipe = Pipeline.load(bundle, model=model.file)
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            report = replay(pipe)
            replay_s = time.perf_counter() - start
            bound = min(model.tolerance, FP32_BOUND) if model.precision == "fp32" else model.tolerance
            ok = (report.token_ids_equal == report.n and report.argmax_agree == report.n
                  and report.max_abs_diff <= bound)
            failed += not ok
            print(f"PARITY {bundle} {model.file} ({model.backend} {model.precision}, threads "
                  f"{pipe.manifest.execution.get('threads')}): {report.n} fixtures, token ids equal "
                  f"{report.token_ids_equal}/{report.n}, argmax agree {report.argmax_agree}/{report.n}, max abs diff "
                  f"{report.max_abs_diff:.3g} (bound {bound:.3g}): {'OK' if ok else 'FAIL'}; load {load_s:.2f} s, "
                  f"replay {replay_s:.2f} s ({1000 * replay_s / max(report.n, 1):.0f} ms/text, emulated)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
