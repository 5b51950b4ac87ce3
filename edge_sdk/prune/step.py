"""The build steps of this package: structured pruning, unstructured sparsity and low-rank
factorization, each followed by recovery distillation from the model it started from.

Each step is `run(source, out, config, context) -> details` (builder/steps.py): it loads the model
folder `source`, compresses it with the functions of this package, trains it back against
`source`'s logits (distill/recover.py; `epochs = 0` skips that) and saves it into `out`. Configs are
frozen dataclasses a recipe's `[[steps]]` table is parsed into; their recovery fields mean what
DistillConfig's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import check


@dataclass(frozen=True)
class Recovery:
    """Distillation from the step's input model after compression (DistillConfig's meaning)."""

    epochs: int = 3
    learning_rate: float = 1e-4
    alpha: float = 0.3
    temperature: float = 8.0
    batch_size: int = 32
    max_length: int = 64
    # After training, the classifier bias re-fitted to the source model's outputs on the validation
    # texts (distill/bias.py): CLINC150, pruned MiniLMs, +0.3 to +0.8 test points (BENCHMARKS.md).
    bias_correction: bool = True

    def check_recovery(self) -> None:
        check(self.epochs >= 0, f"epochs must be >= 0 (0: no recovery), got {self.epochs}")
        check(self.learning_rate > 0 and self.temperature > 0, "learning_rate and temperature must be positive")
        check(0 <= self.alpha <= 1, f"alpha must lie in [0, 1], got {self.alpha}")

    def distillation(self, seed: int):
        from ..distill.config import DistillConfig

        return DistillConfig(alpha=self.alpha, temperature=self.temperature, learning_rate=self.learning_rate,
                             epochs=max(1, self.epochs), batch_size=self.batch_size, max_length=self.max_length,
                             bias_correction=self.bias_correction, seed=seed)


@dataclass(frozen=True)
class PruneConfig(Recovery):
    """Structured pruning: heads, FFN neurons and whole layers physically removed."""

    keep_heads: float = 1.0  # fraction of attention heads kept (per layer, or over all with scope = "global")
    keep_neurons: float = 1.0  # fraction of FFN intermediate units kept
    drop_layers: tuple[int, ...] = ()  # whole encoder layers removed after heads and neurons
    scope: Literal["layer", "global"] = "layer"
    # gradient: Michel et al. 2019 (|dL/d gate| per head/neuron); movement: Sanh et al. 2020 at step 0
    importance: Literal["gradient", "movement"] = "gradient"
    importance_texts: int = 2048  # training texts the importance is measured on (batches of 32)

    def __post_init__(self):
        self.check_recovery()
        check(0 < self.keep_heads <= 1 and 0 < self.keep_neurons <= 1,
              f"keep_heads and keep_neurons are fractions in (0, 1], got {self.keep_heads}, {self.keep_neurons}")
        check(self.importance_texts >= 1, "importance_texts must be at least 1")


@dataclass(frozen=True)
class SparsifyConfig(Recovery):
    """Unstructured sparsity on the encoder's Linear weights (the book's methods): zeros, same shapes."""

    method: Literal["magnitude", "movement"] = "magnitude"
    sparsity: float = 0.5  # final fraction of zeros in each pruned matrix (Zhu & Gupta's cubic schedule)
    epochs: int = 3  # recovery: the schedule prunes during the first 70% of these, then trains on

    def __post_init__(self):
        self.check_recovery()
        check(0 < self.sparsity < 1, f"sparsity must lie in (0, 1), got {self.sparsity}")
        check(self.epochs >= 1, "sparsity is reached during training: epochs must be at least 1")


@dataclass(frozen=True)
class LowRankConfig(Recovery):
    """Low-rank factorization by truncated SVD: the embedding table (ALBERT-style) and/or FFN Linears."""

    embedding_rank: int | None = None
    ffn_rank: int | None = None
    epochs: int = 2

    def __post_init__(self):
        self.check_recovery()
        check(self.embedding_rank is not None or self.ffn_rank is not None, "give embedding_rank, ffn_rank or both")
        for name in ("embedding_rank", "ffn_rank"):
            value = getattr(self, name)
            check(value is None or value >= 1, f"{name} must be at least 1, got {value}")


def labelled_batches(model_dir: Path, data, n: int, max_length: int, seed: int, batch_size: int = 32) -> list:
    """Up to `n` seeded training texts as padded torch batches with labels, shortest first."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    picks = np.random.default_rng(seed).choice(len(data.train), size=min(n, len(data.train)), replace=False)
    rows = sorted(((data.train.texts[i], data.train.labels[i]) for i in sorted(picks)), key=lambda row: len(row[0]))
    batches = []
    for start in range(0, len(rows), batch_size):
        texts, labels = zip(*rows[start:start + batch_size])
        batch = dict(tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"))
        batch["labels"] = torch.tensor(labels)
        batches.append(batch)
    return batches


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def prune_step(source: Path, out: Path, config: PruneConfig, context) -> dict:
    from ..models import load_classifier
    from .importance import head_neuron_importance, movement_scores
    from .plan import apply_plan, plan_pruning

    model = load_classifier(source)
    batches = labelled_batches(source, context.data, config.importance_texts, config.max_length, context.seed)
    score = head_neuron_importance if config.importance == "gradient" else movement_scores
    scores = score(model, batches)
    plan = plan_pruning(scores.heads, scores.neurons, keep_heads=config.keep_heads,
                        keep_neurons=config.keep_neurons, scope=config.scope, drop_layers=config.drop_layers)
    pruned = apply_plan(model, plan)
    details = {"plan": plan.as_dict(), "parameters": {"before": parameter_count(model),
                                                      "after": parameter_count(pruned)}}
    return recover_and_save(pruned, source, out, config, context, details)


def sparsify_step(source: Path, out: Path, config: SparsifyConfig, context) -> dict:
    from ..distill.recover import recover, save_model
    from ..models import load_classifier
    from .schedule import CubicSchedule
    from .unstructured import PruningCallback, sparsity

    model = load_classifier(source)
    steps = config.epochs * math.ceil(len(context.data.train) / config.batch_size)
    callback = PruningCallback(CubicSchedule.over(steps, config.sparsity), config.method)
    model, record = recover(model, source, context.data, config.distillation(context.seed), _work(out),
                            callbacks=[callback, *context.callbacks])
    save_model(model, source, out)
    return {"sparsity": sparsity(model), **record}


def lowrank_step(source: Path, out: Path, config: LowRankConfig, context) -> dict:
    from ..models import load_classifier
    from .lowrank import factorize_embeddings, factorize_ffn

    model = load_classifier(source)
    before, done = parameter_count(model), []
    if config.embedding_rank is not None:
        model, record = factorize_embeddings(model, config.embedding_rank)
        done.append(record)
    if config.ffn_rank is not None:
        model, records = factorize_ffn(model, config.ffn_rank)
        done += records
    details = {"parameters": {"before": before, "after": parameter_count(model)},
               "factorized": [f.as_dict() for f in done]}
    return recover_and_save(model, source, out, config, context, details)


def recover_and_save(model, source: Path, out: Path, config: Recovery, context, details: dict) -> dict:
    """Recovery distillation from `source` (unless epochs = 0), then the model into `out`."""
    from ..distill.recover import recover, save_model

    if config.epochs:
        model, record = recover(model, source, context.data, config.distillation(context.seed), _work(out),
                                callbacks=context.callbacks)
        details.update(record)
    save_model(model, source, out)
    return details


def _work(out: Path) -> Path:
    return out.with_name(out.name + ".work")
