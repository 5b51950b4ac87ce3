"""Low-rank factorization: shapes, parameter counts, the reported error against the singular values,
exact reconstruction at full rank, save/load and ONNX export, on tiny random BERT and MPNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_prune import ARCHS, FFN, HEAD, HEADS, LAYERS, batch, logits, one_torch_thread, params, tiny  # noqa: F401

from edge_sdk.prune import PruneError, factorize, factorize_embeddings, factorize_ffn, load_pruned, remove_neurons

HIDDEN, VOCAB = HEADS * HEAD, 120


def test_a_linear_layer_at_rank_r_has_the_shapes_and_error_of_its_truncated_svd():
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 20)
    factors, error = factorize(layer, 5)
    assert factors[0].weight.shape == (5, 48) and factors[0].bias is None
    assert factors[1].weight.shape == (20, 5) and torch.equal(factors[1].bias, layer.bias)
    assert sum(p.numel() for p in factors.parameters()) == 5 * (48 + 20) + 20
    s = torch.linalg.svdvals(layer.weight.detach().double())
    assert error == pytest.approx(float((s[5:] ** 2).sum().sqrt() / s.norm()), rel=1e-5)
    full, exact = factorize(layer, 20)
    x = torch.randn(3, 48)
    assert exact < 1e-6
    torch.testing.assert_close(full(x), layer(x), rtol=0, atol=1e-5)
    for rank in (0, 21):
        with pytest.raises(PruneError, match="choose 1..20"):
            factorize(layer, rank)


@pytest.mark.parametrize("arch", ARCHS)
def test_factorized_embeddings_are_exact_at_full_rank_and_smaller_below(arch, tmp_path):
    model = tiny(arch)
    full, info = factorize_embeddings(model, HIDDEN)
    assert info.relative_error < 1e-6 and info.params_before == VOCAB * HIDDEN
    torch.testing.assert_close(logits(full), logits(model), rtol=0, atol=1e-5)
    small, info = factorize_embeddings(model, 8)
    table = small.get_input_embeddings()
    assert table[0].weight.shape == (VOCAB, 8) and table[1].weight.shape == (HIDDEN, 8)
    assert (info.params_before, info.params_after) == (VOCAB * HIDDEN, 8 * (VOCAB + HIDDEN))
    assert params(model) - params(small) == VOCAB * HIDDEN - 8 * (VOCAB + HIDDEN)
    assert 0 < info.relative_error < 1 and table[0].padding_idx == model.get_input_embeddings().padding_idx
    small.save_pretrained(tmp_path)
    assert torch.equal(logits(load_pruned(tmp_path, attn_implementation="eager")), logits(small))
    with pytest.raises(PruneError, match="already factorized"):
        factorize_embeddings(small, 4)


def test_factorized_ffn_counts_reconstructs_and_reloads(tmp_path):
    model = tiny("bert")
    full, infos = factorize_ffn(model, HIDDEN)
    assert [f.module for f in infos[:2]] == ["bert.encoder.layer.0.intermediate.dense",
                                             "bert.encoder.layer.0.output.dense"]
    assert max(f.relative_error for f in infos) < 1e-6
    torch.testing.assert_close(logits(full), logits(model), rtol=0, atol=1e-5)
    small, infos = factorize_ffn(model, 4, layers=[1])
    # [64, 32] and [32, 64] at rank 4: 4 * (32 + 64) weights, plus the second factor's bias.
    assert [(f.params_before, f.params_after) for f in infos] == [(HIDDEN * FFN + FFN, 4 * (HIDDEN + FFN) + FFN),
                                                                 (HIDDEN * FFN + HIDDEN, 4 * (HIDDEN + FFN) + HIDDEN)]
    assert params(model) - params(small) == 2 * (HIDDEN * FFN - 4 * (HIDDEN + FFN))
    # Pruned widths first, then factors: both are in the record and reload together.
    both, _ = factorize_ffn(remove_neurons(model, {0: range(16)}), 4, layers=[0])
    record = both.config.edge_sdk_structure
    assert record["intermediate_sizes"] == [48, FFN, FFN] and record["low_rank"] == {
        "bert.encoder.layer.0.intermediate.dense": 4, "bert.encoder.layer.0.output.dense": 4}
    both.save_pretrained(tmp_path)
    assert torch.equal(logits(load_pruned(tmp_path, attn_implementation="eager")), logits(both))
    with pytest.raises(PruneError, match="prune heads and neurons before low-rank"):
        remove_neurons(both, {0: [0]})
    with pytest.raises(PruneError, match="layer 3 does not exist"):
        factorize_ffn(model, 4, layers=[LAYERS])


def test_factorized_model_exports_to_onnx(tmp_path):
    from conftest import tiny_bert

    from edge_sdk.export.onnx import export_onnx, onnx_logits, torch_logits

    model, _ = factorize_embeddings(tiny_bert(), 16)
    model, _ = factorize_ffn(model, 16)
    path = export_onnx(model, tmp_path / "lowrank.onnx")
    feeds = [{"input_ids": batch()["input_ids"].numpy(), "attention_mask": batch()["attention_mask"].numpy(),
              "token_type_ids": np.zeros((4, 9), dtype=np.int64)}]
    assert float(np.abs(onnx_logits(path, feeds) - torch_logits(model, feeds)).max()) < 1e-4
    # 30522 x 32 -> 30522 x 16 + 16 x 32: the table, most of the file, halves.
    assert path.stat().st_size < 0.6 * export_onnx(tiny_bert(), tmp_path / "full.onnx").stat().st_size
