"""ONNX quantization per profile with onnxruntime's quantization tools: dynamic int8, static QDQ
int8 with calibration (MinMax, Entropy, Percentile), fp16, and weight-only 4/8-bit blocks
(MatMulNBits, GatherBlockQuantized). QAT's QDQ models come from the trained program instead
(export/qdq_onnx.py)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..profiles import OnnxQuantization
from ..quiet import quiet_root_logger


def quantize(src: Path, dst: Path, spec: OnnxQuantization,
             calibration: list[dict[str, np.ndarray]] | None = None) -> Path:
    """Write `src` quantized as `spec` says to `dst`. calibration (static only): feed batches that
    share one sequence width (the histogram calibrators stack activations across batches)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with quiet_root_logger():
        _quantize(src, dst, spec, calibration)
    return dst


def _quantize(src: Path, dst: Path, spec: OnnxQuantization, calibration) -> None:
    if spec.method == "none":
        shutil.copyfile(src, dst)
    elif spec.method == "dynamic":
        _dynamic(src, dst, spec)
    elif spec.method == "static":
        if not calibration:
            raise ValueError("static quantization needs calibration batches")
        if len({b["input_ids"].shape[1] for b in calibration}) != 1:
            raise ValueError("calibration batches must share one sequence width")
        _static(src, dst, spec, calibration)
    elif spec.method == "fp16":
        _fp16(src, dst, spec)
    elif spec.method == "weight-only":
        _weight_only(src, dst, spec)
    else:  # OnnxQuantization validates its method; this is a programming error
        raise ValueError(f"unknown quantization method {spec.method!r}")


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return QuantType.QInt8 if name == "int8" else QuantType.QUInt8


# Fused contrib ops (com.microsoft Attention, SkipLayerNormalization) defeat ONNX shape inference;
# their outputs are float, which is what the quantizer needs to know.
FLOAT_DEFAULT = {"DefaultTensorType": 1}  # onnx.TensorProto.FLOAT


def excluded_nodes(path: Path, patterns: tuple[str, ...]) -> list[str]:
    """Names of the graph's nodes matching any of `patterns` (regexes), to keep in float."""
    if not patterns:
        return []
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if any(re.search(p, n.name) for p in patterns)]


def _dynamic(src: Path, dst: Path, spec: OnnxQuantization) -> None:
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=_qtype(spec.weight_type), per_channel=spec.per_channel,
                     reduce_range=spec.reduce_range, op_types_to_quantize=list(spec.op_types) or None,
                     nodes_to_exclude=excluded_nodes(src, spec.exclude_nodes), extra_options=FLOAT_DEFAULT)


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over in-memory feeds."""

    def __init__(self, batches: list[dict[str, np.ndarray]], input_names: list[str]):
        self._feeds = [{n: b[n] for n in input_names} for b in batches]
        self.rewind()

    def get_next(self):
        return next(self._iter, None)

    def rewind(self):
        self._iter = iter(self._feeds)


def _static(src: Path, dst: Path, spec: OnnxQuantization, calibration: list[dict[str, np.ndarray]]) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[spec.calibration]
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + constant folding first, as onnxruntime's docs advise for static quantization.
        # (ONNX shape inference only: the symbolic pass gives up on the dynamic attention-mask arithmetic.)
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        names = [i.name for i in onnx.load(str(prepared), load_external_data=False).graph.input]
        quantize_static(
            str(prepared), str(dst), _Batches(calibration, names),
            quant_format=QuantFormat.QDQ,  # explicit Q/DQ pairs: what TensorRT and other EPs consume
            activation_type=_qtype(spec.activation_type), weight_type=_qtype(spec.weight_type),
            per_channel=spec.per_channel, reduce_range=spec.reduce_range, calibrate_method=method,
            op_types_to_quantize=list(spec.op_types) or None,
            nodes_to_exclude=excluded_nodes(prepared, spec.exclude_nodes),
            extra_options={**FLOAT_DEFAULT, "ActivationSymmetric": spec.symmetric_activations,
                           "WeightSymmetric": True, "CalibTensorRangeSymmetric": spec.symmetric_activations},
        )


def _fp16(src: Path, dst: Path, spec: OnnxQuantization) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=spec.keep_io_types)
    onnx.save(model, str(dst))


def _weight_only(src: Path, dst: Path, spec: OnnxQuantization) -> None:
    """MatMul weights -> MatMulNBits (`bits`-bit blocks of `block_size` along the input axis, one scale
    and zero point per block); with `embeddings`, the embedding tables -> GatherBlockQuantized (blocks
    along the hidden axis). Activations stay float: accuracy_level 4 lets the CPU kernel quantize
    them to int8 on the fly. The pooler's Gemm (a TorchScript export's 2-D Linear) becomes MatMul +
    Add first so that it is quantized too (gemm_as_matmul; recipe tiny: 5.6 -> 5.0 MB on CLINC150);
    the classifier that writes the logits stays float, as low-bit schemes keep the last layer."""
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    ops = ("MatMul", "Gather") if spec.embeddings else ("MatMul",)
    config = DefaultWeightOnlyQuantConfig(
        block_size=spec.block_size, is_symmetric=False, accuracy_level=spec.accuracy_level or None,
        quant_format=QuantFormat.QOperator, op_types_to_quantize=ops, quant_axes=(("MatMul", 0), ("Gather", 1)),
        bits=spec.bits)
    model = gemm_as_matmul(onnx.load(str(src)))
    quantizer = MatMulNBitsQuantizer(model, bits=spec.bits, block_size=spec.block_size, is_symmetric=False,
                                     accuracy_level=spec.accuracy_level or None,
                                     nodes_to_exclude=excluded_nodes(src, spec.exclude_nodes),
                                     op_types_to_quantize=ops, quant_axes=(("MatMul", 0), ("Gather", 1)),
                                     algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def gemm_as_matmul(model):
    """`model` with each Gemm whose B is an initializer (Y = A B' + C, alpha = beta = 1, A not
    transposed) rewritten as MatMul(A, B') + Add(C): the same arithmetic in ops the 4-bit quantizer
    reads. Gemm nodes that write a graph output (the logits) and other Gemm nodes stay as they are."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in weights or node.output[0] in outputs
                or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        b = numpy_helper.to_array(weights[node.input[1]])
        name = f"{node.input[1]}_matmul"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(b.T if attrs.get("transB", 0) else b),
                                                         name))
        product = f"{node.output[0]}_product" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_MatMul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    return model
