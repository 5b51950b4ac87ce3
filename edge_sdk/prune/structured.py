"""Structured pruning that physically removes attention heads, FFN neurons and whole encoder layers.

Each function returns a smaller model of the same class (a copy unless inplace=True) whose config
records the new shapes (record.py); reload it with `load_pruned`. Linear layers are sliced with
transformers' `prune_linear_layer`. Heads are named by their position in the layer as it is now
(after any earlier pruning); every request is checked before anything is changed.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterable, Mapping

from ..errors import PruneError
from .arch import LayerNames, encoder_layers, ffn_width, head_size, linear, names_for, num_heads
from .record import read_record, write_record


def _slice(module, index, dim: int):
    from transformers.pytorch_utils import prune_linear_layer

    return prune_linear_layer(module, index, dim=dim).to(dtype=module.weight.dtype)


def _select_bias_heads(module, args, kwargs):
    """Forward pre-hook: hand the attention only its kept heads' slice of a bias shared by all layers."""
    name, position = module.edge_sdk_bias_arg
    if kwargs.get(name) is not None:
        kwargs[name] = kwargs[name].index_select(1, module.edge_sdk_bias_heads)
    elif len(args) > position and args[position] is not None:
        args = (*args[:position], args[position].index_select(1, module.edge_sdk_bias_heads), *args[position + 1:])
    return args, kwargs


def shrink_attention(layer, names: LayerNames, keep: list[int], original: list[int]) -> None:
    """Keep heads at positions `keep` (whose indices in the unpruned layer are `original`)."""
    import torch

    d = head_size(layer, names)
    index = torch.cat([torch.arange(h * d, (h + 1) * d) for h in keep])
    for path in (names.query, names.key, names.value):
        layer.set_submodule(path, _slice(linear(layer, path), index, 0))
    layer.set_submodule(names.out, _slice(linear(layer, names.out), index, 1))
    attention = layer.get_submodule(names.attention)
    attention.num_attention_heads = len(keep)  # BERT reshapes with -1; MPNet views with all_head_size
    attention.all_head_size = len(keep) * d
    if names.shared_bias:
        heads = torch.tensor(original, dtype=torch.long)
        if hasattr(attention, "edge_sdk_bias_heads"):
            attention.edge_sdk_bias_heads = heads
        else:
            attention.register_buffer("edge_sdk_bias_heads", heads, persistent=False)
            attention.edge_sdk_bias_arg = names.bias_arg
            attention.register_forward_pre_hook(_select_bias_heads, with_kwargs=True)


def shrink_ffn(layer, names: LayerNames, keep: list[int]) -> None:
    import torch

    index = torch.tensor(keep, dtype=torch.long)
    layer.set_submodule(names.ffn_in, _slice(linear(layer, names.ffn_in), index, 0))
    layer.set_submodule(names.ffn_out, _slice(linear(layer, names.ffn_out), index, 1))


def _check_layer(index, count: int) -> int:
    try:
        index = operator.index(index)  # ints of numpy and torch too, not floats
    except TypeError:
        raise PruneError(f"layer {index!r} is not a layer index (an integer 0..{count - 1})") from None
    if not 0 <= index < count:
        raise PruneError(f"layer {index} does not exist: the model has layers 0..{count - 1}")
    return index


def _check_units(model, request: Mapping[int, Iterable[int]], what: str, size) -> dict[int, list[int]]:
    """{layer: sorted positions to remove}, or a PruneError; `size(layer)` is how many units it has."""
    layers = encoder_layers(model)
    out = {}
    for index, units in request.items():
        layer = layers[_check_layer(index, len(layers))]
        n = size(layer)
        units = sorted({int(u) for u in units})
        bad = [u for u in units if not 0 <= u < n]
        if bad:
            raise PruneError(f"{what} {bad[0]} of layer {index} does not exist: it has {what}s 0..{n - 1}")
        if len(units) == n:
            hint = "keep at least one head, or remove the layer" if what == "head" else "keep at least one neuron"
            raise PruneError(f"removing all {n} {what}s of layer {index} is not supported: {hint}")
        if units:
            out[index] = units
    return out


def check_heads(model, heads):
    names = names_for(model)
    return _check_units(model, heads, "head", lambda layer: num_heads(layer, names))


def check_neurons(model, neurons):
    names = names_for(model)
    return _check_units(model, neurons, "neuron", lambda layer: ffn_width(layer, names))


def check_layers(model, layers: Iterable[int]) -> list[int]:
    count = len(encoder_layers(model))
    drop = sorted({_check_layer(i, count) for i in layers})
    if len(drop) == count:
        raise PruneError(f"removing all {count} layers leaves no encoder: keep at least one")
    return drop


def _remove(model, request: dict, inplace: bool, count, shrink):
    """For each {layer: positions to drop}, call shrink(layer, names, kept positions, record, layer index)."""
    model = model if inplace else copy.deepcopy(model)
    names, record = names_for(model), read_record(model)
    layers = encoder_layers(model, names)
    for index, drop in request.items():
        keep = [u for u in range(count(layers[index], names)) if u not in drop]
        shrink(layers[index], names, keep, record, index)
    write_record(model, record)
    return model


def remove_heads(model, heads: Mapping[int, Iterable[int]], *, inplace: bool = False):
    """Remove attention heads: {layer: [head positions]}. Slices query/key/value rows and the output
    projection's columns; an empty request returns an unchanged copy."""
    def shrink(layer, names, keep, record, index):
        record["heads"][index] = [record["heads"][index][h] for h in keep]
        shrink_attention(layer, names, keep, record["heads"][index])

    return _remove(model, check_heads(model, heads), inplace, num_heads, shrink)


def remove_neurons(model, neurons: Mapping[int, Iterable[int]], *, inplace: bool = False):
    """Remove FFN intermediate units: {layer: [positions]}. Slices the first FFN Linear's rows and the
    second's columns."""
    def shrink(layer, names, keep, record, index):
        record["intermediate_sizes"][index] = len(keep)
        shrink_ffn(layer, names, keep)

    return _remove(model, check_neurons(model, neurons), inplace, ffn_width, shrink)


def remove_layers(model, layers: Iterable[int], *, inplace: bool = False):
    """Remove whole encoder layers (indices in the model as it is); works on already pruned layers."""
    import torch

    drop = check_layers(model, layers)
    model = model if inplace else copy.deepcopy(model)
    names, record = names_for(model), read_record(model)
    keep = [i for i in range(len(encoder_layers(model, names))) if i not in drop]
    kept = torch.nn.ModuleList([encoder_layers(model, names)[i] for i in keep])
    model.base_model.set_submodule(names.layers, kept)
    for position, layer in enumerate(kept):  # BERT's attention keeps its index for KV caches
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    for field in ("layers", "heads", "intermediate_sizes"):
        record[field] = [record[field][i] for i in keep]
    write_record(model, record)
    return model
