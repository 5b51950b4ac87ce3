"""How much vocabulary trimming costs: FP32 test accuracy of a fine-tuned model (PyTorch) when its
vocabulary keeps the training and validation texts' pieces, every special token and single
character, and the first N ids of the vocabulary (WordPiece lists its pieces most frequent first).

    python benchmarks/trim_sweep.py TEACHER_DIR ../shared/data/clinc150 0 5000 10000 15000 20000
    python benchmarks/trim_sweep.py TEACHER_DIR ../shared/data/clinc150 0 15000 --other-stdlib 2000 --tokens-only
    python benchmarks/trim_sweep.py TEACHER_DIR ../shared/data/clinc150 --alphabet --other-stdlib 2000
    python benchmarks/trim_sweep.py TEACHER_DIR ../shared/data/clinc150 0 --shared-rows 64 256 1024

Prints one line per N: rows kept, test accuracy, out-of-scope recall, and the share of test tokens
and queries whose tokenization changes (the BENCHMARKS.md table of issue 16). --other-stdlib N adds
the same shares on text of another domain that no build here sees: the first sentences of N
docstrings of Python's standard library (no other dataset is reachable offline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def test_accuracy(model, tokenizer_spec: dict, data) -> tuple[float, float | None]:
    """Accuracy and out-of-scope recall on the test split, tokenized with `tokenizer_spec`."""
    import json

    import torch
    from tokenizers import Tokenizer

    from edge_runtime.manifest import INPUT_NAMES
    from edge_runtime.tokenize import pad_id, padded_feeds

    tokenizer = Tokenizer.from_str(json.dumps(tokenizer_spec))
    pad = pad_id(tokenizer)
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    ids = [e.ids for e in tokenizer.encode_batch(list(data.test.texts))]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    predicted = np.zeros(len(ids), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            chunk = order[start:start + 128]
            feeds = padded_feeds([ids[i] for i in chunk], INPUT_NAMES, pad)
            logits = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits
            predicted[chunk] = logits.argmax(-1).numpy()
    gold = np.asarray(data.test.labels)
    correct = predicted == gold
    return float(correct.mean()), (float(correct[gold == data.oos_id].mean()) if data.oos_id is not None else None)


def stdlib_sentences(n: int) -> list[str]:
    """First sentences of up to `n` docstrings of the standard library's public functions, in a fixed
    order: technical English, a domain far from CLINC150's assistant queries."""
    import importlib
    import inspect

    out: list[str] = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # platform-specific modules
            continue
        for _, member in sorted(inspect.getmembers(module, inspect.isroutine), key=lambda m: m[0]):
            first = (inspect.getdoc(member) or "").split("\n\n")[0].replace("\n", " ").strip()
            if 4 <= len(first.split()) <= 40 and first not in out:
                out.append(first)
            if len(out) == n:
                return out
    return out


def main() -> None:
    from edge_sdk.data import load_data
    from edge_sdk.models import load_classifier
    from edge_sdk.trim.vocab import load_tokenizer_json, tokenization_change, trim_vocabulary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("data")
    parser.add_argument("keep", type=int, nargs="*", help="first-N ids kept besides the data's (0: none)")
    parser.add_argument("--alphabet", action="store_true",
                        help="also the alphabet mode: every piece spelled in the texts' characters plus ASCII")
    parser.add_argument("--shared-rows", type=int, nargs="*", default=[], metavar="K",
                        help="also, for each N and K, every other piece sharing K rows (k-means)")
    parser.add_argument("--other-stdlib", type=int, default=0, metavar="N",
                        help="also measure the tokenization change on N standard-library docstring sentences")
    parser.add_argument("--tokens-only", action="store_true", help="tokenization changes only, no accuracy")
    args = parser.parse_args()
    other = stdlib_sentences(args.other_stdlib) if args.other_stdlib else []
    data = load_data(args.data)
    texts = list(data.train.texts) + list(data.validation.texts)
    spec = load_tokenizer_json(args.teacher)
    model = load_classifier(args.teacher)
    rows = model.get_input_embeddings().num_embeddings
    if not args.tokens_only:
        print(f"all {rows} rows: accuracy, oos recall {test_accuracy(model, spec, data)}", flush=True)
    modes = [(f"first {n}", {"keep": range(n)}) for n in args.keep] + [("alphabet", {"alphabet": True})] * args.alphabet
    modes += [(f"first {n}, shared {k}", {"keep": range(n), "shared_rows": k}) for n in args.keep or [0]
              for k in args.shared_rows]
    for name, how in modes:
        trimmed = trim_vocabulary(model, spec, texts, **how)
        change = tokenization_change(spec, trimmed.tokenizer, list(data.test.texts))
        line = (f"{name}: {trimmed.rows} rows, test tokens changed {change.token_share:.3f}, "
                f"test queries changed {change.text_share:.3f}")
        if other:
            moved = tokenization_change(spec, trimmed.tokenizer, other)
            line += (f"; {len(other)} other-domain texts: tokens changed {moved.token_share:.3f}, "
                     f"texts changed {moved.text_share:.3f}")
        if not args.tokens_only:
            line += f"; accuracy, oos recall {test_accuracy(trimmed.model, trimmed.tokenizer, data)}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
