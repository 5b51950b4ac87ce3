"""The build step of vocabulary trimming: keep the embedding rows the domain's texts use.

The texts are the splits named in the config (training and validation by default, never test), so
the test split measures what trimming costs on text it never saw. The step's output folder holds
the trimmed model and its rewritten tokenizer.json, which the bundle ships: the runtime, the TFLite
path and the mobile demo's JS tokenizer all read the new ids from it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import check


@dataclass(frozen=True)
class TrimConfig:
    splits: tuple[Literal["train", "validation"], ...] = ("train", "validation")
    # Also keep the vocabulary's first N pieces. WordPiece vocabularies list pieces in the order the
    # pretraining corpus made them, most frequent first (BERT's: "the", "of", "and", ... from id 1996),
    # so these keep the words a domain's training texts missed whole instead of in single letters.
    keep_frequent: int = 0
    # Instead of what the texts use: every piece spelled in their alphabet (their characters plus
    # printable ASCII), so any text in it tokenizes exactly as before; what goes is the pieces of
    # other scripts and those the pre-tokenizer never leaves whole (MiniLM: 2,893 of 30,522 rows,
    # 9.5%; no CLINC150 test query changes). Characters outside the alphabet then read as [UNK].
    alphabet: bool = False
    # The pieces left out above stay in the vocabulary, sharing this many rows (k-means centroids of
    # their embeddings): every text tokenizes exactly as before and the table still shrinks (CLINC150,
    # MiniLM: 7,854 + 256 of 30,522 rows). 0: the pieces go, and unseen words split into smaller ones.
    shared_rows: int = 0

    def __post_init__(self):
        check(bool(self.splits), "splits: name at least one of train, validation")
        check(self.keep_frequent >= 0, f"keep_frequent must be >= 0, got {self.keep_frequent}")
        check(self.shared_rows >= 0, f"shared_rows must be >= 0, got {self.shared_rows}")
        check(not (self.alphabet and self.keep_frequent), "alphabet keeps every piece in the texts' alphabet: "
              "keep_frequent adds nothing to it")


def trim_step(source: Path, out: Path, config: TrimConfig, context) -> dict:
    from ..models import load_classifier
    from .vocab import save_tokenizer_json, tokenization_change, trim_vocabulary

    data = context.data
    texts = [t for split in config.splits for t in getattr(data, split).texts]
    model = load_classifier(source)
    trimmed = trim_vocabulary(model, source, texts, keep=range(config.keep_frequent),
                               alphabet=config.alphabet, shared_rows=config.shared_rows)
    trimmed.model.save_pretrained(str(out))
    for file in Path(source).iterdir():  # tokenizer_config.json, special_tokens_map.json, vocab.txt, ...
        if file.is_file() and ("token" in file.name or file.name == "vocab.txt"):
            shutil.copyfile(file, out / file.name)
    save_tokenizer_json(trimmed.tokenizer, out)  # replaces tokenizer.json (and vocab.txt) with the new ids
    change = tokenization_change(source, out, list(data.test.texts))
    rows = {"before": model.get_input_embeddings().num_embeddings, "after": trimmed.rows, "shared": trimmed.shared}
    return {"vocabulary": rows,
            "test_tokenization_change": change.as_dict()}
