"""`edge-sdk benchmark`: the protocol of DESIGN.md on the command line."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from ..command import command

HELP_EPILOG = """\b
Examples:
  edge-sdk benchmark build/clinc/x86-avx512-vnni --data ../shared/data/clinc150 \\
      --teacher .cache/teacher --threads 1 --markdown build/clinc/benchmark.md
  edge-sdk benchmark --data data.csv --teacher my-teacher --threads 1,2 --json bench.json
"""


def parse_threads(ctx, param, value: str) -> list[int]:
    counts = []
    for part in str(value).split(","):
        part = part.strip()
        try:
            number = int(part)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not an integer; give thread counts like 1 or 1,2") from None
        if number < 1:
            raise click.BadParameter(f"{number} is not a thread count; each must be at least 1")
        if number not in counts:
            counts.append(number)
    return counts


def find_teacher(bundles: list[Path]) -> Path | None:
    """The teacher a bundle's manifest names: source.teacher_path, or source.teacher as a folder
    path or as the name of an entry in the build's step cache ($EDGE_SDK_CACHE/teacher/NAME)."""
    from edge_runtime import Manifest

    from ..files import cache_home

    cache = cache_home()
    for bundle in bundles:
        if not Path(bundle).is_dir():
            continue
        try:
            source = Manifest.read(Path(bundle)).source or {}
        except Exception:
            continue
        for key in ("teacher_path", "teacher"):
            value = source.get(key)
            if not isinstance(value, str) or not value:
                continue
            candidates = [Path(value), cache / "teacher" / value]
            for candidate in candidates:
                if (candidate / "config.json").is_file():
                    return candidate
    return None


@command(epilog=HELP_EPILOG)
@click.argument("bundles", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled data whose test split is measured (CLINC150 folder, .csv, .jsonl, folder).")
@click.option("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Fine-tuned teacher (save_pretrained folder) for the reference rows; default: the "
                   "one a bundle's manifest names.")
@click.option("--baseline", "baselines", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Another fine-tuned model (save_pretrained folder) measured as an FP32 PyTorch row, e.g. the "
                   "small model fine-tuned without a teacher (the book's DistilBERT row); repeatable.")
@click.option("--threads", default="1", show_default=True, callback=parse_threads,
              help="Intra-op thread counts, comma-separated; every row is measured at each.")
@click.option("--queries", type=click.IntRange(min=1), default=500, show_default=True,
              help="Distinct test queries timed at batch 1. 500 is the protocol's minimum and the "
                   "default, not a hard floor: fewer is a smoke test and the report says so.")
@click.option("--round-size", type=click.IntRange(min=1), default=50, show_default=True,
              help="Queries per variant per interleaved timing round.")
@click.option("--accuracy-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Batch size of the accuracy pass over the test split. Dynamic int8 models quantize "
                   "activations per batch, so their accuracy moves slightly with it; 1 is what a device "
                   "answering one query at a time sees (slower).")
@click.option("--rss/--no-rss", default=True, show_default=True,
              help="Measure each variant's peak RSS alone in a fresh process.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write all numbers as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the accuracy-latency plot (PNG); default beside --markdown.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Markdown report (table, plot, machine).")
def benchmark(bundles, data_path, teacher, baselines, threads, queries, round_size, accuracy_batch, rss, json_path,
              plot_path, markdown_path):
    """Accuracy, size, latency, throughput and memory of bundles against reference rows.

    Reference rows, measured in the same run: the FP32 teacher through transformers' pipeline,
    its PyTorch dynamic int8, and its ONNX export quantized by onnxruntime's quantize_dynamic.
    Then every model file of every BUNDLE through edge_runtime.Pipeline. Latency at batch 1 is
    timed in interleaved rounds so machine drift hits every row alike; ratios are against the
    FP32 teacher at the same thread count.
    """
    from ..data import load_data
    from .run import Settings, run_benchmark

    bundles = [Path(b) for b in bundles]
    teacher = teacher or find_teacher(bundles)
    if teacher is None:
        raise click.UsageError("no teacher for the reference rows: give --teacher PATH (the fine-tuned "
                               "teacher's save_pretrained folder)")
    if not (teacher / "config.json").is_file() or not (teacher / "tokenizer.json").is_file():
        raise click.BadParameter(f"{teacher} is not a save_pretrained classifier folder (needs config.json and "
                                 "tokenizer.json)", param_hint="'--teacher'")
    if markdown_path and not plot_path:
        plot_path = markdown_path.with_suffix(".png")
    command_line = "edge-sdk benchmark " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else None
    settings = Settings(threads=threads, queries=queries, round_size=round_size, accuracy_batch=accuracy_batch,
                        measure_rss=rss)
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    data = load_data(data_path)
    result = run_benchmark(bundles, data, teacher, settings, log=log, command=command_line, baselines=baselines)
    print_console(result)
    write_outputs(result, json_path=json_path, plot_path=plot_path, markdown_path=markdown_path)


def write_outputs(result: dict, *, json_path: Path | None, plot_path: Path | None, markdown_path: Path | None) -> None:
    from ..report import plot_metrics, write_report

    if plot_path:
        plot_metrics(result["rows"], plot_path)
        click.echo(f"plot: {plot_path}", err=True)
    if markdown_path:
        write_report(markdown_path, "Benchmark", result["rows"], plot_path, report_context(result))
        click.echo(f"report: {markdown_path}", err=True)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        click.echo(f"json: {json_path}", err=True)


def report_context(result: dict) -> dict:
    env, settings = dict(result["environment"]), result["settings"]
    gemm = {}
    for threads, rates in result.get("gemm", {}).items():
        gemm[f"fp32 @{threads}t"] = f"{rates['fp32_gflops']:.1f} GFLOP/s"
        if rates.get("int8_gops"):
            gemm[f"int8 @{threads}t"] = f"{rates['int8_gops']:.1f} GOP/s"
    env["gemm"] = gemm
    env["queries"] = (f"{settings['timed_queries']} distinct test queries after {settings['warmup']} warm-up, "
                      f"interleaved rounds of {settings['round_size']}; accuracy on all {settings['test_texts']} "
                      f"test texts of {settings['data']} at batch {settings['accuracy_batch']}")
    env["notes"] = list(result.get("notes", [])) + [
        "peak RSS: each variant alone in a fresh process (VmHWM), interpreter and libraries included: torch + "
        "transformers for the PyTorch rows, onnxruntime + tokenizers (no torch) for the ORT row and bundles; "
        "the torch int8 row loads the FP32 teacher before quantizing it, so its peak includes that copy.",
        "of fp32 GEMM: an int8 model can pass 100%: int8 kernels (VNNI) run several times faster than fp32, so "
        "int8 rows are also compared with the int8 GEMM rate measured in the same run (torch._int_mm).",
    ]
    return env


def print_console(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..report.table import table_cells

    env = result["environment"]
    console = Console(width=max(Console().width, 300))  # every column on one line in logs too
    headers, cells = table_cells(result["rows"])
    table = Table(title="edge-sdk benchmark", show_lines=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))  # Text: a name like "x [arm64]" is not markup
    console.print(table)
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    gemm = "; ".join(f"{t} thread(s): fp32 {r['fp32_gflops']:.1f} GFLOP/s"
                     + (f", int8 {r['int8_gops']:.1f} GOP/s" if r.get("int8_gops") else "")
                     for t, r in result.get("gemm", {}).items())
    console.print(f"threads: {env['threads']}  CPU: {env['cpu']} ({env['cores']} cores; {', '.join(env['isa'])})  "
                  f"load average at start {env['load_average']}, at end {env.get('load_average_end')}")
    console.print(f"dense GEMM: {gemm}")
    console.print(f"versions: {versions}")
    for note in result.get("notes", []):
        console.print(Text(f"note: {note}"))
