"""Loading a sequence classifier from a folder, and telling whether it already fits the labels."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

FASTEST = None  # transformers' default: sdpa where the architecture supports it (BERT), else eager (MPNet)
EXPORTABLE = "eager"  # plain MatMul/Softmax attention: what the ONNX fusions and the TFLite converter recognise


def has_head_for(config, labels: tuple[str, ...]) -> bool:
    """True when the checkpoint already classifies exactly these labels in this order."""
    id2label = getattr(config, "id2label", None) or {}
    return (getattr(config, "num_labels", None) == len(labels)
            and [id2label.get(i, id2label.get(str(i))) for i in range(len(labels))] == list(labels))


def load_config(path: str | Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {str(path)!r}: {str(exc).splitlines()[0]}") from None


def load_classifier(path: str | Path, labels: tuple[str, ...] | None = None, attn: str | None = FASTEST):
    """A sequence classifier in eval mode; with `labels`, a fresh head sized for them when the
    checkpoint has none. attn: FASTEST for training and PyTorch measurements, EXPORTABLE for the
    graph that is exported. A structurally pruned or factorized folder (prune/record.py) is rebuilt
    to its shapes first: plain from_pretrained cannot express per-layer head counts."""
    from transformers import AutoModelForSequenceClassification

    if labels is None and restructured(path):
        from ..prune.load import load_pruned

        return load_pruned(path, attn_implementation=attn)
    kwargs = {} if attn is None else {"attn_implementation": attn}
    if labels is not None:
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True)
    return AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs).eval()


def restructured(path: str | Path) -> bool:
    """True when the folder's config records pruned or factorized shapes."""
    import json

    from ..prune.record import KEY

    config = Path(path) / "config.json"
    return config.is_file() and bool(json.loads(config.read_text(encoding="utf-8")).get(KEY))


def model_input_names(model) -> tuple[str, ...]:
    """The classifier inputs this model's forward takes, in INPUT_NAMES order (MPNet has no token types)."""
    import inspect

    from edge_runtime.manifest import INPUT_NAMES

    accepted = inspect.signature(model.forward).parameters
    return tuple(name for name in INPUT_NAMES if name in accepted)
