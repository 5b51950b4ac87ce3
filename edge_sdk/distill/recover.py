"""Recovery by distillation: after a step removed or zeroed weights, the model it started from
teaches the smaller one back (the distillation trainer, on that model's cached logits), then the
classifier's bias is corrected towards that model's outputs on the validation texts (bias.py)."""

from __future__ import annotations

from pathlib import Path

from ..data import LabelledData
from .config import DistillConfig


def recover(model, teacher_dir: Path, data: LabelledData, config: DistillConfig, work_dir: Path,
            callbacks=()) -> tuple[object, dict]:
    """Train `model` (already compressed) against `teacher_dir`'s logits with `config`'s loss and
    schedule, then (where `config` asks for it and there are validation texts) correct its bias;
    returns the model and what the lineage records: the validation accuracy at the end and the
    correction."""
    from .train import corrected_bias, prepare, train_student

    prepared = prepare(teacher_dir, data, config.max_length, cache_dir=Path(work_dir) / "cache", seed=config.seed)
    trainer, accuracy = train_student(prepared, config, Path(work_dir) / "trainer", callbacks=callbacks,
                                      student=model)
    model = trainer.model.eval()
    record: dict = {"validation_accuracy": accuracy}
    correction = corrected_bias(model, prepared, config)
    if correction:
        record["validation_accuracy"], record["bias_correction"] = correction
    return model, record


def save_model(model, tokenizer_dir: Path, out: Path) -> Path:
    """`model` (save_pretrained, safetensors) and the tokenizer of `tokenizer_dir` into `out`."""
    from transformers import AutoTokenizer

    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out))
    return out
