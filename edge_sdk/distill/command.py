"""`edge-sdk distill`: search distillation hyper-parameters with Optuna and keep the best student."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import click

from ..command import command
from ..errors import DistillError
from .config import RECORD, DistillConfig

STUDENT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # `--student` alone: the usual small student


def _int_list(value: str | None, option: str) -> tuple[int, ...] | None:
    from .student import parse_layers

    if value is None:
        return None
    try:
        return parse_layers(value)
    except DistillError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _epoch_range(value: str) -> tuple[int, int]:
    lo, _, hi = value.replace(":", "-").partition("-")
    try:
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise click.BadParameter(f"give epochs as MIN-MAX or N, e.g. 3-8, got {value!r}",
                                 param_hint="--epochs") from None
    if not 1 <= lo <= hi:
        raise click.BadParameter(f"need 1 <= MIN <= MAX, got {value!r}", param_hint="--epochs")
    return lo, hi


def _float_range(value: str, option: str, lowest: float, highest: float | None = None) -> tuple[float, float]:
    """'MIN:MAX' (or one number) -> (min, max) within [lowest, highest]."""
    lo, _, hi = value.partition(":")
    try:
        lo, hi = float(lo), float(hi or lo)
    except ValueError:
        raise click.BadParameter(f"give a range as MIN:MAX, e.g. 0:0.5, got {value!r}", param_hint=option) from None
    if not (lowest <= lo <= hi and (highest is None or hi <= highest)):
        bounds = f"{lowest} <= MIN <= MAX" + (f" <= {highest}" if highest is not None else "")
        raise click.BadParameter(f"need {bounds}, got {value!r}", param_hint=option)
    return lo, hi


def _load_params(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--params") from None
    params = data.get("best_params") or data.get("params") or data
    missing = [k for k in ("alpha", "temperature", "learning_rate", "epochs") if k not in params]
    if missing:
        raise click.BadParameter(f"{path} lacks {', '.join(missing)}", param_hint="--params")
    return params


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_table(rows, teacher_accuracy: dict) -> None:
    """The study as the book shows it: one row per trial, its parameters and validation accuracy."""
    from rich.console import Console
    from rich.table import Table

    several = len({r["worker"] for r in rows}) > 1
    table = Table(title=f"Optuna study: {len(rows)} trials (teacher validation accuracy "
                        f"{teacher_accuracy['validation']:.4f})")
    for name in ["trial", "state", "alpha", "T", "lr", "epochs", "layers", "val acc", "ran", "s"] + (
            ["worker"] if several else []):
        table.add_column(name, justify="left" if name in ("state", "layers", "worker") else "right")
    for r in rows:
        table.add_row(str(r["number"]), r["state"].lower(), _fmt(r["alpha"], ".3f"), _fmt(r["temperature"], ".2f"),
                      _fmt(r["learning_rate"], ".1e"), _fmt(r["epochs"], "d"),
                      ",".join(map(str, r["layers"])) if r["layers"] else "", _fmt(r["value"], ".4f"),
                      str(r["epochs_run"]), _fmt(r["seconds"], ".0f"), *([r["worker"] or ""] if several else []))
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=140)
    console.print(table)
    console.print("(ran: epochs trained before the trial finished or was pruned; s: seconds)")


@command()
@click.option("--teacher", required=True, type=click.Path(path_type=Path),
              help="Fine-tuned teacher: a folder written by save_pretrained, with a head for the data's labels.")
@click.option("--data", required=True, help="CLINC150 folder/.json, .csv/.jsonl, a folder of splits, or a hub id.")
@click.option("--layers", help="Teacher layers the student keeps, e.g. 1,3,5 "
                               "(default: every other layer, ending at the top).")
@click.option("--depths", help="Search the student's depth over these counts, e.g. 2,3 (layers spread evenly).")
@click.option("--student", metavar="MODEL", is_flag=False, flag_value=STUDENT_MODEL,
              help="Train a pretrained model (folder or hub id) as the student, with its own tokenizer and a "
                   f"fresh head, instead of one made of teacher layers; --student alone: {STUDENT_MODEL}.")
@click.option("--trials", type=int, default=10, show_default=True,
              help="Trials the study should hold in all (over every worker); rerun to resume.")
@click.option("--epochs", "epoch_range", default="3-8", show_default=True, help="Epochs range searched, MIN-MAX.")
@click.option("--alpha", "alpha_range", default="0:1", show_default=True,
              help="Range searched for alpha, the weight of CE on labels (1 - alpha: the teacher's), MIN:MAX.")
@click.option("--temperature", "t_range", default="1:20", show_default=True, help="Temperature range, MIN:MAX.")
@click.option("--lr", "lr_range", default="2e-5:3e-4", show_default=True,
              help="Learning-rate range (sampled on a log scale), MIN:MAX.")
@click.option("--storage", help="Optuna storage URL shared by workers, e.g. postgresql://user:pw@host/db "
                                "(default: sqlite file in --out).")
@click.option("--study", "study_name", default="distill", show_default=True, help="Study name in the storage.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("build/distill"), show_default=True,
              help="Output folder: student/, best_params.json, study.db, cache/.")
@click.option("--params", "params_file", help="Skip the search: train one student with these parameters "
                                              "(a best_params.json); runs under accelerate launch / torchrun.")
@click.option("--augment", type=click.IntRange(min=0), default=0, show_default=True,
              help="Perturbed copies of each training text (word drop/swap/replace, spliced halves), "
                   "trained on the teacher's outputs; each copy adds an epoch's worth of time.")
@click.option("--hidden-weight", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Weight of a hidden-state loss pulling each student layer towards the teacher layer it "
                   "replaces (the teacher then runs on every batch: slower epochs); 0: logits only.")
@click.option("--bias-correction/--no-bias-correction", default=True, show_default=True,
              help="Re-fit the student's classifier bias to the teacher's outputs on the validation texts "
                   "(no labels read) after training.")
@click.option("--max-length", type=click.IntRange(min=8), default=64, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def distill(teacher, data, layers, depths, student, trials, epoch_range, alpha_range, t_range, lr_range, storage,
            study_name, out_dir, params_file, augment, hidden_weight, bias_correction, max_length, batch_size, seed):
    """Distil a fine-tuned teacher into a smaller student, searching alpha, T, learning rate and epochs.

    \b
    Writes OUT/student (the best student, save_pretrained + tokenizer), OUT/best_params.json and
    OUT/recipe.toml (the distilled recipe with the best parameters, for `edge-sdk build --recipe`).
    Several workers started with one --storage URL share one study:
      edge-sdk distill --teacher t1 --data ../shared/data/clinc150 --layers 1,3,5 --trials 20 \\
          --storage postgresql://optuna@db-host/optuna --study minilm-l3
    """
    if trials < 1:
        raise click.BadParameter(f"need at least 1 trial, got {trials}", param_hint="--trials")
    if sum(bool(x) for x in (layers, depths, student)) > 1:
        raise click.UsageError("give one of --layers (teacher layers), --depths (search the depth) or --student "
                               "(a pretrained student)")
    params = _load_params(params_file) if params_file else None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and params is None:
        raise click.UsageError("under accelerate launch / torchrun give --params FILE to train one student; "
                               "a search runs as separate workers sharing --storage")
    if not (teacher / "config.json").is_file():
        raise click.BadParameter(f"no fine-tuned model at {teacher} (needs config.json and weights)",
                                 param_hint="--teacher")
    from ..data import load_data

    dataset = load_data(data, seed=seed)
    layer_list, depth_list = _student_layers(teacher, dataset, layers, depths)
    base = DistillConfig(layers=layer_list, student=student, max_length=max_length, batch_size=batch_size, seed=seed,
                         augment=augment, hidden_weight=hidden_weight, bias_correction=bias_correction)
    if params is not None:
        _train_one(teacher, dataset, out_dir, base, params, layer_list)
    else:
        space = dict(epochs=_epoch_range(epoch_range), alpha=_float_range(alpha_range, "--alpha", 0.0, 1.0),
                     temperature=_float_range(t_range, "--temperature", 1e-3),
                     learning_rate=_float_range(lr_range, "--lr", 1e-9, 1.0))
        _search(teacher, dataset, out_dir, base, space, depth_list, trials, storage, study_name)


def _student_layers(teacher: Path, dataset, layers: str | None, depths: str | None):
    """The --layers and --depths values checked against the teacher's depth."""
    from .student import check_layers, num_layers
    from .train import check_teacher

    layer_list, depth_list = _int_list(layers, "--layers"), _int_list(depths, "--depths")
    n = num_layers(check_teacher(teacher, dataset))
    try:
        if layer_list is not None:
            layer_list = check_layers(layer_list, n)
        for d in depth_list or ():
            if not 1 <= d <= n:
                raise DistillError(f"a student of {d} layers cannot come from a teacher of {n}")
    except DistillError as exc:
        raise click.BadParameter(str(exc), param_hint="--layers" if layer_list is not None else "--depths") from None
    return layer_list, depth_list


def _train_one(teacher: Path, dataset, out_dir: Path, base: DistillConfig, params: dict, layer_list) -> None:
    """--params: one student with known parameters (runs under accelerate launch / torchrun)."""
    from .train import distill as run_distill

    config = dataclasses.replace(base, alpha=float(params["alpha"]), temperature=float(params["temperature"]),
                                 learning_rate=float(params["learning_rate"]), epochs=int(params["epochs"]),
                                 layers=layer_list or (tuple(params["layers"]) if params.get("layers") else None))
    student = run_distill(teacher, dataset, out_dir / "student", config, work_dir=out_dir / "work",
                          progress=_is_main_process())
    if _is_main_process():
        record = json.loads((student / RECORD).read_text())
        click.echo(f"student ({record['world_size']} process(es)) -> {student}: validation accuracy "
                   f"{record['validation_accuracy']:.4f}, test {record['test_accuracy']:.4f} "
                   f"(teacher {record['teacher_accuracy']['test']:.4f})")


def _search(teacher: Path, dataset, out_dir: Path, base: DistillConfig, space: dict, depth_list, trials: int,
            storage: str | None, study_name: str) -> None:
    from .tune import SearchSpace, search

    def on_trial(t):
        value = "" if t.value is None else f" val acc {t.value:.4f}"
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        click.echo(f"trial {t.number}: {t.state.name.lower()}{value} ({shown})")

    result = search(teacher, dataset, out_dir, trials=trials, base=base,
                    space=SearchSpace(**space, depths=depth_list), storage=storage,
                    study_name=study_name, on_trial=on_trial, progress=sys.stderr.isatty())
    print_table(result.rows, result.teacher_accuracy)
    p = result.best_params
    click.echo(f"best: trial {result.best_trial}: alpha {p['alpha']:.3f}, T {p['temperature']:.2f}, "
               f"learning rate {p['learning_rate']:.2e}, epochs {p['epochs']}, "
               f"layers {','.join(map(str, p['layers'] or []))} -> validation accuracy {result.best_value:.4f} "
               f"(teacher {result.teacher_accuracy['validation']:.4f})")
    if result.student_dir is not None:
        click.echo(f"student of trial {result.student_trial} -> {result.student_dir}: test accuracy "
                   f"{result.student_test_accuracy:.4f} (teacher {result.teacher_accuracy['test']:.4f})")
        if result.student_trial != result.best_trial:
            click.echo(f"note: the study's best trial {result.best_trial} was trained by another worker "
                       "(see its output folder) or in an earlier run")
    click.echo(f"best parameters -> {out_dir / 'best_params.json'}; as a build recipe -> {out_dir / 'recipe.toml'} "
               f"(edge-sdk build --recipe {out_dir / 'recipe.toml'} ...)")
