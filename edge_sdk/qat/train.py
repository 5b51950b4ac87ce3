"""Quantization-aware training: the model with int8 fake-quantization, fine-tuned by distillation from
its own FP32 self, then saved as float weights plus the int8 program with the trained scales.

The fine-tune is the distillation trainer's (distill/train.py: cached FP32 logits as soft targets,
batches grouped by length); the student is the PT2E graph with fake-quantize modules (program.py),
wrapped so the Trainer sees a classifier.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..data import LabelledData
from ..models import EXPORTABLE, load_classifier, model_input_names
from .config import RECORD, QatConfig
from .program import PROGRAM, convert, prepare_qat, require_quantization, save_program, set_dropout


def _graph_classifier(graph, input_names: tuple[str, ...], config):
    """`graph` (a fake-quantized export graph) as a module the transformers Trainer can train."""
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    class GraphClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.graph = graph
            self.config = config  # the Trainer reads a few settings from it
            self.input_names = input_names

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None, **_):
            # `labels` in the signature: the Trainer looks for it to score evaluation batches
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask,
                     "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)}
            return SequenceClassifierOutput(logits=self.graph(**{n: feeds[n] for n in self.input_names}))

        @property
        def device(self):  # where inputs go (distill.logits.predict_logits reads it): the graph's CPU
            return torch.device("cpu")

        def train(self, mode: bool = True):
            # An export graph has dropout baked in as ops: their training flag is an argument.
            set_dropout(self.graph, mode)
            self.training = mode
            return self

    return GraphClassifier()


def trained_weights(graph, model) -> None:
    """Copy the fine-tuned float weights from the export graph back into the transformers `model`."""
    prefix = "inner."  # export.onnx.classifier_module keeps the classifier as `inner`
    state = {name.removeprefix(prefix): value for name, value in graph.state_dict().items()
             if name.startswith(prefix)}
    missing, _ = model.load_state_dict(state, strict=False)
    # Buffers the export turned into constants (position ids) are not parameters: only weights count.
    lost = [name for name in missing if name in dict(model.named_parameters())]
    if lost:
        raise RuntimeError(f"the QAT graph lost {len(lost)} weight(s) of the model, e.g. {lost[0]}")


def correct_program_bias(program, model, prepared, input_names: tuple[str, ...], max_length: int):
    """distill/bias.py's correction fitted on the int8 `program`'s validation logits against the FP32
    model's, added to `model`'s classifier bias and copied into the program's (the same parameter:
    trained_weights made them equal). Returns (corrected validation accuracy, record)."""
    import torch

    from ..distill.bias import classifier_output, correct_on_validation

    accuracy, record = correct_on_validation(model, prepared.tokenizer, prepared.data, prepared.logits.validation,
                                             max_length, scored=_graph_classifier(program, input_names, model.config))
    head = classifier_output(model)
    name = next(n for n, m in model.named_modules() if m is head)
    with torch.no_grad():
        program.get_parameter(f"inner.{name}.bias").copy_(head.bias)
    accuracy = round(accuracy, 4)
    return accuracy, {**record, "validation_accuracy": accuracy}


def quantization_aware_training(source_dir: str | Path, data: LabelledData, out_dir: str | Path,
                                config: QatConfig = QatConfig(), work_dir: str | Path | None = None,
                                progress: bool = True) -> dict:
    """Fine-tune the classifier at `source_dir` with int8 fake-quantization; write to `out_dir` its float
    weights (save_pretrained + tokenizer), the int8 program (PROGRAM) and RECORD. Returns RECORD's dict."""
    from ..distill.train import prepare, train_student

    require_quantization()
    out_dir = Path(out_dir)
    work_dir = Path(work_dir or out_dir.with_name(out_dir.name + ".work"))
    # The FP32 model is its own teacher: its logits on every split, computed once and cached.
    prepared = prepare(source_dir, data, config.max_length, cache_dir=work_dir / "cache", seed=config.seed)
    model = load_classifier(source_dir, attn=EXPORTABLE)
    names = model_input_names(model)
    graph = prepare_qat(model, names, config.scope)
    student = _graph_classifier(graph, names, model.config)
    # On the CPU: the graph was traced there (device constants such as arange's are baked in), and
    # moving a traced graph to a GPU (torch.export's move_to_device_pass) is not verified here.
    trainer, validation = train_student(prepared, config.distillation(), work_dir / "trainer", progress=progress,
                                        student=student, cpu=True)
    trained_weights(graph, model)
    program = convert(graph)
    correction = None
    if config.bias_correction and len(data.validation):
        validation, correction = correct_program_bias(program, model, prepared, names, config.max_length)
    record = {"config": config.as_dict(), "validation_accuracy_int8": validation,
              **({"bias_correction": correction} if correction else {}),
              "teacher_accuracy": prepared.teacher_accuracy(), "data_fingerprint": data.fingerprint,
              "input_names": list(names)}
    model.save_pretrained(str(out_dir))
    prepared.tokenizer.save_pretrained(str(out_dir))
    save_program(program, out_dir / PROGRAM, names, int(getattr(model.config, "max_position_embeddings", 512)))
    (out_dir / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work_dir, ignore_errors=True)
    return record

