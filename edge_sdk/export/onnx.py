"""PyTorch -> ONNX export with dynamic batch and sequence axes, and its validation against PyTorch."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.manifest import INPUT_NAMES

from ..errors import MissingOutputError, OutputShapeError, OutputValueError

OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class Validation:
    n: int
    max_abs_diff: float
    argmax_agreement: float

    def as_dict(self) -> dict:
        return {"n": self.n, "max_abs_diff": self.max_abs_diff, "argmax_agreement": self.argmax_agreement}


def classifier_module(model, input_names: tuple[str, ...] = INPUT_NAMES):
    """The classifier as a module taking `input_names` (positionally or by name) and returning the
    logits tensor. The signature is explicit, not *args: exporters name graph inputs after it."""
    import torch

    # transformers 5 changed BERT's positional arguments: pass keywords, return a plain tensor.
    class WithTokenTypes(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits

    class WithoutTokenTypes(WithTokenTypes):  # MPNet, RoBERTa
        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    modules = {INPUT_NAMES: WithTokenTypes, INPUT_NAMES[:2]: WithoutTokenTypes}
    if tuple(input_names) not in modules:
        raise ValueError(f"no classifier signature for inputs {input_names}; known: {list(modules)}")
    return modules[tuple(input_names)](model).eval()


def torch_logits(model, batches: list[dict[str, np.ndarray]], input_names: tuple[str, ...] = INPUT_NAMES
                 ) -> np.ndarray:
    """Reference logits from PyTorch, one row per text, batches concatenated in order."""
    import torch

    module = classifier_module(model, input_names)
    outs = []
    with torch.inference_mode():
        for feeds in batches:
            outs.append(module(*(torch.from_numpy(feeds[k]) for k in input_names)).float().numpy())
    return np.concatenate(outs)


def export_onnx(model, out_path: Path, *, opset: int = 17, input_names: tuple[str, ...] = INPUT_NAMES) -> Path:
    """Export a sequence classifier to ONNX (inputs `input_names`, output `logits`).

    input_names: what the model's forward takes (MPNet and RoBERTa have no token_type_ids;
    `edge_sdk.models.model_input_names`). The TorchScript exporter is used (dynamo=False):
    onnxruntime's transformer optimizer recognises its BERT patterns for Attention/LayerNorm/GELU
    fusion. It exports a deep copy, because exporting has been seen to change the in-memory
    model's outputs afterwards.
    """
    import torch

    module = classifier_module(copy.deepcopy(model), input_names)
    example = torch.ones((2, 8), dtype=torch.long)
    examples = tuple(torch.zeros_like(example) if name == "token_type_ids" else example for name in input_names)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic[OUTPUT_NAME] = {0: "batch"}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice is not for our users
        torch.onnx.export(module, examples, str(out_path), input_names=list(input_names),
                          output_names=[OUTPUT_NAME], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return out_path


def onnx_logits(path: Path, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if OUTPUT_NAME not in outputs:
        raise MissingOutputError(f"{Path(path).name} has no output '{OUTPUT_NAME}' (outputs: {outputs})")
    return np.concatenate([np.asarray(session.run([OUTPUT_NAME], {n: f[n] for n in names})[0], dtype=np.float32)
                           for f in batches])


def compare_logits(name: str, got: np.ndarray, want: np.ndarray, *, atol: float,
                   min_argmax_agreement: float = 1.0) -> Validation:
    """Raise a typed error naming the numbers when `got` is not `want` within tolerance."""
    if got.shape != want.shape:
        raise OutputShapeError(f"{name}: output 'logits' has shape {got.shape}, PyTorch gives {want.shape}")
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    agreement = float(np.mean(got.argmax(-1) == want.argmax(-1))) if len(got) else 1.0
    if diff > atol or agreement < min_argmax_agreement:
        raise OutputValueError(
            f"{name}: output 'logits' differs from PyTorch on {len(got)} texts: max abs diff {diff:.3g} "
            f"(tolerance {atol:.3g}), argmax agreement {agreement:.2%} (required {min_argmax_agreement:.2%})")
    return Validation(len(got), diff, agreement)
