"""The Trainer settings every training in the SDK shares (teacher fine-tuning, distillation,
recovery after pruning, QAT): evaluation each epoch, length-grouped batches, no reporting
integrations, bf16 where native (precision.py)."""

from __future__ import annotations

from pathlib import Path

from .precision import resolve


def training_arguments(work_dir: Path, *, learning_rate: float, epochs: int, batch_size: int, weight_decay: float,
                       warmup_ratio: float, seed: int, precision: str, progress: bool, cpu: bool = False, **extra):
    """TrainingArguments with the shared settings; `extra` adds or overrides (saving, best model, ...)."""
    import torch
    from transformers import TrainingArguments

    settings = dict(
        output_dir=str(work_dir),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=128,
        weight_decay=weight_decay,
        warmup_steps=warmup_ratio,  # transformers 5: a float below 1 is a fraction of all steps
        eval_strategy="epoch",
        seed=seed,
        report_to=[],
        logging_strategy="epoch",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        # Batches of similar length: random batches of 32 CLINC150 queries are 45% padding.
        train_sampling_strategy="group_by_length",
        use_cpu=cpu or not torch.cuda.is_available(),
        bf16=resolve(precision) == "bf16",
    )
    return TrainingArguments(**{**settings, **extra})
