"""`edge-sdk autotune`, `edge-sdk prune` and `edge-sdk latency fit`."""

from __future__ import annotations

from pathlib import Path

import click

from ..command import command, group

COMMON = [
    click.option("--data", metavar="PATH", help="Labelled data (as for build); the search measures its validation "
                                                "split, the chosen bundle's guard its test split."),
    click.option("--model", metavar="PATH_OR_HUB_ID", help="Model folder or hub id (as for build)."),
    click.option("--trials", type=click.IntRange(min=1), default=12, show_default=True,
                 help="Trials the study should hold in all (over every worker); rerun to resume."),
    click.option("--max-accuracy-drop", type=click.FloatRange(min=0), default=0.5, show_default=True,
                 metavar="POINTS", help="Validation accuracy points the chosen bundle may lose against the FP32 "
                                        "teacher."),
    click.option("--objective", type=click.Choice(["latency", "size"]), default="latency", show_default=True,
                 help="What the chosen point minimises among the front points within the budget."),
    click.option("--storage", help="Optuna storage URL shared by workers, e.g. postgresql://user:pw@host/db "
                                   "(default: sqlite file in --out)."),
    click.option("--latency-model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="A latency model from `edge-sdk latency fit` (for targets not timed on this host)."),
    click.option("--cache-dir", type=click.Path(path_type=Path), help="Step cache (as for build)."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--start", "starts", multiple=True, metavar="RECIPE",
                 help="A hand-made recipe (built-in name or TOML file) measured as one of the first trials, "
                      "so the front holds or beats it; repeatable. The uncompressed model and every built-in "
                      "recipe the knobs can make always start, unless `--start none` is given."),
    click.option("--no-build", is_flag=True, help="Write the front and the chosen recipe, but build no bundle."),
]


def common(function):
    for option in reversed(COMMON):
        function = option(function)
    return function


def _fraction_range(value: str, option: str) -> tuple[float, float]:
    low, _, high = value.partition(":")
    try:
        low, high = float(low), float(high or low)
    except ValueError:
        raise click.BadParameter(f"give a range as MIN:MAX, e.g. 0.25:1, got {value!r}", param_hint=option) from None
    if not 0 < low <= high <= 1:
        raise click.BadParameter(f"need 0 < MIN <= MAX <= 1, got {value!r}", param_hint=option)
    return low, high


def _depths(value: str | None, option: str = "--depths") -> tuple[int, ...]:
    """'2,3,6' -> (2, 3, 6): positive integers, sorted, without repeats."""
    if not value:
        return ()
    try:
        numbers = tuple(sorted({int(v) for v in value.split(",")}))
    except ValueError:
        numbers = ()
    if not numbers or numbers[0] < 1:
        raise click.BadParameter(f"give positive integers like 2,3,6, got {value!r}", param_hint=option)
    return numbers


def _report(result) -> None:
    click.echo(f"front: {result.files['table']} and {result.files['plot']} ({len(result.front)} of "
               f"{len(result.rows)} trials; p50 {result.latency})")
    chosen = next(r for r in result.rows if r["number"] == result.chosen)
    click.echo(f"chosen: trial {chosen['number']} ({chosen['summary']}): validation accuracy "
               f"{chosen['accuracy']:.4f} (teacher {result.teacher_accuracy:.4f}), p50 {chosen['p50_ms']:.2f} ms, "
               f"{chosen['size_mb']:.1f} MB -> {result.files['recipe']}")
    if "bundle" in result.files:
        click.echo(f"bundle: {result.files['bundle']} (built through edge-sdk build, guard included)")


@command()
@click.option("--target", required=True, metavar="NAME", help="The hardware profile to search for.")
@common
@click.option("--depths", help="Student depths to try, e.g. 2,3,6 (distilled from the teacher's layers); "
                               "default: the teacher's depth only.")
@click.option("--keep-heads", "keep_heads", default="0.25:1", show_default=True,
              help="Range of the fraction of attention heads kept, MIN:MAX (1:1 turns head pruning off).")
@click.option("--keep-neurons", "keep_neurons", default="0.25:1", show_default=True,
              help="Range of the fraction of FFN neurons kept, MIN:MAX.")
@click.option("--trim/--no-trim", "trim", default=None, help="Vocabulary trimming always on / off (default: searched).")
@click.option("--embedding-ranks", help="Low-rank embedding tables to try besides the full one, e.g. 64,128.")
@click.option("--precisions", default="int8", show_default=True,
              help="Weight precisions to try for ONNX targets: int8 (the target's scheme), int4, or int8,int4.")
@click.option("--study", "study_name", default="autotune", show_default=True, help="Study name in the storage.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/autotune"), show_default=True)
def autotune(target, data, model, trials, max_accuracy_drop, objective, storage, latency_model, cache_dir, seed,
             starts, no_build, depths, keep_heads, keep_neurons, trim, embedding_ranks, precisions, study_name, out):
    """Search the build's knobs for the fastest (or smallest) bundle within an accuracy budget.

    A multi-objective Optuna study (validation accuracy, p50 on the target, size) over student depth,
    heads and FFN neurons kept, vocabulary trimming, low-rank embeddings and weight precision. Its
    first trials are the uncompressed model and the built-in recipes the knobs can make (--start).
    Writes OUT/front.md, OUT/front.png, OUT/trials.json and OUT/recipe.toml, then builds the chosen
    recipe into OUT/<target>.

    \b
    Example:
      edge-sdk autotune --target x86-avx512-vnni --data ../shared/data/clinc150 --depths 3,6 --trials 16
    """
    from .autotune import autotune as run
    from .space import Knobs

    knobs = Knobs(depths=_depths(depths), keep_heads=_fraction_range(keep_heads, "--keep-heads"),
                  keep_neurons=_fraction_range(keep_neurons, "--keep-neurons"),
                  trim=(True, False) if trim is None else (trim,),
                  embedding_ranks=(None, *_depths(embedding_ranks, "--embedding-ranks")),
                  precisions=tuple(p.strip() for p in precisions.split(",")))
    _report(run(target, data=data, model=model, knobs=knobs, trials=trials, max_accuracy_drop=max_accuracy_drop,
                objective=objective, storage=storage, study=study_name, out=out, seed=seed,
                latency_model=latency_model, cache_dir=cache_dir, build_chosen=not no_build, starts=starts))


@command()
@click.option("--target", default="x86-avx512-vnni", show_default=True, metavar="NAME",
              help="The hardware profile whose file is measured.")
@common
@click.option("--keep-heads", "keep_heads", default="0.25:1", show_default=True,
              help="Range of the fraction of attention heads kept, MIN:MAX.")
@click.option("--keep-neurons", "keep_neurons", default="0.25:1", show_default=True,
              help="Range of the fraction of FFN neurons kept, MIN:MAX.")
@click.option("--epochs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Recovery distillation epochs after pruning.")
@click.option("--study", "study_name", default="prune", show_default=True, help="Study name in the storage.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/prune"), show_default=True)
def prune(target, data, model, trials, max_accuracy_drop, objective, storage, latency_model, cache_dir, seed,
          starts, no_build, keep_heads, keep_neurons, epochs, study_name, out):
    """Search how much structured pruning to apply: heads and FFN neurons kept, each trial recovered by
    distillation, measured as the target's file (validation accuracy, p50, size).

    The first trials are the unpruned model and recipe `pruned` when the knobs can make it (--start).
    Writes OUT/front.md, OUT/front.png (accuracy against p50, area by size), OUT/trials.json and
    OUT/recipe.toml (the fastest or smallest pruning within the budget), then builds it.

    \b
    Example:
      edge-sdk prune --data ../shared/data/clinc150 --model TEACHER_DIR --trials 8 --max-accuracy-drop 0.5
    """
    from .autotune import autotune as run
    from .space import Knobs

    knobs = Knobs(keep_heads=_fraction_range(keep_heads, "--keep-heads"),
                  keep_neurons=_fraction_range(keep_neurons, "--keep-neurons"), trim=(False,), recovery_epochs=epochs)
    _report(run(target, data=data, model=model, knobs=knobs, trials=trials, max_accuracy_drop=max_accuracy_drop,
                objective=objective, storage=storage, study=study_name, out=out, seed=seed,
                latency_model=latency_model, cache_dir=cache_dir, build_chosen=not no_build, starts=starts))


@group()
def latency():
    """Latency models for targets a search cannot time on this host."""


@latency.command("fit")
@click.argument("bench", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", required=True, metavar="NAME", help="The target the timings were taken on.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the model (JSON), for --latency-model.")
def fit(bench, target, out):
    """Fit a latency model from BENCH: `edge-runtime bench BUNDLE --json` lines taken on the device
    (three or more bundles of different sizes), e.g.

    \b
      for b in b1 b2 b3 b4; do edge-runtime bench $b --threads 1 --json; done > bench.jsonl
      edge-sdk latency fit bench.jsonl --target arm64 --out arm64-latency.json
    """
    from ..files import atomic_write_text
    from .latency import bench_points
    from .latency import fit as fit_model

    model = fit_model(bench_points(bench), target, f"edge-runtime bench on the device ({bench.name})")
    atomic_write_text(out, model.to_json())
    error = "n/a (fewer than 4 points)" if model.error is None else f"{100 * model.error:.1f}%"
    a, b, c = model.coefficients
    click.echo(f"{target}: p50 ms = {a:.3f} + {b:.3f} x GFLOP + {c:.4f} x MB over {model.points} points; "
               f"leave-one-out error {error} -> {out}")
