"""A transformers Trainer that trains a student against cached teacher logits.

The training dataset carries a `teacher_logits` column next to the tokens and labels; the
collator pads the tokens and stacks the logits; `compute_loss` pops them and applies
`distillation_loss`. With `hidden_weight > 0` the teacher also runs on every batch (its hidden
states are too large to cache) and `hidden_state_loss` joins in. Evaluation batches carry no
teacher logits and are scored by plain CE.
"""

from __future__ import annotations

import numpy as np
from transformers import Trainer

from .loss import distillation_loss, hidden_state_loss

TEACHER_LOGITS = "teacher_logits"


def with_teacher_logits(dataset, logits: np.ndarray):
    """`dataset` (rows in the order of the texts `logits` were computed on) plus a teacher_logits column."""
    if len(dataset) != len(logits):
        raise ValueError(f"{len(logits)} teacher logit rows for {len(dataset)} training examples")
    return dataset.add_column(TEACHER_LOGITS, [row.tolist() for row in np.asarray(logits, dtype=np.float32)])


class DistillationCollator:
    """Pads tokens per batch (to the batch's longest) and stacks the teacher logits beside them."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features):
        import torch

        teacher = [f[TEACHER_LOGITS] for f in features if TEACHER_LOGITS in f]
        batch = self.pad([{k: v for k, v in f.items() if k != TEACHER_LOGITS} for f in features])
        if teacher:
            batch[TEACHER_LOGITS] = torch.tensor(teacher, dtype=torch.float32)
        return batch


class DistillationTrainer(Trainer):
    # compute_loss returns a batch mean, so the Trainer divides by gradient-accumulation steps itself.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, alpha: float = 0.5, temperature: float = 2.0, hidden_weight: float = 0.0,
                 teacher=None, layer_map=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.temperature = temperature
        self.hidden_weight = hidden_weight
        self.layer_map = tuple(layer_map)
        if hidden_weight and (teacher is None or not self.layer_map):
            raise ValueError("the hidden-state loss needs the teacher and a layer map")
        self.teacher = teacher.eval().to(self.args.device) if hidden_weight else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch.nn.functional as F

        inputs = dict(inputs)
        teacher = inputs.pop(TEACHER_LOGITS, None)
        labels = inputs.pop("labels")
        if teacher is None:  # evaluation: the student's own CE
            outputs = model(**inputs)
            loss = F.cross_entropy(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss
        hidden = self.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=hidden)
        loss = distillation_loss(outputs.logits, teacher, labels, self.alpha, self.temperature)
        if hidden:
            import torch

            with torch.no_grad():
                teacher_hidden = self.teacher(**inputs, output_hidden_states=True).hidden_states
            loss = loss + self.hidden_weight * hidden_state_loss(
                outputs.hidden_states, teacher_hidden, self.layer_map, inputs["attention_mask"])
        return (loss, outputs) if return_outputs else loss
