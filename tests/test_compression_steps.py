"""Pruning, sparsity, low rank and trimming as recipe steps of `edge-sdk build`, end to end through
the CLI on the tiny model of test_build (its teacher comes from the shared step cache)."""

from __future__ import annotations

import json

import onnx
import pytest
from conftest import REPO
from test_build import built, edge_sdk, tiny_data, tiny_model_dir  # noqa: F401  (fixtures)

from edge_runtime import Manifest, Pipeline

TARGET = "x86-avx512-vnni"


def build_with(tmp_path, built, steps: str, name: str = "tiny", **top):  # noqa: F811
    recipe = tmp_path / f"{name}.toml"
    settings = "".join(f"{key} = {value}\n" for key, value in top.items())  # top-level keys before the tables
    recipe.write_text(f'name = "{name}"\nwhy = "test"\n{settings}[teacher]\nlearning_rate = 1e-3\nepochs = 1\n'
                      f"min_steps = 200\npatience = 2\n{steps}")
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", TARGET, "--model", built["model"], "--data", built["data"],
                      "--recipe", recipe, "--out", out, "--cache-dir", built["cache"], "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    return out / TARGET, result


def matmul_widths(path) -> list[tuple[int, ...]]:
    model = onnx.load(str(path))
    return sorted({tuple(d.dims) for d in model.graph.initializer if len(d.dims) == 2})


def test_prune_step_ships_a_physically_smaller_graph(tmp_path, built):  # noqa: F811
    bundle, result = build_with(tmp_path, built, '[[steps]]\nstep = "prune"\nkeep_heads = 0.5\nkeep_neurons = 0.5\n'
                                                 "drop_layers = [0]\nepochs = 1\nimportance_texts = 64\n")
    assert "step 1 (prune): keep 50% of heads and 50% of FFN neurons" in result.stderr
    manifest = Manifest.read(bundle)
    (step,) = [e for e in manifest.source["lineage"] if e["step"] == "prune"]
    assert step["plan"]["layers"] == [0] and step["parameters"]["after"] < step["parameters"]["before"]
    # recovery ended with the bias correction on the validation texts (distill/bias.py)
    correction = step["bias_correction"]
    assert correction["texts"] > 0 and 0 <= correction["agreement_after"] <= 1
    assert set(step["plan"]["heads"]) == {"0", "1"}  # one of the two heads removed in each layer
    # the tiny BERT: hidden 32, 2 heads of 16, FFN 64 -> one layer, one head of 16, FFN 32 (ONNX
    # stores MatMul weights as [in, out]; a fused graph may concatenate q, k, v)
    full = matmul_widths(built["out"] / TARGET / "model.int8.onnx")
    pruned = matmul_widths(bundle / "model.int8.onnx")
    assert (32, 64) in full and (64, 32) in full and (16, 32) not in full
    assert (32, 64) not in pruned and (64, 32) not in pruned and (16, 32) in pruned
    pipe = Pipeline.load(bundle)
    assert pipe("wake me up at 7")[0]["label"] in manifest.labels


def test_trim_step_rewrites_the_tokenizer(tmp_path, built):  # noqa: F811
    bundle, _ = build_with(tmp_path, built, '[[steps]]\nstep = "trim"\nkeep_frequent = 2500\n')
    manifest = Manifest.read(bundle)
    (step,) = [e for e in manifest.source["lineage"] if e["step"] == "trim"]
    # the data's pieces, every single character (ids 999-1995 of this vocabulary) and the 2500 first ids
    assert step["vocabulary"]["before"] == 30522 and 2500 + 975 <= step["vocabulary"]["after"] < 4000  # + 975 "##x"
    vocab_before = json.loads((built["model"] / "tokenizer.json").read_text())["model"]["vocab"]
    kept = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]
    assert {t for t, i in vocab_before.items() if i < 2500} <= set(kept)  # "the", "of", ... stay whole
    assert step["test_tokenization_change"]["unk_after"] == step["test_tokenization_change"]["unk_before"]
    vocab = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(vocab) == step["vocabulary"]["after"] and max(vocab.values()) == len(vocab) - 1
    ids = Pipeline.load(bundle).encoder.ids(["what's my balance"])[0]
    assert max(ids) < len(vocab) and "[UNK]" not in [k for k, v in vocab.items() if v in ids[1:-1]]
    size = bundle.joinpath("model.int8.onnx").stat().st_size
    assert size < (built["out"] / TARGET / "model.int8.onnx").stat().st_size


def test_trim_step_with_shared_rows_changes_no_tokenization(tmp_path, built):  # noqa: F811
    bundle, result = build_with(tmp_path, built, '[[steps]]\nstep = "trim"\nshared_rows = 8\n')
    assert "the other pieces sharing 8 rows" in " ".join(result.stderr.split())  # rich wraps lines
    (step,) = [e for e in Manifest.read(bundle).source["lineage"] if e["step"] == "trim"]
    assert step["vocabulary"]["shared"] == 8 and step["vocabulary"]["after"] < 30522 / 4
    assert step["test_tokenization_change"]["changed_tokens"] == 0
    vocab = json.loads((bundle / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(vocab) == 30522 and len(set(vocab.values())) == step["vocabulary"]["after"]
    # the runtime feeds the shared ids; the table in the ONNX file has the trimmed row count
    assert (step["vocabulary"]["after"], 32) in matmul_widths(bundle / "model.int8.onnx") or \
        (step["vocabulary"]["after"], 32) in matmul_widths(bundle / "model.onnx")
    pipe = Pipeline.load(bundle)
    assert max(pipe.encoder.ids(["photosynthesis in Zürich"])[0]) < step["vocabulary"]["after"]
    assert pipe("photosynthesis in Zürich")[0]["label"] in Manifest.read(bundle).labels


def test_recipe_tiny_prunes_trims_and_ships_4_bit_weights(tmp_path, built):  # noqa: F811
    shipped = (REPO / "edge_sdk" / "recipes" / "tiny.toml").read_text(encoding="utf-8")
    steps = shipped[shipped.index("[[steps]]"):].replace("epochs = 3", "epochs = 1")  # its steps, 1 recovery epoch
    bundle, result = build_with(tmp_path, built, steps)
    lineage = Manifest.read(bundle).source["lineage"]
    assert [e["step"] for e in lineage][-2:] == ["prune", "trim"]
    assert lineage[-1]["vocabulary"]["shared"] == 256 and lineage[-1]["test_tokenization_change"]["changed_tokens"] == 0
    files = sorted(f.name for f in bundle.glob("*.onnx"))
    assert files == ["model.int4.onnx"]
    model = onnx.load(str(bundle / "model.int4.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 1 and "GatherBlockQuantized" in ops  # only the classifier stays float
    assert ops.count("MatMulNBits") == 2 * 6 + 1  # 2 layers x (q, k, v, out, up, down) and the pooler
    assert Pipeline.load(bundle)("photosynthesis in Zürich")[0]["label"] in Manifest.read(bundle).labels


@pytest.mark.parametrize("steps, key", [
    ('[[steps]]\nstep = "sparsify"\nsparsity = 0.5\nepochs = 1\n', "sparsity"),
    ('[[steps]]\nstep = "lowrank"\nembedding_rank = 8\nepochs = 1\n', "factorized"),
])
def test_sparsify_and_lowrank_steps(tmp_path, built, steps, key):  # noqa: F811
    bundle, _ = build_with(tmp_path, built, steps)
    (step,) = [e for e in Manifest.read(bundle).source["lineage"] if e["step"] in ("sparsify", "lowrank")]
    assert key in step
    if key == "sparsity":
        assert step["sparsity"] >= 0.45  # zeros in the encoder's Linear weights, same shapes
    else:
        assert step["factorized"][0]["rank"] == 8 and step["parameters"]["after"] < step["parameters"]["before"]
        assert (30522, 8) in matmul_widths(bundle / "model.int8.onnx")  # the table, now [V, rank]
        assert (30522, 32) not in matmul_widths(bundle / "model.int8.onnx")


def test_oos_threshold_fitted_on_validation_goes_into_the_manifest(tmp_path, built):  # noqa: F811
    bundle, result = build_with(tmp_path, built, "", oos_threshold='"fit"')
    manifest = Manifest.read(bundle)
    assert manifest.oos_label == "oos" and 0.0 <= manifest.oos_threshold <= 1.0
    assert "out-of-scope threshold for model.int8.onnx on the validation split" in result.stderr
    assert manifest.recipe["oos_threshold"] == "fit"


def test_alphabet_trim_step_keeps_every_test_query_whole(tmp_path, built):  # noqa: F811
    bundle, _ = build_with(tmp_path, built, '[[steps]]\nstep = "trim"\nalphabet = true\n')
    (step,) = [e for e in Manifest.read(bundle).source["lineage"] if e["step"] == "trim"]
    assert step["vocabulary"] == {"before": 30522, "after": 30522 - 2895, "shared": 0}  # as test_trim's alphabet test
    assert step["test_tokenization_change"]["changed_tokens"] == 0
    text = (bundle / "tokenizer.json").read_text(encoding="utf-8")
    assert "\n" not in text and json.loads(text)["model"]["vocab"]["[CLS]"] == 2  # compact; ids renumbered
