"""PyTorch -> TFLite (LiteRT) export at a static [1, sequence_length] shape, with LiteRT quantization.

Path: litert-torch converts the float model (torch.export -> StableHLO -> .tflite); ai-edge-quantizer
then rewrites that float .tflite for every precision other than fp32. Measured on all-MiniLM-L6-v2
(6 layers, hidden 384, 151 labels, head fitted on CLINC150, L=64, 300 test sentences, x86, 1 thread,
litert-torch 0.10.0 / ai-edge-quantizer 0.10.0 / ai-edge-litert 2.3.0):

    precision     size     max|dlogit|  argmax vs torch  accuracy (torch 71.3%)  latency
    fp32          90.7 MB  1.2e-05      100%             71.3%                   14.8 ms
    fp16          45.6 MB  3.8e-03       99%             =                       14.9 ms  (fp16 weights, fp32 math)
    dynamic-int8  23.6 MB  0.68          96%             71.7%                    4.9 ms
    int8          23.9 MB  1.3-1.8       92-94%          70.7-72.7%               5.0 ms  (two calibration sets)

Full static int8 (ai-edge-quantizer's a8w8 recipe: every op, int8 activations) keeps 13% argmax
agreement (accuracy 71% -> 13%), a16w8 22% and 270 ms; leaving softmax/add/layernorm in float does not
fix it. So "int8" here means: int8 weights everywhere, activations quantized statically (calibrated)
at the fully-connected layers that tolerate it, dynamically at the others. On x86 XNNPack it is no
faster than dynamic-int8; it exists for profiles that ask for calibrated activations.
Conversion of MiniLM takes 8-14 s and ~1.3 GB RSS (1.6 GB peak with int8 calibration, 100 sentences,
another ~10 s) on 2 shared cores; latencies above were taken on a quiet machine.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from .onnx import INPUT_NAMES, classifier_module

PRECISIONS = ("fp32", "fp16", "dynamic-int8", "int8")
SIGNATURE = "serving_default"  # litert-torch's default signature key; the runtime feeds inputs by name

_FULLY_CONNECTED = 9  # tflite schema BuiltinOperator.FULLY_CONNECTED
_INSTALL = "pip install litert-torch ai-edge-quantizer ai-edge-litert"


def _require():
    try:
        import litert_torch  # noqa: F401
        from ai_edge_quantizer import quantizer  # noqa: F401
        from ai_edge_litert import interpreter  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"TFLite export needs litert-torch, ai-edge-quantizer and ai-edge-litert "
                           f"({exc}); {_INSTALL}") from None


def _convert_fp32(model, sequence_length: int) -> bytes:
    import litert_torch
    import torch

    # A deep copy: exporting has been seen to change the in-memory model afterwards (see onnx.py).
    module = classifier_module(copy.deepcopy(model).float().eval())
    # Sample with real padding, so no "mask is all ones" shortcut of transformers is traced into
    # the graph: the shape is static but the mask must stay an input that matters.
    mask = torch.zeros((1, sequence_length), dtype=torch.long)
    mask[0, : max(1, sequence_length // 2)] = 1
    sample = {"input_ids": torch.ones((1, sequence_length), dtype=torch.long) * mask,
              "attention_mask": mask,
              "token_type_ids": torch.zeros((1, sequence_length), dtype=torch.long)}
    with torch.inference_mode():
        edge = litert_torch.convert(module, sample_kwargs=sample)
    # enable_x64=False (default) makes the inputs int32; the runtime casts int64 feeds.
    return bytes(edge.model_content())


def _fc_split(float_model: bytes) -> tuple[list[str], list[str]]:
    """Scopes of the FULLY_CONNECTED ops to quantize statically, and of those to keep dynamic.

    Measured per group on MiniLM: static int8 activations hurt most at the FFN down-projection
    (its input is the wide GELU output with outliers) and at the head (pooler + classifier, whose
    int8 logits alone gave 4.2 max abs error). Those are found by shape, not by name, so the rule
    holds for any BERT-like graph: the down-projection is the FC with the widest input, the head is
    every FC after the last down-projection.
    """
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    flat = fb.read_model(bytearray(float_model))
    graph = flat.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in flat.operatorCodes]
    fcs = []  # (scope, input width) in execution order
    for op in graph.operators:
        if codes[op.opcodeIndex] != _FULLY_CONNECTED:  # by code: the name table lacks ops like CAST
            continue
        weight_shape = list(graph.tensors[op.inputs[1]].shape)  # [out, in]
        fcs.append((fb.get_op_scope(op, graph.tensors), int(weight_shape[-1])))
    if not fcs:
        return [], []
    widest = max(width for _, width in fcs)
    last_down = max((i for i, (_, width) in enumerate(fcs) if width == widest), default=-1)
    static, dynamic = [], []
    for i, (scope, width) in enumerate(fcs):
        # Only the FFN down-projection(s) when the FFN is wider than the rest; a toy model whose FCs
        # all share one width keeps only its head dynamic.
        is_down = width == widest and widest > min(w for _, w in fcs)
        (dynamic if is_down or i > last_down else static).append(scope)
    return static, dynamic


def _calibration_samples(batches, sequence_length: int, dtypes: dict) -> list[dict[str, np.ndarray]]:
    """Split batches into batch-1 rows padded with 0 to the static length, in the model's dtypes."""
    samples = []
    for batch in batches:
        missing = [n for n in dtypes if n not in batch]
        if missing:
            raise ValueError(f"calibration batch lacks input(s) {missing}")
        rows, length = np.asarray(batch["input_ids"]).shape
        if length > sequence_length:
            raise ValueError(f"calibration batch has sequence length {length} > {sequence_length}")
        for r in range(rows):
            sample = {}
            for name, dtype in dtypes.items():
                row = np.zeros((1, sequence_length), dtype=dtype)
                row[0, :length] = np.asarray(batch[name])[r]
                sample[name] = row
            samples.append(sample)
    return samples


def _quantize(float_model: bytes, precision: str, sequence_length: int, calibration_batches) -> bytes:
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
        runner = Interpreter(model_content=float_model).get_signature_runner(SIGNATURE)
        dtypes = {name: d["dtype"] for name, d in runner.get_input_details().items()}
        samples = _calibration_samples(calibration_batches, sequence_length, dtypes)
        calibration = q.calibrate({SIGNATURE: samples}, num_threads=1)
    return bytes(q.quantize(calibration, enable_progress_report=False).quantized_model)


def _check_signature(content: bytes, sequence_length: int, num_labels: int | None) -> None:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner(SIGNATURE)
    inputs = runner.get_input_details()
    outputs = list(runner.get_output_details().values())
    bad = [n for n in INPUT_NAMES if n not in inputs or list(inputs[n]["shape"]) != [1, sequence_length]]
    width = int(outputs[0]["shape"][-1]) if len(outputs) == 1 else None
    if bad or width is None or (num_labels is not None and width != num_labels):
        raise RuntimeError(f"converted TFLite model has inputs {sorted(inputs)} and {len(outputs)} output(s) of "
                           f"width {width}; expected {list(INPUT_NAMES)} of shape [1, {sequence_length}] and logits "
                           f"[1, {num_labels}] (problem in {', '.join(bad) or 'the output'})")


def export_tflite(model, out_path: Path, *, sequence_length: int, precision: str,
                  calibration_batches: list[dict[str, np.ndarray]] | None = None) -> Path:
    """Export a sequence classifier to a .tflite file with inputs INPUT_NAMES ([1, sequence_length],
    int32) and one float32 output, the logits [1, num_labels].

    precision: "fp32", "fp16" (fp16 weights), "dynamic-int8" (int8 weights, activations quantized at
    run time) or "int8" (calibrated static int8 activations where they keep accuracy; needs
    `calibration_batches`: dicts of int arrays [batch, seq <= sequence_length], e.g. ~100 training
    sentences). See the module docstring for what each measured on MiniLM. The caller validates
    the file against PyTorch; this function only checks the signature.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "int8" and not calibration_batches:
        raise ValueError("precision 'int8' needs calibration_batches (tokenized sentences for activation ranges)")
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be positive, not {sequence_length}")
    _require()
    content = _convert_fp32(model, sequence_length)
    if precision != "fp32":
        content = _quantize(content, precision, sequence_length, calibration_batches)
    _check_signature(content, sequence_length, getattr(getattr(model, "config", None), "num_labels", None))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(content)
    return out_path
