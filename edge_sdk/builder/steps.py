"""The model steps of a build: the teacher, then what a recipe's [[steps]] name, each cached.

Every model step is a plain function `run(source, out, config, context) -> details`: it reads the
model folder `source`, writes a model folder (save_pretrained + tokenizer) into `out`, and returns
what it wants recorded in the bundle's lineage. `MODEL_STEPS` names them with the config type a
recipe table is parsed into; adding a step is writing its function and config and naming it here.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import to_table
from ..data import LabelledData
from ..distill.config import RECORD, DistillConfig
from ..files import dir_fingerprint
from ..models import has_head_for, load_config
from ..models.lineage import LINEAGE, read_lineage, write_lineage
from ..prune.step import LowRankConfig, PruneConfig, SparsifyConfig
from ..qat.config import QatConfig
from ..train.precision import resolve
from ..train.teacher import TeacherConfig
from ..trim.step import TrimConfig
from .cache import StepCache
from .progress import Progress


@dataclass(frozen=True)
class StepContext:
    """What every model step may read; nothing in it changes during a build."""

    data: LabelledData
    cache: StepCache
    progress: Progress
    seed: int
    callbacks: tuple = ()  # TrainerCallbacks for steps that train (a search's early stopping)


@dataclass(frozen=True)
class ModelStep:
    config: type  # the frozen dataclass a recipe's [[steps]] table is parsed into
    run: Callable[[Path, Path, Any, StepContext], dict]
    describe: Callable[[Any], str]  # one line for the build log
    version: int = 1  # bump when the function's output changes for the same inputs


def lazy(module: str, name: str) -> Callable:
    """A step function imported when it runs, so loading a recipe imports no torch."""
    def run(*args):
        from importlib import import_module

        return getattr(import_module(module), name)(*args)

    return run


def _distill(source: Path, out: Path, config: DistillConfig, context: StepContext) -> dict:
    from ..distill import distill

    work = out.with_name(out.name + ".work")
    distill(source, context.data, out, dataclasses.replace(config, seed=context.seed), work_dir=work,
            callbacks=context.callbacks)
    return json.loads((out / RECORD).read_text(encoding="utf-8"))


def _describe_distill(config: DistillConfig) -> str:
    if config.student:
        return f"distil the pretrained student {config.student} from the model before"
    layers = ",".join(map(str, config.layers)) if config.layers else "every other"
    return f"distil a student (teacher layers {layers}) from the model before"


def _describe_prune(config: PruneConfig) -> str:
    layers = f", drop layers {','.join(map(str, config.drop_layers))}" if config.drop_layers else ""
    return (f"keep {config.keep_heads:.0%} of heads and {config.keep_neurons:.0%} of FFN neurons{layers} "
            f"({config.importance} importance), recover {config.epochs} epoch(s)")


def _qat(source: Path, out: Path, config: QatConfig, context: StepContext) -> dict:
    from ..qat import quantization_aware_training

    work = out.with_name(out.name + ".work")
    return quantization_aware_training(source, context.data, out, dataclasses.replace(config, seed=context.seed),
                                       work_dir=work)


def _describe_qat(config: QatConfig) -> str:
    what = "of every GEMM's inputs" if config.scope == "gemm" else "of every activation"
    return (f"quantization-aware training: int8 fake-quantization {what}, {config.epochs} epoch(s) distilling "
            "from the model before")


MODEL_STEPS: dict[str, ModelStep] = {
    "distill": ModelStep(DistillConfig, _distill, _describe_distill),
    "prune": ModelStep(PruneConfig, lazy("edge_sdk.prune.step", "prune_step"), _describe_prune),
    "sparsify": ModelStep(SparsifyConfig, lazy("edge_sdk.prune.step", "sparsify_step"),
                          lambda c: f"{c.method} sparsity {c.sparsity:.0%} over {c.epochs} epoch(s)"),
    "lowrank": ModelStep(LowRankConfig, lazy("edge_sdk.prune.step", "lowrank_step"),
                         lambda c: f"SVD: embedding rank {c.embedding_rank}, FFN rank {c.ffn_rank}"),
    "trim": ModelStep(TrimConfig, lazy("edge_sdk.trim.step", "trim_step"),
                      lambda c: f"keep the {'pieces spelled in the alphabet' if c.alphabet else 'vocabulary'} of the "
                                f"{' and '.join(c.splits)} texts"
                                + (f", the other pieces sharing {c.shared_rows} rows" if c.shared_rows else "")),
    # Must be the recipe's last step: its output carries the int8 program (qat.pt2) that the "qat"
    # quantization methods export, and a later step would change the weights under it.
    # version 2: dropout kept at the model's rate during QAT (version 1 trained at p=0.5 and collapsed)
    "qat": ModelStep(QatConfig, _qat, _describe_qat, version=2),
}


def model_key(model_ref: str) -> str:
    """What names a model in cache keys: a folder by its content, a hub id by itself."""
    return dir_fingerprint(Path(model_ref)) if Path(model_ref).is_dir() else model_ref


def make_teacher(model_ref: str, model_dir: str, config: TeacherConfig, context: StepContext) -> Path:
    """The model (named `model_ref` by the user, resolved to `model_dir`) as given when it already
    classifies the data's labels, else fine-tuned on them."""
    from ..train.teacher import fine_tune

    data, cache = context.data, context.cache
    key = model_key(model_dir)
    if has_head_for(load_config(model_dir), data.labels):
        with context.progress.step("teacher: the model already classifies these labels"):
            return cache.get_or_make("teacher", {"model": key, "mode": "as given"},
                                     lambda out: _import_model(model_dir, out, model_ref))
    config = dataclasses.replace(config, seed=context.seed)
    inputs = {"model": key, "data": data.fingerprint, "config": config.as_dict()}
    work = cache.work_dir("teacher", inputs)
    resuming = " (resuming)" if work.exists() else ""
    with context.progress.step(f"teacher: fine-tune {model_ref} on {len(data.train)} texts{resuming}"):
        def make(out: Path) -> None:
            fine_tune(model_dir, data, out, config, work_dir=work)
            write_lineage(out, [{"step": "teacher", "model": model_ref, "config": to_table(config),
                                 "precision": resolve(config.precision)}])

        return cache.get_or_make("teacher", inputs, make)


def run_steps(source: Path, steps, context: StepContext, first: int = 1) -> Path:
    """Apply the recipe's model steps in order (numbered from `first` in the progress lines); each
    output is cached under its input and config."""
    for number, step in enumerate(steps, start=first):
        spec = MODEL_STEPS[step.name]
        inputs = {"model": source.name, "data": context.data.fingerprint, "config": to_table(step.config),
                  "seed": context.seed}

        def make(out: Path, source=source, step=step, spec=spec) -> None:
            details = spec.run(source, out, step.config, context)
            write_lineage(out, read_lineage(source) + [{"step": step.name, "config": to_table(step.config),
                                                        **details}])

        with context.progress.step(f"step {number} ({step.name}): {spec.describe(step.config)}"):
            source = context.cache.get_or_make(step.name, inputs, make, version=spec.version)
    return source


def _import_model(model_dir: str, out: Path, model_ref: str) -> None:
    """A checkpoint that already has the right head, saved as a local folder with tokenizer.json."""
    from transformers import AutoTokenizer

    from ..models import load_classifier

    load_classifier(model_dir).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(str(out))
    for record in (RECORD, LINEAGE):  # a model made by edge-sdk carries how it was made
        if (Path(model_dir) / record).is_file():
            shutil.copyfile(Path(model_dir) / record, out / record)
    if not (out / LINEAGE).is_file():
        write_lineage(out, [{"step": "teacher", "model": model_ref, "mode": "as given"}])
