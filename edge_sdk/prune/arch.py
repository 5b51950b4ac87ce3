"""Where the parts of an encoder layer live, by module name.

The one table of names that importance scores, structured pruning and low-rank factorization share,
so none of them holds an architecture special case. A model is matched to the first row whose paths
all resolve on it; supporting another family is adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PruneError


@dataclass(frozen=True)
class LayerNames:
    layers: str  # the ModuleList of encoder layers, under model.base_model
    query: str  # per layer: Linear [heads * head_size, hidden]
    key: str
    value: str
    out: str  # Linear [hidden, heads * head_size]: its input is the heads' concatenated context
    attention: str  # module holding attention_head_size / num_attention_heads / all_head_size
    ffn_in: str  # Linear [intermediate, hidden], followed by the activation
    ffn_out: str  # Linear [hidden, intermediate]
    # A per-head table under model.base_model that every layer reads (MPNet's relative position bias,
    # [buckets, heads]; named for the reader, the table itself stays whole), and the (keyword, position)
    # by which `attention` receives it as [B, heads, q, k]: a pruned layer takes its kept heads' slice.
    shared_bias: str | None = None
    bias_arg: tuple[str, int] | None = None

    def per_layer(self) -> tuple[str, ...]:
        return (self.query, self.key, self.value, self.out, self.attention, self.ffn_in, self.ffn_out)


NAMES = (
    # BERT, MiniLM, RoBERTa, ELECTRA
    LayerNames("encoder.layer", "attention.self.query", "attention.self.key", "attention.self.value",
               "attention.output.dense", "attention.self", "intermediate.dense", "output.dense"),
    # MPNet: the relative position bias is computed once in the encoder for all heads
    LayerNames("encoder.layer", "attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
               "attention.attn", "intermediate.dense", "output.dense",
               shared_bias="encoder.relative_attention_bias", bias_arg=("position_bias", 2)),
)


def _has(module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def names_for(model) -> LayerNames:
    """The row of NAMES that fits `model`, or a PruneError naming the class."""
    base = model.base_model
    for names in NAMES:
        if _has(base, names.layers) and len(base.get_submodule(names.layers)) and all(
                _has(base.get_submodule(names.layers)[0], p) for p in names.per_layer()):
            return names
    raise PruneError(f"{type(model).__name__}: no entry in edge_sdk.prune.arch.NAMES matches its modules; "
                     "add a row naming its attention and feed-forward layers")


def encoder_layers(model, names: LayerNames | None = None):
    return model.base_model.get_submodule((names or names_for(model)).layers)


def linear(layer, path: str):
    """The nn.Linear at `path`, or a PruneError when it has been replaced (e.g. by low-rank factors)."""
    import torch

    module = layer.get_submodule(path)
    if not isinstance(module, torch.nn.Linear):
        raise PruneError(f"{path} is a {type(module).__name__}, not a Linear (factorized?): prune heads and "
                         "neurons before low-rank factorization")
    return module


def head_size(layer, names: LayerNames) -> int:
    return int(layer.get_submodule(names.attention).attention_head_size)


def num_heads(layer, names: LayerNames) -> int:
    """Heads the layer has now (after any pruning): the query projection's width over the head size."""
    return linear(layer, names.query).out_features // head_size(layer, names)


def ffn_width(layer, names: LayerNames) -> int:
    return linear(layer, names.ffn_in).out_features
