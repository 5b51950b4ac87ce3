"""`edge-runtime`: predict, verify and benchmark a bundle on the device (argparse: no extra deps)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .errors import EdgeRuntimeError, InputError

EPILOG = """examples:
  edge-runtime predict build/arm64 "book a table for two" "what's my balance"
  echo '{"text": "rent a car in Paris"}' | edge-runtime predict build/arm64 --jsonl
  edge-runtime verify build/arm64
  edge-runtime bench build/arm64 --threads 1
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot split one positional list around options (`predict B --backend onnx TEXT`):
    # texts after the options arrive as leftovers and join the ones before.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "predict" or any(e.startswith("-") and e != "-" for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.texts = list(args.texts) + extra
    warnings.showwarning = _warning_line
    try:
        return args.func(args)
    except EdgeRuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edge-runtime predict ... | head`
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-runtime", description="Run an edge-sdk bundle on this device.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def bundle_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("bundle", type=Path, help="bundle directory, .zip or .tar.gz")
        p.add_argument("--backend", choices=("onnx", "tflite"), help="pick the bundle's model for this backend")
        p.add_argument("--model", help="pick the bundle's model by file name")
        p.add_argument("--threads", type=_positive_int, help="intra-op threads (default: the manifest's)")
        return p

    p = bundle_command("predict", "Classify texts given as arguments, or JSON lines from stdin with --jsonl.")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--jsonl", action="store_true",
                   help='read {"text": ...} lines from stdin, write one JSON result per line')
    p.add_argument("--top-k", type=_positive_int, default=1, help="labels per text (default 1)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="texts per model call; with --jsonl, lines read before each flush (default 32)")
    p.set_defaults(func=cmd_predict)

    p = bundle_command("verify", "Check checksums, then replay the bundle's parity fixtures on this device.")
    p.set_defaults(func=cmd_verify)

    p = bundle_command("bench", "Batch-1 latency (after warm-up) and batch-32 throughput on this device.")
    p.add_argument("--texts", type=Path, help="file with one query per line (default: the bundle's fixtures)")
    p.add_argument("--warmup", type=_positive_int, default=10, help="untimed calls first (default 10)")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    p.set_defaults(func=cmd_bench)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _warning_line(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def _load(args):
    from .pipeline import Pipeline

    return Pipeline.load(args.bundle, threads=args.threads, backend=args.backend, model=args.model)


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _result(text: str, prediction) -> dict:
    if isinstance(prediction, dict):
        return {"text": text, **prediction}
    return {"text": text, "top_k": prediction}


def cmd_predict(args) -> int:
    if args.jsonl and args.texts:
        raise InputError("give texts as arguments or --jsonl on stdin, not both")
    if not args.jsonl and not args.texts:
        raise InputError("no text to classify: give TEXT arguments or --jsonl with lines on stdin")
    pipe = _load(args)
    if not args.jsonl:
        for text, pred in zip(args.texts, pipe(args.texts, batch_size=args.batch_size, top_k=args.top_k)):
            _emit(_result(text, pred))
        return 0
    bad = 0
    pending: list[str] = []

    def flush():
        if pending:
            for text, pred in zip(pending, pipe(pending, batch_size=args.batch_size, top_k=args.top_k)):
                _emit(_result(text, pred))
            pending.clear()

    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        text, problem = _parse_jsonl(line)
        if problem:
            bad += 1
            print(f"line {number}: {problem}", file=sys.stderr)
            continue
        pending.append(text)
        if len(pending) >= args.batch_size:
            flush()
    flush()
    if bad:
        print(f"error: {bad} malformed line(s) skipped", file=sys.stderr)
        return 1
    return 0


def _parse_jsonl(line: str) -> tuple[str | None, str | None]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return None, 'expected an object with a string field "text"'
    return obj["text"], None


def cmd_verify(args) -> int:
    from .bundle import open_bundle
    from .errors import BackendUnavailableError
    from .parity import replay
    from .pipeline import Pipeline

    bundle = open_bundle(args.bundle)  # checksums, schema, unlisted files
    manifest = bundle.manifest
    print(f"{args.bundle}: checksums OK ({len(manifest.files)} files), schema {manifest.schema_version}, "
          f"{len(manifest.labels)} labels, target {manifest.target.get('name', '?')}")
    failed = checked = 0
    for model in manifest.models:
        if (args.backend and model.backend != args.backend) or (args.model and model.file != args.model):
            continue
        try:
            pipe = Pipeline.load(args.bundle, threads=args.threads, model=model.file)
        except BackendUnavailableError as exc:
            print(f"{model.file}: not checked here: {exc}")
            continue
        report = replay(pipe)
        checked += 1
        failed += not report.ok
        print(report.line())
    if checked == 0:
        raise InputError("no model of this bundle could be checked on this device")
    return 1 if failed else 0


def cmd_bench(args) -> int:
    from .bench import batch1_latency, throughput
    from .parity import load_fixtures

    pipe = _load(args)
    if args.texts:
        try:
            texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {args.texts}: {exc}") from None
        if not texts:
            raise InputError(f"{args.texts} holds no text")
    else:
        texts = list(load_fixtures(pipe).texts)
    latency = batch1_latency(lambda batch: pipe(batch), texts, warmup=args.warmup)
    qps = throughput(lambda batch: pipe(batch, batch_size=32), texts * max(1, 256 // len(texts)), 32)
    result = {"bundle": str(args.bundle), "model": pipe.model.file, "threads": args.threads,
              "queries": len(texts), "batch1": latency, "batch32_qps": qps}
    if args.json:
        _emit(result)
    else:
        print(f"{pipe.model.file} ({pipe.model.backend} {pipe.model.precision}), threads "
              f"{args.threads or 'default'}, {len(texts)} distinct queries")
        print("batch 1: mean {mean_ms:.2f} ± {std_ms:.2f} ms, p50 {p50_ms:.2f}, p95 {p95_ms:.2f}, "
              "p99 {p99_ms:.2f} ms".format(**latency))
        print(f"batch 32: {qps:.1f} queries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
