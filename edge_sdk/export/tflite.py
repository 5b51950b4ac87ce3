"""PyTorch -> TFLite (LiteRT) export at static [1, L] shapes, with LiteRT quantization.

A TFLite model has static shapes, and a [1, 64] graph does the work of 64 tokens for an 11-token
query. So the file holds one signature per length bucket ("seq_16", "seq_32", ... up to the
profile's sequence length), all sharing one copy of the weights; the runtime pads each row to the
smallest bucket that holds it (edge_runtime.backends.tflite).

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

The table's latencies are at one [1, 64] signature. Length buckets, same MiniLM at dynamic-int8, 1 thread,
200 CLINC150 test queries (median 11 tokens), on 2 shared cores under load: one [1, 64] signature p50
9.1 ms, 23.7 MB, converted in 18 s; buckets 16/32/64/128 p50 1.9 ms, 26.7 MB (weights stored once; each
extra signature adds ~0.6 MB of per-channel int8 scales), converted in 54 s; both 7e-3 max abs diff
from PyTorch (random head).
Conversion of MiniLM takes 8-14 s per signature and ~1.3 GB RSS (1.6 GB peak with int8 calibration, 100
sentences, another ~10 s) on 2 shared cores; the table's latencies were taken on a quiet machine.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from edge_runtime.manifest import INPUT_NAMES

from ..errors import ExportValidationError, MissingDependencyError
from .onnx import classifier_module

PRECISIONS = ("fp32", "fp16", "dynamic-int8", "int8")
SIGNATURE_PREFIX = "seq_"  # signature of bucket L is "seq_L"; the runtime reads L from the input shapes
MIN_BUCKET = 16  # below this a bucket saves little: [CLS] + [SEP] + a few words
INSTALL = "pip install 'edge-sdk[tflite]'"


def require_converter():
    try:
        import litert_torch  # noqa: F401
        from ai_edge_litert import interpreter  # noqa: F401
        from ai_edge_quantizer import quantizer  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"TFLite export needs litert-torch, ai-edge-quantizer and ai-edge-litert "
                                     f"({exc}): {INSTALL}") from None


def length_buckets(sequence_length: int) -> tuple[int, ...]:
    """Static lengths to compile: powers of two from MIN_BUCKET below sequence_length, then it."""
    buckets, length = [], MIN_BUCKET
    while length < sequence_length:
        buckets.append(length)
        length *= 2
    return (*buckets, sequence_length)


def signature_name(length: int) -> str:
    return f"{SIGNATURE_PREFIX}{length}"


def _sample(length: int, input_names: tuple[str, ...]):
    import torch

    # Real padding, so no "mask is all ones" shortcut of transformers is traced into the graph: the
    # shape is static but the mask must stay an input that matters.
    mask = torch.zeros((1, length), dtype=torch.long)
    mask[0, : max(1, length // 2)] = 1
    sample = {"input_ids": torch.ones((1, length), dtype=torch.long) * mask, "attention_mask": mask,
              "token_type_ids": torch.zeros((1, length), dtype=torch.long)}
    return {name: sample[name] for name in input_names}


def _convert_fp32(model, buckets: tuple[int, ...], input_names: tuple[str, ...]) -> bytes:
    # A deep copy: exporting has been seen to change the in-memory model afterwards (see onnx.py).
    return _convert(classifier_module(copy.deepcopy(model).float().eval(), input_names), buckets, input_names)


def _convert(module, buckets: tuple[int, ...], input_names: tuple[str, ...], quant_config=None) -> bytes:
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its per-pass progress lines drown the build's
    import litert_torch
    import torch

    converter = litert_torch.Converter()
    for length in buckets:  # one signature per bucket; the converter shares the weight buffers
        converter = converter.signature(signature_name(length), module,
                                        sample_kwargs=_sample(length, input_names))
    with torch.inference_mode():
        edge = converter.convert(quant_config=quant_config)
    # enable_x64=False (default) makes the inputs int32; the runtime casts int64 feeds.
    return bytes(edge.model_content())


def _check_signatures(content: bytes, buckets: tuple[int, ...], num_labels: int | None,
                      input_names: tuple[str, ...]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    names = sorted(interpreter.get_signature_list())
    if names != sorted(signature_name(b) for b in buckets):
        raise ExportValidationError(f"converted TFLite model has signatures {names}; expected one per bucket "
                                    f"{list(buckets)}")
    for length in buckets:
        runner = interpreter.get_signature_runner(signature_name(length))
        inputs = runner.get_input_details()
        outputs = list(runner.get_output_details().values())
        bad = [n for n in input_names if n not in inputs or list(inputs[n]["shape"]) != [1, length]]
        width = int(outputs[0]["shape"][-1]) if len(outputs) == 1 else None
        if bad or width is None or (num_labels is not None and width != num_labels):
            raise ExportValidationError(
                f"signature {signature_name(length)} of the converted TFLite model has inputs {sorted(inputs)} and "
                f"{len(outputs)} output(s) of width {width}; expected {list(input_names)} of shape [1, {length}] "
                f"and logits [1, {num_labels}] (problem in {', '.join(bad) or 'the output'})")


def export_tflite(model, out_path: Path, *, sequence_length: int, precision: str,
                  calibration_batches: list[dict[str, np.ndarray]] | None = None,
                  buckets: tuple[int, ...] | None = None, input_names: tuple[str, ...] = INPUT_NAMES) -> Path:
    """Export a sequence classifier to a .tflite file with one signature per length bucket: signature
    "seq_L" takes `input_names` ([1, L], int32) and gives one float32 output, the logits [1, num_labels].

    sequence_length: the longest bucket (the model takes no longer input). buckets: the static
    lengths (default: length_buckets(sequence_length)); the weights are stored once whatever their
    number. precision: "fp32", "fp16" (fp16 weights), "dynamic-int8" (int8 weights, activations
    quantized at run time) or "int8" (calibrated static int8 activations where they keep accuracy;
    needs `calibration_batches`: dicts of int arrays [batch, seq] with an attention_mask, e.g. ~100
    training sentences). See the module docstring for what each measured on MiniLM. The caller
    validates the file against PyTorch; this function only checks the signatures.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "int8" and not calibration_batches:
        raise ValueError("precision 'int8' needs calibration_batches (tokenized sentences for activation ranges)")
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be positive, not {sequence_length}")
    buckets = tuple(sorted(set(buckets))) if buckets else length_buckets(sequence_length)
    if buckets[0] < 1 or buckets[-1] != sequence_length:
        raise ValueError(f"buckets {list(buckets)} must be positive and end at sequence_length {sequence_length}")
    require_converter()
    content = _convert_fp32(model, buckets, input_names)
    if precision != "fp32":
        from ..optimize.quantize_tflite import quantize

        content = quantize(content, precision, calibration_batches)
    _check_signatures(content, buckets, getattr(getattr(model, "config", None), "num_labels", None), input_names)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(content)
    return out_path


def export_int8_tflite(program, out_path: Path, *, sequence_length: int, input_names: tuple[str, ...] = INPUT_NAMES,
                       num_labels: int | None = None, buckets: tuple[int, ...] | None = None) -> Path:
    """A full-integer .tflite from the int8 program (qat/program.py: a graph module with quantize/
    dequantize pairs, trained or calibrated): litert-torch's converter folds each pair into int8
    kernels with the program's scales. Inputs stay int32 token ids (nothing to quantize in an id);
    the output is int8 logits with a scale and zero point, which the runtime dequantizes. The
    embedding tables are stored int8 and dequantized at load (the converter keeps them float;
    optimize/quantize_tflite.py). One signature per length bucket, as export_tflite."""
    from litert_torch.quantize.quant_config import QuantConfig

    from ..qat.program import set_dropout
    from ..qat.quantizer import transformer_quantizer

    require_converter()
    buckets = tuple(sorted(set(buckets))) if buckets else length_buckets(sequence_length)
    set_dropout(program, False)  # its dropout ops in inference mode (it may come from training)
    for module in program.modules():  # ... and the flags litert-torch checks (an export graph refuses .eval())
        module.training = False
    # The quantizer only tells the converter "static int8 QDQ"; the scales are in the program.
    content = _convert(program, buckets, input_names, QuantConfig(pt2e_quantizer=transformer_quantizer(qat=False)))
    from ..optimize.quantize_tflite import quantize_embeddings

    content = quantize_embeddings(content)
    _check_signatures(content, buckets, num_labels, input_names)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(content)
    return out_path


def integer_summary(path: Path) -> dict:
    """What a .tflite computes in integers, for the manifest: its compute ops (first signature; they
    all share one structure) counted by whether their output is integer or float, and the output type.
    (Interpreter._get_ops_details is LiteRT's only listing of ops with their tensors.)"""
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    # ops that move or select values, not arithmetic: they take whatever type flows through them
    moves = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "TRANSPOSE", "CAST", "SLICE", "GATHER_ND", "GATHER",
             "EMBEDDING_LOOKUP", "LOGICAL_AND", "SELECT_V2", "CONCATENATION", "EXPAND_DIMS", "SQUEEZE"}
    counts: dict[str, Counter] = {"integer": Counter(), "float": Counter()}
    for op in interpreter._get_ops_details():
        if op["op_name"] in moves:
            continue
        is_float = any(i >= 0 and dtypes[i] == np.float32 for i in op["outputs"])
        counts["float" if is_float else "integer"][op["op_name"]] += 1
    runner = interpreter.get_signature_runner(sorted(interpreter.get_signature_list())[0])
    output = next(iter(runner.get_output_details().values()))
    return {"integer_ops": dict(counts["integer"]), "float_ops": dict(counts["float"]),
            "output_dtype": np.dtype(output["dtype"]).name}
