"""How a model is fine-tuned with int8 fake-quantization: the settings of a recipe's qat step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check
from ..distill.config import DistillConfig

SCOPES = ("full", "gemm")  # what QAT fake-quantizes: qat/quantizer.py

RECORD = "qat.json"  # beside the QAT model: its config and accuracies (bundles copy it into the lineage)


@dataclass(frozen=True)
class QatConfig:
    # A short fine-tune: the model already classifies; QAT only teaches it to live with int8 rounding
    # (Bondarenko et al. 2021 recover W8A8 BERT on GLUE with a few QAT epochs).
    epochs: int = 2
    learning_rate: float = 2e-5  # a fine-tuning rate: larger ones undo what the FP32 model learnt
    # Distillation from the FP32 model the step starts from (its logits cached once): weight of the
    # CE on the labels; 1 - alpha goes to the FP32 model's soft targets, which carry more than
    # labels (the ranking of the wrong intents) and keep the int8 model's argmax on the FP32 one's.
    alpha: float = 0.1
    temperature: float = 2.0
    # What is fake-quantized (qat/quantizer.py): "full", every activation, for full-integer TFLite;
    # "gemm", only GEMM inputs, for QDQ ONNX run by TensorRT (its other ops stay fp16/fp32).
    scope: str = "full"
    # After training, the int8 program's classifier bias re-fitted to the FP32 model's softmax on the
    # validation texts (distill/bias.py): QAT drifts on unseen out-of-scope text like a student does.
    bias_correction: bool = True
    batch_size: int = 32
    max_length: int = 64  # training truncation; the exported program takes any length up to the model's
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    seed: int = 0

    def __post_init__(self):
        self.distillation()  # the trainer's own config checks the shared fields (alpha, epochs, ...)
        check(self.scope in SCOPES, f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def distillation(self) -> DistillConfig:
        """The same run in the distillation trainer's terms (its Trainer arguments and loss)."""
        return DistillConfig(alpha=self.alpha, temperature=self.temperature, learning_rate=self.learning_rate,
                             epochs=self.epochs, batch_size=self.batch_size, weight_decay=self.weight_decay,
                             warmup_ratio=self.warmup_ratio, max_length=self.max_length, seed=self.seed,
                             precision="fp32")  # the fake-quant observers record fp32 ranges
