"""Vocabulary trimming: keep the embedding rows a domain's texts use and rewrite tokenizer.json to match."""

from ..errors import TrimError
from .vocab import (
    TokenizationChange,
    Trimmed,
    domain_alphabet,
    load_tokenizer_json,
    save_tokenizer_json,
    tokenization_change,
    trim_embeddings,
    trim_tokenizer_json,
    trim_vocabulary,
    vocabulary_to_keep,
)

__all__ = ["TokenizationChange", "TrimError", "Trimmed", "domain_alphabet", "load_tokenizer_json",
           "save_tokenizer_json", "tokenization_change", "trim_embeddings", "trim_tokenizer_json",
           "trim_vocabulary", "vocabulary_to_keep"]
