"""What a pipeline takes as texts, and how every Python string is made something to tokenize.

Every `str` gets an answer, except one longer than `Limits.max_text_chars` (an `InputError`):
- lone surrogates ('\\ud800', or bytes decoded with errors='surrogateescape': 35% of random
  byte strings) are not Unicode characters and `tokenizers` cannot take them (it raised a bare
  TypeError); each becomes U+FFFD, as a UTF-8 decoder with errors='replace' and the mobile
  demo's JS tokenizer do, which BERT's normalizer then drops like other unknown characters;
- NUL and other control characters, empty and whitespace-only strings, any script, any length
  up to the limit: passed as they are; the tokenizer cleans and truncates them.
Anything that is not a string (bytes, None, numbers, dicts), or an empty list, is an InputError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import InputError

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_texts(texts: Any, max_chars: int) -> list[str]:
    """A non-empty list of tokenizable strings, in input order; InputError naming the bad item."""
    if isinstance(texts, str):
        texts = [texts]
    elif isinstance(texts, (bytes, bytearray, dict)) or not isinstance(texts, Sequence):
        raise InputError(f"expected a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("expected at least one text, got an empty list")
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"item {i} is {type(text).__name__}, not a string")
        out.append(check_text(text, max_chars, f"item {i}"))
    return out


def check_text(text: str, max_chars: int, where: str = "text") -> str:
    if len(text) > max_chars:
        raise InputError(f"{where} has {len(text):,} characters, past the limit of {max_chars:,} "
                         "(Limits.max_text_chars): the model reads only its first few hundred tokens")
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)
