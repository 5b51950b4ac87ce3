"""FLOPs counted from a config and from ONNX weight shapes agree, also after quantization and fusion."""

from __future__ import annotations

import pytest


def test_hand_count_for_one_layer():
    from edge_sdk.benchmark.flops import encoder_flops

    L, H, A, I, C = 10, 8, 8, 16, 3
    expected = (4 * 2 * L * H * A) + (2 * 2 * L * L * A) + (2 * 2 * L * H * I) + 2 * H * H + 2 * H * C
    assert encoder_flops(L, [{"hidden": H, "attention": A, "intermediate": I}], (H, H), (H, C)) == expected


def test_minilm_l6_at_16_tokens_is_about_a_third_of_a_gigaflop():
    from edge_sdk.benchmark.flops import flops_from_config

    config = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6, "intermediate_size": 1536,
              "num_labels": 151}
    flops = flops_from_config(config, 16)
    # 6 layers × 2·16·(4·384² + 2·384·1536) ≈ 0.34 GFLOP, attention scores add ~1%.
    assert 0.33e9 < flops < 0.35e9


def test_onnx_count_matches_config(tiny_model, tiny_onnx, tiny_int8_onnx, tmp_path):
    from edge_sdk.benchmark.flops import flops_from_config, flops_from_onnx, onnx_layers

    for length in (1, 7, 32):
        want = flops_from_config(tiny_model.config, length)
        assert flops_from_onnx(tiny_onnx, length) == want
        assert flops_from_onnx(tiny_int8_onnx, length) == want
    shapes = onnx_layers(tiny_onnx)
    assert len(shapes["layers"]) == 2 and shapes["classifier"] == (32, 5) and shapes["pooler"] == (32, 32)


def test_fused_graph_counts_the_same(tiny_model, tiny_onnx, tmp_path):
    from edge_sdk.benchmark.flops import flops_from_config, flops_from_onnx
    from edge_sdk.optimize.fuse import fuse_transformer

    fused = tmp_path / "fused.onnx"
    fuse_transformer(tiny_onnx, fused, num_heads=2, hidden_size=32)
    assert flops_from_onnx(fused, 9) == flops_from_config(tiny_model.config, 9)


def test_not_a_classifier_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edge_sdk.benchmark.flops import onnx_layers

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "relu.onnx")
    with pytest.raises(ValueError, match="not a BERT-style classifier"):
        onnx_layers(tmp_path / "relu.onnx")


def test_pruned_student_with_fewer_heads_and_neurons():
    """A student whose layers differ (structured pruning) is counted layer by layer."""
    from edge_sdk.benchmark.flops import encoder_flops

    full = encoder_flops(12, [{"hidden": 32, "attention": 32, "intermediate": 64}] * 2, (32, 32), (32, 5))
    pruned = encoder_flops(12, [{"hidden": 32, "attention": 16, "intermediate": 64},
                                {"hidden": 32, "attention": 32, "intermediate": 20}], (32, 32), (32, 5))
    assert pruned < full


def test_static_qdq_graph_counts_the_same(tiny_model, tiny_onnx, tmp_path):
    """Static QDQ int8: weights reach MatMul through DequantizeLinear; the count must follow them."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edge_sdk.benchmark.flops import flops_from_config, flops_from_onnx

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            ids = rng.integers(1000, 2000, size=(4, 1, 9))
            self.items = iter([{"input_ids": i, "attention_mask": np.ones_like(i), "token_type_ids": np.zeros_like(i)}
                               for i in ids])

        def get_next(self):
            return next(self.items, None)

    out = tmp_path / "qdq.onnx"
    quantize_static(str(tiny_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    assert flops_from_onnx(out, 9) == flops_from_config(tiny_model.config, 9)
