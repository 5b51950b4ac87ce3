"""One distillation run: a student from the teacher's layers, trained against cached teacher logits.

`prepare` does what every trial shares (load the teacher, its logits, tokenised splits);
`train_student` trains one student; `distill` is both plus saving, the step `build` calls.
Works unchanged under `accelerate launch` / torchrun (the Trainer runs DDP; rank 0 saves).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import LabelledData
from ..errors import DistillError
from ..files import atomic_dir, cache_home
from ..models.lineage import read_lineage, write_lineage
from ..models.resolve import resolve_model
from ..train.precision import resolve
from .config import RECORD, DistillConfig
from .logits import TeacherLogits, load_teacher, predict_logits, teacher_fingerprint, teacher_logits, teacher_logits_for
from .student import check_layers, every_other_layer, layer_map, make_student, num_layers, student_from_config


@dataclass
class Prepared:
    """What every trial of a search shares; built once per worker."""

    teacher_dir: Path
    teacher: object  # the teacher model, eval mode, CPU
    tokenizer: object  # the student's: the teacher's own, unless the student is another pretrained model
    data: LabelledData
    logits: TeacherLogits
    train: object  # datasets.Dataset with input ids, labels and teacher_logits (augmented texts included)
    validation: object  # datasets.Dataset with input ids and labels
    student_dir: Path | None = None  # a pretrained student (its own tokenizer); None: made from the teacher

    @property
    def augmented(self) -> int:
        """How many training rows are augmented texts (they follow the original ones)."""
        return len(self.train) - len(self.data.train)

    @property
    def teacher_layers(self) -> int:
        return num_layers(self.teacher.config)

    def teacher_accuracy(self) -> dict:
        return {s: self.logits.accuracy(self.data, s) for s in ("validation", "test")}


def check_teacher(teacher_dir: str | Path, data: LabelledData):
    """The teacher's config, or a DistillError when it is missing or does not classify `data`'s labels."""
    from transformers import AutoConfig

    from ..models import has_head_for

    path = Path(teacher_dir)
    if not (path / "config.json").is_file():
        raise DistillError(f"teacher not found: {path} needs config.json and weights "
                           "(a folder written by save_pretrained, e.g. a fine-tuned teacher)")
    config = AutoConfig.from_pretrained(str(path))
    if not has_head_for(config, data.labels):
        have = getattr(config, "num_labels", "?")
        raise DistillError(f"teacher {path} classifies {have} labels, not the data's {len(data.labels)} "
                           f"({', '.join(data.labels[:3])}, ...) in that order: fine-tune it on this data first")
    return config


def _wait_for_local_main(cache_dir: Path | None, timeout_s: float = 1800.0) -> None:
    """Under a launcher, let local rank 0 fill the logits cache first; the others then read it."""
    if cache_dir is None or int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not any(Path(cache_dir).glob("teacher-logits-*.npz")):
        time.sleep(1.0)


def prepare(teacher_dir: str | Path, data: LabelledData, max_length: int = 64,
            cache_dir: str | Path | None = None, augment: int = 0, seed: int = 0,
            student: str | None = None) -> Prepared:
    """Teacher, its logits and the tokenised splits; `augment` perturbed copies of each training text
    join the training set with the teacher's logits as soft targets and its argmax as label.

    student: a pretrained model (folder or hub id) to train as the student. The teacher's logits are
    computed on the teacher's own tokens, once per text; the student reads its own tokens of the
    same texts, so the two may have different vocabularies and special tokens (MPNet -> MiniLM).
    """
    import datasets
    from transformers import AutoTokenizer

    from ..data import Split
    from ..train.teacher import tokenized
    from .augment import augment_texts
    from .trainer import with_teacher_logits

    check_teacher(teacher_dir, data)
    _wait_for_local_main(Path(cache_dir) if cache_dir else None)
    teacher, teacher_tokenizer = load_teacher(teacher_dir)  # loaded and hashed once for every logits cache below
    known = {"teacher": (teacher, teacher_tokenizer), "fingerprint": teacher_fingerprint(teacher_dir)}
    logits = teacher_logits(teacher_dir, data, cache_dir, max_length, **known)
    student_dir = Path(resolve_model(student, cache_home())) if student else None
    tokenizer = AutoTokenizer.from_pretrained(str(student_dir)) if student_dir else teacher_tokenizer
    train = with_teacher_logits(tokenized(tokenizer, data.train, max_length), logits.train)
    extra = augment_texts(data.train.texts, augment, seed=seed) if augment else []
    if extra:
        extra_logits = teacher_logits_for(teacher_dir, extra, cache_dir, max_length, **known)
        split = Split(tuple(extra), tuple(int(i) for i in extra_logits.argmax(-1)))
        rows = with_teacher_logits(tokenized(tokenizer, split, max_length), extra_logits)
        train = datasets.concatenate_datasets([train, rows.cast(train.features)])
    return Prepared(Path(teacher_dir), teacher, tokenizer, data, logits, train=train,
                    validation=tokenized(tokenizer, data.validation, max_length), student_dir=student_dir)


def build_student(prepared: Prepared, config: DistillConfig):
    if config.student:
        if prepared.student_dir is None:
            raise ValueError("prepare() was called without the student this config names")
        from ..models import load_classifier

        return load_classifier(prepared.student_dir, prepared.data.labels)  # its encoder, a fresh head
    if config.student_config:
        return student_from_config(config.student_config, prepared.teacher)
    n = prepared.teacher_layers
    return make_student(prepared.teacher, check_layers(config.layers or every_other_layer(n), n))


def train_student(prepared: Prepared, config: DistillConfig, work_dir: str | Path, callbacks=(),
                  progress: bool = True, student=None, cpu: bool = False):
    """Train one student; returns (trainer, validation accuracy after the last epoch).

    `student`: a ready model to train instead of one built from `config` (e.g. a pruned copy of the
    teacher recovering by distillation); it is trained in place. `cpu`: train on the CPU even where
    a GPU is visible (a torch.export graph is pinned to the device it was traced on)."""
    from transformers import PrinterCallback, set_seed

    from ..train.arguments import training_arguments
    from ..train.teacher import accuracy_metric
    from .trainer import DistillationCollator, DistillationTrainer

    set_seed(config.seed)
    student = (student if student is not None else build_student(prepared, config)).train()
    args = training_arguments(
        work_dir, learning_rate=config.learning_rate, epochs=config.epochs, batch_size=config.batch_size,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, seed=config.seed,
        precision=config.precision, progress=progress, cpu=cpu,
        save_strategy="no",  # a search resumes by trials; a trial is short enough to rerun
        remove_unused_columns=False,  # keep teacher_logits, which the model's forward does not take
        ddp_find_unused_parameters=False)  # every student parameter is used (DDP under a launcher)
    trainer = DistillationTrainer(
        model=student, args=args, train_dataset=prepared.train, eval_dataset=prepared.validation,
        data_collator=DistillationCollator(prepared.tokenizer), processing_class=prepared.tokenizer,
        compute_metrics=accuracy_metric, callbacks=list(callbacks),
        alpha=config.alpha, temperature=config.temperature, hidden_weight=config.hidden_weight,
        teacher=prepared.teacher if config.hidden_weight else None,
        layer_map=layer_map(num_layers(student.config), prepared.teacher_layers) if config.hidden_weight else (),
    )
    if not progress:  # the caller reports per trial; no per-epoch log dicts on stdout
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    evals = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    return trainer, float(evals[-1]) if evals else float("nan")


def test_accuracy(model, tokenizer, data: LabelledData, max_length: int) -> float:
    if not len(data.test):
        return float("nan")
    logits = predict_logits(model, tokenizer, list(data.test.texts), max_length)
    return float((logits.argmax(-1) == np.asarray(data.test.labels)).mean())


def corrected_bias(model, prepared: Prepared, config: DistillConfig) -> tuple[float, dict] | None:
    """bias.py's correction of a trained student where the config asks for it and there are
    validation texts: (validation accuracy after it, its record); None otherwise."""
    if not (config.bias_correction and len(prepared.data.validation)):
        return None
    from .bias import correct_on_validation

    return correct_on_validation(model.eval(), prepared.tokenizer, prepared.data, prepared.logits.validation,
                                 config.max_length)


def save_student(trainer, tokenizer, out_dir: str | Path, record: dict) -> Path:
    """Write the student (HF folder + tokenizer + distillation.json) to `out_dir`, replacing it atomically."""
    out = Path(out_dir)
    if not trainer.is_world_process_zero():
        return out
    lineage = read_lineage(record["teacher"]) + [{"step": "distill", **record}]
    with atomic_dir(out) as tmp:
        trainer.model.save_pretrained(str(tmp))  # safetensors; no pickled training_args.bin beside it
        tokenizer.save_pretrained(str(tmp))
        (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        write_lineage(tmp, lineage)
    return out


def distill(teacher_dir: str | Path, data: LabelledData, out_dir: str | Path,
            config: DistillConfig = DistillConfig(), work_dir: str | Path | None = None,
            progress: bool = True, callbacks=()) -> Path:
    """Distil the teacher at `teacher_dir` into a student saved at `out_dir` (save_pretrained + tokenizer).

    The teacher's logits are cached in `work_dir`/cache (default: `<out_dir>.work`), removed at the end.
    """
    out_dir = Path(out_dir)
    work_dir = Path(work_dir or out_dir.with_name(out_dir.name + ".work"))
    prepared = prepare(teacher_dir, data, config.max_length, cache_dir=work_dir / "cache",
                       augment=config.augment, seed=config.seed, student=config.student)
    trainer, val_acc = train_student(prepared, config, work_dir / "trainer", callbacks=callbacks, progress=progress)
    test_acc = test_accuracy(trainer.model, prepared.tokenizer, data, config.max_length)
    correction = corrected_bias(trainer.model, prepared, config)
    if correction:  # what it changed on test, for the record: the same model before and after
        val_acc, correction = correction
        correction["test_accuracy_before"] = round(test_acc, 4)
        test_acc = test_accuracy(trainer.model, prepared.tokenizer, data, config.max_length)
    record = {"config": config.as_dict(), "precision": resolve(config.precision), "validation_accuracy": val_acc,
              **({"bias_correction": correction} if correction else {}), "test_accuracy": test_acc,
              "teacher_accuracy": prepared.teacher_accuracy(), "world_size": trainer.args.world_size,
              "teacher": str(Path(teacher_dir).resolve()), "data_fingerprint": data.fingerprint}
    save_student(trainer, prepared.tokenizer, out_dir, record)
    if trainer.is_world_process_zero():
        shutil.rmtree(work_dir, ignore_errors=True)
    return out_dir
