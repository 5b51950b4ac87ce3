"""Tokenization with `tokenizers`, padded per batch to its longest item (not to max length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BundleError


def pad_id(tokenizer) -> int:
    """The id the tokenizer pads with: its padding setting (MPNet: <pad> = 1, while its vocabulary
    also holds an ordinary "[PAD]" = 4), else a [PAD] / <pad> token, else 0."""
    padding = tokenizer.padding
    if padding and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


class TextEncoder:
    """Turns texts into the int64 feeds a BERT-style classifier takes."""

    def __init__(self, tokenizer_path: Path, max_length: int):
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise BundleError(f"cannot load tokenizer {tokenizer_path.name}: {exc}") from None
        self.pad_id = pad_id(tokenizer)
        # Padding is ours (per batch); truncation keeps the model's position range.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self._tokenizer = tokenizer
        self.max_length = max_length

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tokenizer.encode_batch(texts)]

    def feeds(self, ids: list[list[int]], input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
        return padded_feeds(ids, input_names, self.pad_id)


def padded_feeds(ids: list[list[int]], input_names: tuple[str, ...], pad_id: int = 0,
                 width: int | None = None) -> dict[str, np.ndarray]:
    """int64 feeds for rows of token ids, right-padded to `width` (default: the longest row).

    Only the inputs named are returned: a model without token_type_ids (MPNet) is not fed one.
    """
    width = max(len(row) for row in ids) if width is None else width
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    # Single-segment classification: token types are all zero.
    available = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    return {name: available[name] for name in input_names}
