"""Optuna search over the distillation hyper-parameters, on one machine or many workers.

Each trial samples alpha, temperature, learning rate and epochs (and the student's depth when
asked), trains a student and reports validation accuracy after every epoch; a MedianPruner
stops trials that fall below the median of earlier ones at the same epoch, from epoch 3 on.
`trials` is the size the study should reach, counted over every worker (finished, pruned and
running trials), so rerunning the same command resumes an interrupted study and several workers
on one storage URL share the work. A new study first tries the base config (the recipe's
known-good values), then samples. The best student trained *in this folder* is kept in
`<out>/student`; the study's best parameters go to `<out>/best_params.json` and, as the
`distilled` recipe with those values, to `<out>/recipe.toml` (`edge-sdk build --recipe
<out>/recipe.toml` records them in every bundle).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..data import LabelledData
from ..errors import DistillError
from ..files import locked
from ..search import study as studies
from ..search.storage import default_storage, shown
from .config import RECORD, DistillConfig
from .student import check_layers, every_other_layer, spread_layers
from .train import Prepared, corrected_bias, prepare, save_student, test_accuracy, train_student

PARAMS = ("alpha", "temperature", "learning_rate", "epochs", "layers")


@dataclass(frozen=True)
class SearchSpace:
    alpha: tuple[float, float] = (0.0, 1.0)
    temperature: tuple[float, float] = (1.0, 20.0)
    learning_rate: tuple[float, float] = (2e-5, 3e-4)  # sampled on a log scale
    epochs: tuple[int, int] = (3, 8)
    depths: tuple[int, ...] | None = None  # search the student's depth over these (layers spread evenly)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage: str  # password masked
    best_trial: int
    best_params: dict  # alpha, temperature, learning_rate, epochs, layers
    best_value: float  # validation accuracy
    teacher_accuracy: dict  # validation, test
    student_dir: Path | None  # the best student trained in this folder
    student_trial: int | None
    student_test_accuracy: float | None
    trials_here: tuple[int, ...]  # trial numbers this worker ran in this call
    rows: tuple[dict, ...] = field(default=(), repr=False)  # every trial of the study, for the table

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["student_dir"] = str(self.student_dir) if self.student_dir else None
        out["trials_here"] = list(self.trials_here)
        out.pop("rows")
        out["trials"] = {state: sum(1 for r in self.rows if r["state"] == state)
                         for state in sorted({r["state"] for r in self.rows})}
        return out


def suggest(trial, space: SearchSpace, base: DistillConfig, teacher_layers: int) -> DistillConfig:
    """The DistillConfig a trial tries; layers are fixed unless the space searches depth."""
    layers = base.layers
    made_of_teacher_layers = not (base.student_config or base.student)
    if space.depths and made_of_teacher_layers:
        layers = spread_layers(teacher_layers, trial.suggest_categorical("depth", list(space.depths)))
    elif made_of_teacher_layers:
        layers = check_layers(layers or every_other_layer(teacher_layers), teacher_layers)
    return dataclasses.replace(
        base, layers=layers,
        alpha=trial.suggest_float("alpha", *space.alpha),
        temperature=trial.suggest_float("temperature", *space.temperature),
        learning_rate=trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        epochs=trial.suggest_int("epochs", *space.epochs))


def starting_point(base: DistillConfig, space: SearchSpace) -> dict:
    """The base config's parameters, clipped into the space: a new study tries them first, so the
    search starts from the recipe's known-good values instead of from a random draw."""
    def clip(value, bounds):
        return min(max(value, bounds[0]), bounds[1])

    return {"alpha": clip(base.alpha, space.alpha), "temperature": clip(base.temperature, space.temperature),
            "learning_rate": clip(base.learning_rate, space.learning_rate),
            "epochs": int(clip(base.epochs, space.epochs))}


# The first epoch at which a trial may be pruned. Measured on twelve CLINC150 students (BENCHMARKS.md):
# validation accuracy after epoch 1 barely ranks the final one (Spearman 0.26; longer schedules are
# still warming up), after epoch 3 it does (0.74). Pruning at epoch 1 stopped 3 of 5 trials of the
# first study on a number that says little.
PRUNE_FROM_EPOCH = 3


def pruning_callback(trial):
    """Reports validation accuracy to Optuna after every epoch and stops the trial when the pruner says so."""
    import optuna
    from transformers import TrainerCallback

    class ReportToOptuna(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_accuracy" in metrics:
                epoch = int(round(state.epoch or 0))
                trial.report(metrics["eval_accuracy"], step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation accuracy {metrics['eval_accuracy']:.4f} "
                                             f"below the median at epoch {epoch}")

    return ReportToOptuna()


def _kept_accuracy(student_dir: Path) -> float:
    try:
        return float(json.loads((student_dir / RECORD).read_text())["validation_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return -math.inf


def trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = ((t.datetime_complete - t.datetime_start).total_seconds()
                   if t.datetime_complete and t.datetime_start else None)
        rows.append({"number": t.number, "state": t.state.name, **{k: t.params.get(k) for k in
                     ("alpha", "temperature", "learning_rate", "epochs")},
                     "layers": t.user_attrs.get("layers"), "value": t.value,
                     "epochs_run": len(t.intermediate_values), "seconds": seconds,
                     "worker": t.user_attrs.get("worker")})
    return rows


def open_study(storage: str, study_name: str, startup_trials: int = 2):
    """Create or load (resume) the study; the sampler is per worker and not stored."""
    import optuna

    return studies.open_study(storage, study_name, pruner=optuna.pruners.MedianPruner(
        n_startup_trials=startup_trials, n_warmup_steps=PRUNE_FROM_EPOCH))


def search(teacher_dir: str | Path, data: LabelledData, out_dir: str | Path, *, trials: int = 10,
           base: DistillConfig = DistillConfig(), space: SearchSpace = SearchSpace(),
           storage: str | None = None, study_name: str | None = None, progress: bool = False,
           on_trial=None, prepared: Prepared | None = None) -> SearchResult:
    """Grow the study to `trials` trials, keep the best student trained here, write best_params.json.

    `storage`: any SQLAlchemy URL (default: SQLite in `out_dir`). `on_trial(frozen_trial)` is
    called after each trial this worker finishes.
    """
    import optuna

    if trials < 1:
        raise DistillError(f"trials must be at least 1, got {trials}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out_dir)
    study_name = study_name or "distill"
    study = open_study(url, study_name)
    # Seeded on the default (private) storage, so a rerun repeats; unseeded on a shared one, so that
    # workers started together do not all sample the same first trials.
    study.sampler = optuna.samplers.TPESampler(seed=None if storage else base.seed + len(study.trials))
    if not study.trials:  # skip_if_exists: a worker that finds it queued already adds none
        study.enqueue_trial(starting_point(base, space), skip_if_exists=True)
    prepared = prepared or prepare(teacher_dir, data, base.max_length, cache_dir=out_dir / "cache",
                                   augment=base.augment, seed=base.seed, student=base.student)
    student_dir, worker = out_dir / "student", f"{socket.gethostname()}:{os.getpid()}"
    study.set_user_attr("teacher_accuracy", prepared.teacher_accuracy())
    ran: list[int] = []

    def objective(trial):
        config = suggest(trial, space, base, prepared.teacher_layers)
        trial.set_user_attr("layers", list(config.layers) if config.layers else None)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("out_dir", str(out_dir.resolve()))
        ran.append(trial.number)
        work = out_dir / "work" / f"trial-{trial.number}"
        try:
            trainer, accuracy = train_student(prepared, config, work, callbacks=[pruning_callback(trial)],
                                              progress=progress)
            correction = corrected_bias(trainer.model, prepared, config)
            if correction:
                accuracy, _ = correction
            with locked(out_dir / ".lock"):
                if accuracy > _kept_accuracy(student_dir):
                    save_student(trainer, prepared.tokenizer, student_dir, {
                        "trial": trial.number, "study": study_name, "storage": shown(url),
                        "config": config.as_dict(), "validation_accuracy": accuracy,
                        "teacher_accuracy": prepared.teacher_accuracy(),
                        "teacher": str(Path(teacher_dir).resolve()), "data_fingerprint": data.fingerprint})
            return accuracy
        finally:
            shutil.rmtree(work, ignore_errors=True)

    studies.grow(study, trials, objective, on_trial)
    shutil.rmtree(out_dir / "work", ignore_errors=True)
    result = _result(study, url, prepared, student_dir, tuple(ran), out_dir)
    write_recipe(out_dir / "recipe.toml", result, base)
    return result


def write_recipe(path: Path, result: SearchResult, base: DistillConfig) -> Path:
    """The study's recipe with its best parameters: `distilled` for students made of teacher layers,
    `distilled-base` (its budget, its teacher settings, its later steps) for a pretrained student.
    `edge-sdk build --recipe PATH` trains that student and records the parameters in every bundle's
    manifest."""
    from ..files import atomic_write_text
    from ..recipes import Step, dump_recipe, load_recipe

    template = load_recipe("distilled-base" if base.student else "distilled")
    best = {k: (tuple(v) if k == "layers" else v) for k, v in result.best_params.items() if v is not None}
    config = dataclasses.replace(base, **best)  # (a build replaces the seed with its own --seed)
    steps = (Step("distill", config), *template.steps[1:])  # each template's first step is its distill
    what = template.why
    if base.student:
        later = "".join(f", then {s.name} as in recipe {template.name}" for s in steps[1:])
        what = f"the pretrained {base.student} distilled from the fine-tuned teacher{later}"
    recipe = dataclasses.replace(
        template, name=f"distilled-{result.study_name}", steps=steps,
        why=f"{what}; parameters of trial {result.best_trial} of Optuna study {result.study_name!r} "
            f"(validation accuracy {result.best_value:.4f})")
    return atomic_write_text(path, dump_recipe(recipe))


def _result(study, url: str, prepared: Prepared, student_dir: Path, ran: tuple[int, ...],
            out_dir: Path) -> SearchResult:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise DistillError(f"no trial of study {study.study_name!r} completed: see the trial table "
                           "(all pruned or failed); widen the search space or add trials")
    best = study.best_trial
    params = {"alpha": best.params["alpha"], "temperature": best.params["temperature"],
              "learning_rate": best.params["learning_rate"], "epochs": best.params["epochs"],
              "layers": best.user_attrs.get("layers")}
    kept = student_dir if (student_dir / "config.json").is_file() else None
    kept_trial, kept_test = None, None
    if kept is not None:
        record = json.loads((kept / RECORD).read_text())
        kept_trial = record.get("trial")
        kept_test = record.get("test_accuracy")
        if kept_test is None:  # measured once per kept student, then stored beside it
            from ..models import load_classifier

            kept_test = test_accuracy(load_classifier(kept), prepared.tokenizer, prepared.data,
                                      record["config"]["max_length"])
            with locked(out_dir / ".lock"):
                if json.loads((kept / RECORD).read_text()).get("trial") == kept_trial:
                    record["test_accuracy"] = kept_test
                    (kept / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    result = SearchResult(study_name=study.study_name, storage=shown(url), best_trial=best.number,
                          best_params=params, best_value=float(best.value),
                          teacher_accuracy=prepared.teacher_accuracy(), student_dir=kept,
                          student_trial=kept_trial, student_test_accuracy=kept_test, trials_here=ran,
                          rows=tuple(trial_rows(study)))
    (out_dir / "best_params.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return result
