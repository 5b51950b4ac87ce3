"""Tokenization with `tokenizers`, padded per batch to its longest item (not to max length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BundleError


class TextEncoder:
    """Turns texts into the int64 feeds a BERT-style classifier takes."""

    def __init__(self, tokenizer_path: Path, max_length: int):
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise BundleError(f"cannot load tokenizer {tokenizer_path.name}: {exc}") from None
        # Padding is ours (per batch); truncation keeps the model's position range.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self._tokenizer = tokenizer
        self.max_length = max_length
        pad = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tokenizer.encode_batch(texts)]

    def feeds(self, ids: list[list[int]], input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        # Single-segment classification: token types are all zero.
        available = {"input_ids": input_ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(input_ids)}
        return {name: available[name] for name in input_names}
