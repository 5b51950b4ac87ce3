"""Unstructured pruning, the book's methods: masks on every Linear weight of the encoder layers, set
by weight magnitude (Zhu & Gupta 2017) or by movement (Sanh et al. 2020) as the cubic schedule
(schedule.py) raises the sparsity, then `apply_masks` turns them into zeros in plain weights.

Masks use torch.nn.utils.prune's reparametrization (weight = weight_orig * weight_mask, recomputed
before each forward); the mask is chosen here, per matrix (the same sparsity in each), and written
into the weight_mask buffer. Zeros make no dense kernel faster: what sparsity buys is a smaller
compressed file, unless a sparse runtime is measured.
"""

from __future__ import annotations

from transformers import TrainerCallback

from ..errors import PruneError
from .arch import encoder_layers

METHODS = ("magnitude", "movement")


def encoder_linears(model) -> dict:
    """{'<layer>.<path>': nn.Linear} for every Linear inside the encoder layers."""
    import torch

    return {f"{i}.{name}": module for i, layer in enumerate(encoder_layers(model))
            for name, module in layer.named_modules() if isinstance(module, torch.nn.Linear)}


def _masked(model) -> dict:
    found = {name: m for name, m in encoder_linears(model).items() if hasattr(m, "weight_mask")}
    if not found:
        raise PruneError("the model has no pruning masks: call add_masks(model) first")
    return found


def add_masks(model) -> dict:
    """Put an all-ones mask on each encoder Linear weight (idempotent); returns the masked modules."""
    from torch.nn.utils import prune

    for module in encoder_linears(model).values():
        if not hasattr(module, "weight_mask"):
            prune.identity(module, "weight")
    return _masked(model)


def _accumulate_movement(module, inputs, output):
    """Forward hook: when this call's effective weight W' = W * mask gets its gradient, add -dL/dW' * W
    to the module's movement score. dL/dW' reaches masked weights too (Sanh's straight-through
    estimator), so a pruned weight whose score grows comes back at the next mask update."""
    weight = module.weight
    if not weight.requires_grad:
        return
    orig = module.weight_orig

    def add(grad):
        module.weight_movement.sub_(grad.detach() * orig.detach())

    weight.register_hook(add)


def track_movement(model) -> dict:
    """Start accumulating movement scores on every masked Linear; returns {name: live score tensor}."""
    import torch

    out = {}
    for name, module in _masked(model).items():
        if not hasattr(module, "weight_movement"):
            module.register_buffer("weight_movement", torch.zeros_like(module.weight_orig), persistent=False)
            module.edge_sdk_movement_hook = module.register_forward_hook(_accumulate_movement)
        out[name] = module.weight_movement
    return out


def _scores(module, method: str):
    import torch

    if method == "magnitude":  # pruned weights stay pruned, as in Zhu & Gupta
        return module.weight_orig.detach().abs().masked_fill(module.weight_mask == 0, float("-inf"))
    if not hasattr(module, "weight_movement"):
        raise PruneError("movement pruning needs movement scores: call track_movement(model) before training")
    scores = module.weight_movement.clone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(scores)  # each rank saw only its own batches' gradients
    return scores


def update_masks(model, sparsity: float, method: str = "magnitude") -> None:
    """Mask the lowest-scored fraction `sparsity` of each encoder Linear weight (ties: lower index kept)."""
    import torch

    if method not in METHODS:
        raise PruneError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    if not 0 <= sparsity < 1:
        raise PruneError(f"sparsity {sparsity}: give the fraction of weights to zero, in [0, 1)")
    for module in _masked(model).values():
        scores = _scores(module, method).reshape(-1)
        keep = scores.numel() - round(sparsity * scores.numel())
        mask = torch.zeros_like(scores)
        mask[torch.topk(scores, keep, sorted=False).indices] = 1
        module.weight_mask.copy_(mask.view_as(module.weight_mask))


def apply_masks(model):
    """Make the masks permanent (zeros in plain `weight` parameters) and drop masks and scores; returns model."""
    from torch.nn.utils import prune

    for module in _masked(model).values():
        prune.remove(module, "weight")
        if hasattr(module, "weight_movement"):
            module.edge_sdk_movement_hook.remove()
            del module.edge_sdk_movement_hook
            del module._buffers["weight_movement"]
    return model


def sparsity(model) -> float:
    """Share of zeros over all encoder Linear weights (masks included, whether applied or not)."""
    zeros = total = 0
    for module in encoder_linears(model).values():
        weight = module.weight_orig * module.weight_mask if hasattr(module, "weight_mask") else module.weight
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total


class PruningCallback(TrainerCallback):
    """Trainer callback: masks on at train begin, updated on the schedule's steps, applied at the end.

    Masks follow `schedule(state.global_step)` after each optimizer step; with apply_at_end the final
    masks become zeros when training ends (call apply_masks yourself otherwise, before saving).
    Movement scores live in memory only: a run resumed from a checkpoint restarts them at zero.
    """

    def __init__(self, schedule, method: str = "magnitude", *, apply_at_end: bool = True):
        if method not in METHODS:
            raise PruneError(f"method {method!r}: choose one of {', '.join(METHODS)}")
        self.schedule = schedule
        self.method = method
        self.apply_at_end = apply_at_end

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        add_masks(model)
        if self.method == "movement":
            track_movement(model)
        if self.schedule(state.global_step) > 0:
            update_masks(model, self.schedule(state.global_step), self.method)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.schedule.is_update(state.global_step):
            update_masks(model, self.schedule(state.global_step), self.method)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.apply_at_end:
            apply_masks(model)
