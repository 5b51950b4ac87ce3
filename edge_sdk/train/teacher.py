"""Fine-tune a teacher classifier with the transformers Trainer (when the model has no head for the labels)."""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import check
from ..data import LabelledData, Split
from ..files import atomic_dir
from ..models import load_classifier
from .arguments import training_arguments
from .precision import Precision


@dataclass(frozen=True)
class TeacherConfig:
    """How a teacher is fine-tuned; a recipe's [teacher] table overrides these defaults."""

    # MiniLM-sized models fine-tune best with a larger learning rate than BERT-base's 2e-5; measured
    # on CLINC150 (see BENCHMARKS.md).
    learning_rate: float = 1e-4
    # A budget: early stopping ends training once validation accuracy has not improved for
    # `patience` epochs, and the best epoch is kept. A fixed 4 (tuned on CLINC150) stopped another
    # intent dataset while its validation accuracy still rose 1.8 points per epoch.
    epochs: int = 10
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64  # training texts are truncated here; intent queries are short
    min_steps: int = 200  # small datasets get more epochs, up to this many optimizer steps (the embedded set: 8)
    patience: int = 2  # early stopping: epochs without validation improvement
    seed: int = 0
    precision: Precision = "auto"  # bf16 mixed precision where the hardware has it (train/precision.py)

    def __post_init__(self):
        check(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        for name in ("epochs", "batch_size", "max_length", "patience"):
            check(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        check(0 <= self.warmup_ratio < 1, f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")
        check(self.min_steps >= 0 and self.weight_decay >= 0, "min_steps and weight_decay must be >= 0")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def tokenized(tokenizer, split: Split, max_length: int):
    import datasets

    ds = datasets.Dataset.from_dict({"text": list(split.texts), "label": list(split.labels)})
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
                  batched=True, remove_columns=["text"])


def accuracy_metric(eval_pred) -> dict:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, -1) == labels).mean())}


def fine_tune(model_path: str | Path, data: LabelledData, out_dir: Path, config: TeacherConfig = TeacherConfig(),
              work_dir: Path | None = None, progress: bool = True) -> Path:
    """Train a classification head (and the encoder) on `data`; save the best epoch to `out_dir`.

    Checkpoints go to `work_dir`, so an interrupted run resumes from its last epoch.
    """
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        set_seed,
    )

    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = load_classifier(model_path, data.labels)
    work_dir = Path(work_dir or Path(out_dir).with_name(Path(out_dir).name + ".work"))
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    args = training_arguments(
        work_dir, learning_rate=config.learning_rate, epochs=epochs, batch_size=config.batch_size,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, seed=config.seed,
        precision=config.precision, progress=progress,
        # the best epoch is kept, and an interrupted run resumes from its last checkpoint
        save_strategy="epoch", save_total_limit=2, load_best_model_at_end=True, metric_for_best_model="accuracy")
    trainer = Trainer(
        model=model, args=args,
        train_dataset=tokenized(tokenizer, data.train, config.max_length),
        eval_dataset=tokenized(tokenizer, data.validation, config.max_length),
        data_collator=DataCollatorWithPadding(tokenizer),  # dynamic padding: each batch to its longest
        processing_class=tokenizer,
        compute_metrics=accuracy_metric,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)],
    )
    resume = any(work_dir.glob("checkpoint-*")) if work_dir.exists() else False
    trainer.train(resume_from_checkpoint=resume or None)
    with atomic_dir(Path(out_dir)) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(work_dir, ignore_errors=True)
    return Path(out_dir)
