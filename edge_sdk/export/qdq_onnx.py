"""The int8 program (qat/program.py) -> a QDQ ONNX model: QuantizeLinear/DequantizeLinear pairs with
the program's scales, int8 weight initializers, every MatMul/Gemm fed by DequantizeLinear.

torch.onnx's dynamo exporter writes the program's quantize/dequantize ops as QDQ pairs (the
TorchScript exporter cannot read a torch.export program). The weights' quantize ops are folded
into int8 constants first, as `convert_pt2e(fold_quantize=True)` would do: the saved program keeps
them unfolded because litert-torch's converter refuses folded ones ("'stablehlo.uniform_dequantize'
op operand #0 must be ... quantized values, but got 'tensor<30522x32xi8>'").
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.manifest import INPUT_NAMES

from ..errors import ExportValidationError
from .onnx import OUTPUT_NAME

GEMMS = ("MatMul", "Gemm")


def _fold_weight_quantization(module) -> None:
    """Quantize ops whose input is a constant (the weights) become int8 constants, in place."""
    import torch
    from torchao.quantization.pt2e.constant_fold import constant_fold

    decomposed = torch.ops.quantized_decomposed
    targets = {decomposed.quantize_per_tensor.default, decomposed.quantize_per_channel.default}
    constant_fold(module, lambda node: node.op == "call_function" and node.target in targets)


@contextmanager
def _quiet_exporter():
    """The dynamo exporter logs its opset conversion and missing torchvision ops: nothing to act on."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_qdq_onnx(program, out_path: Path, *, opset: int = 17, input_names: tuple[str, ...] = INPUT_NAMES,
                    max_length: int = 512) -> Path:
    """Write `program` (a torch.export ExportedProgram of the classifier with quantize/dequantize ops)
    as a QDQ ONNX model with dynamic batch and sequence axes (up to `max_length`, the model's position
    table), inputs `input_names`, output `logits`."""
    import torch

    from ..qat.program import example_inputs, export_program

    module = program.module()
    _fold_weight_quantization(module)
    folded = export_program(module, input_names, max_length)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_exporter():
        # opset 17 is below what the dynamo exporter writes (18); it converts down, as it says in its log
        onnx_program = torch.onnx.export(folded, (), kwargs=example_inputs(input_names), input_names=list(input_names),
                                         output_names=[OUTPUT_NAME], dynamo=True, opset_version=opset, verbose=False)
    onnx_program.save(str(out_path))
    check_integer_gemms(out_path)
    return out_path


def float_gemms(path: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes with an input that does not come from a DequantizeLinear (a
    float island), through shape-only ops (Reshape, Transpose, ...) that keep int8 values int8."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    passthrough = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"}

    def dequantized(name: str) -> bool:
        node = producer.get(name)
        while node is not None and node.op_type in passthrough:
            node = producer.get(node.input[0])
        return node is not None and node.op_type == "DequantizeLinear"

    return [n.name or n.output[0] for n in graph.node
            if n.op_type in GEMMS and not all(dequantized(i) for i in n.input[:2])]


def integer_summary(path: Path) -> dict:
    """What a QDQ graph holds, for the manifest: op counts and the int8 share of weight bytes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    ops = Counter(n.op_type for n in model.graph.node)
    sizes = Counter()
    for init in model.graph.initializer:
        sizes[onnx.TensorProto.DataType.Name(init.data_type)] += numpy_helper.to_array(init).nbytes
    total = sum(sizes.values()) or 1
    return {"gemms": sum(ops[g] for g in GEMMS), "float_gemms": len(float_gemms(path)),
            "quantize_linear": ops["QuantizeLinear"], "dequantize_linear": ops["DequantizeLinear"],
            "int8_weight_share": round(sizes["INT8"] / total, 4)}


def check_integer_gemms(path: Path) -> None:
    islands = float_gemms(path)
    if islands:
        raise ExportValidationError(f"{Path(path).name}: {len(islands)} MatMul/Gemm node(s) take float inputs "
                                    f"(float islands): {', '.join(islands[:5])}")
