"""TFLite quantization with ai-edge-quantizer (LiteRT): fp16 weights, dynamic-range int8, and int8
with calibrated activations where they keep accuracy. What each measured on MiniLM is in
export/tflite.py's docstring; the ONNX counterpart is quantize_onnx.py."""

from __future__ import annotations

import re

import numpy as np

from ..errors import DataError

_FULLY_CONNECTED = 9  # tflite schema BuiltinOperator.FULLY_CONNECTED


def _fc_split(float_model: bytes) -> tuple[list[str], list[str]]:
    """Scopes of the FULLY_CONNECTED ops to quantize statically, and of those to keep dynamic.

    Measured per group on MiniLM: static int8 activations hurt most at the FFN down-projection
    (its input is the wide GELU output with outliers) and at the head (pooler + classifier, whose
    int8 logits alone gave 4.2 max abs error). Those are found by shape, not by name, so the rule
    holds for any BERT-like graph: the down-projection is the FC with the widest input, the head is
    every FC after the last down-projection. Done per signature (subgraph); a scope that would be
    static in one and dynamic in another stays dynamic.
    """
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    flat = fb.read_model(bytearray(float_model))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in flat.operatorCodes]
    static, dynamic = set(), set()
    for graph in flat.subgraphs:
        fcs = []  # (scope, input width) in execution order
        for op in graph.operators:
            if codes[op.opcodeIndex] != _FULLY_CONNECTED:  # by code: the name table lacks ops like CAST
                continue
            weight_shape = list(graph.tensors[op.inputs[1]].shape)  # [out, in]
            fcs.append((fb.get_op_scope(op, graph.tensors), int(weight_shape[-1])))
        if not fcs:
            continue
        widest = max(width for _, width in fcs)
        last_down = max(i for i, (_, width) in enumerate(fcs) if width == widest)
        for i, (scope, width) in enumerate(fcs):
            # Only the FFN down-projection(s) when the FFN is wider than the rest; a toy model whose
            # FCs all share one width keeps only its head dynamic.
            is_down = width == widest and widest > min(w for _, w in fcs)
            (dynamic if is_down or i > last_down else static).add(scope)
    return sorted(static - dynamic), sorted(dynamic)


def _calibration_samples(batches, sequence_length: int, dtypes: dict) -> list[dict[str, np.ndarray]]:
    """Split batches into batch-1 rows padded with 0 to the static length, in the model's dtypes (as
    the LiteRT backend pads them at run time). Rows longer than sequence_length are left out (they
    never reach this bucket at run time)."""
    from edge_runtime.tokenize import padded_feeds

    samples = []
    for batch in batches:
        missing = [n for n in dtypes if n not in batch]
        if missing:
            raise ValueError(f"calibration batch lacks input(s) {missing}")
        ids, mask = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"])
        for row, length in zip(ids, mask.sum(axis=1)):
            if length <= sequence_length:
                feeds = padded_feeds([row[:length].tolist()], tuple(dtypes), width=sequence_length)
                samples.append({name: feeds[name].astype(dtype) for name, dtype in dtypes.items()})
    return samples


def quantize(float_model: bytes, precision: str, calibration_batches) -> bytes:
    """The float .tflite `float_model` with LiteRT quantization for `precision` (export/tflite.py)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    ops = qtyping.TFLOperationName
    q = quantizer.Quantizer(bytearray(float_model))
    if precision == "fp16":
        # Weights stored fp16, dequantized once at load; math stays fp32 (same speed on CPU).
        q.add_weight_only_config(".*", ops.ALL_SUPPORTED, 16, granularity=qtyping.QuantGranularity.TENSORWISE,
                                 algorithm_key=AlgorithmName.FLOAT_CASTING)
    else:
        # int8 per-channel weights for FC/BMM and the embedding tables, activations int8 on the fly.
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    if precision == "int8":
        static, _ = _fc_split(float_model)
        for scope in static:
            # Later recipe entries win; get_op_scope ends a scope with ';', hence the anchor.
            q.add_static_config("^" + re.escape(scope) + "$", ops.FULLY_CONNECTED, 8, 8)
    calibration = None
    if q.need_calibration:
        interpreter = Interpreter(model_content=float_model)
        data = {}
        for name in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(name)
            details = runner.get_input_details()
            dtypes = {n: d["dtype"] for n, d in details.items()}
            length = int(next(iter(details.values()))["shape"][1])
            data[name] = _calibration_samples(calibration_batches, length, dtypes)
            if not data[name]:
                raise DataError(f"no calibration text is short enough for TFLite bucket {name}: the "
                                "training split needs texts of a few words")
        calibration = q.calibrate(data, num_threads=1)
    return bytes(q.quantize(calibration, enable_progress_report=False).quantized_model)


def quantize_embeddings(model: bytes) -> bytes:
    """`model` with its embedding tables stored as int8 (per-row scales), dequantized once at load.

    For full-integer files (export/tflite.py's export_int8_tflite): litert-torch's converter keeps an
    embedding table float even when the program quantizes it (its EMBEDDING_LOOKUP has no int8-in,
    int8-out form), and MiniLM's 30522 x 384 table is two thirds of the model. The rest of the file
    is already quantized and left as it is (ai-edge-quantizer warns so, and keeps those tensors).
    """
    import warnings

    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(bytearray(model))
    q.add_weight_only_config(".*", qtyping.TFLOperationName.EMBEDDING_LOOKUP, 8,
                             granularity=qtyping.QuantGranularity.CHANNELWISE)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input model is already partially quantized")
        return bytes(q.quantize(None, enable_progress_report=False).quantized_model)
