"""Train one distilled student and print, after every epoch, its validation and test accuracy and
the test split's in-scope accuracy and out-of-scope recall, then the same after the bias correction
every SDK student ends with (where the config keeps it on): the ablation behind BENCHMARKS.md's
distillation tables (test numbers are printed for the record, never used to choose anything).

    python benchmarks/distill_epochs.py --teacher /tmp/teach/t1 --data ../shared/data/clinc150 \
        --config '{"layers": [0, 2, 4], "epochs": 5, "augment": 2}' [--save DIR]
    python benchmarks/distill_epochs.py --teacher BASE_TEACHER --data ../shared/data/clinc150 \
        --config '{"student": "sentence-transformers/all-MiniLM-L6-v2", "learning_rate": 1e-4, "epochs": 10}'

--config holds edge_sdk.distill.DistillConfig fields; the rest keep their defaults.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default="{}", help="DistillConfig fields as JSON")
    parser.add_argument("--cache", default="build/distill-epochs/cache", help="teacher-logits cache folder")
    parser.add_argument("--save", help="save the final student here")
    args = parser.parse_args()

    from transformers import TrainerCallback

    from edge_sdk.data import load_data
    from edge_sdk.distill.logits import predict_logits
    from edge_sdk.distill.train import DistillConfig, corrected_bias, prepare, train_student

    fields = json.loads(args.config)
    if "layers" in fields:
        fields["layers"] = tuple(fields["layers"])
    config = DistillConfig(**fields)
    data = load_data(args.data, seed=config.seed)
    prepared = prepare(args.teacher, data, config.max_length, cache_dir=args.cache, augment=config.augment,
                       seed=config.seed, student=config.student)
    labels = np.asarray(data.test.labels)
    oos = labels == data.oos_id if data.oos_id is not None else np.zeros(len(labels), bool)
    started = time.monotonic()

    def scores(model) -> dict:
        predicted = predict_logits(model, prepared.tokenizer, list(data.test.texts), config.max_length).argmax(-1)
        model.train()
        right = predicted == labels
        return {"test": float(right.mean()), "test_in_scope": float(right[~oos].mean()),
                "test_oos_recall": float(right[oos].mean()) if oos.any() else None}

    class PerEpoch(TrainerCallback):
        def on_evaluate(self, args_, state, control, metrics=None, model=None, **kwargs):
            print(json.dumps({"epoch": round(state.epoch or 0), "validation": metrics.get("eval_accuracy"),
                              **scores(model), "seconds": round(time.monotonic() - started)}), flush=True)

    teacher = {split: prepared.logits.accuracy(data, split) for split in ("validation", "test")}
    print(json.dumps({"teacher": teacher, "train_rows": len(prepared.train), "augmented": prepared.augmented,
                      "config": config.as_dict()}), flush=True)
    trainer, _ = train_student(prepared, config, (args.save or "build/distill-epochs") + ".work",
                               callbacks=[PerEpoch()], progress=False)
    correction = corrected_bias(trainer.model, prepared, config)
    if correction:
        print(json.dumps({"bias_corrected": {"validation": correction[0], **scores(trainer.model)}}), flush=True)
    if args.save:
        trainer.model.save_pretrained(args.save)
        prepared.tokenizer.save_pretrained(args.save)


if __name__ == "__main__":
    main()
