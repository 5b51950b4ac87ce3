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

    def __post_init__(self):
        check(bool(self.splits), "splits: name at least one of train, validation")
        check(self.keep_frequent >= 0, f"keep_frequent must be >= 0, got {self.keep_frequent}")


def trim_step(source: Path, out: Path, config: TrimConfig, context) -> dict:
    from ..models import load_classifier
    from .vocab import save_tokenizer_json, tokenization_change, trim_vocabulary

    data = context.data
    texts = [t for split in config.splits for t in getattr(data, split).texts]
    model = load_classifier(source)
    trimmed = trim_vocabulary(model, source, texts, keep=range(config.keep_frequent))
    trimmed.model.save_pretrained(str(out))
    for file in Path(source).iterdir():  # tokenizer_config.json, special_tokens_map.json, vocab.txt, ...
        if file.is_file() and ("token" in file.name or file.name == "vocab.txt"):
            shutil.copyfile(file, out / file.name)
    save_tokenizer_json(trimmed.tokenizer, out)  # replaces tokenizer.json (and vocab.txt) with the new ids
    change = tokenization_change(source, out, list(data.test.texts))
    return {"vocabulary": {"before": model.get_input_embeddings().num_embeddings, "after": len(trimmed.kept)},
            "test_tokenization_change": change.as_dict()}
