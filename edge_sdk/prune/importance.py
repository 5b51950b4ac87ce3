"""How much each attention head and FFN neuron matters, measured on batches with labels.

Both functions return Scores: tensors [layers, heads] and [layers, intermediate], higher = more
important, NaN-padded where a (pruned) layer has fewer units than the widest one. `plan_pruning`
turns them into what to remove.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

from ..errors import PruneError
from .arch import encoder_layers, ffn_width, head_size, linear, names_for, num_heads


class Scores(NamedTuple):
    heads: object  # torch.Tensor [layers, heads]
    neurons: object  # torch.Tensor [layers, intermediate]


def _padded(rows):
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), float("nan"))
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def _backward_each(model, batches, after) -> int:
    """loss.backward() on every batch (dicts of tensors with labels), `after()` following each."""
    n = 0
    for batch in batches:
        loss = model(**batch).loss
        if loss is None:
            raise PruneError("a batch without labels: importance is the gradient of the loss, which needs them")
        loss.backward()
        after()
        n += 1
    if not n:
        raise PruneError("no batches: importance needs at least one batch with labels")
    return n


@contextmanager
def _scoring(model, trainable=()):
    """Eval mode (no dropout noise) and gradients only where asked; both restored afterwards."""
    flags = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
        model.train(was_training)


def _gate(mask, repeat: int):
    def hook(module, args):
        return (args[0] * mask.repeat_interleave(repeat), *args[1:])
    return hook


def head_neuron_importance(model, batches, *, normalize: bool = True) -> Scores:
    """Michel et al. 2019: each head's (and FFN neuron's) importance is |dL/d gate| for a gate of 1
    multiplying its output: the first-order estimate of how much the loss changes if it is removed.

    Gates sit on the inputs of the attention output projection (one per head's context slice) and
    of the second FFN Linear (one per neuron after the activation), so one pass scores both (v5 has
    no head_mask argument any more); the model runs in eval mode with its weights frozen. The
    absolute gradient of each batch's mean loss is averaged over batches (the paper's expectation is
    per example; per batch is what one backward pass gives). normalize=True divides each layer's
    scores by their L2 norm (Michel et al.), which makes layers comparable for a global ranking.
    """
    import torch

    names = names_for(model)
    layers = encoder_layers(model, names)
    head_gates = [torch.ones(num_heads(layer, names), requires_grad=True) for layer in layers]
    neuron_gates = [torch.ones(ffn_width(layer, names), requires_grad=True) for layer in layers]
    totals = [torch.zeros(len(g)) for g in head_gates + neuron_gates]

    def collect():
        for total, gate in zip(totals, head_gates + neuron_gates):
            total += gate.grad.abs()
            gate.grad = None

    handles = []
    for layer, heads, neurons in zip(layers, head_gates, neuron_gates):
        handles.append(linear(layer, names.out).register_forward_pre_hook(_gate(heads, head_size(layer, names))))
        handles.append(linear(layer, names.ffn_out).register_forward_pre_hook(_gate(neurons, 1)))
    try:
        with _scoring(model):
            n = _backward_each(model, batches, collect)
    finally:
        for handle in handles:
            handle.remove()
    rows = [t / n for t in totals]
    if normalize:
        rows = [r / (r.norm() + 1e-20) for r in rows]
    return Scores(_padded(rows[:len(layers)]), _padded(rows[len(layers):]))


def movement_scores(model, batches, *, optimizer=None) -> Scores:
    """Sanh et al. 2020: a weight's movement score is S = -sum_t W_t * dL/dW_t (it grows for weights
    moving away from zero); a head's score sums those of its query/key/value rows and output
    projection columns, a neuron's those of its row of the first FFN Linear and column of the second
    (block movement pruning, Lagunas et al. 2021).

    With an optimizer the batches are training steps: the model is trained in place, in its current
    mode, and S accumulates over the fine-tuning as in the paper. Without one the weights stay fixed
    (eval mode) and S is the first-order Taylor estimate of the loss change from zeroing each weight,
    i.e. the movement score at step 0. Biases are not scored (the paper scores weights only).
    """
    import torch

    names = names_for(model)
    layers = encoder_layers(model, names)
    paths = (names.query, names.key, names.value, names.out, names.ffn_in, names.ffn_out)
    weights = [[linear(layer, p).weight for p in paths] for layer in layers]
    flat = [w for row in weights for w in row]
    scores = [torch.zeros_like(w, dtype=torch.float32) for w in flat]

    def collect():
        for score, w in zip(scores, flat):
            if w.grad is not None:  # a frozen weight does not move
                score -= (w.detach() * w.grad).float()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
        else:
            for w in flat:
                w.grad = None

    if optimizer is not None:
        _backward_each(model, batches, collect)
    else:
        with _scoring(model, trainable=flat):
            _backward_each(model, batches, collect)
    heads, neurons = [], []
    for i, layer in enumerate(layers):
        q, k, v, out, ffn_in, ffn_out = scores[6 * i:6 * i + 6]
        d = head_size(layer, names)
        per_row = (q.sum(1) + k.sum(1) + v.sum(1) + out.sum(0)).view(-1, d)
        heads.append(per_row.sum(1))
        neurons.append(ffn_in.sum(1) + ffn_out.sum(0))
    return Scores(_padded(heads), _padded(neurons))
