"""Quantization-aware training and the int8 program it leaves: PT2E fake-quantization (torchao) with
an annotation for Transformer classifiers (quantizer.py), a short fine-tune distilling from the FP32
model (train.py), and the converted program both exporters read (program.py)."""

from .config import RECORD, QatConfig

__all__ = ["RECORD", "QatConfig", "quantization_aware_training"]


def __getattr__(name):  # torch, torchao and transformers load only when training is asked for
    if name == "quantization_aware_training":
        from . import train

        return getattr(train, name)
    raise AttributeError(name)
