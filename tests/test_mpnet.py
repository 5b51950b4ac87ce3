"""A base-size-style teacher of another family (a tiny random MPNet with its own tokenizer: <s> </s>
around the text, <pad> = 1, no token_type_ids) through the whole pipeline: `edge-sdk build`
fine-tunes and exports it, the runtime pads with its id, and `edge-sdk distill --student` teaches a
tiny BERT with the MiniLM tokenizer from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_build import BIN, edge_sdk, tiny_data  # noqa: F401  (fixtures)
from test_distill import TOPICS, write_data

from edge_runtime import Manifest, Pipeline

SPECIALS = ("<s>", "<pad>", "</s>", "[UNK]")


def mpnet_tokenizer(minilm_dir: Path, out: Path) -> None:
    """MiniLM's WordPiece vocabulary behind MPNet's special tokens and post-processor."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = json.loads((minilm_dir / "tokenizer.json").read_text())["model"]["vocab"]
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for token in sorted(words, key=words.get):
        if not (token.startswith("[") and token.endswith("]")):
            vocab[token] = len(vocab)
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer.enable_padding(pad_id=1, pad_token="<pad>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="[UNK]",
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(str(out))


def tiny_mpnet(out: Path, minilm_dir: Path, labels=None) -> Path:
    import torch
    from transformers import MPNetConfig, MPNetForSequenceClassification

    mpnet_tokenizer(minilm_dir, out)
    size = len(json.loads((out / "tokenizer.json").read_text())["model"]["vocab"])
    config = MPNetConfig(vocab_size=size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                         eos_token_id=2, num_labels=len(labels) if labels else 2,
                         **({"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}}
                            if labels else {}))
    torch.manual_seed(0)
    model = MPNetForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.out_proj.weight.mul_(40.0)  # a random head with well-separated logits
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def mpnet_dir(tmp_path_factory, minilm_dir) -> Path:
    return tiny_mpnet(tmp_path_factory.mktemp("mpnet") / "tiny-mpnet", minilm_dir)


def test_mpnet_builds_exports_and_runs_with_its_own_padding(tmp_path, mpnet_dir, tiny_data):  # noqa: F811
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", "x86-avx512-vnni", "--target", "arm64", "--model", mpnet_dir,
                      "--data", tiny_data, "--out", out, "--cache-dir", tmp_path / "cache", "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    for target in ("x86-avx512-vnni", "arm64"):
        manifest = Manifest.read(out / target)
        assert all(m.input_names == ("input_ids", "attention_mask") for m in manifest.models)
        pipe = Pipeline.load(out / target)
        assert pipe.encoder.pad_id == 1  # <pad>, not the ordinary "[PAD]"-like entries of the vocabulary
        ids = pipe.encoder.ids(["wake me up at 7"])[0]
        assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
        # padding with 1 inside a batch changes nothing: the same logits alone and beside a long text
        alone = pipe.logits(["wake me up at 7"])[0]
        together = pipe.logits(["wake me up at 7", "please " * 20], batch_size=2)[0]
        assert abs(alone - together).max() < (1e-4 if target == "x86-avx512-vnni" else 0.3)
    verify = edge_sdk("verify", out / "arm64", timeout=300)
    assert verify.returncode == 0 and verify.stdout.count(": OK") == 2, verify.stdout + verify.stderr


def test_a_pretrained_student_with_its_own_tokenizer(tmp_path, minilm_dir):
    """MPNet teacher (its tokens) -> tiny BERT student (MiniLM's tokens), then a bundle of the student."""
    from conftest import tiny_bert

    data = write_data(tmp_path / "data")
    teacher = tiny_mpnet(tmp_path / "teacher", minilm_dir, labels=sorted(TOPICS))
    student = tmp_path / "student-init"
    tiny_bert(num_labels=2).save_pretrained(student)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, student / name)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"alpha": 0.5, "temperature": 2.0, "learning_rate": 1e-3, "epochs": 1}))
    out = tmp_path / "distill"
    result = edge_sdk("distill", "--teacher", teacher, "--data", data, "--student", student, "--params", params,
                      "--max-length", "32", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "student" / "distillation.json").read_text())
    assert record["config"]["student"] == str(student) and record["config"]["layers"] is None
    made = json.loads((out / "student" / "config.json").read_text())
    assert made["model_type"] == "bert" and made["id2label"] == {str(i): x for i, x in enumerate(sorted(TOPICS))}
    saved = json.loads((out / "student" / "tokenizer.json").read_text())  # the student's tokenizer, not the teacher's
    assert "[CLS]" in saved["model"]["vocab"] and "<s>" not in saved["model"]["vocab"]
    lineage = json.loads((out / "student" / "lineage.json").read_text())
    assert lineage[-1]["step"] == "distill" and lineage[-1]["config"]["student"] == str(student)
    bundle = tmp_path / "bundle"
    built = edge_sdk("build", "--target", "x86-avx512-vnni", "--model", out / "student", "--data", data, "--out",
                     bundle, "--cache-dir", tmp_path / "cache", "--latency-queries", "10", "--max-accuracy-drop", "100")
    assert built.returncode == 0, built.stderr[-3000:]
    manifest = Manifest.read(bundle / "x86-avx512-vnni")
    assert manifest.models[0].input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert manifest.source["lineage"][-1]["step"] == "distill"
    # a pretrained student and teacher layers at once is a usage error, not a traceback
    both = edge_sdk("distill", "--teacher", teacher, "--data", data, "--student", student, "--layers", "0",
                    "--out", tmp_path / "x")
    assert both.returncode == 2 and "give one of --layers" in both.stderr and "Traceback" not in both.stderr
