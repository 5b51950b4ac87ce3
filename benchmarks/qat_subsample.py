"""The QAT step's training path on a CLINC150 subsample, for trying its settings in minutes (not a
benchmark of record): every 7th training text (2,178), every 6th validation text (517), the step's
own code (`edge_sdk.qat.quantization_aware_training`), and the int8 validation accuracy it reports.

    python benchmarks/qat_subsample.py TEACHER_DIR ../shared/data/clinc150 --lr 1e-4 --alpha 1.0 \
        [--epochs 2] [--constant-lr] [--random-batches]

--constant-lr (no warmup, no decay) and --random-batches (instead of length-grouped) override the
Trainer settings every training in the SDK shares (train/arguments.py), to isolate their effect.
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

    data = dataclasses.replace(data, train=every(data.train, 7), validation=every(data.validation, 6),
                               fingerprint=data.fingerprint + "-subsample")
    config = QatConfig(epochs=args.epochs, learning_rate=args.lr, alpha=args.alpha)
    with tempfile.TemporaryDirectory() as out:
        record = quantization_aware_training(args.teacher, data, Path(out) / "model", config, progress=False)
    print(f"lr {args.lr} alpha {args.alpha} epochs {args.epochs} constant-lr {args.constant_lr} random-batches "
          f"{args.random_batches}: int8 validation accuracy {record['validation_accuracy_int8']:.4f} (FP32 "
          f"{record['teacher_accuracy']['validation']:.4f})")


if __name__ == "__main__":
    main()
