"""Vocabulary trimming for WordPiece tokenizers (BERT/MiniLM; MPNet's tokenizer.json, a WordPiece
model with a RobertaProcessing post-processor).

Kept: every id the domain's texts produce, every added/special token (and any token id the model's
config names), and every piece of one character, whole-word and `##` continuation. Ids stay in their
old order, densely renumbered, so low special ids ([PAD] 0; MPNet's <s> <pad> </s> <unk> 0-3) keep
their values.

Why this is safe:
- a kept text tokenizes to the same pieces: greedy longest-match WordPiece picks, at each position,
  the longest piece in the vocabulary; that piece is kept and nothing longer existed;
- a word with no [UNK] before gets none after: each of its characters appears in some piece, and
  every such character has both single-character forms in these vocabularies (MiniLM: all 997; MPNet:
  all 997 lowercase ones, its 9 capitals occur only inside [PAD]-style tokens that lowercasing never
  reaches), so WordPiece can always fall back to one character at a time. A vocabulary lacking a
  form would weaken this: `vocabulary_to_keep` cannot invent pieces.

Measured (MiniLM tokenizer, CLINC150 plus, keeping what train + val + oos_train + oos_val use):
7,854 of 30,522 rows kept (22.8M -> 14.1M parameters, fp32 ONNX 91.2 -> 56.4 MB); on the test split
4.5% of tokens in 22.5% of queries tokenize differently (tokenization_change), none into [UNK]; on
the SDK's bundled assistant sample (1,020 queries the trimming never saw) 6.7% of tokens, 30.7% of
queries.

Shared rows (`shared_rows`): the pieces no domain text uses stay in the vocabulary but point at a few
shared rows, the k-means centroids of their embeddings (cluster.py), instead of going. Every text
then tokenizes exactly as before (same pieces, same length) and an unseen word reads as the average
of pieces like it, where plain trimming spells it out in single letters. Measured on the MiniLM
teacher (CLINC150, FP32 test): the 7,854 rows above plus 256 shared ones score 88.49% against
87.85% untrimmed (out-of-scope recall 58.9% against 53.3%, in-scope 95.07% against 95.53%); plain
trimming to the 7,854 scores 85.82%.
"""

from __future__ import annotations

import copy
import json
import string
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.manifest import TOKENIZER_FILE as FILE

from ..errors import TrimError

_CONFIG_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id",
                     "unk_token_id", "mask_token_id")


@dataclass(frozen=True)
class Trimmed:
    model: object
    tokenizer: dict  # the rewritten tokenizer.json
    kept: tuple[int, ...]  # old ids in new-id order: new id i was old id kept[i]
    shared: int = 0  # rows after the kept ones, each shared by the pieces of one k-means cluster

    @property
    def rows(self) -> int:
        """Rows of the new embedding table."""
        return len(self.kept) + self.shared


@dataclass(frozen=True)
class TokenizationChange:
    """Words tokenized differently after trimming, counted in tokens (of the original tokenization,
    special tokens excluded) and in texts."""

    texts: int
    changed_texts: int
    tokens: int
    changed_tokens: int
    unk_before: int
    unk_after: int

    @property
    def token_share(self) -> float:
        return self.changed_tokens / self.tokens if self.tokens else 0.0

    @property
    def text_share(self) -> float:
        return self.changed_texts / self.texts if self.texts else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "token_share": self.token_share, "text_share": self.text_share}


def load_tokenizer_json(tokenizer) -> dict:
    """tokenizer.json as a dict, from a dict, a file or a model folder; checks it is WordPiece."""
    if isinstance(tokenizer, dict):
        spec = tokenizer
    else:
        path = Path(tokenizer)
        path = path / FILE if path.is_dir() else path
        if not path.is_file():
            raise TrimError(f"no tokenizer at {path}: trimming needs the model's {FILE}")
        spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece":
        raise TrimError(f"{FILE}: model {model.get('type')} is not WordPiece; only WordPiece vocabularies are trimmed")
    return spec


def _id_slots(spec: dict):
    """(container, key) of every token id outside model.vocab: added tokens, padding, post-processor."""
    for token in spec.get("added_tokens") or ():
        yield token, "id"
    if spec.get("padding"):
        yield spec["padding"], "pad_id"
    stack = [spec.get("post_processor")]
    while stack:
        processor = stack.pop()
        kind = processor and processor.get("type")
        if kind in (None, "ByteLevel"):
            continue
        if kind == "TemplateProcessing":
            for special in processor["special_tokens"].values():
                yield from ((special["ids"], i) for i in range(len(special["ids"])))
        elif kind in ("BertProcessing", "RobertaProcessing"):
            yield processor["sep"], 1
            yield processor["cls"], 1
        elif kind == "Sequence":
            stack.extend(processor["processors"])
        else:
            raise TrimError(f"{FILE}: post_processor {kind} is not supported (its token ids could not be rewritten)")


def _tokenizer(spec: dict):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(spec))
    tok.no_padding()
    tok.no_truncation()
    return tok


def domain_alphabet(tokenizer, texts) -> frozenset[str]:
    """The characters `texts` use after the tokenizer's normalization (lowercasing, accent
    stripping), plus printable ASCII: an English-speaking domain keeps every English word, seen or not."""
    return _alphabet(_tokenizer(load_tokenizer_json(tokenizer)), texts)


def _alphabet(tokenizer, texts) -> frozenset[str]:
    normalizer = tokenizer.normalizer
    chars = set(string.ascii_letters + string.digits + string.punctuation)
    for text in texts:
        chars.update(normalizer.normalize_str(str(text)) if normalizer else str(text))
    return frozenset(c for c in chars if not c.isspace())


def _whole(tokenizer, piece: str) -> bool:
    """Whether the pre-tokenizer leaves `piece` in one word; if not, WordPiece never sees it whole
    (BERT's `[unused0]` splits at its brackets: 994 such slots in MiniLM's vocabulary)."""
    pre = tokenizer.pre_tokenizer
    return pre is None or len(pre.pre_tokenize_str(piece)) == 1


def vocabulary_to_keep(tokenizer, texts, extra_ids=(), alphabet: bool = False) -> list[int]:
    """Sorted old ids to keep for `texts` (see the module docstring); `extra_ids` are kept too.
    With `alphabet`, every piece spelled in the texts' alphabet (domain_alphabet) is kept and every
    other piece goes, single characters included."""
    spec = load_tokenizer_json(tokenizer)
    texts = [str(t) for t in texts]
    if not texts:
        raise TrimError("no domain texts: trimming would keep only special and one-character pieces; "
                        "pass the training texts")
    model = spec["model"]
    vocab, prefix = model["vocab"], model.get("continuing_subword_prefix") or "##"
    keep = {int(i) for i in extra_ids}
    tokenizer = _tokenizer(spec)
    letters = _alphabet(tokenizer, texts) if alphabet else None
    for encoding in tokenizer.encode_batch(texts):
        keep.update(encoding.ids)
    keep.update(slot[key] for slot, key in _id_slots(spec))
    if model.get("unk_token") in vocab:
        keep.add(vocab[model["unk_token"]])
    for token, i in vocab.items():
        piece = token[len(prefix):] if token.startswith(prefix) and len(token) > len(prefix) else token
        if len(piece) == 1 if letters is None else letters.issuperset(piece) and _whole(tokenizer, piece):
            keep.add(i)
    return sorted(keep)


def trim_tokenizer_json(tokenizer, kept, shared: dict[int, int] | None = None) -> dict:
    """A copy of tokenizer.json holding only the `kept` old ids, renumbered 0..len(kept)-1 in that order.
    `shared` maps more old ids to a shared row r, new id len(kept) + r: those pieces stay in the
    vocabulary, several to one id."""
    spec = copy.deepcopy(load_tokenizer_json(tokenizer))
    new_id = {old: new for new, old in enumerate(kept)}
    own = dict(new_id)  # special tokens keep a row of their own
    new_id.update((old, len(kept) + row) for old, row in (shared or {}).items())
    vocab = spec["model"]["vocab"]
    spec["model"]["vocab"] = {token: new_id[i] for token, i in sorted(vocab.items(), key=lambda t: t[1])
                              if i in new_id}
    for slot, key in list(_id_slots(spec)):
        if slot[key] not in own:
            raise TrimError(f"{FILE}: special token id {slot[key]} is not among the kept ids")
        slot[key] = own[slot[key]]
    return spec


def _hard_coded_id(model) -> int | None:
    """A token id the embedding module fixes in code rather than config: MPNet numbers positions
    after its `padding_idx = 1`, so that id must not move."""
    table = model.get_input_embeddings()
    path = next(name for name, module in model.named_modules() if module is table)
    fixed = getattr(model.get_submodule(path.rpartition(".")[0]), "padding_idx", None)
    return fixed if isinstance(fixed, int) else None


def _check_fits(largest_id: int, rows: int) -> None:
    if largest_id >= rows:
        raise TrimError(f"the tokenizer has id {largest_id} but the model's embedding table has {rows} "
                        "rows: this tokenizer is not the model's")


def trim_embeddings(model, kept, *, extra_rows=None, inplace: bool = False):
    """The model with only the `kept` rows of its word-embedding table, in that order, then
    `extra_rows` ([n, hidden]: shared rows) when given; config's vocab_size and token ids follow."""
    import torch

    model = model if inplace else copy.deepcopy(model)
    table = model.get_input_embeddings()
    if not isinstance(table, torch.nn.Embedding):
        raise TrimError(f"the input embeddings are a {type(table).__name__}, not an Embedding: trim the vocabulary "
                        "before factorizing the embedding table")
    if model.get_output_embeddings() is not None:
        raise TrimError(f"{type(model).__name__} has an output layer over the vocabulary; trimming is for classifiers")
    kept = list(kept)
    if not kept:
        raise TrimError("no ids to keep: the trimmed model would have no vocabulary")
    _check_fits(kept[-1], table.num_embeddings)
    new_id = {old: new for new, old in enumerate(kept)}
    fixed = _hard_coded_id(model)
    if fixed is not None and new_id.get(fixed) != fixed:
        raise TrimError(f"the model's embeddings hard-code token id {fixed}, which trimming would move")
    pad = new_id.get(table.padding_idx) if table.padding_idx is not None else None
    rows = table.weight.detach()[torch.tensor(kept, device=table.weight.device)]
    if extra_rows is not None:
        rows = torch.cat([rows, extra_rows.to(rows)])
    trimmed = torch.nn.Embedding(len(rows), table.embedding_dim, padding_idx=pad,
                                 dtype=table.weight.dtype, device=table.weight.device)
    with torch.no_grad():
        trimmed.weight.copy_(rows)
    model.set_input_embeddings(trimmed.train(table.training))
    model.config.vocab_size = len(rows)
    for name in _CONFIG_TOKEN_IDS:
        value = getattr(model.config, name, None)
        if isinstance(value, int):
            if value not in new_id:
                raise TrimError(f"config.{name} = {value} is not among the kept ids; keep it (trim_vocabulary does)")
            setattr(model.config, name, new_id[value])
    return model


def trim_vocabulary(model, tokenizer, texts, *, keep=(), alphabet: bool = False, shared_rows: int = 0,
                    inplace: bool = False) -> Trimmed:
    """Keep the vocabulary `texts` need (vocabulary_to_keep) and the ids in `keep`, slice the model's
    embedding table and rewrite tokenizer.json to the new dense ids. `tokenizer`: tokenizer.json
    (dict, file or folder). `alphabet`: keep every piece spelled in the texts' alphabet instead
    (domain_alphabet), so that any text in it tokenizes as before. `shared_rows`: the other pieces
    stay, sharing that many rows (the module docstring), so that every text tokenizes as before."""
    if shared_rows < 0:
        raise TrimError(f"shared_rows must be >= 0, got {shared_rows}")
    config = model.config
    extra = [getattr(config, n) for n in _CONFIG_TOKEN_IDS if isinstance(getattr(config, n, None), int)]
    extra += [i for i in keep if i < model.get_input_embeddings().num_embeddings]
    fixed = _hard_coded_id(model)
    extra += range(fixed + 1) if fixed is not None else []  # it keeps its value only if all below it stay
    spec = load_tokenizer_json(tokenizer)  # read once: both calls below take the dict
    kept = vocabulary_to_keep(spec, texts, extra, alphabet)
    if not shared_rows:
        return Trimmed(trim_embeddings(model, kept, inplace=inplace), trim_tokenizer_json(spec, kept), tuple(kept))
    from .cluster import kmeans

    own = set(kept)
    rest = sorted({i for i in spec["model"]["vocab"].values() if i not in own})
    table = model.get_input_embeddings().weight.detach()
    if rest:
        _check_fits(rest[-1], len(table))
    centroids, cluster = kmeans(table[rest], shared_rows) if rest else (table[:0], [])
    spec = trim_tokenizer_json(spec, kept, dict(zip(rest, [int(c) for c in cluster])))
    model = trim_embeddings(model, kept, extra_rows=centroids, inplace=inplace)
    return Trimmed(model, spec, tuple(kept), len(centroids))


def save_tokenizer_json(spec: dict, folder) -> Path:
    """Write tokenizer.json into `folder`, and vocab.txt (tokens in id order) when one is there, so
    transformers' slow-tokenizer files do not contradict it (with transformers 5, AutoTokenizer on
    such a folder gives the ids `tokenizers` gives, from tokenizer.json and from vocab.txt alone)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / FILE
    out.write_text(json.dumps(spec, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ids = list(spec["model"]["vocab"].values())
    if len(set(ids)) < len(ids):  # shared rows: a line per id cannot say it, tokenizer.json alone does
        (folder / "vocab.txt").unlink(missing_ok=True)
    elif (folder / "vocab.txt").is_file():
        tokens = sorted(spec["model"]["vocab"].items(), key=lambda t: t[1])
        (folder / "vocab.txt").write_text("".join(t + "\n" for t, _ in tokens), encoding="utf-8")
    return out


def _words(encoding) -> list[tuple[int, tuple[str, ...]]]:
    words: dict[int, list[str]] = {}
    for word, token in zip(encoding.word_ids, encoding.tokens):
        if word is not None:
            words.setdefault(word, []).append(token)
    return [(w, tuple(t)) for w, t in words.items()]


def tokenization_change(before, after, texts) -> TokenizationChange:
    """How many tokens and texts tokenize differently with `after` than with `before` (tokenizer.json
    dicts, files or folders): a word counts as changed when its pieces differ, and all its original
    tokens count as changed tokens."""
    before, after = load_tokenizer_json(before), load_tokenizer_json(after)
    a, b, unk = _tokenizer(before), _tokenizer(after), before["model"].get("unk_token")
    texts = [str(t) for t in texts]
    changed_texts = tokens = changed_tokens = unk_before = unk_after = 0
    for old, new in zip(a.encode_batch(texts, add_special_tokens=False),
                        b.encode_batch(texts, add_special_tokens=False)):
        old_words, new_words = _words(old), dict(_words(new))
        diff = [pieces for word, pieces in old_words if new_words.get(word) != pieces]
        tokens += len(old.tokens)
        changed_tokens += sum(len(p) for p in diff)
        changed_texts += bool(diff)
        unk_before += old.tokens.count(unk)
        unk_after += new.tokens.count(unk)
    return TokenizationChange(len(texts), changed_texts, tokens, changed_tokens, unk_before, unk_after)
