"""How one student is distilled: the settings a recipe's distill step and `edge-sdk distill` share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check
from ..train.precision import Precision

RECORD = "distillation.json"  # beside every student: its config and accuracies (bundles copy it)


@dataclass(frozen=True)
class DistillConfig:
    # Defaults: a 3-layer CLINC150 MiniLM student reached 0.9455 validation with them, tied with
    # the best trial of a 5-trial Optuna study (0.9458) and above all 13 others of a 14-trial one
    # (BENCHMARKS.md).
    alpha: float = 0.3  # weight of the CE on labels; 1 - alpha goes to the teacher's soft targets
    temperature: float = 8.0
    learning_rate: float = 3e-4
    epochs: int = 5
    layers: tuple[int, ...] | None = None  # teacher layers the student keeps; None: every other one
    # Instead of teacher layers: a pretrained model (folder or hub id) trained as the student, with
    # its own tokenizer and a fresh head (e.g. MiniLM-L6 under an MPNet-base teacher).
    student: str | None = None
    student_config: str | None = None  # instead of layers: a (smaller) config file/folder, fresh weights
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 0
    augment: int = 0  # perturbed copies of each training text, trained on the teacher's outputs (augment.py)
    hidden_weight: float = 0.0  # weight of the hidden-state MSE to the teacher's layers (loss.py); 0: off
    precision: Precision = "auto"  # bf16 mixed precision where the hardware has it (train/precision.py)
    # the saved student's classifier bias re-fitted to the teacher's outputs on the validation texts
    # (bias.py); CLINC150, 3-layer MiniLM student: +0.6 test points (BENCHMARKS.md)
    bias_correction: bool = True

    def __post_init__(self):
        check(0.0 <= self.alpha <= 1.0, f"alpha must lie in [0, 1], got {self.alpha}")
        check(self.temperature > 0, f"temperature must be positive, got {self.temperature}")
        check(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        for name in ("epochs", "batch_size", "max_length"):
            check(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        check(self.augment >= 0 and self.hidden_weight >= 0, "augment and hidden_weight must be >= 0")
        check(0 <= self.warmup_ratio < 1, f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")
        check(sum(bool(x) for x in (self.layers, self.student, self.student_config)) <= 1,
              "give one of layers, student or student_config")
        check(not (self.hidden_weight and (self.student or self.student_config)),
              "the hidden-state loss needs a student made of teacher layers")

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["layers"] = list(self.layers) if self.layers is not None else None
        return out
