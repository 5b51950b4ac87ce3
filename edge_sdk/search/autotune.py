"""`edge-sdk autotune` (and `edge-sdk prune`, the same search over fewer knobs): a multi-objective
Optuna study over the build's knobs for one target, under an accuracy budget.

Each trial is a recipe (space.suggest) measured as a candidate (evaluate.py) on the validation
split: accuracy of the file the target ships, its batch-1 p50 on the target, and its size. The
first trials are the starting points: the uncompressed model and the hand-made recipes the knobs
can make (space.params_of), so the front holds or beats each of them, measured the same way; the
sampler takes over from there. The objectives are (accuracy up, p50 down, size down); the Pareto
front is every complete trial no other trial beats on all three. The chosen point is the fastest
(or smallest) front point that loses at most `max_accuracy_drop` points against the FP32 teacher's
validation accuracy; its recipe is written out and built through the normal build, guard included,
so its test accuracy is measured once, at the end. Where the guard refuses it, the next fastest (or
smallest) point within the budget is built, on the front or not. Trials that train stop early when,
after an epoch, their validation accuracy is already HOPELESS points below the budget. Storage,
resume and many workers work as in `edge-sdk distill` (search/study.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import EdgeSdkError
from ..files import atomic_write_text
from ..recipes import dump_recipe
from .space import Knobs

OBJECTIVES = ("accuracy", "p50_ms", "size_mb")
DIRECTIONS = ("maximize", "minimize", "minimize")
HOPELESS = 3.0  # points below the budget after an epoch of training: the trial stops there


@dataclass(frozen=True)
class Result:
    target: str
    teacher_accuracy: float  # validation split, FP32 PyTorch
    budget: float  # points
    rows: tuple[dict, ...]  # every trial of the study
    front: tuple[int, ...]  # trial numbers on the Pareto front
    candidates: tuple[int, ...]  # within the budget, best first by the objective
    chosen: int | None  # the first candidate whose bundle passed the build's guard (the first, unbuilt)
    latency: str  # how p50 was obtained: "measured on this host" or a latency model's description
    files: dict = field(default_factory=dict)  # name -> path of what was written


def autotune(target: str, *, data: str | None = None, model: str | None = None, knobs: Knobs = Knobs(),
             trials: int = 12, max_accuracy_drop: float = 0.5, objective: Literal["latency", "size"] = "latency",
             storage: str | None = None, study: str = "autotune", out: str | Path = "build/autotune",
             recipe: str = "default", seed: int = 0, latency_model: str | Path | None = None,
             cache_dir: str | Path | None = None, build_chosen: bool = True, starts: tuple[str, ...] | None = None,
             progress=None) -> Result:
    """Search, write the front (table, plot, JSON) and the chosen recipe into `out`, and build the
    chosen bundle into `out/<target>`. The first trials are the uncompressed model, every built-in
    recipe the knobs can make (none if `starts` holds "none") and the recipes `starts` names.
    Raises EdgeSdkError when no trial meets the budget, naming the closest one (after writing the
    table)."""
    from ..builder.progress import Progress
    from ..builder.run import measure_reference
    from ..builder.steps import make_teacher
    from ..files import cache_home
    from ..models.resolve import resolve_model
    from ..profiles import load_target
    from ..quiet import quiet_libraries
    from ..recipes import load_recipe
    from .latency import LatencyModel
    from .storage import default_storage, shown
    from .study import grow, open_study

    quiet_libraries()
    progress = progress or Progress()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    profile, base = load_target(target), load_recipe(recipe)
    latency = LatencyModel.read(Path(latency_model)) if latency_model else None
    context, teacher_dir = _setup(data, model, seed, cache_dir, progress, make_teacher, resolve_model, cache_home)
    teacher_config = _read_config(teacher_dir)
    starting = starting_points(starts, knobs, base, teacher_config)
    teacher = measure_reference(teacher_dir, "FP32 teacher", context, 200, split="validation")
    floor = teacher["accuracy"] - max_accuracy_drop / 100.0
    url = storage or default_storage(out)
    opened = open_study(url, study, directions=DIRECTIONS)
    _seed_study(opened, starting, storage is None, seed)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def run_trial(trial):  # not `objective`: that name is the parameter the candidates are ordered by
        return _run_trial(trial, knobs, base, teacher_config, profile, teacher_dir, context, latency, floor, out,
                          worker, progress)

    def on_trial(frozen):
        values = ", ".join(f"{n} {v:.4g}" for n, v in zip(OBJECTIVES, frozen.values or (), strict=False))
        progress.note(f"trial {frozen.number}: {frozen.state.name.lower()} {values}")

    grow(opened, trials, run_trial, on_trial)
    result = _result(opened, profile.name, teacher["accuracy"], max_accuracy_drop, objective, latency,
                     profile.host_timing)
    files = write_outputs(out, result, teacher)
    files["storage"] = shown(url)
    if not result.candidates:
        closest = max((r for r in result.rows if r["state"] == "COMPLETE"), key=lambda r: r["accuracy"], default=None)
        where = (f"the closest is trial {closest['number']}: validation accuracy {closest['accuracy']:.4f}, "
                 f"{100 * (teacher['accuracy'] - closest['accuracy']):.2f} points below the teacher's "
                 f"{teacher['accuracy']:.4f}, p50 {closest['p50_ms']:.2f} ms" if closest else "no trial completed")
        raise EdgeSdkError(f"no candidate loses at most {max_accuracy_drop} points ({len(result.rows)} trials); "
                           f"{where}. The table is in {files['table']}; widen the budget or the knobs.")
    files["recipe"] = out / "recipe.toml"
    if not build_chosen:
        atomic_write_text(files["recipe"], dump_recipe(_chosen_recipe(opened, result.chosen, max_accuracy_drop)))
        return dataclasses.replace(result, files=files)
    chosen = _build_first_that_passes(opened, result.candidates, max_accuracy_drop, files["recipe"], target,
                                      dict(model=model, data=data, out=out, seed=seed, cache_dir=cache_dir,
                                           progress=progress))
    result = dataclasses.replace(result, chosen=chosen)
    files.update(write_outputs(out, result, teacher), bundle=out / profile.name)
    return dataclasses.replace(result, files=files)


def _build_first_that_passes(study, candidates: tuple[int, ...], budget: float, recipe_path: Path, target: str,
                             options: dict) -> int:
    """Build the candidates in order (fastest or smallest first) until one passes the build's guard on
    the test split: a point within the budget on validation may still lose more on test."""
    from ..builder.run import build
    from ..errors import AccuracyBudgetError

    failures = []
    for number in candidates:
        atomic_write_text(recipe_path, dump_recipe(_chosen_recipe(study, number, budget)))
        try:
            (result,) = build([target], recipe=str(recipe_path), **options)
        except AccuracyBudgetError as exc:
            result = dataclasses.replace(_failed(target), error=str(exc))
        if result.error is None:
            return number
        failures.append(f"trial {number}: {result.error}")
        options["progress"].failed(f"trial {number} failed the build's guard; the next point within the budget")
    raise EdgeSdkError(f"every point within {budget} points on validation failed the build's guard on the "
                       f"test split: {'; '.join(failures)}")


def _failed(target: str):
    from ..builder.run import TargetResult

    return TargetResult(target)


def _setup(data, model, seed, cache_dir, progress, make_teacher, resolve_model, cache_home):
    from ..builder.cache import StepCache
    from ..builder.run import DEFAULT_MODEL
    from ..builder.steps import StepContext
    from ..data import load_data
    from ..recipes import load_recipe

    with progress.step("data"):
        dataset = load_data(data, seed=seed)
    cache = StepCache(Path(cache_dir) if cache_dir else cache_home())
    context = StepContext(dataset, cache, progress, seed)
    model_ref = model or DEFAULT_MODEL
    model_dir = resolve_model(model_ref, cache.root)
    return context, make_teacher(model_ref, model_dir, load_recipe("default").teacher, context)


def _read_config(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))


def _seed_study(study, starts: dict[str, dict], private: bool, seed: int) -> None:
    """The sampler (per worker, not stored: seeded on a private study so a rerun repeats, unseeded on a
    shared one so workers differ), and the starting points as the first trials of a new study: the
    uncompressed model and the hand-made recipes the knobs can make, so the front holds or beats the
    plain bundle and each of them, measured the same way."""
    import optuna

    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials) if private else None)
    if not study.trials:  # knobs a study does not search ignore these
        for name, params in starts.items():
            study.enqueue_trial(params, user_attrs={"start": name}, skip_if_exists=True)


def starting_points(starts: tuple[str, ...] | None, knobs: Knobs, base, teacher_config: dict) -> dict[str, dict]:
    """Trial parameters per starting recipe, the uncompressed model first: every built-in recipe the
    knobs can make (unless `starts` holds "none"), then the recipes `starts` names (names or TOML
    files), each of which must be a point of the search."""
    from ..recipes import available_recipes, load_recipe
    from .space import params_of

    layers, heads = teacher_config["num_hidden_layers"], teacher_config["num_attention_heads"]
    points = {"uncompressed": {"depth": layers, "keep_heads": heads, "keep_neurons": 16, "trim": False,
                               "embedding_rank": None, "precision": "int8"}}
    named = [s for s in starts or () if s != "none"]
    built_in = [] if "none" in (starts or ()) else [n for n in available_recipes() if n not in named]
    for name in [*built_in, *named]:
        recipe = load_recipe(name)
        try:
            params = params_of(recipe, knobs, base, layers, heads)
        except EdgeSdkError as exc:
            if name in built_in:
                continue  # a built-in recipe this search cannot make is simply not a starting point
            raise EdgeSdkError(f"--start {name} is not a point of this search: {exc}") from None
        if params not in points.values():
            points[recipe.name] = params
    return points


def _run_trial(trial, knobs, base, teacher_config, profile, teacher_dir, context, latency, floor, out, worker,
               progress):
    from .evaluate import evaluate
    from .space import suggest

    recipe = suggest(trial, knobs, base, teacher_config["num_hidden_layers"], teacher_config["num_attention_heads"])
    trial.set_user_attr("recipe", dump_recipe(recipe))
    trial.set_user_attr("summary", _summary(recipe, teacher_config["num_hidden_layers"]))
    trial.set_user_attr("worker", worker)
    work = out / "work" / f"trial-{trial.number}"
    trial_context = dataclasses.replace(context, callbacks=(_early_stop(trial, floor),))
    try:
        with progress.step(f"trial {trial.number}: {trial.user_attrs['summary']}"):
            measured = evaluate(recipe, profile, teacher_dir, trial_context, work, latency)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    trial.set_user_attr("measured", measured.as_dict())
    return measured.accuracy, measured.p50_ms, measured.size_mb


def _early_stop(trial, floor: float):
    """Stops a trial's training once, after an epoch, its validation accuracy is HOPELESS points below
    the accuracy floor: no later epoch has recovered that much in the measurements (BENCHMARKS.md)."""
    import optuna
    from transformers import TrainerCallback

    class Hopeless(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            accuracy = (metrics or {}).get("eval_accuracy")
            if accuracy is not None and accuracy < floor - HOPELESS / 100.0:
                trial.set_user_attr("stopped", f"validation accuracy {accuracy:.4f} after epoch "
                                               f"{round(state.epoch or 0)}")
                raise optuna.TrialPruned(f"validation accuracy {accuracy:.4f} is hopeless (floor {floor:.4f})")

    return Hopeless()


def _summary(recipe, teacher_layers: int) -> str:
    parts = []
    for step in recipe.steps:
        if step.name == "distill":
            parts.append(f"{len(step.config.layers)} of {teacher_layers} layers")
        elif step.name == "prune":
            parts.append(f"heads {step.config.keep_heads:.0%}, FFN {step.config.keep_neurons:.0%}")
        elif step.name == "trim":
            parts.append("trimmed vocabulary")
        elif step.name == "lowrank":
            parts.append(f"embedding rank {step.config.embedding_rank}")
    if recipe.onnx_quantization is not None and recipe.onnx_quantization.method == "weight-only":
        parts.append(f"int{recipe.onnx_quantization.bits} weights")
    return ", ".join(parts) or "the teacher as it is"


def _result(study, target: str, teacher_accuracy: float, budget: float, objective: str, latency, host: bool) -> Result:
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        measured = t.user_attrs.get("measured") or {}
        rows.append({"number": t.number, "state": t.state.name, "summary": t.user_attrs.get("summary", ""),
                     "accuracy": measured.get("accuracy"), "p50_ms": measured.get("p50_ms"),
                     "size_mb": measured.get("size_mb"), "stopped": t.user_attrs.get("stopped"),
                     "worker": t.user_attrs.get("worker"), "recipe": t.user_attrs.get("recipe"),
                     "start": t.user_attrs.get("start")})
    complete = [r for r in rows if r["state"] == TrialState.COMPLETE.name and r["accuracy"] is not None]
    front = pareto_front(complete)
    within = [r for r in complete if 100 * (teacher_accuracy - r["accuracy"]) <= budget + 1e-9]
    key = "p50_ms" if objective == "latency" else "size_mb"
    # Every point within the budget, best first by the objective (the first is a front point: one
    # that beat it would be within the budget too). Dominated points stay as fallbacks: the build's
    # guard on the test split may refuse the front's (a validation lead of a few texts), and the next
    # fastest point that passes, front or not, is what the user asked for.
    on_front = {r["number"] for r in front}
    candidates = tuple(r["number"] for r in sorted(within, key=lambda r: (r[key], -r["accuracy"],
                                                                          r["number"] not in on_front)))
    how = "measured on this host (1 thread)" if host or latency is None else f"predicted ({latency.source})"
    if not host and latency is None:
        how = "measured on this host (1 thread), standing in for the target: refit with `edge-sdk latency fit`"
    return Result(target, teacher_accuracy, budget, tuple(rows), tuple(r["number"] for r in front), candidates,
                  candidates[0] if candidates else None, how)


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row beats on accuracy, p50 and size at once (ties kept)."""
    def beats(a, b):
        no_worse = a["accuracy"] >= b["accuracy"] and a["p50_ms"] <= b["p50_ms"] and a["size_mb"] <= b["size_mb"]
        better = a["accuracy"] > b["accuracy"] or a["p50_ms"] < b["p50_ms"] or a["size_mb"] < b["size_mb"]
        return no_worse and better

    return [r for r in rows if not any(beats(o, r) for o in rows)]


def _chosen_recipe(study, number: int, budget: float):
    import tomllib

    from ..recipes import parse_recipe

    trial = study.trials[number]
    recipe = parse_recipe(tomllib.loads(trial.user_attrs["recipe"]), f"trial {number}")
    return dataclasses.replace(recipe, max_accuracy_drop=budget,
                               why=f"{recipe.why}: the autotune pick within {budget} points")


def write_outputs(out: Path, result: Result, teacher: dict) -> dict:
    from .report import write_front

    return write_front(out, result, teacher)
