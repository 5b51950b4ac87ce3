"""Teacher-labelled augmentation: perturbed copies of the training texts, for the student to match.

A student learns the teacher's function only where it sees the teacher's outputs. CLINC150 has
100 utterances per intent, too few to show where the teacher draws its boundaries, above all
around out-of-scope. TinyBERT's answer is to distil on extra texts the teacher labels; here the
extra texts are cheap word-level perturbations of the training set (no language model needed):

- drop:    delete one word                  "what is my balance" -> "what my balance"
- swap:    swap two neighbouring words      -> "is what my balance"
- replace: put a random training-set word   -> "what is my flight"
- splice:  first half of this utterance + second half of another one (blurry, often oos-like)

The perturbed texts carry no trustworthy label: the student trains on the teacher's soft targets
for them, and on the teacher's argmax as their hard label.
"""

from __future__ import annotations

import random

OPERATIONS = ("drop", "swap", "replace", "splice")


def _perturb(words: list[str], op: str, rng: random.Random, vocabulary: list[str], texts: list[str]) -> list[str]:
    words = list(words)
    if op == "drop" and len(words) >= 3:
        del words[rng.randrange(len(words))]
    elif op == "swap" and len(words) >= 2:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif op == "replace" and words:
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
    elif op == "splice":
        other = rng.choice(texts).split()
        words = words[: max(1, len(words) // 2)] + other[len(other) // 2:]
    return words


def augment_texts(texts, copies: int, seed: int = 0) -> list[str]:
    """`copies` perturbed versions of every text (one random operation each), deduplicated against
    the originals and each other; deterministic for a given seed."""
    if copies < 0:
        raise ValueError(f"copies must be at least 0, got {copies}")
    texts = [str(t) for t in texts]
    rng = random.Random(seed)
    vocabulary = sorted({w for t in texts for w in t.split()})
    seen, out = set(texts), []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            if not words:
                continue
            new = " ".join(_perturb(words, rng.choice(OPERATIONS), rng, vocabulary, texts))
            if new and new not in seen:
                seen.add(new)
                out.append(new)
    return out
