"""What a pruned or factorized model's config records, so that `load_pruned` can rebuild its shapes.

transformers 5 has no per-layer config for BERT or MPNet (v4's `config.pruned_heads` and
`PreTrainedModel.prune_heads` are gone), and a head's width is `hidden_size / num_attention_heads`,
so no standard field can say "this layer has 7 heads of 32". The record is one JSON-able dict in
`config.edge_sdk_structure`; `save_pretrained` writes it to config.json and `AutoConfig` reads it back
as an attribute (checked with transformers 5.25):

- `layers`: index in the original model of each kept layer (lineage);
- `heads`: per layer, the original indices of the heads kept (MPNet also needs them at run time:
  its shared position bias is sliced to them);
- `intermediate_sizes`: per layer, the FFN width;
- `low_rank`: module path -> rank, for modules replaced by two factors (lowrank.py).
"""

from __future__ import annotations

import copy

from .arch import encoder_layers, ffn_width, names_for, num_heads

KEY = "edge_sdk_structure"


def read_record(model, *, layers: bool = True) -> dict:
    """A copy of the model's record; with `layers`, the per-layer fields filled from its shapes if absent."""
    record = copy.deepcopy(getattr(model.config, KEY, None) or {})
    if layers and "heads" not in record:
        names = names_for(model)
        layers = encoder_layers(model, names)
        record["layers"] = list(range(len(layers)))
        record["heads"] = [list(range(num_heads(layer, names))) for layer in layers]
        record["intermediate_sizes"] = [ffn_width(layer, names) for layer in layers]
    return record


def write_record(model, record: dict) -> None:
    """Store the record and keep the standard fields true where they can be: depth always, the FFN
    width when every layer has the same one (then plain from_pretrained rebuilds FFN-only pruning)."""
    setattr(model.config, KEY, record)
    if "heads" in record:
        model.config.num_hidden_layers = len(record["heads"])
        widths = set(record["intermediate_sizes"])
        if len(widths) == 1:
            model.config.intermediate_size = widths.pop()
