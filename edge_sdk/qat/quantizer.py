"""Which tensors of an exported Transformer get int8 fake-quantization (QAT) or observers (PTQ).

A PT2E quantizer annotates the torch.export graph; torchao's `prepare_qat_pt2e` / `prepare_pt2e`
insert its fake-quantize modules / observers, `convert_pt2e` turns them into quantize/dequantize
pairs, and both exporters read those pairs: torch.onnx writes QuantizeLinear/DequantizeLinear, and
litert-torch's converter (given the same quantizer in a QuantConfig) folds them into int8 TFLite
kernels. So the scales in the files are the ones the model was trained (or calibrated) with.

The quantizer is litert-torch's `PT2EQuantizer` (the class its converter takes) with our own
annotation rule instead of its op list, which quantizes Linear/add/mul but leaves the attention
products in float and would quantize the attention-mask add:

- every GEMM: Linear (input, per-channel int8 weight, output) and the attention products
  (both operands and the output), so an ONNX export has no MatMul/Gemm without QDQ on its inputs;
- the embedding tables (int8 weights; 30522 x 384 floats are two thirds of MiniLM's bytes) and
  the embeddings' sum, the residual adds, LayerNorm inputs/outputs, GELU, tanh, softmax outputs;
- NOT the arithmetic that involves the attention mask (the add of a large negative number to the
  masked scores): one scale cannot cover both -3.4e38 and the real scores, which then all round to
  0 and attention becomes uniform. Those adds and the softmax input stay float. (ai-edge-quantizer's
  a8w8 recipe quantizes that add too: 13% argmax agreement on CLINC150, export/tflite.py.)

Activations are symmetric int8 (zero point 0), as TensorRT requires; LiteRT takes them as they are.

Two scopes (`SCOPES`): "full" is all of the above, what a full-integer TFLite file needs; "gemm" is
only the inputs of every GEMM (Linear, attention products), what TensorRT's explicit-precision QDQ
needs (every MatMul in int8, no float islands) while LayerNorm, softmax, GELU and the residual adds
run in its own fp16/fp32. The residual stream of BERT-like models has a few outlier dimensions that
one per-tensor int8 scale cannot hold together with the rest (Bondarenko et al. 2021), which is
what "full" has to train around and "gemm" never meets.

`residual_bits = 16` (scope "full") widens that stream instead: the residual adds, the embeddings'
sum and the projections that write into the stream are int16, every GEMM input and weight stays
int8. An experiment (benchmarks/qat_subsample.py): it recovers the accuracy in PyTorch, but LiteRT
2.3 computes zeros for an int8 -> int16 FULLY_CONNECTED, so no bundle uses it (DESIGN.md, QAT).
"""

from __future__ import annotations

import functools

from .config import SCOPES

INT8_MIN, INT8_MAX = -128, 127
INT16_MAX = 2**15 - 1
EPS = 2**-12  # smallest scale: keeps an all-zero tensor (a padding-only feature) from dividing by 0


@functools.cache
def _ops():
    import torch

    aten = torch.ops.aten
    return {
        "linear": {aten.linear.default},
        "matmul": {aten.matmul.default, aten.bmm.default},
        "embedding": {aten.embedding.default},
        "add": {aten.add.Tensor},
        "dropout": {aten.dropout.default},
        # outputs quantized; their inputs already are (a GEMM's or an add's output)
        "activation": {aten.layer_norm.default, aten.gelu.default, aten.tanh.default, aten.softmax.int,
                       aten._softmax.default},
    }


def _specs(qat: bool):
    """(activation, weight, residual) QuantizationSpecs: int8 symmetric per tensor / per output channel,
    and int16 symmetric per tensor for the residual stream where it is asked for."""
    import torch
    from torchao.quantization.pt2e.fake_quantize import FusedMovingAvgObsFakeQuantize
    from torchao.quantization.pt2e.observer import (
        HistogramObserver,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
        PerChannelMinMaxObserver,
    )
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    if qat:  # ranges follow the training batches (moving average); gradients pass straight through
        act = FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAverageMinMaxObserver, eps=EPS)
        weight = FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, eps=EPS)
    else:  # post-training: histogram ranges (clip outliers) over the calibration texts
        act = HistogramObserver.with_args(eps=EPS)
        weight = PerChannelMinMaxObserver.with_args(eps=EPS)
    activation = QuantizationSpec(dtype=torch.int8, quant_min=INT8_MIN, quant_max=INT8_MAX,
                                  qscheme=torch.per_tensor_symmetric, observer_or_fake_quant_ctr=act)
    weights = QuantizationSpec(dtype=torch.int8, quant_min=-INT8_MAX, quant_max=INT8_MAX,
                               qscheme=torch.per_channel_symmetric, ch_axis=0, observer_or_fake_quant_ctr=weight)
    residual = QuantizationSpec(dtype=torch.int16, quant_min=-INT16_MAX, quant_max=INT16_MAX,
                                qscheme=torch.per_tensor_symmetric, observer_or_fake_quant_ctr=act)
    return activation, weights, residual


def _tensor_flow(starts) -> set:
    """Every node computed from any of `starts` through tensor values (shape arithmetic is not
    followed: the mask is built from input_ids' shape, which does not make it an activation)."""
    import torch

    seen, todo = set(), list(starts)
    while todo:
        node = todo.pop()
        if node in seen or not isinstance(node.meta.get("val"), torch.Tensor):
            continue
        seen.add(node)
        todo.extend(node.users)
    return seen


def annotate(model, qat: bool, scope: str = "full", residual_bits: int = 8):
    """Mark the tensors to quantize on the torch.export graph `model` (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown quantization scope {scope!r}; choose from {', '.join(SCOPES)}")
    if residual_bits not in (8, 16):
        raise ValueError(f"residual_bits must be 8 or 16, got {residual_bits}")
    gemm_only = scope == "gemm"
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    ops = _ops()
    act, weight, act16 = _specs(qat)
    residual = act16 if residual_bits == 16 else act  # the residual stream's spec
    nodes = list(model.graph.nodes)
    # Activations: what the embeddings feed. An add with an operand outside this set is the mask add.
    activations = _tensor_flow([n for n in nodes if n.op == "call_function" and n.target in ops["embedding"]])

    def is_float(node) -> bool:
        value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
        return isinstance(value, torch.Tensor) and value.is_floating_point()

    def quantized(node) -> bool:  # its output is already marked for int8
        annotation = node.meta.get("quantization_annotation") if isinstance(node, torch.fx.Node) else None
        return annotation is not None and annotation.output_qspec is not None

    def mark(node, inputs: dict, output: bool = True, output_spec=act) -> None:
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={n: spec for n, spec in inputs.items() if is_float(n)},
            output_qspec=output_spec if output and is_float(node) else None, _annotated=True)

    wide = residual_bits == 16

    def residual_add(node) -> bool:  # an add of two activations: the residual stream or the embeddings' sum
        return node.target in ops["add"] and all(a in activations for a in node.args[:2])

    def readers(node) -> list:  # the nodes that read `node`'s value, through dropout (an identity at inference)
        return [r for u in node.users for r in (readers(u) if u.target in ops["dropout"] else [u])]

    def feeds_residual(node) -> bool:
        return bool(node.users) and all(residual_add(r) for r in readers(node))

    for node in nodes:
        if node.op != "call_function" or "quantization_annotation" in node.meta:
            continue
        target, args = node.target, node.args
        if target in ops["linear"]:
            mark(node, {args[0]: act, args[1]: weight}, output=not gemm_only,
                 output_spec=residual if feeds_residual(node) else act)
        elif target in ops["matmul"]:
            mark(node, {args[0]: act, args[1]: act}, output=not gemm_only)
        elif gemm_only:
            continue
        elif target in ops["embedding"]:
            mark(node, {args[0]: weight})  # aten.embedding(weight, indices)
        elif residual_add(node):
            mark(node, {args[0]: residual, args[1]: residual}, output_spec=residual)
        elif target in ops["activation"]:
            # softmax of the masked scores: output int8, input float (its producer is not quantized).
            # With a 16-bit residual stream, LayerNorm reads the add at 16 bits and its float output is
            # quantized by each reader at its own width (8 for a Linear, 16 for the next add): a
            # requantization from 8 to 16 bits is what LiteRT's converter cannot fold.
            after_add = quantized(args[0]) and residual_add(args[0])
            mark(node, {args[0]: residual if after_add else act} if quantized(args[0]) else {},
                 output=not (wide and after_add))
    return model


def transformer_quantizer(qat: bool, scope: str = "full", residual_bits: int = 8):
    """litert-torch's PT2EQuantizer with our annotation: the object both prepare_*_pt2e and the
    LiteRT converter's QuantConfig take."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    class TransformerQuantizer(PT2EQuantizer):
        def annotate(self, model):
            return annotate(model, qat, scope, residual_bits)

    # global_config is what the LiteRT converter reads to pick static (not dynamic-range) int8 kernels.
    return TransformerQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=False))
