"""Reload a model saved with `save_pretrained` after structured pruning or low-rank factorization."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import PruneError
from .arch import encoder_layers, ffn_width, names_for, num_heads
from .lowrank import factored_like
from .record import KEY
from .structured import shrink_attention, shrink_ffn


def rebuild(model, record: dict) -> None:
    """Give a freshly built full-width model the shapes `record` describes (weights are not set)."""
    if "heads" in record:
        names = names_for(model)
        layers = encoder_layers(model, names)
        if len(layers) != len(record["heads"]):
            raise PruneError(f"the config builds {len(layers)} layers but its {KEY} describes {len(record['heads'])}")
        for layer, heads, width in zip(layers, record["heads"], record["intermediate_sizes"]):
            if len(heads) < num_heads(layer, names):
                shrink_attention(layer, names, heads, heads)  # positions in a full layer are the original indices
            if width < ffn_width(layer, names):
                shrink_ffn(layer, names, list(range(width)))
    for path, rank in record.get("low_rank", {}).items():
        model.set_submodule(path, factored_like(model.get_submodule(path), rank))


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    files = (sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file()
             else ["model.safetensors"])
    state = {}
    for name in files:
        if not (folder / name).is_file():
            raise PruneError(f"{folder / name} is missing: save the model with save_pretrained (safetensors)")
        state.update(load_file(str(folder / name)))
    return state


def load_pruned(path, model_class=None, *, attn_implementation: str | None = None):
    """The model saved at `path`, pruned or not, in eval mode.

    Plain `from_pretrained` cannot rebuild per-layer head counts (transformers 5 dropped
    `config.pruned_heads`) and refuses the smaller tensors with a size-mismatch error. This builds the
    class named in config.architectures (or `model_class`) at full size, shrinks it to the record in
    the config, and loads the safetensors weights with strict=True. A folder without a record goes
    to `from_pretrained` unchanged. `attn_implementation` ("eager", "sdpa") as in from_pretrained.
    """
    import transformers

    folder = Path(path)
    config = transformers.AutoConfig.from_pretrained(str(folder))
    cls = model_class or getattr(transformers, (config.architectures or [""])[0], None)
    if cls is None:
        raise PruneError(f"{folder}/config.json names no known architecture; pass model_class=")
    record = getattr(config, KEY, None)
    if not record:
        return cls.from_pretrained(str(folder), attn_implementation=attn_implementation).eval()
    if attn_implementation:
        config._attn_implementation = attn_implementation
    model = cls(config)
    rebuild(model, record)
    model.load_state_dict(_weights(folder), strict=True)
    return model.eval()
