"""From importance scores and an amount to keep, what to remove: a PrunePlan that `apply_plan` executes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import PruneError
from .structured import check_heads, check_layers, check_neurons, remove_heads, remove_layers, remove_neurons

SCOPES = ("layer", "global")


@dataclass(frozen=True)
class PrunePlan:
    """Positions to remove, per layer, in the model the plan is applied to; layers go last."""

    heads: dict[int, tuple[int, ...]] = field(default_factory=dict)
    neurons: dict[int, tuple[int, ...]] = field(default_factory=dict)
    layers: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        """JSON-able (a manifest's lineage); layer keys become strings."""
        return {"heads": {str(k): list(v) for k, v in self.heads.items()},
                "neurons": {str(k): list(v) for k, v in self.neurons.items()}, "layers": list(self.layers)}


def _keep_count(keep: float, n: int) -> int:
    return math.floor(keep * n + 0.5)  # round half up, so 0.5 of 5 keeps 3 rather than Python's 2


def _select(scores, keep: float, scope: str, what: str) -> dict[int, tuple[int, ...]]:
    """Per layer, the positions with the lowest scores to remove; NaN marks a position a layer lacks."""
    import torch

    if not 0 < keep <= 1:
        raise PruneError(f"keep_{what}={keep}: give the fraction of {what} to keep, in (0, 1]")
    if scope not in SCOPES:
        raise PruneError(f"scope {scope!r}: choose 'layer' (the same fraction in every layer) or 'global'")
    scores = torch.as_tensor(scores, dtype=torch.float64)
    sizes = [int((~row.isnan()).sum()) for row in scores]
    keep_sets = []
    for index, (row, n) in enumerate(zip(scores, sizes)):
        k = _keep_count(keep, n)
        if k < 1:
            raise PruneError(f"keep_{what}={keep} keeps none of the {n} {what} of layer {index}: keep at least "
                             f"{1 / n:.3g}, or remove the layer")
        # layer scope: its top k; global: its top 1 now (no layer is emptied), the rest ranked below
        order = torch.argsort(row[:n], descending=True, stable=True).tolist()
        keep_sets.append(set(order[:k if scope == "layer" else 1]))
    if scope == "global":
        total = max(_keep_count(keep, sum(sizes)), len(sizes))
        rest = [(i, j) for i, n in enumerate(sizes) for j in range(n) if j not in keep_sets[i]]
        rest.sort(key=lambda ij: (-float(scores[ij]), ij))  # best first; ties to the lower layer, unit
        for i, j in rest[:total - len(sizes)]:
            keep_sets[i].add(j)
    return {i: tuple(j for j in range(n) if j not in keep_sets[i])
            for i, n in enumerate(sizes) if len(keep_sets[i]) < n}


def plan_pruning(head_scores=None, neuron_scores=None, *, keep_heads: float = 1.0, keep_neurons: float = 1.0,
                 scope: str = "layer", drop_layers=()) -> PrunePlan:
    """Remove the lowest-scored heads and neurons so that the fraction `keep_*` of them remains.

    Scores are [layers, units] (importance.py; higher = more important, NaN where a layer has fewer
    units). scope="layer" keeps round(keep * n) in every layer, so FFN widths stay uniform and plain
    `from_pretrained` can reload FFN-only pruning; "global" ranks all layers together (Michel et al.
    normalise scores per layer for this; `head_neuron_importance` does by default) and keeps each
    layer's best unit regardless. `drop_layers` lists whole layers to remove after that.
    """
    heads = _select(head_scores, keep_heads, scope, "heads") if head_scores is not None else {}
    neurons = _select(neuron_scores, keep_neurons, scope, "neurons") if neuron_scores is not None else {}
    counts = {len(s) for s in (head_scores, neuron_scores) if s is not None}
    drop = tuple(sorted({int(i) for i in drop_layers}))
    for i in drop:
        if counts and not 0 <= i < min(counts):
            raise PruneError(f"layer {i} does not exist: the scores cover layers 0..{min(counts) - 1}")
    return PrunePlan(heads, neurons, drop)


def apply_plan(model, plan: PrunePlan, *, inplace: bool = False):
    """Heads, then neurons, then layers; the whole plan is checked against the model before any change."""
    check_heads(model, plan.heads)
    check_neurons(model, plan.neurons)
    check_layers(model, plan.layers)
    model = remove_heads(model, plan.heads, inplace=inplace)
    model = remove_neurons(model, plan.neurons, inplace=True)
    return remove_layers(model, plan.layers, inplace=True)
