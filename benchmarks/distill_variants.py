"""Distillation variants measured on CLINC150 and not kept in edge_sdk (BENCHMARKS.md, "What moved
the student"): each one patches a single piece of edge_sdk.distill, then runs distill_epochs.py
with the remaining arguments, so its rows are reproducible without carrying the variant in the SDK.

    python benchmarks/distill_variants.py neighbours --teacher /tmp/teach/t1 \
        --data ../shared/data/clinc150 --config '{"layers": [1, 3, 5], "augment": 2}'
    python benchmarks/distill_variants.py mse --teacher ... --data ... --config '{"layers": [1, 3, 5]}'
    python benchmarks/distill_variants.py average --teacher ... --data ... --config '{"layers": [1, 3, 5], "epochs": 6}'

neighbours  TinyBERT's augmentation: each word that is one whole-word token is replaced, with
            probability 0.4, by one of its 15 nearest tokens (cosine) in the teacher's input
            embeddings ("book a flight to lisbon" -> "book a plane to portugal")
mse         the soft-target term is the MSE between student and teacher logits (Kim et al. 2021)
            instead of T^2 * KL at temperature T
average     the student's weights averaged over its epochs from the middle one on (checkpoint
            averaging: epochs 3-6 of 6); the averaged model's validation and test accuracy are printed last
"""

from __future__ import annotations

import json
import random
import runpy
import sys
from pathlib import Path

import numpy as np

EPOCHS_SCRIPT = Path(__file__).with_name("distill_epochs.py")


def nearest_tokens(embeddings: np.ndarray, vocabulary: dict[str, int], words, k: int = 15) -> dict[str, list[str]]:
    whole = np.zeros(len(embeddings), bool)
    for token, i in vocabulary.items():
        whole[i] = token.isascii() and token.isalpha()
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    words = [w for w in words if w in vocabulary and whole[vocabulary[w]]]
    names = {i: t for t, i in vocabulary.items()}
    out = {}
    for start in range(0, len(words), 1024):
        chunk = words[start:start + 1024]
        ids = np.array([vocabulary[w] for w in chunk])
        similarity = unit[ids] @ unit.T
        similarity[:, ~whole] = -np.inf
        similarity[np.arange(len(ids)), ids] = -np.inf
        out.update({w: [names[j] for j in np.argsort(-row)[:k]] for w, row in zip(chunk, similarity)})
    return out


def patch_neighbours(teacher_dir: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    import edge_sdk.distill.augment as augment

    def augment_texts(texts, copies, seed=0):
        texts = [str(t) for t in texts]
        model, tokenizer = AutoModel.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(teacher_dir)
        embeddings = model.get_input_embeddings().weight.detach().numpy()
        neighbours = nearest_tokens(embeddings, tokenizer.get_vocab(), sorted({w for t in texts for w in t.split()}))
        rng, seen, out = random.Random(seed), set(texts), []
        for _ in range(copies):
            for text in texts:
                new = " ".join(rng.choice(neighbours[w]) if w in neighbours and rng.random() < 0.4 else w
                               for w in text.split())
                if new not in seen:
                    seen.add(new)
                    out.append(new)
        return out

    augment.augment_texts = augment_texts


def patch_mse() -> None:
    import torch.nn.functional as F

    import edge_sdk.distill.trainer as trainer

    def mse_loss(student_logits, teacher_logits, labels, alpha, temperature):
        soft = F.mse_loss(student_logits, teacher_logits.to(student_logits.dtype))
        return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft

    trainer.distillation_loss = mse_loss


def patch_average() -> None:
    from transformers import TrainerCallback

    import edge_sdk.distill.train as train
    from edge_sdk.distill.logits import predict_logits

    original = train.train_student

    def train_student(prepared, config, work_dir, callbacks=(), progress=True):
        total, count = {}, [0]

        class Accumulate(TrainerCallback):
            def on_epoch_end(self, args, state, control, model=None, **kwargs):
                if round(state.epoch) >= max(1, config.epochs // 2):
                    for name, value in model.state_dict().items():
                        total[name] = total.get(name, 0) + value.detach().float()
                    count[0] += 1

        trainer, accuracy = original(prepared, config, work_dir, callbacks=[*callbacks, Accumulate()],
                                     progress=progress)
        trainer.model.load_state_dict({name: value / count[0] for name, value in total.items()})
        scores = {}
        for split in ("validation", "test"):
            texts, labels = getattr(prepared.data, split).texts, np.asarray(getattr(prepared.data, split).labels)
            predicted = predict_logits(trainer.model, prepared.tokenizer, list(texts), config.max_length).argmax(-1)
            scores[split] = float((predicted == labels).mean())
        print(json.dumps({"averaged_epochs": count[0], **scores}), flush=True)
        return trainer, scores["validation"]

    train.train_student = train_student


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("neighbours", "mse", "average"):
        sys.exit(__doc__)
    variant = sys.argv.pop(1)
    if variant == "neighbours":
        patch_neighbours(sys.argv[sys.argv.index("--teacher") + 1])
    elif variant == "mse":
        patch_mse()
    else:
        patch_average()
    runpy.run_path(str(EPOCHS_SCRIPT), run_name="__main__")


if __name__ == "__main__":
    main()
