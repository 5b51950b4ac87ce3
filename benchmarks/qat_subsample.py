"""The QAT step's training path on a CLINC150 subsample, for trying its settings in minutes (not a
benchmark of record): every 7th training text (2,178), every 6th validation text (517), the step's
own code (`edge_sdk.qat.quantization_aware_training`), and the int8 validation accuracy it reports.

    python benchmarks/qat_subsample.py TEACHER_DIR ../shared/data/clinc150 --lr 1e-4 --alpha 1.0 \
        [--epochs 2] [--constant-lr] [--random-batches] [--scope gemm] [--all-data] [--learnt-ranges]

--constant-lr (no warmup, no decay) and --random-batches (instead of length-grouped) override the
Trainer settings every training in the SDK shares (train/arguments.py), to isolate their effect.
--all-data trains on the whole training split, validates on the whole validation split and also
scores the int8 program on the test split (in PyTorch, ~8 min per run on 2 cores).
--learnt-ranges swaps the activations' moving-average ranges for torchao's LearnableFakeQuantize
(LSQ: ranges initialised on 256 training texts, then trained with the weights).
--residual-bits 16 fake-quantizes the residual stream (residual adds, the embeddings' sum, the
projections writing into it) in int16 instead of int8; every GEMM input stays int8.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("data")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--constant-lr", action="store_true")
    parser.add_argument("--random-batches", action="store_true")
    parser.add_argument("--scope", default="full")
    parser.add_argument("--all-data", action="store_true")
    parser.add_argument("--learnt-ranges", action="store_true")
    parser.add_argument("--residual-bits", type=int, default=8)
    args = parser.parse_args()

    import torch

    import edge_sdk.train.arguments as arguments
    from edge_sdk.data import load_data
    from edge_sdk.data.loaders import Split
    from edge_sdk.qat.config import QatConfig
    from edge_sdk.qat.train import quantization_aware_training

    shared = arguments.training_arguments

    def overridden(work_dir, **settings):
        extra = {"train_sampling_strategy": "random"} if args.random_batches else {}
        if args.constant_lr:
            settings["warmup_ratio"] = 0.0
            extra["lr_scheduler_type"] = "constant"
        return shared(work_dir, **{**settings, **extra})

    arguments.training_arguments = overridden  # distill/train.py imports it at call time
    torch.set_num_threads(1)
    data = load_data(args.data)

    def every(split: Split, k: int) -> Split:
        return Split(split.texts[::k], split.labels[::k])

    if not args.all_data:
        data = dataclasses.replace(data, train=every(data.train, 7), validation=every(data.validation, 6),
                                   fingerprint=data.fingerprint + "-subsample")
    if args.learnt_ranges:
        learnt_ranges(args.teacher, data)
    if args.residual_bits != 8:
        residual_stream(args.residual_bits)
    config = QatConfig(epochs=args.epochs, learning_rate=args.lr, alpha=args.alpha, scope=args.scope)
    with tempfile.TemporaryDirectory() as out:
        record = quantization_aware_training(args.teacher, data, Path(out) / "model", config, progress=False)
        test = program_test_accuracy(Path(out) / "model", data, record["input_names"], args.teacher) \
            if args.all_data else None
    print(f"lr {args.lr} alpha {args.alpha} epochs {args.epochs} scope {args.scope} constant-lr {args.constant_lr} "
          f"random-batches {args.random_batches} learnt-ranges {args.learnt_ranges} all-data {args.all_data} "
          f"residual-bits {args.residual_bits}: "
          f"int8 validation accuracy {record['validation_accuracy_int8']:.4f} (FP32 "
          f"{record['teacher_accuracy']['validation']:.4f})"
          + (f", int8 test accuracy {test[0]:.4f} (FP32 {record['teacher_accuracy']['test']:.4f}), argmax agreement "
             f"with FP32 {test[1]:.4f}" if test else ""))


def residual_stream(bits: int) -> None:
    """Patch the QAT step: the residual stream fake-quantized at `bits` (qat/quantizer.py, residual_bits),
    GEMM inputs still int8. An experiment only: LiteRT cannot run that file (DESIGN.md, QAT)."""
    import edge_sdk.qat.train as qat_train

    prepare = qat_train.prepare_qat
    qat_train.prepare_qat = lambda model, names, scope: prepare(model, names, scope, residual_bits=bits)


def learnt_ranges(teacher: Path, data) -> None:
    """Patch the quantizer and the QAT step: activation ranges become parameters (LSQ), initialised
    on 256 training texts before the Trainer collects the parameters it optimises."""
    import dataclasses as dc

    import torch
    from torchao.quantization.pt2e.learnable_fake_quantize import LearnableFakeQuantize, enable_range_learning
    from torchao.quantization.pt2e.observer import MovingAverageMinMaxObserver
    from transformers import AutoTokenizer

    import edge_sdk.qat.quantizer as quantizer
    import edge_sdk.qat.train as qat_train

    specs, prepare = quantizer._specs, qat_train.prepare_qat

    def learnt_specs(qat: bool):
        act, weight, residual = specs(qat)
        ranges = LearnableFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=quantizer.INT8_MIN, quant_max=quantizer.INT8_MAX,
            dtype=torch.int8, qscheme=torch.per_tensor_symmetric, use_grad_scaling=True, eps=quantizer.EPS)
        return (dc.replace(act, observer_or_fake_quant_ctr=ranges) if qat else act), weight, residual

    def initialised(model, names, scope, **options):  # options: what --residual-bits passes on
        graph = prepare(model, names, scope, **options)
        tokenizer = AutoTokenizer.from_pretrained(str(teacher))
        texts = list(data.train.texts)[::max(1, len(data.train) // 256)][:256]
        with torch.no_grad():
            for start in range(0, len(texts), 32):
                batch = tokenizer(texts[start:start + 32], padding=True, return_tensors="pt")
                graph(**{n: batch[n] for n in names})
        graph.apply(enable_range_learning)
        return graph

    quantizer._specs, qat_train.prepare_qat = learnt_specs, initialised


def program_test_accuracy(model_dir: Path, data, input_names, teacher: Path) -> tuple[float, float]:
    """The saved int8 program (qat.pt2) in PyTorch on the test split, as the step scores validation:
    its accuracy and its argmax agreement with the FP32 model QAT started from."""
    import numpy as np
    from transformers import AutoConfig, AutoTokenizer

    from edge_sdk.distill.logits import predict_logits
    from edge_sdk.models import load_classifier
    from edge_sdk.qat.program import PROGRAM, load_program
    from edge_sdk.qat.train import _graph_classifier

    program = _graph_classifier(load_program(model_dir / PROGRAM).module(), tuple(input_names),
                                AutoConfig.from_pretrained(str(model_dir)))
    tokenizer, texts = AutoTokenizer.from_pretrained(str(model_dir)), list(data.test.texts)
    predicted = predict_logits(program, tokenizer, texts, 128).argmax(-1)
    fp32 = predict_logits(load_classifier(teacher), tokenizer, texts, 128).argmax(-1)
    return float((predicted == np.asarray(data.test.labels)).mean()), float((predicted == fp32).mean())


if __name__ == "__main__":
    main()
