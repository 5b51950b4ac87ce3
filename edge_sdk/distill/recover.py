"""Recovery by distillation: after a step removed or zeroed weights, the model it started from
teaches the smaller one back (the distillation trainer, on that model's cached logits)."""

from __future__ import annotations

from pathlib import Path

from ..data import LabelledData
from .config import DistillConfig


def recover(model, teacher_dir: Path, data: LabelledData, config: DistillConfig, work_dir: Path,
            callbacks=()) -> tuple[object, float]:
    """Train `model` (already compressed) against `teacher_dir`'s logits with `config`'s loss and
    schedule; returns the trained model and its validation accuracy after the last epoch."""
    from .train import prepare, train_student

    prepared = prepare(teacher_dir, data, config.max_length, cache_dir=Path(work_dir) / "cache", seed=config.seed)
    trainer, accuracy = train_student(prepared, config, Path(work_dir) / "trainer", callbacks=callbacks,
                                      student=model)
    return trainer.model.eval(), accuracy


def save_model(model, tokenizer_dir: Path, out: Path) -> Path:
    """`model` (save_pretrained, safetensors) and the tokenizer of `tokenizer_dir` into `out`."""
    from transformers import AutoTokenizer

    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out))
    return out
