"""FLOPs of one forward pass of a BERT-style sequence classifier, counted from its shapes.

One multiply-add is 2 FLOPs. The embedding lookup is excluded (it is a gather, not arithmetic);
per encoder layer we count the Q, K, V and output projections (4 · 2·L·H·A), the attention scores
and the weighted sum (2 · 2·L²·A), and the FFN (2 · 2·L·H·I); then the pooler (2·H², first token
only) and the classifier (2·H·C). Softmax, LayerNorm, GELU and bias adds are O(L·H) and left out:
they are a few percent at intent-query lengths and cost memory bandwidth, not GEMM time.

Two sources give the same count: the transformers config (for the teacher) and the weight
matrices in an ONNX graph (for bundles, whose students may have fewer layers, heads or neurons
than any config says). Tests check that both agree on the same model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from statistics import median
from typing import Any


def encoder_flops(length: int, layers: list[dict[str, int]], pooler: tuple[int, int] | None,
                  classifier: tuple[int, int]) -> float:
    """layers: per layer {hidden, attention (A = heads · head_dim), intermediate}."""
    L = float(length)
    total = 0.0
    for layer in layers:
        H, A, I = layer["hidden"], layer["attention"], layer["intermediate"]
        total += 3 * 2 * L * H * A  # Q, K, V projections
        total += 2 * L * A * H  # attention output projection
        total += 2 * 2 * L * L * A  # scores Q·Kᵀ and the weighted sum of V, all heads together
        total += 2 * 2 * L * H * I  # FFN up and down
    if pooler is not None:
        total += 2 * pooler[0] * pooler[1]  # the first token only
    total += 2 * classifier[0] * classifier[1]
    return total


def config_layers(config: Any) -> dict:
    """Shapes from a transformers BertConfig-like object or dict, in the form `onnx_layers` gives."""
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    H = int(get("hidden_size"))
    heads = int(get("num_attention_heads"))
    A = int(get("attention_head_size", 0) or 0) * heads or H
    layer = {"hidden": H, "attention": A, "intermediate": int(get("intermediate_size"))}
    id2label = get("id2label") or {}
    labels = int(get("num_labels", 0) or 0) or len(id2label) or 2
    return {"layers": [layer] * int(get("num_hidden_layers")), "pooler": (H, H), "classifier": (H, labels)}


def flops_from_config(config: Any, length: int) -> float:
    return flops_from_shapes(config_layers(config), length)


def flops_from_shapes(shapes: dict, length: int) -> float:
    return encoder_flops(length, shapes["layers"], shapes["pooler"], shapes["classifier"])


# Ops that multiply an activation by a weight matrix, and which input holds the weight.
_WEIGHT_INPUT = {"MatMul": 1, "Gemm": 1, "MatMulInteger": 1, "DynamicQuantizeMatMul": 1, "QLinearMatMul": 3,
                 "FusedMatMul": 1, "MatMulNBits": 1, "Attention": 1, "QAttention": 1}
# Ops a weight may pass through on its way to the matmul (QDQ models, fp16 casts, transposes).
_PASS_THROUGH = {"DequantizeLinear", "Cast", "Transpose", "Identity"}


def _weight_shape(name: str, initializers: dict[str, tuple[int, ...]], producers: dict[str, Any]):
    seen, transposed = 0, False
    while name not in initializers and seen < 4:
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH:
            return None, False
        transposed ^= node.op_type == "Transpose"  # also behind a DequantizeLinear (torch.onnx's QDQ export)
        name = node.input[0]
        seen += 1
        if name in initializers:
            shape = initializers[name]
            return (tuple(reversed(shape)) if transposed else shape), True
    return initializers.get(name), name in initializers


def onnx_layers(path: str | Path) -> dict:
    """The matmul weights of an ONNX classifier in graph order, grouped into encoder layers.

    Returns {"layers": [...], "pooler": (K, N) | None, "classifier": (K, N)} for `encoder_flops`.
    Raises ValueError when the graph does not look like a BERT-style classifier.
    """
    import onnx
    from onnx import numpy_helper  # noqa: F401  (imported for its side effect of loading external data)

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    for node in graph.node:  # Constant nodes may hold weights too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    initializers[node.output[0]] = tuple(int(d) for d in attr.t.dims)
    producers = {out: node for node in graph.node for out in node.output}
    weights: list[tuple[str, tuple[int, int]]] = []
    attention_nodes = 0
    for node in graph.node:
        index = _WEIGHT_INPUT.get(node.op_type)
        if index is None or len(node.input) <= index:
            continue
        shape, _ = _weight_shape(node.input[index], initializers, producers)
        if node.op_type == "MatMulNBits":  # packed [N, blocks, bytes] weight: its shape is in K and N
            sizes = {a.name: a.i for a in node.attribute}
            shape = (sizes["K"], sizes["N"])
        if shape is None or len(shape) != 2:
            if node.op_type == "MatMul" and node.op_type not in ("Attention", "QAttention"):
                continue  # activation × activation (attention scores): counted from the layers
            continue
        k, n = shape
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            k, n = (n, k) if trans_b else (k, n)
        if node.op_type in ("Attention", "QAttention"):
            attention_nodes += 1
            weights.append(("qkv", (k, n)))
        else:
            weights.append(("linear", (k, n)))
    if len(weights) < 2:
        raise ValueError(f"{Path(path).name}: found {len(weights)} weight matrices; not a BERT-style classifier")
    classifier = weights[-1][1]
    pooler = weights[-2][1] if len(weights) >= 2 and weights[-2][1][0] == weights[-2][1][1] else None
    body = weights[: len(weights) - (2 if pooler else 1)]
    layers = []
    i = 0
    while i < len(body):
        kind, (k, n) = body[i]
        if kind == "qkv":  # fused Attention: one [H, 3A] weight, then out, FFN up, FFN down
            group, A = body[i:i + 4], n // 3
            i += 4
        else:  # Q, K, V, out, FFN up, FFN down
            group, A = body[i:i + 6], n
            i += 6
        if len(group) < (4 if kind == "qkv" else 6):
            raise ValueError(f"{Path(path).name}: {len(body)} encoder weight matrices do not group into layers")
        up = group[-2][1]
        layers.append({"hidden": k, "attention": A, "intermediate": up[1]})
    return {"layers": layers, "pooler": pooler, "classifier": classifier}


def flops_from_onnx(path: str | Path, length: int) -> float:
    return flops_from_shapes(onnx_layers(path), length)


def median_length(lengths: Iterable[int]) -> int:
    """Median token count (with [CLS] and [SEP]), rounded to a whole token."""
    values = list(lengths)
    return int(round(median(values))) if values else 0
