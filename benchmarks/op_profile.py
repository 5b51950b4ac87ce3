"""Where a bundle's batch-1 time goes inside onnxruntime: kernel time per operator type, from
onnxruntime's own profiler, over real test queries at 1 thread.

    python benchmarks/op_profile.py ../shared/data/clinc150 build/a/x86-avx512-vnni build/b/x86-avx512-vnni

Prints per bundle the nodes run per query, the kernel time per query (profiling inflates it: compare
bundles with each other, not with `edge-sdk benchmark`'s p50) and the operator types that take the
most of it. Written to see why pruning heads and FFN neurons speeds up short queries less than it
cuts multiply-adds (BENCHMARKS.md, issue 16).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP = 20


def profile(bundle: Path, texts: list[str], top: int) -> None:
    import onnxruntime as ort

    from edge_runtime import Pipeline

    pipe = Pipeline.load(bundle, threads=1)
    feeds = [pipe.encoder.feeds(pipe.encoder.ids([t]), pipe.backend.input_names) for t in texts]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    session = ort.InferenceSession(str(bundle / pipe.model.file), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=list(pipe.model.disabled_optimizers) or None)  # as the manifest
    for feed in feeds[:WARMUP] + feeds:
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    time_us, count = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            time_us[event["args"]["op_name"]] += event["dur"]
            count[event["args"]["op_name"]] += 1
    runs = WARMUP + len(feeds)
    total_ms = sum(time_us.values()) / runs / 1e3
    print(f"{bundle.parent.name}/{pipe.model.file}: {sum(count.values()) // runs} nodes per query, "
          f"kernels {total_ms:.3f} ms per query (profiled)")
    for op, us in time_us.most_common(top):
        print(f"  {op:<28} {us / runs / 1e3:.3f} ms  {100 * us / sum(time_us.values()):4.1f}%  x{count[op] // runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--queries", type=int, default=300, help="test queries profiled per bundle")
    parser.add_argument("--top", type=int, default=6, help="operator types shown per bundle")
    args = parser.parse_args()

    from edge_sdk.data import load_data

    texts = list(load_data(args.data).test.texts[:args.queries])
    for bundle in args.bundles:
        profile(bundle, texts, args.top)


if __name__ == "__main__":
    main()
