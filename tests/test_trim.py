"""Vocabulary trimming with the real MiniLM WordPiece tokenizer (and MPNet's RobertaProcessing
layout) on tiny random models: in-domain text keeps its tokens and logits, no word gains [UNK],
special ids follow, the rewritten file loads in `tokenizers`, transformers and the demo's JS tokenizer."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import REPO, TEXTS, tiny_bert

from edge_sdk.trim import (
    TrimError,
    domain_alphabet,
    load_tokenizer_json,
    save_tokenizer_json,
    tokenization_change,
    trim_embeddings,
    trim_vocabulary,
    vocabulary_to_keep,
)

MPNET = Path("/root/models/all-mpnet-base-v2")


def tokenizer(spec: dict, truncate: int | None = None):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(spec))
    tok.no_padding()
    tok.enable_truncation(truncate) if truncate else tok.no_truncation()
    return tok


def run(model, ids: list[int]):
    ids = torch.tensor([ids])
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)).logits


@pytest.fixture(scope="module")
def trimmed(tokenizer_path):
    return trim_vocabulary(tiny_bert(), tokenizer_path, TEXTS)


def test_in_domain_texts_keep_their_tokens_and_their_logits(tokenizer_path, trimmed):
    original = load_tokenizer_json(tokenizer_path)
    before, after = tokenizer(original, 32), tokenizer(trimmed.tokenizer, 32)
    new_id = {old: new for new, old in enumerate(trimmed.kept)}
    model = tiny_bert()
    for text, old, new in zip(TEXTS, before.encode_batch(TEXTS), after.encode_batch(TEXTS)):
        assert new.tokens == old.tokens, text
        assert new.ids == [new_id[i] for i in old.ids], text
        assert torch.equal(run(trimmed.model, new.ids), run(model, old.ids)), text
    # 5 special tokens, 997 one-character pieces in each form, and the texts' 38 other pieces.
    assert len(trimmed.kept) == 2037 and trimmed.model.config.vocab_size == 2037
    assert trimmed.model.get_input_embeddings().weight.shape == (2037, 32)
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in trimmed.model.parameters()) == \
        (30522 - 2037) * 32
    assert tokenization_change(original, trimmed.tokenizer, TEXTS).changed_tokens == 0


def test_no_word_that_had_pieces_becomes_unk(tokenizer_path, trimmed):
    original = load_tokenizer_json(tokenizer_path)
    words = [t for t in original["model"]["vocab"] if not t.startswith("##") and not t.startswith("[")]
    words += ["photosynthesis", "unbelievably", "naïve", "Zürich", "東京", "ΑΒΓ", "Straße", "🚀", "x" * 101]
    before, after = tokenizer(original), tokenizer(trimmed.tokenizer)
    gained = [w for w, old, new in zip(words, before.encode_batch(words, add_special_tokens=False),
                                       after.encode_batch(words, add_special_tokens=False))
              if "[UNK]" in new.tokens and "[UNK]" not in old.tokens]
    assert len(words) > 20000 and gained == []
    change = tokenization_change(original, trimmed.tokenizer, words)
    assert change.unk_after == change.unk_before == 2  # the emoji and the 101-character word, both times
    assert change.changed_texts > 15000  # most words now split into pieces: nothing else is lost


def test_alphabet_mode_keeps_every_text_in_the_alphabet_whole(tokenizer_path):
    original = load_tokenizer_json(tokenizer_path)
    out = trim_vocabulary(tiny_bert(), tokenizer_path, TEXTS, alphabet=True)
    kept = set(out.tokenizer["model"]["vocab"])
    # what goes: pieces of other scripts and the [unusedN] slots BERT's pre-tokenizer splits at "[",
    # nothing spelled in ASCII (CLINC150's texts also keep "’" and "##’": 2,893 go there)
    gone = set(original["model"]["vocab"]) - kept
    assert len(gone) == 2895 and {"[unused0]", "東", "##ος", "km²"} <= gone
    assert {t for t in gone if t.isascii() and not t.startswith("[unused")} == {"..."}  # split at each "."
    assert {"weather", "##ing", "[PAD]", "[UNK]", "[CLS]"} <= kept
    # any ASCII text, seen or not, tokenizes as before; other scripts now read as [UNK]
    english = ["photosynthesis is unbelievably cheap", "Qu'est-ce que c'est?", "x" * 101, "café au lait"]
    assert tokenization_change(original, out.tokenizer, TEXTS + english).changed_tokens == 0
    encoding = tokenizer(out.tokenizer).encode("東京 flights", add_special_tokens=False)
    assert encoding.tokens == ["[UNK]", "[UNK]", "flights"]  # BERT's normalizer splits CJK characters
    # the alphabet is the texts' normalized characters (accents stripped, lowercased) plus ASCII
    assert domain_alphabet(tokenizer_path, ["Zürich ’"]) >= {"z", "u", "’"} and "ü" not in \
        domain_alphabet(tokenizer_path, ["Zürich"])


def test_shared_rows_keep_every_tokenization_and_the_domain_rows(tokenizer_path, trimmed, tmp_path):
    from transformers import AutoTokenizer

    original = load_tokenizer_json(tokenizer_path)
    model = tiny_bert()
    shared = trim_vocabulary(model, tokenizer_path, TEXTS, shared_rows=16)
    assert shared.kept == trimmed.kept and shared.shared == 16
    table = shared.model.get_input_embeddings().weight
    assert table.shape == (2037 + 16, 32) and shared.model.config.vocab_size == 2037 + 16
    vocab = shared.tokenizer["model"]["vocab"]
    assert vocab.keys() == original["model"]["vocab"].keys()  # no piece goes
    assert set(vocab.values()) == set(range(2037 + 16))
    # any text, in the domain or not, splits into the same pieces as before: nothing is spelled out
    words = ["photosynthesis", "unbelievably", "naïve", "Zürich", "東京", "🚀"] + TEXTS
    assert tokenization_change(original, shared.tokenizer, words).changed_tokens == 0
    # the domain's pieces keep their own rows (and logits); an unseen piece reads as its cluster's mean
    before, after = tokenizer(original, 32), tokenizer(shared.tokenizer, 32)
    for text, old, new in zip(TEXTS, before.encode_batch(TEXTS), after.encode_batch(TEXTS)):
        assert torch.equal(run(shared.model, new.ids), run(model, old.ids)), text
    old_table = model.get_input_embeddings().weight
    members = [i for t, i in original["model"]["vocab"].items() if vocab[t] == 2037 + 3]
    assert members and torch.allclose(table[2037 + 3], old_table[members].mean(0), atol=1e-5)
    # the ids run as before through the runtime's tokenizers and transformers; vocab.txt cannot say
    # several pieces share an id, so it goes and tokenizer.json alone speaks for the folder
    folder = tmp_path / "shared"
    folder.mkdir()
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(tokenizer_path.parent / name, folder / name)
    save_tokenizer_json(shared.tokenizer, folder)
    assert not (folder / "vocab.txt").exists()
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert [hf(t)["input_ids"] for t in words] == [e.ids for e in tokenizer(shared.tokenizer).encode_batch(words)]
    # deterministic: the same clusters every time
    assert trim_vocabulary(model, tokenizer_path, TEXTS, shared_rows=16).tokenizer == shared.tokenizer
    with pytest.raises(TrimError, match="shared_rows must be >= 0"):
        trim_vocabulary(model, tokenizer_path, TEXTS, shared_rows=-1)


def test_kmeans_finds_separated_clusters():
    from edge_sdk.trim.cluster import kmeans

    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rows = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centres])
    found, assignment = kmeans(rows, 3)
    assert len(set(assignment[:50].tolist())) == len(set(assignment[50:100].tolist())) == 1
    assert len(set(assignment.tolist())) == 3
    for c in centres:
        assert torch.cdist(c[None], found).min() < 0.1
    assert kmeans(rows[:2], 5)[0].shape == (2, 2)  # k capped at the rows there are


def test_tokenization_change_counts_the_tokens_of_changed_words(tokenizer_path):
    spec = trim_vocabulary(tiny_bert(), tokenizer_path, ["the cat sat"]).tokenizer
    change = tokenization_change(tokenizer_path, spec, ["the cats sat", "the cat", "the cat sat"])
    # 'cats' was one piece and is now 'cat', '##s': 1 of 3 + 2 + 3 tokens, 1 of 3 texts.
    assert (change.tokens, change.changed_tokens, change.texts, change.changed_texts) == (8, 1, 3, 1)
    assert change.token_share == pytest.approx(1 / 8) and change.text_share == pytest.approx(1 / 3)


def test_special_ids_are_rewritten_and_the_file_loads_everywhere(tokenizer_path, trimmed, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    spec = trimmed.tokenizer
    vocab = spec["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(len(vocab)))  # dense ids
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert {t["content"]: t["id"] for t in spec["added_tokens"]} == {t: vocab[t] for t in
                                                                   ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    assert spec["post_processor"]["special_tokens"]["[CLS]"]["ids"] == [2]
    assert spec["post_processor"]["special_tokens"]["[SEP]"]["ids"] == [3]
    assert spec["padding"]["pad_id"] == 0 and trimmed.model.config.pad_token_id == 0
    folder = tmp_path / "trimmed"
    folder.mkdir()
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(tokenizer_path.parent / name, folder / name)
    save_tokenizer_json(spec, folder)
    assert (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() == list(vocab)
    direct = Tokenizer.from_file(str(folder / "tokenizer.json"))
    direct.no_padding()
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert (hf.cls_token_id, hf.sep_token_id, hf.pad_token_id, len(hf)) == (2, 3, 0, 2037)
    assert all(hf(t)["input_ids"] == direct.encode(t).ids for t in TEXTS[:6])
    trimmed.model.save_pretrained(folder)  # standard shapes: plain from_pretrained reloads it
    from transformers import AutoModelForSequenceClassification

    again = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager").eval()
    ids = direct.encode(TEXTS[0]).ids
    # Same weights; from_pretrained's model differs from the constructed one by float noise (1e-7).
    torch.testing.assert_close(run(again, ids), run(trimmed.model, ids), rtol=0, atol=1e-6)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("shared_rows", [0, 16])  # 16: pieces sharing ids, a Map from token to id reads them
def test_the_mobile_demo_js_tokenizer_reads_the_trimmed_file_unchanged(tokenizer_path, trimmed, tmp_path, shared_rows):
    if shared_rows:
        trimmed = trim_vocabulary(tiny_bert(), tokenizer_path, TEXTS, shared_rows=shared_rows)
    texts = TEXTS + ["photosynthesis in Zürich", "unbelievably cheap flights"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(trimmed.tokenizer), encoding="utf-8")
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    script = tmp_path / "encode.mjs"
    module = (REPO / "android_demo" / "www" / "js" / "tokenizer.js").as_uri()
    script.write_text(
        f"import {{ readFileSync }} from 'node:fs';\nimport {{ BertWordPieceTokenizer }} from '{module}';\n"
        "const dir = process.argv[2];\n"
        "const tok = new BertWordPieceTokenizer(JSON.parse(readFileSync(dir + '/tokenizer.json', 'utf8')), "
        "{ maxLength: 512 });\n"
        "const texts = JSON.parse(readFileSync(dir + '/texts.json', 'utf8'));\n"
        "console.log(JSON.stringify(texts.map((t) => tok.encode(t))));\n", encoding="utf-8")
    out = subprocess.run(["node", str(script), str(tmp_path)], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [e.ids for e in tokenizer(trimmed.tokenizer, 512).encode_batch(texts)]


def roberta_layout(spec: dict) -> dict:
    """MPNet's layout on the MiniLM vocabulary: RobertaProcessing names [CLS]/[SEP] by (token, id)."""
    spec = copy.deepcopy(spec)
    vocab = spec["model"]["vocab"]
    spec["post_processor"] = {"type": "RobertaProcessing", "sep": ["[SEP]", vocab["[SEP]"]],
                              "cls": ["[CLS]", vocab["[CLS]"]], "trim_offsets": True, "add_prefix_space": False}
    return spec


@pytest.mark.parametrize("source", ["roberta-layout", "mpnet"])
def test_mpnet_style_tokenizers_and_models_trim_the_same_way(tokenizer_path, source):
    from transformers import MPNetConfig, MPNetForSequenceClassification

    if source == "mpnet":
        if not (MPNET / "tokenizer.json").is_file():
            pytest.skip(f"{MPNET} is not on this machine")
        spec = load_tokenizer_json(MPNET)
    else:
        spec = roberta_layout(load_tokenizer_json(tokenizer_path))
    size = max(spec["model"]["vocab"].values()) + 1
    pad = spec["padding"]["pad_id"]
    config = MPNetConfig(vocab_size=size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=520, num_labels=3, pad_token_id=pad)
    torch.manual_seed(0)
    model = MPNetForSequenceClassification(config).eval()
    out = trim_vocabulary(model, spec, TEXTS)
    vocab = out.tokenizer["model"]["vocab"]
    processor = out.tokenizer["post_processor"]
    assert processor["cls"][1] == vocab[processor["cls"][0]] and processor["sep"][1] == vocab[processor["sep"][0]]
    assert out.tokenizer["padding"]["pad_id"] == pad == out.model.config.pad_token_id  # MPNet's positions need it
    before, after = tokenizer(spec, 64), tokenizer(out.tokenizer, 64)
    for old, new in zip(before.encode_batch(TEXTS), after.encode_batch(TEXTS)):
        assert new.tokens == old.tokens
        ids = torch.tensor([old.ids]), torch.tensor([new.ids])
        with torch.no_grad():
            assert torch.equal(out.model(input_ids=ids[1]).logits, model(input_ids=ids[0]).logits)


def test_bad_requests_get_clear_errors(tokenizer_path, tmp_path):
    from edge_sdk.prune import factorize_embeddings

    with pytest.raises(TrimError, match="no domain texts"):
        trim_vocabulary(tiny_bert(), tokenizer_path, [])
    with pytest.raises(TrimError, match="no tokenizer at .*tokenizer.json"):
        trim_vocabulary(tiny_bert(), tmp_path, TEXTS)
    bpe = {**load_tokenizer_json(tokenizer_path), "model": {"type": "BPE", "vocab": {}, "merges": []}}
    with pytest.raises(TrimError, match="BPE is not WordPiece"):
        vocabulary_to_keep(bpe, TEXTS)
    with pytest.raises(TrimError, match="no ids to keep"):
        trim_embeddings(tiny_bert(), [])
    factorized, _ = factorize_embeddings(tiny_bert(), 8)
    with pytest.raises(TrimError, match="before factorizing"):
        trim_vocabulary(factorized, tokenizer_path, TEXTS)
    from transformers import BertConfig, BertForSequenceClassification

    small = BertForSequenceClassification(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=64))
    with pytest.raises(TrimError, match="120 rows: this tokenizer is not the model's"):
        trim_vocabulary(small, tokenizer_path, TEXTS)
