"""Peak resident memory of one variant, measured alone in a fresh process.

Measuring every variant in the benchmark's own process would charge each row for the models
loaded before it. So each variant is rebuilt in a child process that imports only what that row
needs (torch + transformers for the PyTorch rows; onnxruntime + tokenizers for the ORT row and the
bundles, which never import torch), loads the model, answers the queries at batch 1 and batch 32,
and reports its peak RSS (VmHWM: interpreter and libraries included, as a device would see it),
plus the RSS after its imports, so the model's own share is the difference.

    python -m edge_sdk.benchmark.rss JOB.json   # prints one JSON object
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MB = 1024 * 1024


def rss_now_mb() -> float | None:
    return _status_kb("VmRSS")


def peak_rss_mb() -> float | None:
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource

        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return value / MB if sys.platform == "darwin" else value / 1024  # bytes on macOS, KiB elsewhere
    except (ImportError, OSError):
        return None


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def measure(job: dict) -> dict:
    from .variants import VariantSpec, open_runner

    spec = VariantSpec.from_dict(job["spec"])
    if spec.runner.startswith("torch"):
        import torch  # noqa: F401
        import transformers  # noqa: F401
    else:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    gc.collect()
    imported = rss_now_mb()
    runner = open_runner(spec, int(job["threads"]))
    gc.collect()
    loaded = rss_now_mb()
    texts = list(job["texts"])
    for text in texts[:50]:
        runner.predict([text])
    for i in range(0, len(texts), 32):
        runner.predict(texts[i:i + 32])
    return {"peak_rss_mb": peak_rss_mb(), "import_rss_mb": imported, "loaded_rss_mb": loaded,
            "torch_imported": "torch" in sys.modules}


def measure_in_subprocess(spec: dict, threads: int, texts: list[str], timeout: float = 900) -> dict:
    """Run `measure` in a fresh interpreter; on failure the dict carries `error` instead of numbers."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump({"spec": spec, "threads": threads, "texts": texts}, fh)
        job = fh.name
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"), TOKENIZERS_PARALLELISM="false")
    try:
        done = subprocess.run([sys.executable, "-m", "edge_sdk.benchmark.rss", job], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        os.unlink(job)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(measure(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
