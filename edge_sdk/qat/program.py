"""The int8 program: a classifier as a torch.export graph with quantize/dequantize pairs whose scales
come from quantization-aware training (`prepare_qat`, then training, then `convert`) or from
calibration texts (`calibrate`, post-training). Both exporters read this one program
(export/qdq_onnx.py, export/tflite.py), so an ONNX and a TFLite file of the same model carry the
same scales. It is saved beside the QAT step's weights as `qat.pt2` (torch.export's format).

PT2E (torch.export-based) quantization from torchao: the maintained successor of torch.ao's, and
the one litert-torch's converter reads (DESIGN.md, "Quantization-aware training").
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from edge_runtime.manifest import INPUT_NAMES

from ..errors import MissingDependencyError
from ..export.onnx import classifier_module

PROGRAM = "qat.pt2"  # in a qat step's output folder, beside the float weights it was trained with
INSTALL = "pip install 'edge-sdk[qat]'"


def require_quantization() -> None:
    """torchao's PT2E quantization and litert-torch's quantizer (the class both exporters take)."""
    try:
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
        from litert_torch.quantize import pt2e_quantizer  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"quantization-aware training needs torchao and litert-torch ({exc}): "
                                     f"{INSTALL}") from None


def example_inputs(input_names: tuple[str, ...]):
    import torch

    # 2 x 8 tokens (a size of 1 would be specialised by torch.export), the second row padded: with an
    # all-ones mask transformers takes a "no padding" shortcut that torch.export would bake into the
    # graph (measured: the CLINC150 MiniLM exported that way scored 8% instead of 88%).
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0
    sample = {"input_ids": (torch.arange(16).reshape(2, 8) + 1000) * mask, "attention_mask": mask,
              "token_type_ids": torch.zeros_like(mask)}
    return {name: sample[name] for name in input_names}


def dynamic_shapes(input_names: tuple[str, ...], max_length: int):
    from torch.export import Dim

    batch, sequence = Dim("batch", min=1, max=4096), Dim("sequence", min=2, max=max_length)
    return {name: {0: batch, 1: sequence} for name in input_names}


def export_program(module, input_names: tuple[str, ...], max_length: int):
    """torch.export of a classifier module with free batch and sequence dims. Inputs are passed by name
    everywhere (training, calibration, the exporters): litert-torch's converter calls by keyword."""
    import torch

    return torch.export.export(module, (), kwargs=example_inputs(input_names),
                               dynamic_shapes=dynamic_shapes(input_names, max_length))


def export_graph(model, input_names: tuple[str, ...] = INPUT_NAMES):
    """The classifier (a deep copy) as a torch.export graph module with free batch and sequence dims."""
    module = classifier_module(copy.deepcopy(model).float().eval(), input_names)
    return export_program(module, input_names, int(getattr(model.config, "max_position_embeddings", 512))).module()


def set_dropout(graph, training: bool) -> None:
    """Dropout on or off in an exported graph (where `.train()` changes nothing), each at its own rate.

    Not torchao's move_exported_model_to_train: its pattern rewrite replaces every dropout with its
    pattern's literal p=0.5 (measured: MiniLM's 0.1 became 0.5, and QAT on CLINC150 fell from 82% to
    20% validation accuracy in one epoch)."""
    import torch

    dropout = torch.ops.aten.dropout.default
    changed = False
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target is dropout and node.args[2] != training:
            node.args = (node.args[0], node.args[1], training)
            changed = True
    if changed:  # the Trainer calls train() every step: recompile only on a switch
        graph.recompile()


def prepare_qat(model, input_names: tuple[str, ...] = INPUT_NAMES, scope: str = "full", residual_bits: int = 8):
    """The graph with int8 fake-quantization of `scope` (quantizer.py), in training mode, ready to fine-tune."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from .quantizer import transformer_quantizer

    quantizer = transformer_quantizer(qat=True, scope=scope, residual_bits=residual_bits)
    prepared = prepare_qat_pt2e(export_graph(model, input_names), quantizer)
    set_dropout(prepared, True)
    return prepared


def convert(prepared):
    """Fake-quantization (trained) or observers (calibrated) -> quantize/dequantize pairs, eval mode.

    Weights stay float behind their quantize op (fold_quantize=False): the form litert-torch's
    converter reads; the ONNX export folds them to int8 initializers (qdq_onnx.py)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    set_dropout(prepared, False)
    return convert_pt2e(prepared, fold_quantize=False)


def calibrate(model, batches: list[dict[str, np.ndarray]], input_names: tuple[str, ...] = INPUT_NAMES,
              residual_bits: int = 8):
    """Post-training static int8: the same annotation as QAT, ranges observed on `batches`."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from .quantizer import transformer_quantizer

    quantizer = transformer_quantizer(qat=False, residual_bits=residual_bits)
    prepared = prepare_pt2e(export_graph(model, input_names), quantizer)
    with torch.no_grad():
        for feeds in batches:
            prepared(**{n: torch.from_numpy(np.asarray(feeds[n], dtype=np.int64)) for n in input_names})
    return convert(prepared)


def save_program(program, path: Path, input_names: tuple[str, ...], max_length: int) -> Path:
    """`program` re-exported with free batch and sequence dims, written with torch.export.save."""
    import torch

    torch.export.save(export_program(program, input_names, max_length), str(path))
    return Path(path)


def load_program(path: Path):
    """The ExportedProgram saved by save_program (torch.export's archive: read on the build host to
    export from, never shipped in a bundle)."""
    import torch

    require_quantization()  # torchao registers the quantize/dequantize ops the archive names
    return torch.export.load(str(path))


def program_logits(program, batches: list[dict[str, np.ndarray]], input_names: tuple[str, ...]) -> np.ndarray:
    """Logits of the int8-simulating program in PyTorch (a graph module or an ExportedProgram)."""
    import torch

    module = program.module() if hasattr(program, "module") and not isinstance(program, torch.nn.Module) else program
    with torch.no_grad():
        return np.concatenate([module(**{n: torch.from_numpy(np.asarray(f[n], dtype=np.int64)) for n in input_names})
                               .float().numpy() for f in batches])
