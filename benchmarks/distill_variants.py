"""Distillation variants measured on CLINC150 and not kept in edge_sdk (BENCHMARKS.md, "What moved
the student"): each one patches a single piece of edge_sdk.distill, then runs distill_epochs.py
with the remaining arguments, so its rows are reproducible without carrying the variant in the SDK.

    python benchmarks/distill_variants.py neighbours --teacher /tmp/teach/t1 \
        --data ../shared/data/clinc150 --config '{"layers": [1, 3, 5], "augment": 2}'
    python benchmarks/distill_variants.py mse --teacher ... --data ... --config '{"layers": [1, 3, 5]}'
    python benchmarks/distill_variants.py average --teacher ... --data ... --config '{"layers": [1, 3, 5], "epochs": 6}'
    python benchmarks/distill_variants.py similarity --weight 10 --teacher BASE_TEACHER --data ... \
        --config '{"student": "sentence-transformers/all-MiniLM-L6-v2", "learning_rate": 1e-4, "epochs": 10}'

neighbours  TinyBERT's augmentation: each word that is one whole-word token is replaced, with
            probability 0.4, by one of its 15 nearest tokens (cosine) in the teacher's input
            embeddings ("book a flight to lisbon" -> "book a plane to portugal")
mse         the soft-target term is the MSE between student and teacher logits (Kim et al. 2021)
            instead of T^2 * KL at temperature T
average     the student's weights averaged over its epochs from the middle one on (checkpoint
            averaging: epochs 3-6 of 6); the averaged model's validation and test accuracy are printed last
similarity  similarity-preserving distillation (Tung & Mori, ICCV 2019) added to the loss with weight
            --weight: the mean squared difference between the batch's pairwise cosine similarities of
            the student's first-token features and the teacher's (computed once per training text on
            the teacher's own tokens), so it needs neither shared tokens nor equal widths (MPNet-base
            -> MiniLM-L6); no augmentation or hidden-state loss with it
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


def first_token_features(model, tokenizer, texts, max_length: int, batch_size: int = 128) -> np.ndarray:
    """The last layer's hidden state at <s> / [CLS], what the classification heads read, per text."""
    import torch

    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            out[start:start + batch_size] = model(**batch, output_hidden_states=True).hidden_states[-1][:, 0].numpy()
    return out


def similarity_loss(student_features, teacher_features):
    import torch.nn.functional as F

    s, t = F.normalize(student_features.float(), dim=-1), F.normalize(teacher_features.float(), dim=-1)
    return F.mse_loss(s @ s.T, t @ t.T)


def patch_similarity(weight: float) -> None:
    import torch
    from transformers import AutoTokenizer

    import edge_sdk.distill.train as train
    import edge_sdk.distill.trainer as trainer

    prepare, collate, compute_loss = train.prepare, trainer.DistillationCollator.__call__, \
        trainer.DistillationTrainer.compute_loss

    def prepare_with_features(teacher_dir, data, max_length=64, **kwargs):
        prepared = prepare(teacher_dir, data, max_length, **kwargs)
        if prepared.augmented:
            sys.exit("similarity: give no augment with this variant")
        features = first_token_features(prepared.teacher, AutoTokenizer.from_pretrained(str(teacher_dir)),
                                        list(data.train.texts), max_length)
        prepared.train = prepared.train.add_column("teacher_features", [row.tolist() for row in features])
        return prepared

    def collate_features(self, rows):
        features = [row.pop("teacher_features") for row in rows] if "teacher_features" in rows[0] else None
        batch = collate(self, rows)
        if features is not None:
            batch["teacher_features"] = torch.tensor(features)
        return batch

    def loss_with_similarity(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        features = inputs.pop("teacher_features", None)
        if features is None:  # evaluation
            return compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        if self.hidden_weight:
            sys.exit("similarity: give no hidden_weight with this variant")
        teacher, labels = inputs.pop("teacher_logits"), inputs.pop("labels")
        outputs = model(**inputs, output_hidden_states=True)
        loss = trainer.distillation_loss(outputs.logits, teacher, labels, self.alpha, self.temperature)
        loss = loss + weight * similarity_loss(outputs.hidden_states[-1][:, 0], features)
        return (loss, outputs) if return_outputs else loss

    train.prepare = prepare_with_features
    trainer.DistillationCollator.__call__ = collate_features
    trainer.DistillationTrainer.compute_loss = loss_with_similarity


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("neighbours", "mse", "average", "similarity"):
        sys.exit(__doc__)
    variant = sys.argv.pop(1)
    if variant == "neighbours":
        patch_neighbours(sys.argv[sys.argv.index("--teacher") + 1])
    elif variant == "mse":
        patch_mse()
    elif variant == "similarity":
        at = sys.argv.index("--weight")
        patch_similarity(float(sys.argv.pop(at + 1)))
        sys.argv.pop(at)
    else:
        patch_average()
    runpy.run_path(str(EPOCHS_SCRIPT), run_name="__main__")


if __name__ == "__main__":
    main()
