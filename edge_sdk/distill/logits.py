"""Teacher logits, computed once per (teacher, data, max length) and cached beside the run.

Every trial of a search trains against the same teacher outputs, so the teacher runs once: over
the training texts (the soft targets) and over validation and test (its accuracy, the yardstick
the student is compared with). The cache is one .npz named by a fingerprint of the teacher's
files, the data and the tokenisation; it is written atomically, so workers sharing a folder can
race for it harmlessly.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import LabelledData
from ..files import sha256_file

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TeacherLogits:
    train: np.ndarray  # (len(data.train), num_labels) float32
    validation: np.ndarray
    test: np.ndarray

    def accuracy(self, data: LabelledData, split: str) -> float:
        logits = getattr(self, split)
        labels = np.asarray(getattr(data, split).labels)
        return float((logits.argmax(-1) == labels).mean()) if len(labels) else float("nan")


def teacher_fingerprint(teacher_dir: str | Path) -> str:
    """sha256 over the teacher's config and weight files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(Path(teacher_dir).iterdir()):
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def predict_logits(model, tokenizer, texts, max_length: int, batch_size: int = 128,
                   description: str | None = None) -> np.ndarray:
    """Logits for `texts` in their order; batches of similar length, so padding costs little.
    `description`: show a progress bar so named (in a terminal)."""
    import torch
    from rich.console import Console
    from rich.progress import track

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    if description and sys.stderr.isatty():  # a base-size teacher takes minutes over a training set
        starts = track(starts, description, console=Console(stderr=True), transient=True)
    model.eval()
    with torch.inference_mode():
        for start in starts:
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(model.device)
            out[idx] = model(**batch).logits.float().cpu().numpy()
    return out


def _cache_path(cache_dir, stem: str, *parts) -> Path | None:
    if not cache_dir:
        return None
    key = hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{stem}-{key}.npz"


def _cached(cache: Path | None, compute) -> dict[str, np.ndarray]:
    """The arrays stored at `cache`, or `compute()`'s, written there atomically (workers sharing the
    folder race harmlessly)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            return {k: stored[k] for k in stored.files}
    arrays = compute()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.npz")  # np.savez keeps a .npz name as is
        np.savez(tmp, **arrays)
        os.replace(tmp, cache)
    return arrays


def load_teacher(teacher_dir: str | Path):
    """(model, tokenizer) of a saved teacher; sdpa attention trains and predicts faster (export reloads eager)."""
    from transformers import AutoTokenizer

    from ..models import load_classifier

    return load_classifier(teacher_dir), AutoTokenizer.from_pretrained(str(teacher_dir))


def teacher_logits(teacher_dir: str | Path, data: LabelledData, cache_dir: str | Path | None,
                   max_length: int, batch_size: int = 128, *, teacher=None,
                   fingerprint: str | None = None) -> TeacherLogits:
    """The teacher's logits on every split, from `cache_dir` when already computed there.

    `teacher`: its (model, tokenizer) when the caller holds them already (loaded here otherwise, and
    only on a cache miss); `fingerprint`: its teacher_fingerprint, likewise.
    """
    fingerprint = fingerprint or teacher_fingerprint(teacher_dir)
    cache = _cache_path(cache_dir, "teacher-logits", fingerprint, data.fingerprint, max_length)

    def compute():
        model, tokenizer = teacher or load_teacher(teacher_dir)
        return {s: predict_logits(model, tokenizer, list(getattr(data, s).texts), max_length, batch_size,
                                  description=f"teacher logits, {s}") for s in SPLITS}

    arrays = _cached(cache, compute)
    return TeacherLogits(**{s: arrays[s] for s in SPLITS})


def teacher_logits_for(teacher_dir: str | Path, texts, cache_dir: str | Path | None, max_length: int,
                       batch_size: int = 128, *, teacher=None, fingerprint: str | None = None) -> np.ndarray:
    """The teacher's logits on any list of texts (the augmented ones), cached like `teacher_logits`."""
    texts = list(texts)
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    cache = _cache_path(cache_dir, "teacher-logits-texts", fingerprint or teacher_fingerprint(teacher_dir), digest,
                        max_length)

    def compute():
        model, tokenizer = teacher or load_teacher(teacher_dir)
        return {"logits": predict_logits(model, tokenizer, texts, max_length, batch_size,
                                         description="teacher logits, augmented texts")}

    return _cached(cache, compute)["logits"]
