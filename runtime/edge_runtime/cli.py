"""`edge-runtime`: predict, verify and benchmark a bundle on the device (argparse: no extra deps)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import BinaryIO, cast

from .errors import EdgeRuntimeError, InputError

EPILOG = """examples:
  edge-runtime predict build/arm64 "book a table for two" "what's my balance"
  edge-runtime predict build/arm64 -- "-5 degrees tomorrow?"     # texts after -- may start with -
  echo '{"text": "rent a car in Paris"}' | edge-runtime predict build/arm64 --jsonl
  edge-runtime verify build/arm64 --digest sha256:<64 hex>       # refuse any other bundle
  edge-runtime verify build/arm64 --public-key release.pub       # needs edge-sdk-runtime[signing]
  edge-runtime bench build/arm64 --threads 1
"""
MAX_JSONL_LINE = 8 << 20  # bytes; the text limit itself is Limits.max_text_chars (characters)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot split one positional list around options (`predict B --backend onnx TEXT`):
    # texts after the options arrive as leftovers and join the ones before. Everything after `--`
    # is a text, even one that starts with '-'.
    after = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args, extra = parser.parse_known_args(argv)
    if (extra or after) and args.command != "predict":
        parser.error(f"unrecognized arguments: {' '.join(extra + after)}")
    if any(e.startswith("-") and e != "-" for e in extra):
        parser.error(f"unrecognized arguments: {' '.join(e for e in extra if e.startswith('-'))}"
                     " (a text starting with '-' goes after --)")
    if args.command == "predict":
        args.texts = list(args.texts) + extra + after
    warnings.showwarning = _warning_line
    try:
        return args.func(args)
    except EdgeRuntimeError as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:  # `edge-runtime predict ... | head`: the reader left; so do we, quietly
        _silence_stdout()
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
        p.add_argument("--threads", type=_positive_int,
                       help="intra-op threads (default: the manifest's, at most this machine's cores; "
                            "more than the cores warns, more than 4x them (at least 16) is refused)")
        p.add_argument("--digest", metavar="SHA256",
                       help="refuse the bundle unless its digest (sha256 of manifest.json, printed by verify) is this")
        p.add_argument("--public-key", type=Path, metavar="PEM",
                       help="refuse the bundle unless it carries a valid Ed25519 signature by this public key "
                            "(needs: pip install 'edge-sdk-runtime[signing]')")
        return p

    def batching_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--allow-batch-dependence", action="store_true",
                       help="batch dynamic-int8 models too (faster; a text's scores then depend on the texts "
                            "batched with it). Default: such models run one text at a time")

    p = bundle_command("predict", "Classify texts given as arguments, or JSON lines from stdin with --jsonl.")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify; put -- before texts that start with -")
    p.add_argument("--jsonl", action="store_true",
                   help='read {"text": ...} lines from stdin and write one JSON result per good line, with its '
                        '"line" number, as soon as it is read; bad lines are reported on stderr by number and '
                        "the exit code is 1 if there was any")
    p.add_argument("--top-k", type=_positive_int, default=1, help="labels per text (default 1)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="texts per model call at most (default 32); with --jsonl, lines already read are "
                        "classified together, up to this many")
    batching_option(p)
    p.set_defaults(func=cmd_predict)

    p = bundle_command("verify", "Check digest, signature and checksums, then replay the bundle's parity fixtures "
                                 "on this device.")
    p.add_argument("--allow-unchecked", action="store_true",
                   help="exit 0 even if a model could not be replayed here (its backend is not installed); "
                        "by default that is a failure")
    p.set_defaults(func=cmd_verify)

    p = bundle_command("bench", "Batch-1 latency (after warm-up) and batch-32 throughput on this device.")
    p.add_argument("--texts", type=Path, help="file with one query per line (default: the bundle's fixtures)")
    p.add_argument("--warmup", type=_positive_int, default=10, help="untimed calls first (default 10)")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    batching_option(p)
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
    _say(f"warning: {message}")


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds (stderr escapes what it cannot encode)."""
    print(" ".join(str(message).splitlines()), file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _load(args, bundle=None):
    from .pipeline import Pipeline

    options = {"threads": args.threads, "backend": args.backend, "model": args.model,
               "batch_independent": not getattr(args, "allow_batch_dependence", False)}
    if bundle is not None:
        return Pipeline.from_bundle(bundle, **options)
    return Pipeline.load(args.bundle, digest=args.digest, public_key=args.public_key, **options)


def _emit(obj) -> None:
    """One JSON line, written as UTF-8 whatever the locale, and flushed: a reader sees it now."""
    from .jsonl import dumps

    line = dumps(obj) + "\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        buffer.write(line.encode("utf-8"))
        buffer.flush()
    else:
        sys.stdout.write(line)
        sys.stdout.flush()


def _result(text: str, prediction, **extra) -> dict:
    if isinstance(prediction, dict):
        return {**extra, "text": text, **prediction}
    return {**extra, "text": text, "top_k": prediction}


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
    return _predict_jsonl(pipe, args)


def _predict_jsonl(pipe, args) -> int:
    from .jsonl import line_batches, parse_line

    bad = good = 0

    def report(number: int, problem: str) -> None:
        nonlocal bad
        bad += 1
        _say(f"line {number}: {problem}")

    def classify(items: list[tuple[int, str]]) -> None:
        nonlocal good
        try:
            predictions = pipe([text for _, text in items], batch_size=args.batch_size, top_k=args.top_k)
        except EdgeRuntimeError as exc:
            if len(items) == 1:  # this line is the one the model fails on
                report(items[0][0], str(exc))
                return
            for item in items:  # find which: the others still get their answers
                classify([item])
            return
        for (number, text), pred in zip(items, predictions):
            _emit(_result(text, pred, line=number))
        good += len(items)

    stdin = cast(BinaryIO, getattr(sys.stdin, "buffer", sys.stdin))
    max_chars = pipe.limits.max_text_chars
    for batch in line_batches(stdin, MAX_JSONL_LINE):
        ready = []
        for number, raw in batch:
            text, problem = parse_line(raw, number, max_chars, MAX_JSONL_LINE)
            if problem:
                report(number, problem)
            elif text is not None:
                ready.append((number, text))
        for start in range(0, len(ready), args.batch_size):
            classify(ready[start:start + args.batch_size])
    if bad:
        _say(f"error: {bad} line(s) failed, {good} classified")
        return 1
    return 0


def cmd_verify(args) -> int:
    from .bundle import open_bundle
    from .errors import BackendUnavailableError
    from .manifest import SIGNATURE_FILE
    from .parity import replay
    from .pipeline import Pipeline

    # Unpacked and checked once (digest, signature, schema, files, external data); every model below
    # is started from this one copy.
    bundle = open_bundle(args.bundle, digest=args.digest, public_key=args.public_key)
    manifest = bundle.manifest
    print(f"{args.bundle}: digest {bundle.digest}{' (as pinned)' if args.digest else ''}")
    if bundle.signed_by:
        print(f"signature OK: signed by key {bundle.signed_by}")
    elif bundle.path(SIGNATURE_FILE).exists():
        print(f"{SIGNATURE_FILE} present, not checked (give --public-key)")
    print(f"checksums OK ({len(manifest.files)} files), schema {manifest.schema_version}, "
          f"{len(manifest.labels)} labels, target {manifest.target.get('name', '?')}")
    failed = checked = 0
    unchecked = []
    for model in manifest.models:
        if (args.backend and model.backend != args.backend) or (args.model and model.file != args.model):
            continue
        try:
            pipe = Pipeline.from_bundle(bundle, threads=args.threads, model=model.file)
        except BackendUnavailableError as exc:
            print(f"{model.file}: not checked here: {exc}")
            unchecked.append(model.file)
            continue
        report = replay(pipe)
        checked += 1
        failed += not report.ok
        print(report.line())
    if checked == 0:
        raise InputError("no model of this bundle could be checked on this device")
    if failed:
        return 1
    if unchecked and not args.allow_unchecked:
        _say(f"error: {', '.join(unchecked)} not checked on this device; install what is named above, "
             "or pass --allow-unchecked to accept a partial check")
        return 1
    return 0


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
              "one_text_per_call": pipe.rows_alone, "queries": len(texts), "batch1": latency, "batch32_qps": qps}
    if args.json:
        _emit(result)
    else:
        print(f"{pipe.model.file} ({pipe.model.backend} {pipe.model.precision}), threads "
              f"{args.threads or 'default'}, {len(texts)} distinct queries")
        print("batch 1: mean {mean_ms:.2f} ± {std_ms:.2f} ms, p50 {p50_ms:.2f}, p95 {p95_ms:.2f}, "
              "p99 {p99_ms:.2f} ms".format(**latency))
        print(f"batch 32: {qps:.1f} queries/s"
              + (" (one text per model call: dynamic int8, batch-independent answers)" if pipe.rows_alone else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
